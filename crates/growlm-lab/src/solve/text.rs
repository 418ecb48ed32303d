//! The solve reports as text, as `cargo xtask solve` prints them (paper §3.2, eq. 1–3;
//! Appendix A; the iso-FLOP question of `solve --budget`).

use std::fmt;

use super::budget::BudgetReport;
use super::Solved;

impl fmt::Display for Solved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self;
        let r = &s.report;
        writeln!(f, "growlm solve — paper §3.2, eq. 1–3")?;
        for (name, fit) in [("small", &s.fit[0]), ("target", &s.fit[1])] {
            let params: Vec<String> = fit.params.iter().map(|(k, v)| format!("{k}={v:.4}")).collect();
            writeln!(
                f,
                "  {name:<6} {:<11} {} | R² {:.5}, residual sd {:.4}, AIC {:.1}, {} points",
                format!("{:?}", fit.model),
                params.join(" "),
                fit.r2,
                fit.residual_std,
                fit.aic,
                fit.n_points
            )?;
        }
        let [lo, horizon] = s.range;
        writeln!(
            f,
            "  Fs/Ft = {:.4}; horizon {lo:.0}..{horizon:.0} steps; target loss {:.4}{}",
            r.flops_ratio,
            r.target_loss,
            r.fit_until.map_or(String::new(), |u| format!(
                "; curves fitted up to step {u:.0}{}",
                if s.stable_phase {
                    " (the runs' wsd stable phase; --fit-until to change)"
                } else {
                    ""
                }
            ))
        )?;
        match &s.optimum {
            Ok(o) => {
                writeln!(
                    f,
                    "  optimal growth step (E = Fs/Ft):      {:.0}{}",
                    o.by_root,
                    r.optimal_growth_step_ci
                        .map_or(String::new(), |[l, h]| format!("  (95% CI {l:.0}..{h:.0})"))
                )?;
                writeln!(f, "  optimal growth step (min total FLOPs): {:.0}", o.by_flops)?;
                if let Some(n) = &o.note {
                    writeln!(f, "  note: {n}")?;
                }
                writeln!(
                    f,
                    "  predicted speed-up at loss {:.4}: ×{:.3} ({:.3e} vs {:.3e} small-step units)",
                    o.target_loss, o.speedup, o.staged_flops, o.scratch_flops
                )?;
            }
            Err(e) => writeln!(f, "  optimal growth step: {e}")?,
        }
        writeln!(
            f,
            "  convergence-stage step (|L_s'| < {:e}): {}",
            r.convergence_threshold,
            r.convergence_step.map_or("not reached".into(), |c| format!("{c:.0}"))
        )?;
        for (&[g, e], p) in r.empirical_effect_conversion_rate.iter().zip(&s.predicted_at_empirical) {
            writeln!(
                f,
                "  empirical E at Gb≈{g:.0}: {e:.4} (predicted {})",
                p.map_or("-".into(), |p| format!("{p:.4}"))
            )?;
        }
        match (&r.plan, &r.plan_error) {
            (Some(p), _) => {
                writeln!(
                    f,
                    "  multi-stage plan to loss {:.4} (beyond the paper; each stage continued at its equal-loss step):",
                    r.target_loss
                )?;
                for (j, name) in s.plan_names.iter().enumerate() {
                    let leave = match (p.growth_losses.get(j), p.growth_steps.get(j)) {
                        (Some(l), Some(g)) => format!("grow at loss {l:.4}, step {g:.0}"),
                        _ => "to the target loss".into(),
                    };
                    writeln!(f, "    {name}: {:.0} steps, {leave}", p.steps[j])?;
                }
                writeln!(
                    f,
                    "    FLOPs {:.3e} against {:.3e} from scratch: ×{:.3}",
                    p.total_flops, p.scratch_flops, p.speedup
                )?;
            }
            (None, Some(e)) => writeln!(f, "  multi-stage plan: {e}")?,
            (None, None) => {}
        }
        Ok(())
    }
}

impl fmt::Display for BudgetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self;
        let l = &r.fit.law;
        writeln!(
            f,
            "growlm solve --budget: whether to grow, from L(N, D) = E + A·N^-α + B·D^-β"
        )?;
        writeln!(
            f,
            "  law: E {:.4}, A {:.4e}, α {:.4}, B {:.4e}, β {:.4} | {} runs, rmse {:.4}, largest residual {:.4}",
            l.e, l.a, l.alpha, l.b, l.beta, r.fit.points, r.fit.rmse, r.fit.max_residual
        )?;
        match (&r.transfer, &r.carried) {
            (_, Some(t)) => writeln!(
                f,
                "  growth: the law anchored at its runs, with a transfer carried over as given: \
                 D_eff = D_match {:+.4}·D_after {:+.0} tokens",
                t.gain, -t.recovery
            )?,
            (Some(t), None) => writeln!(
                f,
                "  growth: the law anchored at its runs, with a transfer fitted to {} grown runs: \
                 D_eff = D_match {:+.4}·D_after {:+.0} tokens (rmse {:.4})",
                t.runs, t.transfer.gain, -t.transfer.recovery, t.rmse
            )?,
            (None, None) => writeln!(
                f,
                "  growth: loss matching (give --grown RUN... to calibrate it on grown runs)"
            )?,
        }
        writeln!(
            f,
            "  growth: {} ({:.0} params) -> {} ({:.0} params); budget {:.3e} FLOPs",
            r.pair.small.name, r.pair.small.params, r.pair.target.name, r.pair.target.params, r.answer.flops
        )?;
        writeln!(
            f,
            "  {:<44} {:>9} {:>11} {:>10} {:>10} {:>10}",
            "option", "steps", "FLOPs", "tok/param", "loss", "×frontier"
        )?;
        for o in r.answer.alone.iter().chain([&r.answer.best_growth]).chain(&r.at) {
            writeln!(
                f,
                "  {:<44} {:>9} {:>11.3e} {:>10.1} {:>10.4} {:>10}",
                o.name,
                o.steps,
                o.flops,
                o.tokens_per_param,
                o.loss,
                o.x_frontier.map_or("outside".into(), |x| format!("{x:.3}"))
            )?;
        }
        writeln!(
            f,
            "  best growth point: step {} of {} ({:.0}% of the run)",
            r.answer.best_growth.grow_at.unwrap_or(0),
            r.answer.best_growth.steps,
            100.0 * r.answer.best_grow_frac
        )?;
        writeln!(
            f,
            "  recommended: {} (predicted loss {:.4}){}",
            r.answer.recommended.name,
            r.answer.recommended.loss,
            if r.answer.grow() {
                ""
            } else {
                ": growth does not pay at this budget"
            }
        )?;
        writeln!(f, "  the `solver` policy acts on this law with:")?;
        for line in r.policy.lines() {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}
