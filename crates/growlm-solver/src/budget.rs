//! The iso-FLOP question a fitted law answers (beyond the paper; docs/design.md §Solver): at a
//! budget of training FLOPs, which is lower — each size trained alone, or the small model
//! grown into the target at its best step `Gb`? The grown run is predicted by a
//! [`LossModel`]: the law by loss matching ([`crate::law::ScalingLaw::effective_tokens`]),
//! or the law anchored at its runs with a transfer calibrated on grown runs
//! ([`crate::transfer`]).

use serde::Serialize;

use crate::transfer::{GrownPoint, LossModel};

/// A model size the budget question considers: its parameters and training FLOPs per
/// step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeCost {
    /// Its name.
    pub name: String,
    /// Parameters.
    pub params: f64,
    /// Training FLOPs per step.
    pub flops_per_step: f64,
}

/// The growth the budget question considers: a small model grown into a target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrowthPair {
    /// The small model.
    pub small: SizeCost,
    /// The target.
    pub target: SizeCost,
    /// Training tokens per step (the same for both).
    pub tokens_per_step: f64,
}

/// One option at a budget and its predicted final loss.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetOption {
    /// `SIZE alone`, or `grow at G`.
    pub name: String,
    /// The growth step (grown options only).
    pub grow_at: Option<u64>,
    /// Total steps.
    pub steps: u64,
    /// Training FLOPs.
    pub flops: f64,
    /// Training tokens per parameter of the final model.
    pub tokens_per_param: f64,
    /// Predicted final loss.
    pub loss: f64,
    /// Predicted ×frontier: the FLOPs the law's frontier (the best size alone of those
    /// asked about, the pair's two included) needs to reach [`Self::loss`], over
    /// [`Self::flops`] (above 1: the option saves compute against every size alone). `None`
    /// where no size reaches that loss within a millionfold of the option's FLOPs.
    pub x_frontier: Option<f64>,
}

/// The answer at one budget: every option, the best growth point and the recommendation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetAnswer {
    /// The budget in FLOPs.
    pub flops: f64,
    /// Each size alone at the budget.
    pub alone: Vec<BudgetOption>,
    /// Growth at its best step for the budget.
    pub best_growth: BudgetOption,
    /// The best growth step as a fraction of the grown run's steps.
    pub best_grow_frac: f64,
    /// The option with the lowest predicted loss (`grow at G` or `SIZE alone`).
    pub recommended: BudgetOption,
}

impl BudgetAnswer {
    /// Whether growing is the recommendation.
    pub fn grow(&self) -> bool {
        self.recommended.grow_at.is_some()
    }
}

impl GrowthPair {
    /// `size` alone for `flops` FLOPs.
    pub fn alone(&self, law: &dyn LossModel, size: &SizeCost, flops: f64) -> BudgetOption {
        let steps = (flops / size.flops_per_step).floor().max(1.0);
        let tokens = steps * self.tokens_per_step;
        BudgetOption {
            name: format!("{} alone", size.name),
            grow_at: None,
            steps: steps as u64,
            flops: steps * size.flops_per_step,
            tokens_per_param: tokens / size.params,
            loss: law.loss(size.params, tokens),
            x_frontier: None,
        }
    }

    /// The small model grown into the target after `grow_at` of `steps` steps.
    pub fn grown(&self, law: &dyn LossModel, grow_at: u64, steps: u64) -> BudgetOption {
        let (g, b) = (grow_at as f64, steps as f64);
        let t = self.tokens_per_step;
        BudgetOption {
            name: format!("grow at {grow_at}"),
            grow_at: Some(grow_at),
            steps,
            flops: g * self.small.flops_per_step + (b - g) * self.target.flops_per_step,
            tokens_per_param: b * t / self.target.params,
            loss: law.grown_loss(self.small.params, self.target.params, g * t, (b - g) * t),
            x_frontier: None,
        }
    }

    /// `sizes` with the pair's two added where missing: the sizes a frontier is drawn over.
    pub fn frontier_sizes(&self, sizes: &[SizeCost]) -> Vec<SizeCost> {
        let mut all: Vec<SizeCost> = sizes.to_vec();
        for s in [&self.small, &self.target] {
            if !all.iter().any(|o| o.params == s.params) {
                all.push(s.clone());
            }
        }
        all
    }

