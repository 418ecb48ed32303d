//! "Whether" as well as "when": a loss law `L(N, D)` over the compute-optimal frontier's
//! runs, and the iso-FLOP question it answers — at a budget, which is lower: each size
//! trained alone, or the small model grown into the target at `Gb`? (Beyond the paper,
//! whose §3.2 solver answers only "when"; docs/design.md §Solver.)
//!
//! The law is the parametric form of Hoffmann et al. (2022),
//! `L(N, D) = E + A·N^−α + B·D^−β` (`N` parameters, `D` training tokens), fitted by least
//! squares (argmin: L-BFGS and Nelder–Mead from several starts) to the final, decayed
//! validation losses of from-scratch runs of several sizes and budgets.
//!
//! A grown run is predicted by loss matching, which needs no grown run to fit: a
//! function-preserving growth after `D_s` tokens of the small model hands the target a
//! model of the small model's loss, worth the `D_eff` tokens the target needs from scratch
//! to reach it, `L(N_t, D_eff) = L(N_s, D_s)`, so
//! `D_eff = (D_s^−β + (A/B)·(N_s^−α − N_t^−α))^(−1/β)`. The grown run then ends at
//! `L(N_t, D_eff + D_after)`. Growth pays at a budget when that is below every size alone at
//! the same FLOPs.

use serde::Serialize;

use crate::least_squares::{run_lbfgs, run_nelder_mead, LeastSquares, Residuals};
use crate::SolverError;

/// One from-scratch run: its parameters, training tokens and final loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LawPoint {
    /// Parameters `N`.
    pub params: f64,
    /// Training tokens `D`.
    pub tokens: f64,
    /// Final validation loss.
    pub loss: f64,
}

/// `L(N, D) = E + A·N^−α + B·D^−β`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct ScalingLaw {
    /// The irreducible loss `E`.
    pub e: f64,
    /// `A`.
    pub a: f64,
    /// `α`.
    pub alpha: f64,
    /// `B`.
    pub b: f64,
    /// `β`.
    pub beta: f64,
}

impl ScalingLaw {
    /// `L(N, D) = e + a·N^−alpha + b·D^−beta`.
    pub const fn new(e: f64, a: f64, alpha: f64, b: f64, beta: f64) -> Self {
        Self { e, a, alpha, b, beta }
    }

    /// The predicted loss of `params` parameters trained on `tokens` tokens.
    pub fn loss(&self, params: f64, tokens: f64) -> f64 {
        self.e + self.a * params.powf(-self.alpha) + self.b * tokens.powf(-self.beta)
    }

    /// The target's tokens from scratch worth `small_tokens` of the small model: the `D`
    /// with `L(target, D) = L(small, small_tokens)` (see the module docs). Zero tokens are
    /// worth zero.
    pub fn effective_tokens(&self, small: f64, small_tokens: f64, target: f64) -> f64 {
        if small_tokens <= 0.0 {
            return 0.0;
        }
        let gap = (self.a / self.b) * (small.powf(-self.alpha) - target.powf(-self.alpha));
        (small_tokens.powf(-self.beta) + gap).powf(-1.0 / self.beta)
    }

    /// The predicted final loss of the small model grown into the target after
    /// `small_tokens` and trained `target_tokens` more.
    pub fn grown_loss(&self, small: f64, target: f64, small_tokens: f64, target_tokens: f64) -> f64 {
        self.loss(
            target,
            self.effective_tokens(small, small_tokens, target) + target_tokens,
        )
    }

