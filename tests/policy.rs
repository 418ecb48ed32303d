//! Policies: decisions on synthetic loss curves, parameter validation, state across
//! resume, and the example policy run end to end through the registry.

mod common;

use common::*;
use growlm::policy::{Decision, Observation, Policy, PolicyError, ValPoint};
use growlm::train::GrowEvent;

fn build(name: &str, params: &str) -> Result<Box<dyn Policy>, PolicyError> {
    let table: toml::Table = toml::from_str(params).unwrap();
    growlm::registry().build(name, &table)
}

/// Feeds `curve(step)` to `policy`, evaluating every `every` steps, and returns the first
/// step at which it asks to grow.
fn first_growth(policy: &mut dyn Policy, every: u64, steps: u64, curve: impl Fn(u64) -> f64) -> Option<u64> {
    let mut history = Vec::new();
    for step in 1..=steps {
        let evaluated = step % every == 0;
        if evaluated {
            history.push(ValPoint {
                step,
                loss: curve(step),
                stage: 0,
            });
        }
        let obs = Observation {
            step,
            tokens: step * 100,
            flops: step as f64,
            train_loss: curve(step),
            val_history: &history,
            evaluated,
            stage: 0,
            n_stages: 2,
            flops_per_step: 1.0,
            next_flops_per_step: Some(3.0),
            stage_start: 0,
        };
        if policy.decide(&obs) == Decision::Grow {
            return Some(step);
        }
    }
    None
}

