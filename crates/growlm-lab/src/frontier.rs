//! The compute-optimal frontier (docs/design.md §Evaluation protocol): is growing better than
//! training the best-sized model from scratch for the same compute?
//!
//! From-scratch runs of any sizes give points (total FLOPs, final validation loss — after
//! the schedule's full decay). The frontier is their lower envelope: the points no other
//! point beats with fewer or equal FLOPs (so its loss falls as FLOPs rise), joined by
//! straight lines in log-FLOPs, and flat from its last point to the largest budget run
//! (more FLOPs than that point bought no lower loss from scratch). A run (grown or not)
//! is measured against it by
//! - the **iso-FLOP gap**: its final loss minus the envelope at its FLOPs (negative: better
//!   than every from-scratch size for that compute);
//! - **×frontier**: the envelope's FLOPs to reach its final loss over its FLOPs (above 1:
//!   it saved compute against the best size; the paper's Table 2 measure, ×target, only
//!   compares with the target size).
//!
//! A FLOP count or a loss outside the envelope's range is reported as outside, never
//! extrapolated.

use growlm_train::RunDir;
use serde::Serialize;

use crate::LabError;

/// What the frontier needs of a finished run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontierRun {
    /// Its name (the run directory).
    pub run: String,
    /// Total training FLOPs.
    pub flops: f64,
    /// Final validation loss.
    pub loss: f64,
    /// Training tokens.
    pub tokens: f64,
    /// Parameters of the final model.
    pub params: usize,
    /// Parameters before its first growth (none: it never grew).
    pub params_before: Option<usize>,
    /// Steps at which it grew.
    pub growth_steps: Vec<u64>,
}

impl FrontierRun {
    /// Reads a finished run directory.
    pub fn read(name: &str, dir: &RunDir) -> Result<Self, LabError> {
        let s = dir.summary()?;
        let cfg = dir.config()?;
        let events = dir.events()?;
        let model =
            cfg.stages.get(s.final_stage).or(cfg.stages.last()).ok_or_else(|| {
                LabError::Invalid(format!("{}: the run's config has no stages", dir.path().display()))
            })?;
        Ok(Self {
            run: name.to_string(),
            flops: s.flops,
            loss: s.final_val_loss,
            tokens: s.tokens as f64,
            params: model.model.num_params(),
            params_before: events.first().map(|e| e.params_before),
            growth_steps: s.growth_steps,
        })
    }
}

/// A point of the envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvelopePoint {
    /// The from-scratch run.
    pub run: String,
    /// Its FLOPs.
    pub flops: f64,
    /// Its final loss.
    pub loss: f64,
}

/// The lower envelope of final loss against FLOPs: at each FLOP count, the lowest loss of
/// any size there. Each size (its runs, by parameter count) is a curve through its own
/// budgets, linear in log-FLOPs and flat after its largest budget (that loss is reached
/// with fewer FLOPs); a size counts from its smallest budget on. Taking the minimum of the
/// sizes' curves, rather than joining the lowest points in FLOPs order, matters when sizes
/// share a FLOP grid: a point a hair cheaper than another size's much lower one would
/// otherwise be joined to its neighbours and lift the envelope between them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    /// The runs on the envelope (their loss is the envelope's at their FLOPs), FLOPs
    /// ascending.
    pub points: Vec<EnvelopePoint>,
    /// Each size's curve: its runs, FLOPs ascending, each lower than every cheaper one of
    /// the size (a budget no better than a cheaper one is left out).
    pub sizes: Vec<Vec<EnvelopePoint>>,
    /// The largest FLOPs of any from-scratch run: the envelope's range ends here.
    pub max_flops: f64,
}

/// Where the envelope reaches a loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reach {
    /// At these FLOPs.
    At(f64),
    /// The loss is below every from-scratch run's: beyond the envelope's largest budget.
    Below,
    /// The loss is above the envelope's smallest run's: it is reached with fewer FLOPs
    /// than the envelope's smallest budget.
    Above,
}

