//! Replays a run's validation curve through the `convergence` policy and prints where it
//! would grow, with `g(N)` at each evaluation:
//!
//! ```sh
//! cargo run -p growlm-policy-convergence --example replay -- runs/X/metrics.jsonl 3000 [rho]
//! ```

use growlm_policy::{Decision, Observation, Policy, ValPoint};
use growlm_policy_convergence::remaining_gain;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(budget)) = (args.get(1), args.get(2)) else {
        return Err("usage: replay METRICS.jsonl BUDGET [RHO]".into());
    };
    let budget: u64 = budget.parse()?;
    let rho: f64 = args.get(3).map_or(Ok(0.25), |r| r.parse())?;
    let mut history = Vec::new();
    for line in std::fs::read_to_string(path)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if let (Some(step), Some(loss)) = (v["step"].as_u64(), v["val_loss"].as_f64()) {
            history.push(ValPoint { step, loss, stage: 0 });
        }
    }
    // Built as a run builds it: from its `[policy]` table.
    let table: toml::Table = toml::from_str(&format!("rho = {rho}"))?;
    let mut policy = growlm_policy_convergence::build(&table)?;
    for i in 0..history.len() {
        let p = history[i];
        if p.step > budget {
            break;
        }
        // The steps between evaluations, as the engine shows them.
        let from = if i == 0 { 1 } else { history[i - 1].step + 1 };
        for step in from..p.step {
            let obs = Observation {
                step,
                tokens: 0,
                flops: 0.0,
                train_loss: p.loss,
                val_history: &history[..i],
                evaluated: false,
                stage: 0,
                n_stages: 2,
                flops_per_step: 1.0,
                next_flops_per_step: Some(3.0),
                stage_start: 0,
                max_steps: budget,
            };
            if policy.decide(&obs) == Decision::Grow {
                println!("grows at step {step}");
                return Ok(());
            }
        }
        let seen: Vec<(f64, f64)> = history[..=i].iter().map(|q| (q.step as f64, q.loss)).collect();
        let g = remaining_gain(&seen, budget as f64, 8);
        let obs = Observation {
            step: p.step,
            tokens: 0,
            flops: 0.0,
            train_loss: p.loss,
            val_history: &history[..=i],
            evaluated: true,
            stage: 0,
            n_stages: 2,
            flops_per_step: 1.0,
            next_flops_per_step: Some(3.0),
            stage_start: 0,
            max_steps: budget,
        };
        let d = policy.decide(&obs);
        if let Some(g) = g {
            println!(
                "step {:>6}  loss {:.4}  g {:.3} (upper {:.3})",
                p.step, p.loss, g.value, g.upper
            );
        }
        if d == Decision::Grow {
            println!("grows at step {}", p.step);
            return Ok(());
        }
    }
    println!("does not grow within the budget");
    Ok(())
}
