//! Beyond loss matching: what a growth hands on, calibrated on measured grown runs (beyond
//! the paper; docs/design.md §Solver, issue "where growth pays", item 3).
//!
//! Loss matching ([`crate::law`]) credits the grown model with the target's tokens from
//! scratch that reach the small model's loss, `D_match`, and nothing else. Measured grown
//! runs differ from it in two ways that a growth point shows: an early growth ends lower
//! than that (the grown model then learns faster than a target from scratch at the same
//! loss), a late one higher (it has too few steps left to recover from the growth). The
//! [`Transfer`] models both with two numbers, a gain `μ` on the tokens trained after the
//! growth and a recovery cost `R` in tokens:
//!
//! `D_eff = D_match + μ·D_after − R`, and the grown run ends at `L(N_t, D_eff + D_after)`.
//!
//! `D_match` comes from the fitted law itself. The final loss is read off [`Anchored`]: the
//! fitted law plus its own residual at each size's measured budgets, interpolated in
//! `ln D`, so that a size's prediction goes through its measured runs and the transfer is
//! not asked to absorb the law's misfit at the target. With `μ = R = 0` and no anchors this
//! is loss matching. Both numbers are fitted freely: a negative `R` (a growth worth more
//! than its matched tokens from the start) is allowed, and happens.

use argmin::core::CostFunction;
use serde::Serialize;

use crate::law::{LawPoint, ScalingLaw};
use crate::least_squares::run_nelder_mead;
use crate::SolverError;

/// A loss model the budget question can ask: a size alone, and a growth.
pub trait LossModel {
    /// The predicted final loss of `params` parameters trained on `tokens` tokens.
    fn loss(&self, params: f64, tokens: f64) -> f64;
    /// The predicted final loss of the small model grown into the target after
    /// `small_tokens` and trained `after_tokens` more.
    fn grown_loss(&self, small: f64, target: f64, small_tokens: f64, after_tokens: f64) -> f64;
}

impl LossModel for ScalingLaw {
    fn loss(&self, params: f64, tokens: f64) -> f64 {
        ScalingLaw::loss(self, params, tokens)
    }
    fn grown_loss(&self, small: f64, target: f64, small_tokens: f64, after_tokens: f64) -> f64 {
        ScalingLaw::grown_loss(self, small, target, small_tokens, after_tokens)
    }
}

/// The law plus its residual at each size's measured budgets: for a size with runs, the
/// mean residual (measured − law) of its runs at each budget, interpolated linearly in
/// `ln D` between them and held at the nearest end outside; a size without runs gets the
/// law alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anchored {
    /// The fitted law.
    pub law: ScalingLaw,
    /// Per size (parameters), its budgets as `(tokens, mean residual)`, by tokens.
    pub anchors: Vec<(f64, Vec<(f64, f64)>)>,
}

impl Anchored {
    /// `law` anchored at `points` (the runs it was fitted to).
    pub fn new(law: ScalingLaw, points: &[LawPoint]) -> Self {
        let rows: Vec<[f64; 3]> = points
            .iter()
            .map(|p| [p.params, p.tokens, p.loss - law.loss(p.params, p.tokens)])
            .collect();
        Self::from_rows(law, &rows)
    }

    /// `law` anchored at residuals given as `[params, tokens, residual]` rows, the rows of
    /// one size and budget averaged (what [`Anchored::rows`] gives back, exactly; a
    /// `[policy]` table carries them).
    pub fn from_rows(law: ScalingLaw, rows: &[[f64; 3]]) -> Self {
        // By size, then budget (a stable sort: each budget's rows keep their order).
        let mut rows = rows.to_vec();
        rows.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
        let mut anchors: Vec<(f64, Vec<(f64, f64)>)> = Vec::new();
        for budget in rows.chunk_by(|a, b| a[..2] == b[..2]) {
            let [params, tokens, _] = budget[0];
            let mean = budget.iter().map(|r| r[2]).sum::<f64>() / budget.len() as f64;
            match anchors.last_mut() {
                Some((n, b)) if *n == params => b.push((tokens, mean)),
                _ => anchors.push((params, vec![(tokens, mean)])),
            }
        }
        Self { law, anchors }
    }

    /// The anchors as `[params, tokens, residual]` rows, by size and budget.
    pub fn rows(&self) -> Vec<[f64; 3]> {
        self.anchors
            .iter()
            .flat_map(|(n, b)| b.iter().map(move |&(d, r)| [*n, d, r]))
            .collect()
    }

    /// The law plus the residual at `params` and `tokens`.
    pub fn loss(&self, params: f64, tokens: f64) -> f64 {
        self.law.loss(params, tokens) + self.residual(params, tokens)
    }

    /// The small model grown into the target after `small_tokens` and trained
    /// `after_tokens` more, worth [`Transfer::tokens`] of the target from scratch.
    pub fn grown_loss(
        &self,
        transfer: &Transfer,
        small: f64,
        target: f64,
        small_tokens: f64,
        after_tokens: f64,
    ) -> f64 {
        let matched = self.law.effective_tokens(small, small_tokens, target);
        self.loss(target, transfer.tokens(matched, after_tokens))
    }

    /// The residual added to the law for `params` at `tokens`.
    pub fn residual(&self, params: f64, tokens: f64) -> f64 {
        let Some((_, b)) = self.anchors.iter().find(|(n, _)| *n == params) else {
            return 0.0;
        };
        match b.iter().position(|(d, _)| *d >= tokens) {
            None => b.last().map_or(0.0, |l| l.1),
            Some(0) => b[0].1,
            Some(i) => {
                let ((d0, y0), (d1, y1)) = (b[i - 1], b[i]);
                y0 + (y1 - y0) * (tokens / d0).ln() / (d1 / d0).ln()
            }
        }
    }
}