/// A size's loss at `flops` (at or after its first budget): linear in log-FLOPs between
/// its points, flat after the last.
fn size_loss(size: &[EnvelopePoint], flops: f64) -> f64 {
    let Some(i) = size.iter().position(|p| p.flops >= flops) else {
        return size[size.len() - 1].loss;
    };
    if i == 0 || size[i].flops == flops {
        return size[i].loss;
    }
    let (a, b) = (&size[i - 1], &size[i]);
    let t = (flops.ln() - a.flops.ln()) / (b.flops.ln() - a.flops.ln());
    a.loss + t * (b.loss - a.loss)
}

/// The first FLOPs at which a size reaches `loss` (none: it never does).
fn size_reach(size: &[EnvelopePoint], loss: f64) -> Option<f64> {
    if loss >= size[0].loss {
        return Some(size[0].flops);
    }
    size.windows(2)
        .find(|w| loss <= w[0].loss && loss >= w[1].loss)
        .map(|w| {
            let (a, b) = (&w[0], &w[1]);
            let t = (a.loss - loss) / (a.loss - b.loss);
            (a.flops.ln() + t * (b.flops.ln() - a.flops.ln())).exp()
        })
}

impl Envelope {
    /// The envelope of `runs` (at least one, with finite positive FLOPs and finite loss);
    /// runs of the same parameter count are one size.
    pub fn new(runs: &[FrontierRun]) -> Result<Self, LabError> {
        let mut pts: Vec<&FrontierRun> = runs
            .iter()
            .filter(|r| r.flops > 0.0 && r.flops.is_finite() && r.loss.is_finite())
            .collect();
        if pts.is_empty() {
            return Err(LabError::Invalid(
                "the frontier needs at least one finished from-scratch run with a finite loss".into(),
            ));
        }
        pts.sort_by(|a, b| a.flops.total_cmp(&b.flops).then(a.loss.total_cmp(&b.loss)));
        let max_flops = pts[pts.len() - 1].flops;
        let mut params: Vec<usize> = pts.iter().map(|r| r.params).collect();
        params.sort_unstable();
        params.dedup();
        let sizes: Vec<Vec<EnvelopePoint>> = params
            .iter()
            .map(|&n| {
                let mut size: Vec<EnvelopePoint> = Vec::new();
                for r in pts.iter().filter(|r| r.params == n) {
                    if size.last().is_none_or(|p| r.loss < p.loss) {
                        size.push(EnvelopePoint {
                            run: r.run.clone(),
                            flops: r.flops,
                            loss: r.loss,
                        });
                    }
                }
                size
            })
            .collect();
        let mut env = Self {
            points: Vec::new(),
            sizes,
            max_flops,
        };
        let mut points: Vec<EnvelopePoint> = env
            .sizes
            .iter()
            .flatten()
            .filter(|p| env.loss_at(p.flops).is_some_and(|l| p.loss <= l + 1e-12))
            .cloned()
            .collect();
        points.sort_by(|a, b| a.flops.total_cmp(&b.flops).then(b.loss.total_cmp(&a.loss)));
        env.points = points;
        Ok(env)
    }

    /// The envelope's FLOPs range: from the cheapest run to the largest budget run.
    pub fn range(&self) -> [f64; 2] {
        let lo = self.sizes.iter().map(|s| s[0].flops).fold(f64::INFINITY, f64::min);
        [lo, self.max_flops]
    }

    /// The envelope's loss at `flops`: the lowest of the sizes' curves there; `None`
    /// outside its FLOPs range.
    pub fn loss_at(&self, flops: f64) -> Option<f64> {
        let [lo, hi] = self.range();
        if !(lo..=hi).contains(&flops) {
            return None;
        }
        self.sizes
            .iter()
            .filter(|s| s[0].flops <= flops)
            .map(|s| size_loss(s, flops))
            .min_by(f64::total_cmp)
    }

