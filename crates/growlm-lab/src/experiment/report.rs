//! The experiment's markdown report: references, arms against the target (paper Table 2),
//! every run, the figure, and the solver against the runs (Appendix A).

use std::fmt::Write;

use super::frontier::FrontierResults;
use super::results::{ArmResult, Results, SolverOutcome};
use super::Experiment;
use crate::stats::Interval;

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// The report of `results`; `runs_dir` prefixes links to run directories.
pub(crate) fn markdown(exp: &Experiment, results: &Results, runs_dir: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "# Experiment `{}`\n\n{}\n\n",
        results.experiment,
        exp.description.trim()
    );
    let _ = write!(
        s,
        "Rerun: `{}`  \nMachine: {}; {}; {} runs at a time; {:.0} s for the runs trained by this invocation.\n\n",
        results.command, results.machine, results.version, results.jobs, results.seconds
    );
    s += "## References (trained from scratch)\n\n×FLOPs: the smaller models alone, measured against the \
          target as the arms are (what growth has to beat).\n\n\
          | run | steps | final val loss | FLOPs | ×FLOPs | wall s |\n|---|---|---|---|---|---|\n";
    for r in &results.references {
        let bound = if r.reached == Some(false) { "≥ " } else { "" };
        let _ = writeln!(
            s,
            "| {} | {} | {:.4} | {:.3e} | {} | {:.0} |",
            r.run,
            r.steps,
            r.final_val_loss,
            r.flops,
            r.speedup_flops.map_or("-".into(), |x| format!("{bound}{x:.2}")),
            r.wall_s
        );
    }
    s += "\n## Arms against the from-scratch target (equal-loss speed-up, paper Table 2)\n\n";
    s += "Mean ± sample standard deviation over the seeds, with the 95% confidence interval of the mean \
          (Student's t, n − 1 degrees of freedom); a speed-up whose interval covers 1 is no difference at this n. \
          The speed-up is the target's FLOPs \
          (wall seconds) to reach the arm's final validation loss, on its running-minimum curve, \
          over the arm's total, the small model's training included; `≥` marks a lower bound \
          (the target never reaches that loss).\n\n";
    s += "| arm | seeds | grew at | \\|Δloss\\| at growth | final val loss | ppl | FLOPs | ×FLOPs | ×wall |\n|---|---|---|---|---|---|---|---|---|\n";
    for a in &results.arms {
        let bound = if a.all_reached { "" } else { "≥ " };
        let _ = writeln!(
            s,
            "| {} | {:?} | {:?} | {} | {} | {:.3} | {:.3e} | {bound}{} | {bound}{} |",
            a.arm,
            a.seeds,
            a.growth_steps,
            a.delta_loss_at_growth.map_or("-".into(), |d| format!("{d:.2e}")),
            a.final_val_loss.show(4),
            a.perplexity,
            a.flops,
            a.speedup_flops.show_difference(1.0, 2),
            a.speedup_wall.show(2)
        );
    }
    s += "\n<details><summary>Every run</summary>\n\n| run | grew at | branched | final val loss | FLOPs | ×FLOPs | ×tokens | ×wall | reached |\n|---|---|---|---|---|---|---|---|---|\n";
    for r in &results.runs {
        let _ = writeln!(
            s,
            "| [{}]({runs_dir}{}/loss.svg) | {:?} | {} | {:.4} | {:.3e} | {:.3} | {:.3} | {:.3} | {} |",
            r.dir,
            r.dir,
            r.growth_steps,
            r.branched,
            r.row.final_val_loss,
            r.row.flops,
            r.row.speedup_flops,
            r.row.speedup_tokens,
            r.row.speedup_wall,
            r.row.reached
        );
    }
    s += "\n</details>\n\n## Figures\n\n![validation loss against FLOPs](loss-flops.svg)\n\n";
    if let Some(f) = &results.frontier {
        frontier(&mut s, f);
    }
    if let Some(solver) = &results.solver {
        s += "## Solver against the runs (paper Appendix A, Figures 7–8)\n\n![solver fits and E](solve.svg)\n\n";
        match solver {
            SolverOutcome::Failed { error } => {
                let _ = write!(s, "The solver: {error}.\n\n");
            }
            SolverOutcome::Report(v) => {
                if let Some(e) = &v.error {
                    let _ = write!(s, "The solver: {e}.\n\n");
                }
                let ci = v
                    .optimal_growth_step_ci
                    .map_or("-".into(), |c| format!("{:.0}–{:.0}", c[0], c[1]));
                let _ = write!(
                    s,
                    "Predicted optimal growth step {} (95% CI {ci}); predicted speed-up ×{}; Fs/Ft {:.3}{}.\n\n",
                    opt(v.optimal_growth_step, 0),
                    opt(v.predicted_speedup, 3),
                    v.flops_ratio,
                    v.fit_until.map_or(String::new(), |u| format!(
                        "; curves fitted up to step {u:.0} (the wsd schedule's stable phase)"
                    ))
                );
                if let Some(plan) = &v.plan {
                    let list = |xs: &[f64], digits: usize| {
                        xs.iter()
                            .map(|x| format!("{x:.digits$}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let _ = write!(
                        s,
                        "Multi-stage plan (beyond the paper): grow at steps [{}] (losses [{}]), steps per stage [{}]; \
                         predicted speed-up ×{:.3} at loss {:.4}.\n\n",
                        list(&plan.growth_steps, 0),
                        list(&plan.growth_losses, 4),
                        list(&plan.steps, 0),
                        plan.speedup,
                        v.target_loss
                    );
                }
                if let Some(e) = &v.plan_error {
                    let _ = write!(s, "Multi-stage plan: {e}.\n\n");
                }
                best_swept(&mut s, &results.arms);
                if !v.empirical_effect_conversion_rate.is_empty() {
                    s += "| growth step | empirical E | predicted E |\n|---|---|---|\n";
                    for &[g, e] in &v.empirical_effect_conversion_rate {
                        let near = v
                            .effect_conversion_rate
                            .iter()
                            .min_by(|a, b| (a[0] - g).abs().total_cmp(&(b[0] - g).abs()));
                        let _ = writeln!(s, "| {g:.0} | {e:.4} | {} |", opt(near.map(|p| p[1]), 4));
                    }
                    s += "\n";
                }
            }
        }
    }
    if !results.missing.is_empty() {
        let names: Vec<String> = results.missing.iter().map(|m| format!("`{m}`")).collect();
        let _ = write!(s, "Not run yet (report only, or failed): {}.\n\n", names.join(", "));
    }
    s += "Each run's own curves: `<run>/loss.svg`. Machine-readable: `results.json`.\n";
    s
}

/// The best single-growth arm among those run on the most seeds (means over different
/// seed sets are not comparable).
fn best_swept(s: &mut String, arms: &[ArmResult]) {
    let fixed: Vec<&ArmResult> = arms.iter().filter(|a| a.growth_steps.len() == 1).collect();
    let most = fixed.iter().map(|a| a.seeds.len()).max().unwrap_or(0);
    if let Some(best) = fixed
        .iter()
        .filter(|a| a.seeds.len() == most)
        .max_by(|a, b| a.speedup_flops.mean.total_cmp(&b.speedup_flops.mean))
    {
        let _ = write!(
            s,
            "Best swept growth step {:?} (among the arms run on seeds {:?}): measured speed-up ×{:.3}.\n\n",
            best.growth_steps, best.seeds, best.speedup_flops.mean
        );
    }
}

/// The frontier section: the sizes, the envelope, the arms against it beside ×target.
fn frontier(s: &mut String, f: &FrontierResults) {
    let opt = |v: &Option<Interval>, digits: usize, zero: f64| {
        v.as_ref().map_or("outside".into(), |i| i.show_difference(zero, digits))
    };
    *s += "## The compute-optimal frontier\n\n\
           Each size trained from scratch at each budget (the shorter wsd budgets branched from the \
           longest run at the start of their decay); the frontier is, per seed, the lower envelope of \
           final validation loss against FLOPs, linear in log-FLOPs. Over the seeds: mean ± sd \
           (95% CI, Student's t).\n\n\
           | size | parameters | steps | FLOPs | tokens/param | final val loss | on the envelope (seeds) |\n\
           |---|---|---|---|---|---|---|\n";
    for r in &f.sizes {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3e} | {:.1} | {} | {} of {} |",
            r.size,
            r.params,
            r.steps,
            r.flops,
            r.tokens_per_param,
            r.final_val_loss.show(4),
            r.on_envelope,
            r.final_val_loss.n
        );
    }
    let c = &f.cost;
    if c.seeds > 0 {
        let _ = write!(
            s,
            "\nThe sizes cost {:.0} s of runs per seed (each branch from its branch point), {:.2}× the \
             {:.0} s of the largest size's longest budget alone (mean of {} seeds).\n",
            c.sizes_s, c.ratio, c.largest_s, c.seeds
        );
    }
    *s += "\n### The arms against the frontier and against the target\n\n\
           Iso-FLOP gap: the arm's final loss minus the frontier at its FLOPs (negative: better than \
           every size from scratch for that compute). ×frontier: the frontier's FLOPs to the arm's final \
           loss over the arm's (above 1: growth saved compute against the best size). ×target: the \
           paper's Table 2 measure against the target size alone. \"outside\": beyond the frontier's \
           range on every seed, never extrapolated.\n\n\
           | arm | seeds | FLOPs | tokens/param | growth ×params | final val loss | iso-FLOP gap | ×frontier | ×target |\n\
           |---|---|---|---|---|---|---|---|---|\n";
    for a in &f.arms {
        let _ = writeln!(
            s,
            "| {} | {:?} | {:.3e} | {:.1} | {} | {} | {} | {} | {} |",
            a.arm,
            a.seeds,
            a.flops,
            a.tokens_per_param,
            a.growth_factor.map_or("-".into(), |g| format!("{g:.2}")),
            a.final_val_loss.show(4),
            opt(&a.iso_flop_gap, 4, 0.0),
            opt(&a.x_frontier, 2, 1.0),
            opt(&a.x_target, 2, 1.0),
        );
    }
    let outside: Vec<String> = f
        .rows
        .iter()
        .filter_map(|r| r.outside.as_ref().map(|o| format!("`{}`: {o}", r.run)))
        .collect();
    if !outside.is_empty() {
        let _ = write!(s, "\nOutside the frontier's range: {}.\n", outside.join("; "));
    }
    *s += "\n![the compute-optimal frontier](frontier.svg)\n\n";
    grids(s, f);
    if let Some(l) = &f.law {
        law(s, l);
    }
}