/// Deterministic noise in [-1, 1].
fn noise(step: u64) -> f64 {
    let x = step
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

#[test]
fn convergence_fires_where_the_slope_falls_below_the_threshold() {
    // L = 2 + exp(−N/200): |L′| = exp(−N/200)/200 < 1e-4 once N > 200·ln 50 ≈ 782.4.
    // A 6-point window over evaluations every 20 steps measures the slope at its centre,
    // 50 steps back, so the first flat window ends near 840; patience 2 adds one more.
    let mut p = build(
        "convergence",
        "abs_threshold = 1e-4\nwindow = 6\npatience = 2\nconfidence = 0.9",
    )
    .unwrap();
    let fired = first_growth(p.as_mut(), 20, 3000, |n| 2.0 + (-(n as f64) / 200.0).exp()).unwrap();
    assert!((840..=900).contains(&fired), "fired at {fired}");
}

#[test]
fn convergence_elasticity_threshold_matches_the_analytic_point() {
    // L = 1 + 10/√N: elasticity −L′N/L = 5x/(1 + 10x) with x = 1/√N; it equals 0.07 at
    // x = 0.07/4.3, N ≈ 3773. With evaluations every 50 steps the fit's centre lags.
    let mut p = build("convergence", "threshold = 0.07\nwindow = 5\npatience = 1").unwrap();
    let fired = first_growth(p.as_mut(), 50, 20000, |n| 1.0 + 10.0 / (n as f64).sqrt()).unwrap();
    assert!((3773..=4100).contains(&fired), "fired at {fired}");
}

#[test]
fn convergence_does_not_fire_on_a_noisy_dip() {
    // A loss still falling at 2e-4/step with noise of ±0.05: single windows can look flat,
    // but the slope's confidence interval is too wide to call it converged.
    let mut p = build("convergence", "abs_threshold = 1e-4\nwindow = 6\npatience = 2").unwrap();
    let curve = |n: u64| 5.0 - 2e-4 * n as f64 + 0.05 * noise(n);
    assert_eq!(first_growth(p.as_mut(), 20, 6000, curve), None);
    // The same policy fires on a flat noisy curve once it has enough evidence.
    let mut p = build("convergence", "abs_threshold = 1e-4\nwindow = 6\npatience = 2").unwrap();
    let flat = |n: u64| 3.0 + 0.0005 * noise(n);
    assert!(first_growth(p.as_mut(), 20, 6000, flat).is_some());
}

#[test]
fn fixed_fires_exactly_at_its_steps_and_never_never_grows() {
    let mut p = build("fixed", "steps = [37]").unwrap();
    assert_eq!(first_growth(p.as_mut(), 10, 100, |_| 1.0), Some(37));
    let mut p = build("never", "").unwrap();
    assert_eq!(first_growth(p.as_mut(), 10, 10_000, |n| 10.0 / n as f64), None);
    let mut p = build("example", "every = 15").unwrap();
    assert_eq!(first_growth(p.as_mut(), 10, 100, |_| 1.0), Some(15));
    let mut p = build("example", "every = 1000\nloss_below = 2.5").unwrap();
    assert_eq!(first_growth(p.as_mut(), 10, 100, |n| 3.0 - n as f64 / 100.0), Some(60));
}

#[test]
fn bad_policy_parameters_are_refused_with_the_key_named() {
    let err = |name: &str, params: &str| build(name, params).err().unwrap().to_string();
    let e = err("convergence", "windw = 5");
    assert!(e.contains("policy.windw") && e.contains("window"), "{e}");
    assert!(err("convergence", "window = 2").contains("policy.window"));
    assert!(err("convergence", "confidence = 1.5").contains("policy.confidence"));
    assert!(err("convergence", "threshold = -1").contains("policy.threshold"));
    assert!(err("fixed", "steps = [50, 20]").contains("increasing"));
    assert!(err("fixed", "").contains("policy.steps"));
    assert!(err("never", "steps = [1]").contains("policy.steps"));
    let e = err("nope", "");
    assert!(e.contains("unknown policy `nope`") && e.contains("convergence"), "{e}");
}

#[test]
fn policy_state_round_trips() {
    let mut p = build("convergence", "abs_threshold = 1.0\nwindow = 3\npatience = 5").unwrap();
    first_growth(p.as_mut(), 1, 4, |_| 1.0);
    let saved = p.state();
    assert_eq!(saved["flat"], 2);
    let mut q = build("convergence", "abs_threshold = 1.0\nwindow = 3\npatience = 5").unwrap();
    q.load_state(saved.clone()).unwrap();
    assert_eq!(q.state(), saved);
    assert!(q.load_state(serde_json::json!({"x": 1})).is_err());
}

#[test]
fn convergence_state_survives_resume() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write_corpus(dir.path());
    // Every window counts as flat; evaluations at 4, 8, 12, …: the window is full at 12,
    // and with patience 3 growth comes at 20. The checkpoint at 16 holds a count of 2; a
    // resume that lost it would grow only at 28.
    let cfg = tiny_config(
        &corpus,
        32,
        true,
        "name = \"convergence\"\nabs_threshold = 10.0\nwindow = 3\npatience = 3",
    );
    let (full, killed) = (dir.path().join("full"), dir.path().join("killed"));
    let s = run(&cfg, &full, false, None).unwrap();
    assert_eq!(s.growth_steps, vec![20]);
    assert!(run(&cfg, &killed, false, Some(18)).is_err());
    let s2 = run(&cfg, &killed, true, None).unwrap();
    assert_eq!(s2.growth_steps, vec![20]);
    assert_eq!(metrics(&full), metrics(&killed));
}

#[test]
fn the_example_policy_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write_corpus(dir.path());
    let cfg = tiny_config(&corpus, 12, true, "name = \"example\"\nevery = 5");
    let out = dir.path().join("run");
    let s = run(&cfg, &out, false, None).unwrap();
    assert_eq!(s.growth_steps, vec![5]);
    assert_eq!(s.policy, "example");
    let events: Vec<GrowEvent> = growlm::train::output::read_jsonl(&out.join("events.jsonl")).unwrap();
    assert_eq!(events.len(), 1);
    // `never` on a staged config trains the first stage only.
    let cfg = tiny_config(&corpus, 12, true, "name = \"never\"");
    let s = run(&cfg, &dir.path().join("never"), false, None).unwrap();
    assert!(s.growth_steps.is_empty());
    assert_eq!(s.final_stage, 0);
}
