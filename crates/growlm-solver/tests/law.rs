//! The law `L(N, D)` fitted by growlm (argmin) against an independent fit by scipy
//! (`fixtures/law/fit_law.py`) of the same 29 from-scratch runs of the regime study.

use growlm_solver::{LawPoint, ScalingLaw};

#[test]
fn the_law_fit_matches_scipy_on_the_regime_study_sizes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/law");
    let csv = std::fs::read_to_string(dir.join("points.csv")).unwrap();
    let points: Vec<LawPoint> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            LawPoint {
                params: f[1].parse().unwrap(),
                tokens: f[2].parse().unwrap(),
                loss: f[3].parse().unwrap(),
            }
        })
        .collect();
    assert_eq!(points.len(), 29);
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let fit = ScalingLaw::fit(&points).unwrap();
    let sse = fit.rmse.powi(2) * points.len() as f64;
    let w = |k: &str| want[k].as_f64().unwrap();
    // The same minimum: the sum of squares to 1e-9, the parameters to 1e-4 relative.
    assert!((sse - w("sse")).abs() < 1e-9, "{sse} vs {}", w("sse"));
    let l = fit.law;
    for (got, key) in [(l.e, "e"), (l.a, "a"), (l.alpha, "alpha"), (l.b, "b"), (l.beta, "beta")] {
        assert!((got / w(key) - 1.0).abs() < 1e-4, "{key}: {got} vs {}", w(key));
    }
}
