//! The compute-optimal frontier (DESIGN.md §Evaluation protocol): is growing better than
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

/// The lower envelope of final loss against FLOPs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    /// Its points, FLOPs ascending, loss descending.
    pub points: Vec<EnvelopePoint>,
    /// The largest FLOPs of any from-scratch run: the envelope is flat from its last
    /// point to here.
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

impl Envelope {
    /// The envelope of `runs` (at least one, with finite positive FLOPs and finite loss).
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
        let mut points: Vec<EnvelopePoint> = Vec::new();
        for r in pts {
            if points.last().is_none_or(|p| r.loss < p.loss) {
                points.push(EnvelopePoint {
                    run: r.run.clone(),
                    flops: r.flops,
                    loss: r.loss,
                });
            }
        }
        Ok(Self { points, max_flops })
    }

    /// The envelope's FLOPs range: from its first point to the largest budget run.
    pub fn range(&self) -> [f64; 2] {
        [self.points[0].flops, self.max_flops]
    }

    /// The envelope's loss at `flops`, linear in log-FLOPs between its points; `None`
    /// outside its FLOPs range.
    pub fn loss_at(&self, flops: f64) -> Option<f64> {
        let [lo, hi] = self.range();
        if !(lo..=hi).contains(&flops) {
            return None;
        }
        let Some(i) = self.points.iter().position(|p| p.flops >= flops) else {
            return Some(self.points[self.points.len() - 1].loss);
        };
        if i == 0 || self.points[i].flops == flops {
            return Some(self.points[i].loss);
        }
        let (a, b) = (&self.points[i - 1], &self.points[i]);
        let t = (flops.ln() - a.flops.ln()) / (b.flops.ln() - a.flops.ln());
        Some(a.loss + t * (b.loss - a.loss))
    }

    /// The FLOPs at which the envelope reaches `loss`, linear in log-FLOPs.
    pub fn flops_to(&self, loss: f64) -> Reach {
        let (first, last) = (&self.points[0], &self.points[self.points.len() - 1]);
        if loss > first.loss {
            return Reach::Above;
        }
        if loss < last.loss {
            return Reach::Below;
        }
        for w in self.points.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if loss <= a.loss && loss >= b.loss {
                if loss == a.loss {
                    return Reach::At(a.flops);
                }
                let t = (a.loss - loss) / (a.loss - b.loss);
                return Reach::At((a.flops.ln() + t * (b.flops.ln() - a.flops.ln())).exp());
            }
        }
        Reach::At(first.flops)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, flops: f64, loss: f64) -> FrontierRun {
        FrontierRun {
            run: name.into(),
            flops,
            loss,
            tokens: flops / 1e6,
            params: 1000,
            params_before: None,
            growth_steps: vec![],
        }
    }

    /// Hand-worked: A (1e12, 3.0), B (1e13, 2.0), C (1e14, 1.6) are the envelope; D
    /// (2e13, 2.5) and E (1e14, 1.7) are beaten. A run of 10^12.5 FLOPs ending at 2.4:
    /// the envelope there is 3.0 − 0.5 = 2.5 (half a decade between A and B), so the gap is
    /// −0.1; the envelope reaches 2.4 at 10^(12 + 0.6) FLOPs, so ×frontier = 10^0.1.
    #[test]
    fn the_envelope_and_the_measures_match_a_hand_computation() {
        let runs = [
            run("D", 2e13, 2.5),
            run("C", 1e14, 1.6),
            run("A", 1e12, 3.0),
            run("E", 1e14, 1.7),
            run("B", 1e13, 2.0),
        ];
        let env = Envelope::new(&runs).unwrap();
        let names: Vec<&str> = env.points.iter().map(|p| p.run.as_str()).collect();
        assert_eq!(names, ["A", "B", "C"]);
        let g = FrontierRun {
            params_before: Some(250),
            ..run("grown", 10f64.powf(12.5), 2.4)
        };
        let r = measure(&env, &g);
        assert!((r.iso_flop_gap.unwrap() + 0.1).abs() < 1e-9, "{r:?}");
        assert!((r.x_frontier.unwrap() - 10f64.powf(0.1)).abs() < 1e-6, "{r:?}");
        assert_eq!(r.growth_factor, Some(4.0));
        assert!((r.tokens_per_param - 10f64.powf(12.5) / 1e9).abs() < 1e-6);
        assert!(r.outside.is_none());
        // At B's FLOPs the gap is against B exactly; 1.8 is half-way from B (2.0) to C (1.6),
        // reached at 10^13.5 FLOPs: ×frontier = 10^0.5.
        let r = measure(&env, &run("at-b", 1e13, 1.8));
        assert!((r.iso_flop_gap.unwrap() + 0.2).abs() < 1e-12);
        assert!((r.x_frontier.unwrap() - 10f64.sqrt()).abs() < 1e-6, "{r:?}");
    }

    #[test]
    fn outside_the_envelope_is_reported_never_extrapolated() {
        let env = Envelope::new(&[run("A", 1e12, 3.0), run("B", 1e13, 2.0)]).unwrap();
        let r = measure(&env, &run("small", 5e11, 1.5));
        assert_eq!((r.iso_flop_gap, r.x_frontier), (None, None));
        let why = r.outside.unwrap();
        assert!(
            why.contains("outside the envelope") && why.contains("below every"),
            "{why}"
        );
        assert!(why.contains("×frontier ≥ 20.00"), "{why}");
        let r = measure(&env, &run("weak", 5e12, 3.5));
        assert!(r.iso_flop_gap.unwrap() > 0.0 && r.x_frontier.is_none());
        assert!(r.outside.unwrap().contains("×frontier ≤ 0.20"));
        // A bigger run that is no better keeps the envelope flat out to its FLOPs.
        let env = Envelope::new(&[run("A", 1e12, 3.0), run("B", 1e13, 2.0), run("big", 1e14, 2.1)]).unwrap();
        assert_eq!((env.points.len(), env.range()), (2, [1e12, 1e14]));
        let r = measure(&env, &run("late", 3e13, 1.9));
        assert!((r.iso_flop_gap.unwrap() + 0.1).abs() < 1e-12, "{r:?}");
        assert!(r.outside.unwrap().contains("below every"));
        assert!(Envelope::new(&[run("nan", 1e12, f64::NAN)]).is_err());
    }
}
