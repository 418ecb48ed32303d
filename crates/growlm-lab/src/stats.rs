//! Statistics over seeds (DESIGN.md §Evaluation protocol).

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
}
