//! The experiment's markdown report: references, arms against the target (paper Table 2),
//! every run, the figure, and the solver against the runs (Appendix A); a frontier
//! experiment's sections are in [`frontier`].

use std::fmt::Write;

use super::results::{ArmResult, Results, SolverOutcome};
use super::Experiment;

mod frontier;

use frontier::frontier;

pub(super) fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// Appends a markdown table: the header row (`header`: the column names between ` | `), its
/// rule, then a line per row of cells.
pub(super) fn table(s: &mut String, header: &str, rows: impl IntoIterator<Item = Vec<String>>) {
    let columns = header.split(" | ").count();
    let _ = writeln!(s, "| {header} |\n|{}", "---|".repeat(columns));
    for row in rows {
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
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
          target as the arms are (what growth has to beat).\n\n";
    table(
        &mut s,
        "run | steps | final val loss | FLOPs | ×FLOPs | wall s",
        results.references.iter().map(|r| {
            let bound = if r.reached == Some(false) { "≥ " } else { "" };
            vec![
                r.run.clone(),
                r.steps.to_string(),
                format!("{:.4}", r.final_val_loss),
                format!("{:.3e}", r.flops),
                r.speedup_flops.map_or("-".into(), |x| format!("{bound}{x:.2}")),
                format!("{:.0}", r.wall_s),
            ]
        }),
    );
    s += "\n## Arms against the from-scratch target (equal-loss speed-up, paper Table 2)\n\n";
    s += "Mean ± sample standard deviation over the seeds, with the 95% confidence interval of the mean \
          (Student's t, n − 1 degrees of freedom); a speed-up whose interval covers 1 is no difference at this n. \
          The speed-up is the target's FLOPs \
          (wall seconds) to reach the arm's final validation loss, on its running-minimum curve, \
          over the arm's total, the small model's training included; `≥` marks a lower bound \
          (the target never reaches that loss).\n\n";
    table(
        &mut s,
        "arm | seeds | grew at | \\|Δloss\\| at growth | final val loss | ppl | FLOPs | ×FLOPs | ×wall",
        results.arms.iter().map(|a| {
            let bound = if a.all_reached { "" } else { "≥ " };
            vec![
                a.arm.clone(),
                format!("{:?}", a.seeds),
                format!("{:?}", a.growth_steps),
                a.delta_loss_at_growth.map_or("-".into(), |d| format!("{d:.2e}")),
                a.final_val_loss.show(4),
                format!("{:.3}", a.perplexity),
                format!("{:.3e}", a.flops),
                format!("{bound}{}", a.speedup_flops.show_difference(1.0, 2)),
                format!("{bound}{}", a.speedup_wall.show(2)),
            ]
        }),
    );
    s += "\n<details><summary>Every run</summary>\n\n";
    table(
        &mut s,
        "run | grew at | branched | final val loss | FLOPs | ×FLOPs | ×tokens | ×wall | reached",
        results.runs.iter().map(|r| {
            vec![
                format!("[{}]({runs_dir}{}/loss.svg)", r.dir, r.dir),
                format!("{:?}", r.growth_steps),
                r.branched.to_string(),
                format!("{:.4}", r.row.final_val_loss),
                format!("{:.3e}", r.row.flops),
                format!("{:.3}", r.row.speedup_flops),
                format!("{:.3}", r.row.speedup_tokens),
                format!("{:.3}", r.row.speedup_wall),
                r.row.reached.to_string(),
            ]
        }),
    );
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
                    let rows = v.empirical_effect_conversion_rate.iter().map(|&[g, e]| {
                        let near = v
                            .effect_conversion_rate
                            .iter()
                            .min_by(|a, b| (a[0] - g).abs().total_cmp(&(b[0] - g).abs()));
                        vec![format!("{g:.0}"), format!("{e:.4}"), opt(near.map(|p| p[1]), 4)]
                    });
                    table(&mut s, "growth step | empirical E | predicted E", rows);
                    s += "\n";
                }
            }
        }
    }
    downstream(&mut s, &results.downstream);
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

/// The downstream table (paper Table 2's columns): one row per arm and size, one column per
/// task metric, each a mean with its interval over the seeds.
fn downstream(s: &mut String, rows: &[super::DownstreamRow]) {
    let Some(first) = rows.first() else { return };
    let columns: Vec<&String> = first.metrics.keys().collect();
    *s += "## Downstream tasks (paper Table 2's columns; `[eval]`, docs/evaluation.md)\n\n";
    *s += "Each final checkpoint scored as lm-evaluation-harness scores it; mean ± sd (95% CI) over the seeds.\n\n";
    let header = format!(
        "run | {}",
        columns.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" | ")
    );
    table(
        s,
        &header,
        rows.iter().map(|r| {
            let mut row = vec![r.label.clone()];
            row.extend(
                columns
                    .iter()
                    .map(|c| r.metrics.get(*c).map_or("-".into(), |v| v.show(4))),
            );
            row
        }),
    );
    *s += "\n";
}