    /// The fewest FLOPs at which the envelope reaches `loss`: the earliest of the sizes'.
    pub fn flops_to(&self, loss: f64) -> Reach {
        let [lo, _] = self.range();
        if self.loss_at(lo).is_some_and(|first| loss > first) {
            return Reach::Above;
        }
        match self
            .sizes
            .iter()
            .filter_map(|s| size_reach(s, loss))
            .min_by(f64::total_cmp)
        {
            Some(f) => Reach::At(f.max(lo)),
            None => Reach::Below,
        }
    }

    /// The envelope as a polyline for a figure: every size's budgets in range and 400
    /// log-spaced FLOP counts, each with the envelope's loss there. Sizes whose first
    /// budgets differ by a hair (their steps round differently) would draw a vertical
    /// drop where each joins: the line starts once every size whose first budget is within
    /// 2% of the cheapest has joined (each run is still marked on its size's curve).
    pub fn curve(&self) -> Vec<(f64, f64)> {
        let [cheapest, hi] = self.range();
        let lo = self
            .sizes
            .iter()
            .map(|s| s[0].flops)
            .filter(|&f| f <= cheapest * 1.02)
            .fold(cheapest, f64::max);
        let mut xs: Vec<f64> = self.sizes.iter().flatten().map(|p| p.flops).collect();
        xs.extend((0..=400).map(|i| (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / 400.0).exp()));
        xs.retain(|x| (lo..=hi).contains(x));
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        xs.into_iter().filter_map(|x| self.loss_at(x).map(|l| (x, l))).collect()
    }
}

/// A run measured against the frontier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontierRow {
    /// The run.
    pub run: String,
    /// Its FLOPs.
    pub flops: f64,
    /// Its final validation loss.
    pub final_val_loss: f64,
    /// Its final model's parameters.
    pub params: usize,
    /// Training tokens per parameter of the final model.
    pub tokens_per_param: f64,
    /// Parameters after its growths over before (none: it never grew).
    pub growth_factor: Option<f64>,
    /// Final loss minus the envelope at its FLOPs (none: outside the envelope's FLOPs).
    pub iso_flop_gap: Option<f64>,
    /// The envelope's FLOPs to its final loss over its FLOPs (none: the loss is outside
    /// the envelope's range).
    pub x_frontier: Option<f64>,
    /// What was outside the envelope, if anything.
    pub outside: Option<String>,
}

/// Measures `run` against `env`.
pub fn measure(env: &Envelope, run: &FrontierRun) -> FrontierRow {
    let gap = env.loss_at(run.flops).map(|l| run.loss - l).filter(|g| g.is_finite());
    let [lo, hi] = env.range();
    let mut outside = Vec::new();
    if gap.is_none() {
        outside.push(format!(
            "its {:.3e} FLOPs are outside the envelope's {lo:.3e}–{hi:.3e}",
            run.flops
        ));
    }
    if !run.loss.is_finite() {
        outside.push(format!("its final loss is {}", run.loss));
    }
    let x = match env.flops_to(run.loss) {
        _ if !run.loss.is_finite() => None,
        Reach::At(f) => Some(f / run.flops),
        Reach::Below => {
            outside.push(format!(
                "its loss {:.4} is below every from-scratch run's (×frontier ≥ {:.2})",
                run.loss,
                hi / run.flops
            ));
            None
        }
        Reach::Above => {
            outside.push(format!(
                "its loss {:.4} is above the smallest from-scratch budget's (×frontier ≤ {:.2})",
                run.loss,
                lo / run.flops
            ));
            None
        }
    };
    FrontierRow {
        run: run.run.clone(),
        flops: run.flops,
        final_val_loss: run.loss,
        params: run.params,
        tokens_per_param: run.tokens / run.params.max(1) as f64,
        growth_factor: run.params_before.map(|b| run.params as f64 / b.max(1) as f64),
        iso_flop_gap: gap,
        x_frontier: x,
        outside: (!outside.is_empty()).then(|| outside.join("; ")),
    }
}
