//! Statistics over seeds (docs/design.md §Evaluation protocol): the mean, the sample standard
//! deviation and a 95% confidence interval of the mean from Student's t (statrs) with
//! n − 1 degrees of freedom. A difference whose interval covers zero is "no difference at
//! this n"; one seed has no interval and says so.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean and sample standard deviation of `v` (0 for one value).
pub fn spread(v: &[f64]) -> [f64; 2] {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    [mean, var.sqrt()]
}

/// A value measured over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Interval {
    /// Seeds.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one seed).
    pub sd: f64,
    /// 95% confidence interval of the mean, `mean ± t(0.975, n−1)·sd/√n` (none for one
    /// seed).
    pub ci: Option<[f64; 2]>,
}

impl Interval {
    /// The interval of `v` (at least one value).
    pub fn of(v: &[f64]) -> Self {
        let [mean, sd] = spread(v);
        let n = v.len();
        let ci = (n > 1).then(|| {
            let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
                .expect("n − 1 ≥ 1 degrees of freedom")
                .inverse_cdf(0.975);
            let h = t * sd / (n as f64).sqrt();
            [mean - h, mean + h]
        });
        Self { n, mean, sd, ci }
    }

    /// Whether the interval covers `x` (one seed: never, it has no interval).
    pub fn covers(&self, x: f64) -> bool {
        self.ci.is_some_and(|[lo, hi]| lo <= x && x <= hi)
    }

    /// `mean ± sd (95% CI lo–hi, n seeds)`, or `mean (1 seed)`, with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        match self.ci {
            Some([lo, hi]) => format!(
                "{:.digits$} ± {:.digits$} (95% CI {lo:.digits$}–{hi:.digits$}, {} seeds)",
                self.mean, self.sd, self.n
            ),
            None => format!("{:.digits$} (1 seed)", self.mean),
        }
    }

    /// As [`show`](Self::show) for a difference from `zero` (0 for a gap, 1 for a ratio):
    /// followed by "no difference at this n" when the interval covers it.
    pub fn show_difference(&self, zero: f64, digits: usize) -> String {
        let s = self.show(digits);
        if self.covers(zero) {
            format!("{s}: no difference at this n")
        } else {
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_the_sample_standard_deviation() {
        assert_eq!(spread(&[2.0]), [2.0, 0.0]);
        let [m, s] = spread(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((s - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_interval_matches_a_hand_computation() {
        // 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653, half-width 4.302653/√3 = 2.484138.
        let i = Interval::of(&[1.0, 2.0, 3.0]);
        let [lo, hi] = i.ci.unwrap();
        assert!(
            (lo - (2.0 - 2.484_138)).abs() < 1e-6 && (hi - (2.0 + 2.484_138)).abs() < 1e-6,
            "{i:?}"
        );
        assert!(i.covers(0.0) && !i.covers(5.0));
        assert_eq!(
            i.show_difference(0.0, 2),
            "2.00 ± 1.00 (95% CI -0.48–4.48, 3 seeds): no difference at this n"
        );
        // 1.9, 2.0, 2.1: half-width 4.302653·0.1/√3 = 0.248414; 1 is outside.
        let tight = Interval::of(&[1.9, 2.0, 2.1]);
        assert_eq!(
            tight.show_difference(1.0, 3),
            "2.000 ± 0.100 (95% CI 1.752–2.248, 3 seeds)"
        );
        let one = Interval::of(&[1.5]);
        assert_eq!((one.ci, one.show(2)), (None, "1.50 (1 seed)".to_string()));
        assert_eq!(one.show_difference(1.0, 2), "1.50 (1 seed)");
    }
}