    /// Fits the law to `points` (at least 6, from at least 2 sizes and 2 budgets).
    pub fn fit(points: &[LawPoint]) -> Result<LawFit, SolverError> {
        if points.len() < 6 {
            return Err(SolverError::TooFewPoints {
                got: points.len(),
                needed: 6,
            });
        }
        if let Some(p) = points
            .iter()
            .find(|p| !(p.params > 0.0 && p.tokens > 0.0 && p.loss.is_finite() && p.loss > 0.0))
        {
            return Err(SolverError::InvalidInput(format!(
                "a law point needs positive parameters, tokens and loss, got {p:?}"
            )));
        }
        let distinct = |f: fn(&LawPoint) -> f64| {
            let mut v: Vec<f64> = points.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            v.len()
        };
        if distinct(|p| p.params) < 2 || distinct(|p| p.tokens) < 2 {
            return Err(SolverError::InvalidInput(
                "a law L(N, D) needs runs of at least 2 sizes and 2 budgets".into(),
            ));
        }
        let obj = || LeastSquares(LawObjective { points });
        let min = points.iter().map(|p| p.loss).fold(f64::INFINITY, f64::min);
        let mean = points.iter().map(|p| p.loss).sum::<f64>() / points.len() as f64;
        let gm = |f: fn(&LawPoint) -> f64| (points.iter().map(|p| f(p).ln()).sum::<f64>() / points.len() as f64).exp();
        let (n0, d0) = (gm(|p| p.params), gm(|p| p.tokens));
        let mut best: Option<(Vec<f64>, f64)> = None;
        for e in [0.5 * min, 0.9 * min] {
            for alpha in [0.3, 0.7] {
                for beta in [0.3, 0.7] {
                    let share = ((mean - e) / 2.0).max(1e-3);
                    let z0 = vec![
                        e.ln(),
                        (share * n0.powf(alpha)).ln(),
                        f64::ln(alpha),
                        (share * d0.powf(beta)).ln(),
                        f64::ln(beta),
                    ];
                    for found in [
                        run_lbfgs(obj(), z0.clone(), 1e-16, 2000),
                        run_nelder_mead(obj(), z0, 0.3, 1e-14, 6000),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        if found.1.is_finite() && best.as_ref().is_none_or(|b| found.1 < b.1) {
                            best = Some(found);
                        }
                    }
                }
            }
        }
        let (z, sse) = best.ok_or_else(|| SolverError::FitFailed {
            model: "L(N, D)".into(),
        })?;
        let law = from_raw(&z);
        let rmse = (sse / points.len() as f64).sqrt();
        let max_residual = points
            .iter()
            .map(|p| (law.loss(p.params, p.tokens) - p.loss).abs())
            .fold(0.0, f64::max);
        Ok(LawFit {
            law,
            points: points.len(),
            rmse,
            max_residual,
        })
    }
}

/// A fitted law and how well it fits its points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LawFit {
    /// The law.
    pub law: ScalingLaw,
    /// Points fitted.
    pub points: usize,
    /// Root-mean-square residual.
    pub rmse: f64,
    /// Largest absolute residual.
    pub max_residual: f64,
}

/// Raw parameters `z = [ln E, ln A, ln α, ln B, ln β]`.
fn from_raw(z: &[f64]) -> ScalingLaw {
    ScalingLaw {
        e: z[0].exp(),
        a: z[1].exp(),
        alpha: z[2].exp(),
        b: z[3].exp(),
        beta: z[4].exp(),
    }
}

struct LawObjective<'a> {
    points: &'a [LawPoint],
}

impl LawObjective<'_> {
    /// The terms `E`, `A·N^−α`, `B·D^−β` of point `p` under raw parameters `z`.
    fn terms(z: &[f64], p: &LawPoint) -> [f64; 3] {
        [
            z[0].exp(),
            (z[1] - z[2].exp() * p.params.ln()).exp(),
            (z[3] - z[4].exp() * p.tokens.ln()).exp(),
        ]
    }
}