/// The law's predictions of the grown arms against what was measured.
fn law(s: &mut String, l: &super::LawCheck) {
    let w = &l.fit.law;
    let _ = write!(
        s,
        "### The solver's \"whether\": the law L(N, D) against the grown arms\n\n\
         `L(N, D) = {:.4} + {:.4e}·N^-{:.4} + {:.4e}·D^-{:.4}`, fitted to the {} size runs of every seed \
         (rmse {:.4}, largest residual {:.4}). Each grown run is predicted from its growth step alone \
         (loss matching; no grown run is fitted); the law recommends growing when that beats every size \
         alone at the run's FLOPs. Agreement: the measured iso-FLOP gap's interval is below 0 (grow), \
         above 0 (a size alone), or covers 0 (no difference: either answer agrees).\n\n\
         {} of {} arms predicted within 0.01 of the measured loss; the recommendation agrees with the \
         measurement in {} of {}.\n\n",
        w.e,
        w.a,
        w.alpha,
        w.b,
        w.beta,
        l.fit.points,
        l.fit.rmse,
        l.fit.max_residual,
        l.within,
        l.cells.len(),
        l.agree,
        l.cells.len()
    );
    if let Some(t) = &l.transfer {
        let _ = write!(
            s,
            "Calibrated: the law anchored at each size's runs (its mean residual there, interpolated in ln D) \
             with a growth transfer `D_eff = D_match + μ·D_after − R` fitted to the grown runs; each arm is \
             predicted by the transfer fitted to the other arms' runs (leave one arm out). Fitted to all {} \
             grown runs: μ = {:.4}, R = {:.0} tokens (rmse {:.4}). {} of {} arms predicted within 0.01; the \
             recommendation agrees in {} of {}.\n\n",
            t.runs,
            t.transfer.gain,
            t.transfer.recovery,
            t.rmse,
            l.within_calibrated,
            l.calibrated,
            l.agree_calibrated,
            l.calibrated
        );
    }
    s.push_str(
        "| arm | predicted loss | measured loss | error | calibrated (error) | law says | best size alone (law) | measured |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for c in &l.cells {
        let calibrated = c.calibrated.map_or("—".into(), |k| {
            format!(
                "{:.4} ({:+.4}), {}",
                k.predicted,
                k.error,
                if k.predicted_grow { "grow" } else { "alone" }
            )
        });
        let _ = writeln!(
            s,
            "| {} | {:.4} | {} | {:+.4} | {} | {} | {} | {} |",
            c.arm,
            c.predicted,
            c.measured.show(4),
            c.error,
            calibrated,
            if c.predicted_grow { "grow" } else { "alone" },
            c.best_alone,
            match c.measured_best {
                super::Measured::Grow => "grow",
                super::Measured::Alone => "alone",
                super::Measured::NoDifference => "no difference",
            }
        );
    }
    s.push('\n');
}

