//! The convergence policy on synthetic curves with known convergence points, its parameter
//! checks and its state.

use growlm_policy::{build_from, first_growth, first_growth_of, first_growth_within, refusal, test_noise as noise};
use growlm_policy_convergence::remaining_gain;

/// The convergence policy with `params` (its `[policy]` lines).
fn convergence(params: &str) -> Box<dyn growlm_policy::Policy> {
    build_from(growlm_policy_convergence::build, params).unwrap()
}

#[test]
fn convergence_fires_where_the_slope_falls_below_the_threshold() {
    // L = 2 + exp(−N/200): |L′| = exp(−N/200)/200 < 1e-4 once N > 200·ln 50 ≈ 782.4.
    // A 6-point window over evaluations every 20 steps measures the slope at its centre,
    // 50 steps back, so the first flat window ends near 840; patience 2 adds one more.
    let mut p = convergence("rule = \"elasticity\"\nabs_threshold = 1e-4\nwindow = 6\npatience = 2\nconfidence = 0.9");
    let fired = first_growth(p.as_mut(), 20, 3000, |n| 2.0 + (-(n as f64) / 200.0).exp()).unwrap();
    assert!((840..=900).contains(&fired), "fired at {fired}");
}

#[test]
fn convergence_elasticity_threshold_matches_the_analytic_point() {
    // L = 1 + 10/√N: elasticity −L′N/L = 5x/(1 + 10x) with x = 1/√N; it equals 0.07 at
    // x = 0.07/4.3, N ≈ 3773. With evaluations every 50 steps the fit's centre lags.
    let mut p = convergence("rule = \"elasticity\"\nthreshold = 0.07\nwindow = 5\npatience = 1");
    let fired = first_growth(p.as_mut(), 50, 20000, |n| 1.0 + 10.0 / (n as f64).sqrt()).unwrap();
    assert!((3773..=4100).contains(&fired), "fired at {fired}");
}

#[test]
fn convergence_does_not_fire_on_a_noisy_dip() {
    // A loss still falling at 2e-4/step with noise of ±0.05: single windows can look flat,
    // but the slope's confidence interval is too wide to call it converged.
    let mut p = convergence("rule = \"elasticity\"\nabs_threshold = 1e-4\nwindow = 6\npatience = 2\nreserve = 0");
    let curve = |n: u64| 5.0 - 2e-4 * n as f64 + 0.05 * noise(n);
    assert_eq!(first_growth(p.as_mut(), 20, 6000, curve), None);
    // The same policy fires on a flat noisy curve once it has enough evidence.
    let mut p = convergence("rule = \"elasticity\"\nabs_threshold = 1e-4\nwindow = 6\npatience = 2");
    let flat = |n: u64| 3.0 + 0.0005 * noise(n);
    assert!(first_growth(p.as_mut(), 20, 6000, flat).is_some());
}

#[test]
fn bad_parameters_are_refused_with_the_key_named() {
    let err = |params: &str| refusal(growlm_policy_convergence::build, params);
    let e = err("windw = 5");
    assert!(e.contains("policy.windw") && e.contains("window"), "{e}");
    assert!(err("window = 2").contains("policy.window"));
    assert!(err("window = \"six\"").contains("policy.window"));
    assert!(err("confidence = 1.5").contains("policy.confidence"));
    assert!(err("rule = \"elasticity\"\nthreshold = -1").contains("policy.threshold"));
    assert!(err("rule = \"elasticity\"\nabs_threshold = 0").contains("policy.abs_threshold"));
    let e = err("threshold = 0.2");
    assert!(
        e.contains("policy.threshold") && e.contains("rule = \"elasticity\""),
        "{e}"
    );
    assert!(err("rule = \"slope\"").contains("policy.rule"));
    assert!(err("rho = 0").contains("policy.rho"));
    assert!(err("min_evals = 2").contains("policy.min_evals"));
    assert!(err("patience = 0").contains("policy.patience"));
    assert!(err("reserve = 1").contains("policy.reserve"));
    assert!(err("reserve = -0.1").contains("policy.reserve"));
}

#[test]
fn policy_state_round_trips() {
    let params = "rule = \"elasticity\"\nabs_threshold = 1.0\nwindow = 3\npatience = 5\nreserve = 0";
    let mut p = build_from(growlm_policy_convergence::build, params).unwrap();
    first_growth(p.as_mut(), 1, 4, |_| 1.0);
    let saved = p.state();
    assert_eq!(saved["flat"], 2);
    let mut q = build_from(growlm_policy_convergence::build, params).unwrap();
    q.load_state(saved.clone()).unwrap();
    assert_eq!(q.state(), saved);
    assert!(q.load_state(serde_json::json!({"x": 1})).is_err());
}