/// What a growth hands on beyond loss matching (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Transfer {
    /// `μ`: target tokens credited per token trained after the growth, beyond the token
    /// itself.
    pub gain: f64,
    /// `R`: tokens the grown model spends recovering from the growth (fitted freely; it
    /// can come out negative).
    pub recovery: f64,
}

/// `GAIN,RECOVERY`: the gain `μ` and the recovery `R` in tokens, two finite numbers (the
/// command line's `--transfer`).
impl std::str::FromStr for Transfer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let nums: Vec<f64> = s
            .split(',')
            .map(|v| v.trim().parse::<f64>().map_err(|_| format!("`{v}` is not a number")))
            .collect::<Result<_, _>>()?;
        match nums.as_slice() {
            &[gain, recovery] if gain.is_finite() && recovery.is_finite() => Ok(Self { gain, recovery }),
            _ => Err(format!(
                "`{s}`: give the gain μ and the recovery R in tokens as two finite numbers, e.g. 0.12,350000"
            )),
        }
    }
}

impl Transfer {
    /// Nothing beyond loss matching.
    pub const LOSS_MATCHING: Self = Self {
        gain: 0.0,
        recovery: 0.0,
    };

    /// The tokens the grown run is worth at its end, `D_match + (1 + μ)·D_after − R`, at
    /// least a hundredth of `after` (a recovery longer than the run leaves almost nothing).
    pub fn tokens(&self, matched: f64, after: f64) -> f64 {
        (matched + (1.0 + self.gain) * after - self.recovery).max(0.01 * after)
    }

    /// Fits `μ` and `R` to measured grown runs by least squares on their final losses under
    /// `law` (Nelder–Mead from several starts).
    pub fn fit(law: &Anchored, runs: &[GrownPoint]) -> Result<TransferFit, SolverError> {
        if runs.len() < 2 {
            return Err(SolverError::TooFewPoints {
                got: runs.len(),
                needed: 2,
            });
        }
        if let Some(r) = runs.iter().find(|r| {
            !(r.small > 0.0
                && r.target >= r.small
                && r.small_tokens > 0.0
                && r.after_tokens > 0.0
                && r.loss.is_finite())
        }) {
            return Err(SolverError::InvalidInput(format!(
                "a grown run needs a small model no larger than its target, tokens before and after the growth, and a finite loss, got {r:?}"
            )));
        }
        // `R` in units of the mean tokens after growth, so both raw parameters are O(1).
        let scale = runs.iter().map(|r| r.after_tokens).sum::<f64>() / runs.len() as f64;
        let obj = || TransferObjective { law, runs, scale };
        let mut best: Option<(Vec<f64>, f64)> = None;
        for z0 in [[0.0, 0.0], [0.2, 0.1], [0.5, 0.5], [-0.2, -0.1]] {
            if let Some(found) = run_nelder_mead(obj(), z0.to_vec(), 0.1, 1e-12, 4000) {
                // The objective's `f64::MAX` marks a loss that was not finite.
                if found.1 < f64::MAX && best.as_ref().is_none_or(|b| found.1 < b.1) {
                    best = Some(found);
                }
            }
        }
        let (z, sse) = best.ok_or_else(|| SolverError::FitFailed {
            model: "growth transfer".into(),
        })?;
        Ok(TransferFit {
            transfer: Transfer {
                gain: z[0],
                recovery: z[1] * scale,
            },
            runs: runs.len(),
            rmse: (sse / runs.len() as f64).sqrt(),
        })
    }
}

/// One measured grown run, for fitting a [`Transfer`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GrownPoint {
    /// Parameters of the small model.
    pub small: f64,
    /// Parameters of the target.
    pub target: f64,
    /// Tokens trained before the growth.
    pub small_tokens: f64,
    /// Tokens trained after it.
    pub after_tokens: f64,
    /// Final validation loss.
    pub loss: f64,
}

/// A fitted transfer and how well it fits its runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TransferFit {
    /// The transfer.
    pub transfer: Transfer,
    /// Grown runs fitted.
    pub runs: usize,
    /// Root-mean-square residual of their final losses.
    pub rmse: f64,
}

/// The anchored law with a transfer: loss matching and beyond.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrowthLaw {
    /// The law, anchored at its runs.
    pub law: Anchored,
    /// What a growth hands on.
    pub transfer: Transfer,
}

impl LossModel for GrowthLaw {
    fn loss(&self, params: f64, tokens: f64) -> f64 {
        self.law.loss(params, tokens)
    }
    fn grown_loss(&self, small: f64, target: f64, small_tokens: f64, after_tokens: f64) -> f64 {
        self.law
            .grown_loss(&self.transfer, small, target, small_tokens, after_tokens)
    }
}

struct TransferObjective<'a> {
    law: &'a Anchored,
    runs: &'a [GrownPoint],
    scale: f64,
}

impl CostFunction for TransferObjective<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, z: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        let transfer = Transfer {
            gain: z[0],
            recovery: z[1] * self.scale,
        };
        let sse: f64 = self
            .runs
            .iter()
            .map(|r| {
                (self
                    .law
                    .grown_loss(&transfer, r.small, r.target, r.small_tokens, r.after_tokens)
                    - r.loss)
                    .powi(2)
            })
            .sum();
        Ok(if sse.is_finite() { sse } else { f64::MAX })
    }
}
