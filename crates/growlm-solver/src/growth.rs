//! Growth math (paper §3.2, eq. 1–3; docs/design.md §Solver): equivalent steps, the value
//! function `V`, the effect conversion rate `E`, the optimal growth point, the
//! convergence-stage step, the predicted speed-up, and multi-stage plans.

use argmin::core::{CostFunction, Executor, State};
use argmin::solver::brent::{BrentOpt, BrentRoot};
use serde::Serialize;

use crate::fit::Fit;
use crate::SolverError;

/// A two-stage problem: fitted curves of the small and the target model trained from
/// scratch, and their FLOPs per step.
#[derive(Debug, Clone)]
pub struct GrowthProblem {
    /// Small model's curve `L_s`.
    pub small: Fit,
    /// Target model's curve `L_t`.
    pub target: Fit,
    /// FLOPs per step of the small model (`Fs`).
    pub flops_small: f64,
    /// FLOPs per step of the target model (`Ft`).
    pub flops_target: f64,
    /// Recovery delay δ in target steps (0 by default).
    pub delay: f64,
}

struct Fun<F: Fn(f64) -> f64>(F);

impl<F: Fn(f64) -> f64> CostFunction for Fun<F> {
    type Param = f64;
    type Output = f64;
    fn cost(&self, x: &f64) -> Result<f64, argmin::core::Error> {
        Ok((self.0)(*x))
    }
}

/// Root of `f` in `[lo, hi]` with argmin's Brent method; `None` without a sign change.
pub fn brent_root(f: impl Fn(f64) -> f64, lo: f64, hi: f64) -> Option<f64> {
    let (flo, fhi) = (f(lo), f(hi));
    if !(flo.is_finite() && fhi.is_finite()) || flo.signum() == fhi.signum() {
        return None;
    }
    let solver = BrentRoot::new(lo, hi, 1e-10 * hi.abs().max(1.0));
    let res = Executor::new(Fun(f), solver)
        .configure(|s| s.param((lo + hi) / 2.0).max_iters(200))
        .run()
        .ok()?;
    res.state().get_best_param().copied()
}

/// Minimum of `f` on `[lo, hi]` with argmin's Brent method, refined from a coarse grid so
/// that a boundary minimum is found too.
pub fn brent_min(f: impl Fn(f64) -> f64, lo: f64, hi: f64) -> Option<(f64, f64)> {
    let grid = 200;
    let (mut bx, mut bf) = (lo, f(lo));
    for i in 1..=grid {
        let x = lo + (hi - lo) * i as f64 / grid as f64;
        let v = f(x);
        if v < bf {
            (bx, bf) = (x, v);
        }
    }
    let h = (hi - lo) / grid as f64;
    let (a, b) = ((bx - h).max(lo), (bx + h).min(hi));
    let solver = BrentOpt::new(a, b);
    let refined = Executor::new(Fun(&f), solver)
        .configure(|s| s.param(bx).max_iters(200))
        .run()
        .ok()
        .and_then(|r| r.state().get_best_param().copied());
    match refined {
        Some(x) if f(x) <= bf => Some((x, f(x))),
        _ => Some((bx, bf)),
    }
}

/// The optimal growth point found both ways (eq. 3 and total FLOPs).
#[derive(Debug, Clone, Serialize)]
pub struct Optimum {
    /// Root of `E(Gb) = Fs/Ft` (eq. 3).
    pub by_root: f64,
    /// The `Gb` minimising total FLOPs to reach `target_loss`.
    pub by_flops: f64,
    /// Target loss used for the FLOPs criterion and the speed-up.
    pub target_loss: f64,
    /// Steps of the target after growth at `by_flops`.
    pub target_steps_after: f64,
    /// FLOPs of the staged run to reach the target loss.
    pub staged_flops: f64,
    /// FLOPs of the target trained from scratch to the target loss.
    pub scratch_flops: f64,
    /// `scratch_flops / staged_flops`.
    pub speedup: f64,
    /// Set when the small model reaches the target loss by itself before the FLOPs
    /// optimum: then growing does not pay at this target loss and the two criteria are
    /// not comparable (choose a lower target loss).
    pub note: Option<String>,
}

impl GrowthProblem {
    /// `Fs/Ft`.
    pub fn flops_ratio(&self) -> f64 {
        self.flops_small / self.flops_target
    }

    /// Equivalent target steps after growing at `ns`: `N_eq = L_t⁻¹(L_s(ns))`.
    pub fn n_eq(&self, ns: f64) -> Option<f64> {
        self.target.inverse(self.small.value(ns))
    }

    /// Value function (eq. 1): steps of regular target training that reach the loss of
    /// `ns` small steps followed by `nt` target steps: `N_eq(ns) + nt − δ`.
    pub fn value(&self, ns: f64, nt: f64) -> Option<f64> {
        Some(self.n_eq(ns)? + nt - self.delay)
    }