/// `L = 1.5 + 2/√N`: the budget rule's g is `(1 − √(N/B))/(√2 − 1)`, below ρ = 0.25 once
/// `N/B > (1 − 0.25·(√2 − 1))² = 0.80362`.
fn power(n: u64) -> f64 {
    1.5 + 2.0 / (n as f64).sqrt()
}

#[test]
fn the_remaining_gain_matches_its_closed_form() {
    let history: Vec<(f64, f64)> = (1..=40).map(|i| (50.0 * i as f64, power(50 * i))).collect();
    let g = remaining_gain(&history, 3000.0, 8).unwrap();
    let want = (1.0 - (2000.0f64 / 3000.0).sqrt()) / (2f64.sqrt() - 1.0);
    assert!((g.value - want).abs() < 2e-3, "g {g:?}, closed form {want}");
    // An exact curve: a tight interval.
    assert!(g.upper >= g.value && g.upper - g.value < 1e-3, "{g:?}");
    // Too few evaluations in [N/2, N]; a spent budget.
    assert_eq!(remaining_gain(&history[..7], 3000.0, 8), None);
    assert_eq!(remaining_gain(&history, 2000.0, 8).unwrap().upper, 0.0);
    // A flat (or rising) loss has converged.
    let flat: Vec<(f64, f64)> = (1..=20).map(|i| (50.0 * i as f64, 2.0 + 0.001 * i as f64)).collect();
    assert_eq!(remaining_gain(&flat, 1e6, 8).unwrap().upper, 0.0);
}

/// The rule alone, without the deadline.
const NO_DEADLINE: &str = "reserve = 0";

#[test]
fn the_budget_rule_fires_at_the_analytic_point_at_any_scale() {
    // Evaluations every 50 steps: the first one past 0.80362·3000 = 2410.9 is 2450; with
    // patience 2 the policy grows at 2500.
    let fired = first_growth_of(growlm_policy_convergence::build, NO_DEADLINE, 50, 3000, power).unwrap();
    assert!((2450..=2500).contains(&fired), "fired at {fired}");
    // The same curve stretched 10× in steps, with a 10× budget: the same fraction.
    let fired = first_growth_of(growlm_policy_convergence::build, NO_DEADLINE, 500, 30_000, |n| {
        power(n / 10)
    })
    .unwrap();
    assert!((24_500..=25_000).contains(&fired), "fired at {fired}");
    // With noise of ±0.01 (a tenth of the last half's improvement) it stays close.
    let noisy = |n: u64| power(n) + 0.01 * noise(n);
    let fired = first_growth_of(growlm_policy_convergence::build, NO_DEADLINE, 50, 3000, noisy).unwrap();
    assert!((2200..=2700).contains(&fired), "noisy: fired at {fired}");
}

#[test]
fn the_budget_rule_does_not_fire_on_a_noisy_still_falling_curve() {
    // The same noisy curve, observed for 3000 steps of a 30 000-step budget: still far from
    // converged for that budget.
    let mut p = convergence("");
    let noisy = |n: u64| power(n) + 0.01 * noise(n);
    assert_eq!(first_growth_within(p.as_mut(), 50, 3000, 30_000, noisy), None);
}

#[test]
fn the_deadline_keeps_the_reserve_for_the_grown_model() {
    // A curve the rule would grow on only at 2500 (see above): the default reserve, 0.2 of
    // a 3000-step two-stage run, makes it grow at step 2400, not at an evaluation.
    let mut p = convergence("");
    assert_eq!(first_growth(p.as_mut(), 50, 3000, power), Some(2400));
    let mut p = convergence("reserve = 0.1");
    assert_eq!(first_growth(p.as_mut(), 70, 3000, power), Some(2520));
    // A still-falling noisy curve never fires the rule; the deadline still grows it.
    let mut p = convergence("");
    let falling = |n: u64| 5.0 - 2e-4 * n as f64 + 0.05 * noise(n);
    assert_eq!(first_growth(p.as_mut(), 50, 3000, falling), Some(2400));
    // Each later stage keeps its share: stage 0 of three stages grows by 0.6 of the budget.
    use growlm_policy_convergence::deadline;
    assert_eq!(deadline(3000, 0.2, 2), Some(1800));
    assert_eq!(deadline(3000, 0.2, 1), Some(2400));
    assert_eq!(deadline(3000, 0.0, 1), None);
    assert_eq!(deadline(3000, 0.9, 2), Some(0));
}

#[test]
fn the_budget_rule_fires_before_the_deadline_on_a_curve_that_flattens_early() {
    // L = 2 + 0.5·exp(−N/300): flat within noise long before 0.8 of the budget.
    let mut p = convergence("");
    let early = |n: u64| 2.0 + 0.5 * (-(n as f64) / 300.0).exp() + 1e-4 * noise(n);
    let fired = first_growth(p.as_mut(), 50, 3000, early).unwrap();
    assert!(fired < 2000, "fired at {fired}");
}