    /// The fewest FLOPs with which one of `sizes` alone reaches `loss` by `law` (tokens
    /// continuous, not whole steps), searched from a thousandth to a thousand times `near`:
    /// per size, the first point of a log grid at or below `loss`, then bisection between
    /// it and the point before. `None` where no size reaches it in that range.
    pub fn frontier_flops(&self, law: &dyn LossModel, sizes: &[SizeCost], loss: f64, near: f64) -> Option<f64> {
        const POINTS: i32 = 600;
        let at = |s: &SizeCost, c: f64| law.loss(s.params, c / s.flops_per_step * self.tokens_per_step);
        let grid = |i: i32| near * 10f64.powf(-3.0 + 6.0 * f64::from(i) / f64::from(POINTS));
        sizes
            .iter()
            .filter_map(|s| {
                let i = (0..=POINTS).find(|&i| at(s, grid(i)) <= loss)?;
                if i == 0 {
                    return Some(grid(0));
                }
                let (mut lo, mut hi) = (grid(i - 1).ln(), grid(i).ln());
                for _ in 0..60 {
                    let mid = 0.5 * (lo + hi);
                    if at(s, mid.exp()) <= loss {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                Some(hi.exp())
            })
            .min_by(f64::total_cmp)
    }

    /// Sets `option`'s predicted ×frontier against `sizes` (see
    /// [`BudgetOption::x_frontier`]).
    pub fn set_x_frontier(&self, law: &dyn LossModel, sizes: &[SizeCost], option: &mut BudgetOption) {
        option.x_frontier = self
            .frontier_flops(law, &self.frontier_sizes(sizes), option.loss, option.flops)
            .map(|c| c / option.flops);
    }

    /// A measured run of this growth (`grow_at` of `steps` steps, final `loss`) as a
    /// transfer's fit sees it: the tokens before and after the growth.
    pub fn measured(&self, grow_at: u64, steps: u64, loss: f64) -> GrownPoint {
        let t = self.tokens_per_step;
        GrownPoint {
            small: self.small.params,
            target: self.target.params,
            small_tokens: grow_at as f64 * t,
            after_tokens: steps.saturating_sub(grow_at) as f64 * t,
            loss,
        }
    }

    /// The iso-FLOP question at `flops`: every size alone, and growth at the step that
    /// predicts the lowest loss with the run's steps set so that it spends `flops` (the
    /// growth step searched over every step the small model can take within the budget).
    pub fn answer(&self, law: &dyn LossModel, sizes: &[SizeCost], flops: f64) -> BudgetAnswer {
        let alone: Vec<BudgetOption> = sizes.iter().map(|s| self.alone(law, s, flops)).collect();
        let (fs, ft) = (self.small.flops_per_step, self.target.flops_per_step);
        // At least one step of the target after the growth.
        let last = (((flops - ft) / fs).floor() as u64).max(1);
        let at = |g: u64| {
            let steps = g + ((flops - g as f64 * fs) / ft).floor().max(1.0) as u64;
            self.grown(law, g, steps)
        };
        let best_growth = best_step(last, &at, &|o| o.loss);
        self.with_x_frontier(law, sizes, finish(alone, best_growth, flops))
    }

    /// The question a run of `steps` steps asks (`train.max_steps`): the growth step whose
    /// predicted iso-FLOP gap — its loss minus the best of every size alone (the pair's two
    /// included) at its FLOPs — is lowest. Growth is recommended when that gap is negative;
    /// else the best size alone at those FLOPs (a policy then never grows).
    pub fn answer_steps(&self, law: &dyn LossModel, sizes: &[SizeCost], steps: u64) -> BudgetAnswer {
        let steps = steps.max(2);
        let all = self.frontier_sizes(sizes);
        let best_alone = |flops: f64| {
            all.iter()
                .map(|s| self.alone(law, s, flops))
                .min_by(|a, b| a.loss.total_cmp(&b.loss))
                .expect("the pair's two sizes")
        };
        let gap = |o: &BudgetOption| o.loss - best_alone(o.flops).loss;
        let best_growth = best_step(steps - 1, &|g| self.grown(law, g, steps), &gap);
        let alone: Vec<BudgetOption> = all.iter().map(|s| self.alone(law, s, best_growth.flops)).collect();
        self.with_x_frontier(law, sizes, finish(alone, best_growth, f64::NAN))
    }

    /// `answer` with every option's predicted ×frontier set.
    fn with_x_frontier(&self, law: &dyn LossModel, sizes: &[SizeCost], mut answer: BudgetAnswer) -> BudgetAnswer {
        for o in answer.alone.iter_mut().chain([&mut answer.best_growth]) {
            self.set_x_frontier(law, sizes, o);
        }
        // The recommendation is one of them.
        answer.recommended.x_frontier = (answer.alone.iter().chain([&answer.best_growth]))
            .find(|o| o.name == answer.recommended.name)
            .and_then(|o| o.x_frontier);
        answer
    }
}

/// The option of the lowest `score` over growth steps `1..=last`: the best of 1,000 evenly
/// spaced steps, then every step between its neighbours (a ternary search where there are
/// more than 4,096), for budgets of any length.
fn best_step(last: u64, at: &dyn Fn(u64) -> BudgetOption, score: &dyn Fn(&BudgetOption) -> f64) -> BudgetOption {
    let last = last.max(1);
    let grid = 1000.min(last);
    let point = |i: u64| 1 + (last - 1) * i / grid.max(1);
    let scored = |g: u64| {
        let o = at(g);
        (score(&o), o)
    };
    let (mut best_i, mut best) = (0, scored(1));
    for i in 1..=grid {
        let o = scored(point(i));
        if o.0 < best.0 {
            (best_i, best) = (i, o);
        }
    }
    let (mut lo, mut hi) = (point(best_i.saturating_sub(1)), point((best_i + 1).min(grid)));
    while hi - lo > 4096 {
        let (m1, m2) = (lo + (hi - lo) / 3, hi - (hi - lo) / 3);
        if scored(m1).0 <= scored(m2).0 {
            hi = m2;
        } else {
            lo = m1;
        }
    }
    (lo..=hi).map(scored).fold(best, |b, o| if o.0 < b.0 { o } else { b }).1
}

fn finish(alone: Vec<BudgetOption>, best_growth: BudgetOption, flops: f64) -> BudgetAnswer {
    let best_alone = alone.iter().min_by(|a, b| a.loss.total_cmp(&b.loss));
    let recommended = match best_alone {
        // A tie goes to not growing: the same loss for no growth.
        Some(a) if a.loss <= best_growth.loss => a.clone(),
        _ => best_growth.clone(),
    };
    BudgetAnswer {
        flops: if flops.is_nan() { best_growth.flops } else { flops },
        best_grow_frac: best_growth.grow_at.unwrap_or(0) as f64 / best_growth.steps as f64,
        alone,
        best_growth,
        recommended,
    }
}