    /// Effect conversion rate (eq. 2): `E(ns) = ∂V/∂ns = L_s′(ns) / L_t′(N_eq(ns))`.
    pub fn effect(&self, ns: f64) -> Option<f64> {
        let neq = self.n_eq(ns)?;
        let e = self.small.derivative(ns) / self.target.derivative(neq);
        e.is_finite().then_some(e)
    }

    /// `E` on `points` evenly spaced steps of `[lo, hi]`.
    pub fn effect_curve(&self, lo: f64, hi: f64, points: usize) -> Vec<[f64; 2]> {
        (0..points)
            .filter_map(|i| {
                let n = lo + (hi - lo) * i as f64 / (points.max(2) - 1) as f64;
                self.effect(n).map(|e| [n, e])
            })
            .collect()
    }

    /// The growth point of eq. 3: the root of `E(Gb) = Fs/Ft` in `[lo, hi]`.
    pub fn optimal_by_root(&self, lo: f64, hi: f64) -> Result<f64, SolverError> {
        let r = self.flops_ratio();
        let f = |n: f64| self.effect(n).map_or(f64::NAN, |e| e - r);
        brent_root(f, lo, hi).ok_or_else(|| {
            let (a, b) = (self.effect(lo), self.effect(hi));
            SolverError::NoSolution(format!(
                "E(Gb) does not cross Fs/Ft = {r:.4} between steps {lo:.0} and {hi:.0} (E = {} there and {} at the end); {}",
                fmt_opt(a),
                fmt_opt(b),
                if b.is_some_and(|b| b > r) {
                    "the small model is still worth training at the horizon: extend the horizon or train the small model longer"
                } else {
                    "growing at once is best: the target's curve is below the small model's from the start"
                }
            ))
        })
    }

    /// Total training FLOPs to reach `loss` when growing at `gb`:
    /// `Fs·Gb + Ft·(L_t⁻¹(loss) − N_eq(Gb) + δ)`, or `Fs·L_s⁻¹(loss)` when the small model
    /// reaches `loss` by itself before `gb`.
    pub fn total_flops(&self, gb: f64, loss: f64) -> Option<f64> {
        if self.small.value(gb) <= loss {
            return Some(self.flops_small * self.small.inverse(loss)?);
        }
        let after = (self.target.inverse(loss)? - self.n_eq(gb)? + self.delay).max(0.0);
        Some(self.flops_small * gb + self.flops_target * after)
    }

    /// Both optimal growth points and the predicted speed-up at `target_loss`.
    pub fn optimum(&self, lo: f64, hi: f64, target_loss: f64) -> Result<Optimum, SolverError> {
        if target_loss <= self.target.asymptote() {
            return Err(SolverError::NoSolution(format!(
                "target loss {target_loss:.4} is at or below the target model's fitted asymptote {:.4}; choose a higher target loss",
                self.target.asymptote()
            )));
        }
        let by_root = self.optimal_by_root(lo, hi)?;
        let scratch_steps = self
            .target
            .inverse(target_loss)
            .ok_or_else(|| SolverError::NoSolution(format!("the target curve never reaches {target_loss:.4}")))?;
        let f = |g: f64| self.total_flops(g, target_loss).unwrap_or(f64::INFINITY);
        let (by_flops, staged_flops) = brent_min(f, lo, hi)
            .ok_or_else(|| SolverError::NoSolution("total FLOPs are undefined on the horizon".into()))?;
        let scratch_flops = self.flops_target * scratch_steps;
        let note = self.small.inverse(target_loss).filter(|n| *n <= by_flops + 1.0).map(|n| {
            format!(
                "the small model alone reaches loss {target_loss:.4} at step {n:.0}, before any growth pays off; pick a lower target loss (below the small model's reach) to compare the two criteria"
            )
        });
        Ok(Optimum {
            note,
            by_root,
            by_flops,
            target_loss,
            target_steps_after: (scratch_steps - self.n_eq(by_flops).unwrap_or(0.0) + self.delay).max(0.0),
            staged_flops,
            scratch_flops,
            speedup: scratch_flops / staged_flops,
        })
    }

    /// The convergence-stage step: where `|L_s′|` falls below `threshold` per step
    /// (the paper uses 3e-6 at GPT-Neo-125M scale).
    pub fn convergence_step(&self, threshold: f64, hi: f64) -> Option<f64> {
        let f = |n: f64| self.small.derivative(n).abs() - threshold;
        if f(0.0) <= 0.0 {
            return Some(0.0);
        }
        brent_root(f, 0.0, hi)
    }
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or("undefined".into(), |v| format!("{v:.4}"))
}

/// One stage of a multi-stage plan.
#[derive(Debug, Clone)]
pub struct PlanStage {
    /// Fitted from-scratch curve of this stage's model.
    pub curve: Fit,
    /// FLOPs per step.
    pub flops_per_step: f64,
}

