//! The report's sections of a frontier experiment: the sizes and their envelope, the arms
//! against it beside ×target, the regime grids, and the law's predictions of the grown arms.

use std::fmt::Write;

use super::table;
use crate::experiment::frontier::FrontierResults;
use crate::stats::Interval;

/// A measure over the seeds against `zero` (see [`Interval::show_difference`]), or
/// "outside" where it fell beyond the frontier's range.
fn or_outside(v: &Option<Interval>, digits: usize, zero: f64) -> String {
    v.as_ref().map_or("outside".into(), |i| i.show_difference(zero, digits))
}

/// The frontier section: the sizes, the envelope, the arms against it beside ×target.
pub(super) fn frontier(s: &mut String, f: &FrontierResults) {
    *s += "## The compute-optimal frontier\n\n\
           Each size trained from scratch at each budget (the shorter wsd budgets branched from the \
           longest run at the start of their decay); the frontier is, per seed, the lower envelope of \
           final validation loss against FLOPs, linear in log-FLOPs. Over the seeds: mean ± sd \
           (95% CI, Student's t).\n\n";
    table(
        s,
        "size | parameters | steps | FLOPs | tokens/param | final val loss | on the envelope (seeds)",
        f.sizes.iter().map(|r| {
            vec![
                r.size.clone(),
                r.params.to_string(),
                r.steps.to_string(),
                format!("{:.3e}", r.flops),
                format!("{:.1}", r.tokens_per_param),
                r.final_val_loss.show(4),
                format!("{} of {}", r.on_envelope, r.final_val_loss.n),
            ]
        }),
    );
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
           range on every seed, never extrapolated.\n\n";
    let header =
        "arm | seeds | FLOPs | tokens/param | growth ×params | final val loss | iso-FLOP gap | ×frontier | ×target";
    table(
        s,
        header,
        f.arms.iter().map(|a| {
            vec![
                a.arm.clone(),
                format!("{:?}", a.seeds),
                format!("{:.3e}", a.flops),
                format!("{:.1}", a.tokens_per_param),
                a.growth_factor.map_or("-".into(), |g| format!("{g:.2}")),
                a.final_val_loss.show(4),
                or_outside(&a.iso_flop_gap, 4, 0.0),
                or_outside(&a.x_frontier, 2, 1.0),
                or_outside(&a.x_target, 2, 1.0),
            ]
        }),
    );
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
    for p in &f.preregistered {
        preregistered(s, p);
    }
    if let Some(l) = &f.law {
        law(s, l);
    }
}

/// What a measurement says, in a word.
fn verdict(m: crate::experiment::Measured) -> &'static str {
    match m {
        crate::experiment::Measured::Grow => "grow",
        crate::experiment::Measured::Alone => "alone",
        crate::experiment::Measured::NoDifference => "no difference",
    }
}

/// The committed prediction against the measured arms.
fn preregistered(s: &mut String, p: &crate::experiment::Preregistered) {
    let _ = write!(
        s,
        "### Pre-registered: the committed prediction against the measured arms\n\n\
         `{}`, written by `solve --budget-steps` from this scale's sizes and a carried transfer before \
         any grown run existed{}. It recommended: {}. Each arm is set beside the prediction for the growth \
         step its runs took (the nearest one predicted, marked `~`, where a policy grew elsewhere). Right: \
         the prediction's \"grow\" (×frontier above 1) or \"alone\" agrees with the measured iso-FLOP gap's \
         interval (no difference: either agrees).\n\n\
         {} of {} arms predicted within 0.01 of the measured loss; {} of {} right.\n\n",
        p.file.display(),
        p.committed
            .as_ref()
            .map_or(String::new(), |c| format!(" (first committed: {c})")),
        p.recommended,
        p.within,
        p.cells.len(),
        p.right,
        p.cells.len()
    );
    let steps = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    table(
        s,
        "arm | grew at | predicted at | predicted loss | measured loss | error | predicted ×frontier | measured ×frontier | error | predicted | measured | right",
        p.cells.iter().map(|c| {
            vec![
                c.arm.clone(),
                steps(&c.grew_at),
                format!("{}{}", if c.exact { "" } else { "~" }, steps(&c.predicted_at)),
                format!("{:.4}", c.predicted),
                c.measured.show(4),
                format!("{:+.4}", c.error),
                c.predicted_x.map_or("—".into(), |x| format!("{x:.2}")),
                or_outside(&c.measured_x, 2, 1.0),
                c.x_error.map_or("—".into(), |e| format!("{e:+.2}")),
                if c.predicted_grow { "grow" } else { "alone" }.into(),
                verdict(c.measured_best).into(),
                if c.right { "yes" } else { "no" }.into(),
            ]
        }),
    );
    s.push('\n');
}

/// The law's predictions of the grown arms against what was measured.
fn law(s: &mut String, l: &crate::experiment::LawCheck) {
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
    let says = |grow: bool| if grow { "grow" } else { "alone" };
    table(
        s,
        "arm | predicted loss | measured loss | error | calibrated (error) | law says | best size alone (law) | measured",
        l.cells.iter().map(|c| {
            let calibrated = c.calibrated.map_or("—".into(), |k| {
                format!("{:.4} ({:+.4}), {}", k.predicted, k.error, says(k.predicted_grow))
            });
            let measured = verdict(c.measured_best);
            vec![
                c.arm.clone(),
                format!("{:.4}", c.predicted),
                c.measured.show(4),
                format!("{:+.4}", c.error),
                calibrated,
                says(c.predicted_grow).into(),
                c.best_alone.to_string(),
                measured.into(),
            ]
        }),
    );
    s.push('\n');
}

/// Each grid arm's ×frontier over (growth point, budget), with its heat map.
fn grids(s: &mut String, f: &FrontierResults) {
    for name in f.grid_arms() {
        let cells = || f.arms.iter().filter(|a| a.name == name);
        let mut budgets: Vec<u64> = cells().filter_map(|a| a.budget).collect();
        budgets.dedup();
        let mut fracs: Vec<f64> = cells().filter_map(|a| a.grow_frac).collect();
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
                let cell = cells().find(|a| a.budget == Some(*b) && a.grow_frac == Some(*frac));
                let text = cell.map_or("-".into(), |a| or_outside(&a.x_frontier, 2, 1.0));
                let _ = write!(s, " {text} |");
            }
            s.push('\n');
        }
        let _ = write!(s, "\n![×frontier of {name}](regime-{name}.svg)\n\n");
    }
}
