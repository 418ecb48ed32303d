//! The equal-loss speed-up of runs against a from-scratch reference (paper §4.3 and
//! Table 2; docs/design.md §Evaluation protocol).
//!
//! For each run, the loss compared is its final validation loss (or a loss given). The
//! reference's cost to reach it is read off the reference's running-minimum validation
//! curve, interpolated linearly between the two evaluations that bracket it, in FLOPs,
//! tokens and wall seconds alike; the run's cost is its total, the small model's training
//! included (for a given loss, the same interpolation on the run's own curve). A reference
//! that never reaches the loss gives "not reached" and the ratio of budgets as a lower
//! bound, never an extrapolation.

use growlm_train::{EvalPoint, RunCurve};
use serde::Serialize;

use crate::LabError;

/// The cost at which the running minimum of `points` first reaches `loss`, interpolated
/// linearly between the bracketing evaluations; `None` if it never does.
pub fn cost_to_reach(points: &[EvalPoint], loss: f64) -> Option<[f64; 3]> {
    // The running-minimum curve: at each evaluation, the lowest loss so far.
    let mut prev: Option<EvalPoint> = None;
    for p in points {
        let min = prev.map_or(p.loss, |a| a.loss.min(p.loss));
        if min <= loss {
            return Some(match prev {
                Some(a) if a.loss > loss => {
                    let f = (a.loss - loss) / (a.loss - min);
                    std::array::from_fn(|i| a.cost[i] + f * (p.cost[i] - a.cost[i]))
                }
                _ => p.cost,
            });
        }
        prev = Some(EvalPoint { loss: min, ..*p });
    }
    None
}

/// One row of the comparison.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// The run's name (its directory).
    pub run: String,
    /// The loss compared (the run's final validation loss, or the loss asked for).
    pub final_val_loss: f64,
    /// Its perplexity.
    pub perplexity: f64,
    /// The run's FLOPs to that loss (its total for the final loss).
    pub flops: f64,
    /// The reference's FLOPs to that loss (its total budget when not reached).
    pub reference_flops_to_loss: f64,
    /// Reference FLOPs ÷ run FLOPs (a lower bound when not reached).
    pub speedup_flops: f64,
    /// The same in tokens.
    pub speedup_tokens: f64,
    /// The same in wall-clock seconds.
    pub speedup_wall: f64,
    /// Whether the reference reaches the loss.
    pub reached: bool,
}

/// Compares `run` with `reference` at `at` (default: the run's final validation loss).
pub fn compare(name: &str, run: &RunCurve, reference: &RunCurve, at: Option<f64>) -> Result<Row, LabError> {
    let loss = at.unwrap_or(run.final_loss());
    let own = match at {
        Some(l) => cost_to_reach(&run.points, l)
            .ok_or_else(|| LabError::Invalid(format!("{name} never reaches loss {l}; compare at a higher loss")))?,
        None => run.total,
    };
    let (theirs, reached) = match cost_to_reach(&reference.points, loss) {
        Some(c) => (c, true),
        None => (reference.total, false),
    };
    let ratio = |i: usize| theirs[i] / own[i].max(f64::MIN_POSITIVE);
    Ok(Row {
        run: name.to_string(),
        final_val_loss: loss,
        perplexity: loss.exp(),
        flops: own[0],
        reference_flops_to_loss: theirs[0],
        speedup_flops: ratio(0),
        speedup_tokens: ratio(1),
        speedup_wall: ratio(2),
        reached,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A curve with evaluations at `(flops, loss)`; tokens are 10× and wall seconds
    /// 1/100 of the FLOPs.
    pub(crate) fn curve(points: &[(f64, f64)]) -> RunCurve {
        let points: Vec<EvalPoint> = points
            .iter()
            .enumerate()
            .map(|(i, &(flops, loss))| EvalPoint {
                step: i as u64 + 1,
                loss,
                cost: [flops, flops * 10.0, flops / 100.0],
            })
            .collect();
        RunCurve {
            total: points.last().unwrap().cost,
            steps: points.len() as u64,
            points,
            growths: vec![],
        }
    }

    #[test]
    fn the_speed_up_matches_a_hand_computation() {
        // Reference: losses 4, 3, 2.5 (a bump), 2.8, 2.0 at 100…500 FLOPs. Its running
        // minimum is 4, 3, 2.5, 2.5, 2.0; a run ending at 2.25 after 200 FLOPs: the
        // reference reaches 2.25 between 400 (2.5) and 500 (2.0), at 400 + 0.5·100 = 450.
        let reference = curve(&[(100.0, 4.0), (200.0, 3.0), (300.0, 2.5), (400.0, 2.8), (500.0, 2.0)]);
        let run = curve(&[(100.0, 3.5), (200.0, 2.25)]);
        let r = compare("grown", &run, &reference, None).unwrap();
        assert!(r.reached);
        assert_eq!(r.reference_flops_to_loss, 450.0);
        assert_eq!(r.speedup_flops, 450.0 / 200.0);
        assert_eq!(r.speedup_tokens, 4500.0 / 2000.0);
        assert!((r.speedup_wall - 2.25).abs() < 1e-12);
        assert!((r.perplexity - 2.25f64.exp()).abs() < 1e-12);
        // The running minimum, not the bump: 2.6 is reached between 200 (3.0) and 300
        // (2.5), at 200 + 0.8·100 = 280 — not again at 400.
        assert!((cost_to_reach(&reference.points, 2.6).unwrap()[0] - 280.0).abs() < 1e-9);
        // At a given loss both sides interpolate; the run reaches 3.0 at
        // 100 + (0.5/1.25)·100 = 140.
        let r = compare("grown", &run, &reference, Some(3.0)).unwrap();
        assert!(
            (r.flops - 140.0).abs() < 1e-9 && r.reference_flops_to_loss == 200.0,
            "{r:?}"
        );
    }

    #[test]
    fn a_reference_that_never_reaches_the_loss_gives_a_lower_bound() {
        let reference = curve(&[(100.0, 4.0), (300.0, 2.5)]);
        let run = curve(&[(100.0, 3.0), (200.0, 2.0)]);
        let r = compare("grown", &run, &reference, None).unwrap();
        assert!(!r.reached);
        assert_eq!(r.reference_flops_to_loss, 300.0);
        assert_eq!(r.speedup_flops, 1.5);
        let e = compare("grown", &run, &reference, Some(1.0)).unwrap_err().to_string();
        assert!(e.contains("grown never reaches loss 1"), "{e}");
    }
}