/// A multi-stage plan: the loss at which to leave each stage and the steps in each.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Loss at which stage `j` grows into `j + 1`.
    pub growth_losses: Vec<f64>,
    /// Steps trained in each stage.
    pub steps: Vec<f64>,
    /// Cumulative step at which each growth happens.
    pub growth_steps: Vec<f64>,
    /// Total FLOPs to reach the target loss.
    pub total_flops: f64,
    /// FLOPs of the last stage alone from scratch.
    pub scratch_flops: f64,
    /// `scratch_flops / total_flops`.
    pub speedup: f64,
}

/// Plans growth through a chain `M1 → … → Mk` (beyond the paper, which leaves it as
/// future work) to reach `target_loss` with the fewest FLOPs.
///
/// Growing from stage `j` at loss `ℓⱼ` continues stage `j+1` at its equivalent step
/// `L_{j+1}⁻¹(ℓⱼ)`, so the total is `Σⱼ Fⱼ·(Lⱼ⁻¹(ℓⱼ) − Lⱼ⁻¹(ℓⱼ₋₁))` with `ℓ₀ = L₁(0)` and
/// `ℓₖ` the target loss. Grouping terms by `ℓⱼ` separates it into one-dimensional problems
/// `min Fⱼ·Lⱼ⁻¹(ℓ) − Fⱼ₊₁·Lⱼ₊₁⁻¹(ℓ)`, each solved with Brent; their stationarity condition is
/// eq. 3 for that pair. Losses are then made non-increasing (a stage whose optimum would
/// come after the next one's is skipped: it gets zero steps).
pub fn plan_stages(stages: &[PlanStage], target_loss: f64) -> Result<Plan, SolverError> {
    let k = stages.len();
    if k < 2 {
        return Err(SolverError::InvalidInput("a plan needs at least two stages".into()));
    }
    let last = &stages[k - 1];
    if target_loss <= last.curve.asymptote() {
        return Err(SolverError::NoSolution(format!(
            "target loss {target_loss:.4} is at or below the last stage's asymptote {:.4}",
            last.curve.asymptote()
        )));
    }
    let start = stages[0].curve.value(0.0);
    let mut losses = Vec::with_capacity(k - 1);
    for j in 0..k - 1 {
        let (a, b) = (&stages[j], &stages[j + 1]);
        let lo = a.curve.asymptote().max(b.curve.asymptote()).max(target_loss) + 1e-9;
        let g = |l: f64| match (a.curve.inverse(l), b.curve.inverse(l)) {
            (Some(x), Some(y)) => a.flops_per_step * x - b.flops_per_step * y,
            _ => f64::INFINITY,
        };
        let (l, _) =
            brent_min(g, lo, start).ok_or_else(|| SolverError::NoSolution(format!("no growth loss for stage {j}")))?;
        losses.push(l);
    }
    for j in 1..losses.len() {
        losses[j] = losses[j].min(losses[j - 1]);
    }
    let mut steps = Vec::with_capacity(k);
    let mut prev = start;
    let mut total = 0.0;
    for (j, s) in stages.iter().enumerate() {
        let until = if j + 1 < k { losses[j] } else { target_loss };
        let from = if j == 0 {
            0.0
        } else {
            s.curve.inverse(prev).unwrap_or(0.0)
        };
        let to = s
            .curve
            .inverse(until)
            .ok_or_else(|| SolverError::NoSolution(format!("stage {j} never reaches loss {until:.4}")))?;
        let n = (to - from).max(0.0);
        steps.push(n);
        total += n * s.flops_per_step;
        prev = until;
    }
    let growth_steps = steps
        .iter()
        .take(k - 1)
        .scan(0.0, |acc, s| {
            *acc += s;
            Some(*acc)
        })
        .collect();
    let scratch = last.flops_per_step * last.curve.inverse(target_loss).unwrap_or(f64::NAN);
    Ok(Plan {
        growth_losses: losses,
        steps,
        growth_steps,
        total_flops: total,
        scratch_flops: scratch,
        speedup: scratch / total,
    })
}

/// Empirical effect conversion rate (paper Appendix A) from grown runs.
///
/// Each grown run `i` grew at `gb[i]` and reached `loss[i]` after `nt[i]` target steps;
/// its equivalent growth point on the target's curve is `L_t⁻¹(loss) − nt`. Between
/// neighbouring growth points, `E ≈ ΔN_eq / ΔGb`. Returns `[midpoint Gb, E]` pairs.
pub fn empirical_effect(target: &Fit, runs: &[(f64, f64, f64)]) -> Vec<[f64; 2]> {
    let mut pts: Vec<(f64, f64)> = runs
        .iter()
        .filter_map(|&(gb, nt, loss)| target.inverse(loss).map(|n| (gb, n - nt)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts.windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| [(w[0].0 + w[1].0) / 2.0, (w[1].1 - w[0].1) / (w[1].0 - w[0].0)])
        .collect()
}