impl Residuals for LawObjective<'_> {
    fn residuals(&self, z: &[f64]) -> Vec<f64> {
        let fit = |p: &LawPoint| Self::terms(z, p).iter().sum::<f64>() - p.loss;
        self.points.iter().map(fit).collect()
    }
    fn gradients(&self, z: &[f64]) -> Vec<Vec<f64>> {
        let gradient = |p: &LawPoint| {
            let [e, n, d] = Self::terms(z, p);
            vec![
                e,
                n,
                -n * z[2].exp() * p.params.ln(),
                d,
                -d * z[4].exp() * p.tokens.ln(),
            ]
        };
        self.points.iter().map(gradient).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::*;

    const LAW: ScalingLaw = ScalingLaw::new(1.5, 40.0, 0.4, 300.0, 0.35);

    #[test]
    fn the_law_and_loss_matching_by_hand() {
        // L(1e4, 1e6) = 1.5 + 40·1e4^−0.4 + 300·1e6^−0.35 = 1.5 + 40/39.8107 + 300/125.893
        let l = LAW.loss(1e4, 1e6);
        assert!((l - (1.5 + 1.004754 + 2.382985)).abs() < 1e-5, "{l}");
        // The target's effective tokens reach the small model's loss exactly, and are fewer
        // than the small model's own tokens.
        let d = LAW.effective_tokens(1e4, 1e6, 4e4);
        assert!((LAW.loss(4e4, d) - l).abs() < 1e-12);
        assert!(d > 0.0 && d < 1e6, "{d}");
        // By hand: D^−β = 1e6^−0.35 + (40/300)(1e4^−0.4 − 4e4^−0.4)
        //          = 0.00794328 + 0.133333·(0.0251189 − 0.0144270) = 0.00936887.
        let by_hand = 0.009_368_87f64.powf(-1.0 / 0.35);
        assert!((d / by_hand - 1.0).abs() < 1e-5, "{d} vs {by_hand}");
        // Growing into the same size changes nothing; zero tokens are worth zero.
        assert!((LAW.effective_tokens(4e4, 1e6, 4e4) - 1e6).abs() < 1e-6);
        assert_eq!(LAW.effective_tokens(1e4, 0.0, 4e4), 0.0);
        assert_eq!(LAW.grown_loss(1e4, 4e4, 0.0, 1e6), LAW.loss(4e4, 1e6));
    }

    #[test]
    fn the_law_objective_gradient_matches_finite_differences() {
        use argmin::core::Gradient;
        let points: Vec<LawPoint> = [(1e4, 2e6, 2.1), (4e4, 1e6, 1.9), (1.6e5, 4e6, 1.7)]
            .into_iter()
            .map(|(params, tokens, loss)| LawPoint { params, tokens, loss })
            .collect();
        let obj = LeastSquares(LawObjective { points: &points });
        let z = vec![0.3, 3.0, -0.9, 5.0, -1.1];
        let (g, fd) = (obj.gradient(&z).unwrap(), obj.finite_difference_gradient(&z, 1e-6));
        for (i, (g, fd)) in g.iter().zip(&fd).enumerate() {
            assert!((g - fd).abs() <= 1e-5 * fd.abs().max(1.0), "component {i}: {g} vs {fd}");
        }
    }

    #[test]
    fn the_fit_recovers_a_law_from_its_own_points() {
        let mut points = Vec::new();
        for n in [1e4, 2e4, 4e4, 8e4, 1.6e5] {
            for d in [2e5, 4e5, 8e5, 1.6e6, 3.2e6] {
                points.push(LawPoint {
                    params: n,
                    tokens: d,
                    loss: LAW.loss(n, d),
                });
            }
        }
        let fit = ScalingLaw::fit(&points).unwrap();
        assert!(fit.max_residual < 1e-6, "{fit:?}");
        // Predictions agree inside the data's range.
        for (n, d) in [(3e4, 1e6), (1.2e5, 2.5e6)] {
            assert!((fit.law.loss(n, d) - LAW.loss(n, d)).abs() < 1e-5);
        }
        // Bad input is refused by what is wrong.
        let one_size: Vec<LawPoint> = points.iter().filter(|p| p.params == 1e4).copied().collect();
        let mut six = one_size.clone();
        six.push(one_size[0]);
        assert!(ScalingLaw::fit(&six).unwrap_err().to_string().contains("2 sizes"));
        assert!(matches!(
            ScalingLaw::fit(&points[..3]),
            Err(SolverError::TooFewPoints { got: 3, needed: 6 })
        ));
        let mut bad = points.clone();
        bad[0].loss = f64::NAN;
        assert!(ScalingLaw::fit(&bad).unwrap_err().to_string().contains("positive"));
    }

    fn pair() -> (GrowthPair, Vec<SizeCost>) {
        let size = |name: &str, params: f64| SizeCost {
            name: name.into(),
            params,
            flops_per_step: 6.0 * params * 100.0,
        };
        let sizes = vec![size("s", 1e4), size("t", 4e4)];
        let pair = GrowthPair {
            small: sizes[0].clone(),
            target: sizes[1].clone(),
            tokens_per_step: 100.0,
        };
        (pair, sizes)
    }

    #[test]
    fn the_budget_answer_compares_every_option_at_equal_flops() {
        let (pair, sizes) = pair();
        // The target with 2.5e8 tokens: beyond the crossover where it beats the small model
        // alone (about 3.5e7 of the small model's tokens, by hand from the law).
        let flops = 6.0 * 4e4 * 2.5e8;
        let a = pair.answer(&LAW, &sizes, flops);
        // Each size alone spends the budget: the target 2.5e6 steps, the small 1e7.
        assert_eq!((a.alone[0].steps, a.alone[1].steps), (10_000_000, 2_500_000));
        assert_eq!(a.alone[1].loss, LAW.loss(4e4, 2.5e8));
        assert!(a.alone[1].loss < a.alone[0].loss);
        // The best growth spends the budget (to a step) and is the minimum over every step.
        let g = &a.best_growth;
        assert!(
            g.flops <= flops && flops - g.flops <= pair.target.flops_per_step,
            "{a:?}"
        );
        let gb = g.grow_at.unwrap();
        for other in [1, gb / 2, gb - 1, gb + 1, gb + (10_000_000 - gb) / 2] {
            let steps = other + ((flops - other as f64 * 6e6) / 2.4e7).floor() as u64;
            assert!(pair.grown(&LAW, other, steps).loss >= g.loss, "{other}");
        }
        // Growing beats the target alone here: the small model's early tokens are cheaper.
        assert!(g.loss < a.alone[1].loss, "{a:?}");
        // The recommendation is the lowest predicted loss of them all.
        let lowest = a.alone.iter().chain([g]).map(|o| o.loss).fold(f64::INFINITY, f64::min);
        assert_eq!(a.recommended.loss, lowest);
        assert_eq!(a.grow(), g.loss == lowest);
        assert!((a.best_grow_frac - gb as f64 / g.steps as f64).abs() < 1e-12);
    }

    #[test]
    fn a_step_budget_picks_the_growth_step_of_the_lowest_iso_flop_gap() {
        let (pair, sizes) = pair();
        let steps = 3_000_000;
        let a = pair.answer_steps(&LAW, &sizes, steps);
        let gap = |o: &BudgetOption| {
            let best = sizes
                .iter()
                .map(|s| pair.alone(&LAW, s, o.flops).loss)
                .fold(f64::INFINITY, f64::min);
            o.loss - best
        };
        let g = a.best_growth.grow_at.unwrap();
        assert_eq!(a.best_growth.steps, steps);
        assert_eq!(a.best_growth.loss, pair.grown(&LAW, g, steps).loss);
        for other in [1, g / 2, g - 1, g + 1, (g + steps) / 2] {
            assert!(gap(&pair.grown(&LAW, other, steps)) >= gap(&a.best_growth), "{other}");
        }
        // Growth is recommended exactly when its gap is negative.
        assert_eq!(a.grow(), gap(&a.best_growth) < 0.0, "{a:?}");
    }

    #[test]
    fn the_predicted_x_frontier_inverts_the_law_by_hand() {
        let (pair, sizes) = pair();
        let flops = 6.0 * 4e4 * 2.5e8;
        let a = pair.answer(&LAW, &sizes, flops);
        // By hand per size: D = (B / (L − E − A·N^−α))^(1/β) at 6·N·D FLOPs; the fewer.
        let loss = a.best_growth.loss;
        let by_hand = sizes
            .iter()
            .filter_map(|s| {
                let rest = loss - LAW.e - LAW.a * s.params.powf(-LAW.alpha);
                (rest > 0.0).then(|| 6.0 * s.params * (LAW.b / rest).powf(1.0 / LAW.beta))
            })
            .fold(f64::INFINITY, f64::min);
        let x = a.best_growth.x_frontier.unwrap();
        assert!(
            (x - by_hand / a.best_growth.flops).abs() < 1e-9 * x,
            "{x} against {by_hand}"
        );
        assert!(a.grow() && x > 1.0, "growth beats both sizes here: {a:?}");
        // The best size alone is its own frontier (to its floor of steps), the other below.
        let best = a.alone.iter().map(|o| o.x_frontier.unwrap()).fold(0.0, f64::max);
        assert!((best - 1.0).abs() < 1e-6, "{best}");
        assert!(a.alone.iter().any(|o| o.x_frontier.unwrap() < 0.99), "{a:?}");
        assert_eq!(pair.frontier_flops(&LAW, &sizes, LAW.e, flops), None);
    }

    #[test]
    fn a_law_where_the_small_model_is_as_good_never_recommends_growth() {
        // With A = 0 the size does not matter: the small model alone, with 4x the tokens
        // of the target for the same FLOPs, beats growth at every budget.
        let flat = ScalingLaw { a: 0.0, ..LAW };
        let (pair, sizes) = pair();
        for flops in [1e11, 1e12, 1e13] {
            let a = pair.answer(&flat, &sizes, flops);
            assert_eq!(a.recommended.name, "s alone", "{flops}");
            assert!(!a.grow());
        }
        // And within a fixed step budget the small model never grows.
        let a = pair.answer_steps(&flat, &sizes, 1000);
        assert!(!a.grow(), "{a:?}");
    }
}