/// Each grid arm's ×frontier over (growth point, budget), with its heat map.
fn grids(s: &mut String, f: &FrontierResults) {
    for name in f.grid_arms() {
        let mut budgets: Vec<u64> = f
            .arms
            .iter()
            .filter(|a| a.name == name)
            .filter_map(|a| a.budget)
            .collect();
        budgets.dedup();
        let mut fracs: Vec<f64> = f
            .arms
            .iter()
            .filter(|a| a.name == name)
            .filter_map(|a| a.grow_frac)
            .collect();
        fracs.sort_by(f64::total_cmp);
        fracs.dedup();
        let _ = write!(
            s,
            "### `{name}`: ×frontier over budget and growth point\n\n\
             Rows: the growth point as a fraction of the budget; columns: the budget in steps (the \
             target's tokens per parameter). Mean (95% CI) over the seeds; above 1, growth needed less \
             compute than the best size from scratch.\n\n| grow at |"
        );
        for b in &budgets {
            let tpp = f
                .tokens_per_param_at(*b)
                .map_or(String::new(), |t| format!(" ({t:.0} tok/param)"));
            let _ = write!(s, " {b}{tpp} |");
        }
        let _ = write!(s, "\n|---|{}\n", "---|".repeat(budgets.len()));
        for frac in &fracs {
            let _ = write!(s, "| {:.0}% |", frac * 100.0);
            for b in &budgets {
                let cell = f
                    .arms
                    .iter()
                    .find(|a| a.name == name && a.budget == Some(*b) && a.grow_frac == Some(*frac));
                let text = match cell {
                    Some(a) => a
                        .x_frontier
                        .as_ref()
                        .map_or("outside".into(), |i| i.show_difference(1.0, 2)),
                    None => "-".into(),
                };
                let _ = write!(s, " {text} |");
            }
            s.push('\n');
        }
        let _ = write!(s, "\n![×frontier of {name}](regime-{name}.svg)\n\n");
    }
}
