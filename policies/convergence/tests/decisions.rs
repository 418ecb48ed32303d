//! The convergence policy on synthetic curves with known convergence points, its parameter
//! checks and its state.

use growlm_policy::{first_growth, test_noise as noise, Policy, PolicyError};

fn build(params: &str) -> Result<Box<dyn Policy>, PolicyError> {
    growlm_policy_convergence::build(&toml::from_str(params).unwrap())
}

#[test]
fn convergence_fires_where_the_slope_falls_below_the_threshold() {
    // L = 2 + exp(−N/200): |L′| = exp(−N/200)/200 < 1e-4 once N > 200·ln 50 ≈ 782.4.
    // A 6-point window over evaluations every 20 steps measures the slope at its centre,
    // 50 steps back, so the first flat window ends near 840; patience 2 adds one more.
    let mut p = build("abs_threshold = 1e-4\nwindow = 6\npatience = 2\nconfidence = 0.9").unwrap();
    let fired = first_growth(p.as_mut(), 20, 3000, |n| 2.0 + (-(n as f64) / 200.0).exp()).unwrap();
    assert!((840..=900).contains(&fired), "fired at {fired}");
}

#[test]
fn convergence_elasticity_threshold_matches_the_analytic_point() {
    // L = 1 + 10/√N: elasticity −L′N/L = 5x/(1 + 10x) with x = 1/√N; it equals 0.07 at
    // x = 0.07/4.3, N ≈ 3773. With evaluations every 50 steps the fit's centre lags.
    let mut p = build("threshold = 0.07\nwindow = 5\npatience = 1").unwrap();
    let fired = first_growth(p.as_mut(), 50, 20000, |n| 1.0 + 10.0 / (n as f64).sqrt()).unwrap();
    assert!((3773..=4100).contains(&fired), "fired at {fired}");
}

#[test]
fn convergence_does_not_fire_on_a_noisy_dip() {
    // A loss still falling at 2e-4/step with noise of ±0.05: single windows can look flat,
    // but the slope's confidence interval is too wide to call it converged.
    let mut p = build("abs_threshold = 1e-4\nwindow = 6\npatience = 2").unwrap();
    let curve = |n: u64| 5.0 - 2e-4 * n as f64 + 0.05 * noise(n);
    assert_eq!(first_growth(p.as_mut(), 20, 6000, curve), None);
    // The same policy fires on a flat noisy curve once it has enough evidence.
    let mut p = build("abs_threshold = 1e-4\nwindow = 6\npatience = 2").unwrap();
    let flat = |n: u64| 3.0 + 0.0005 * noise(n);
    assert!(first_growth(p.as_mut(), 20, 6000, flat).is_some());
}

#[test]
fn bad_parameters_are_refused_with_the_key_named() {
    let err = |params: &str| build(params).err().unwrap().to_string();
    let e = err("windw = 5");
    assert!(e.contains("policy.windw") && e.contains("window"), "{e}");
    assert!(err("window = 2").contains("policy.window"));
    assert!(err("window = \"six\"").contains("policy.window"));
    assert!(err("confidence = 1.5").contains("policy.confidence"));
    assert!(err("threshold = -1").contains("policy.threshold"));
    assert!(err("abs_threshold = 0").contains("policy.abs_threshold"));
    assert!(err("patience = 0").contains("policy.patience"));
}

#[test]
fn policy_state_round_trips() {
    let params = "abs_threshold = 1.0\nwindow = 3\npatience = 5";
    let mut p = build(params).unwrap();
    first_growth(p.as_mut(), 1, 4, |_| 1.0);
    let saved = p.state();
    assert_eq!(saved["flat"], 2);
    let mut q = build(params).unwrap();
    q.load_state(saved.clone()).unwrap();
    assert_eq!(q.state(), saved);
    assert!(q.load_state(serde_json::json!({"x": 1})).is_err());
}
