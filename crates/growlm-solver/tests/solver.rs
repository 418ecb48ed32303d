//! Solver tests against numbers: recovery of known curve parameters, optimal growth points
//! of curves whose optimum is known analytically, finite-difference gradients, and
//! degenerate input.

use growlm_solver::*;
use proptest::prelude::*;

fn sample(model: &dyn CurveModel, p: &[f64], steps: &[f64], noise: f64) -> Curve {
    // Deterministic pseudo-noise in [-noise, noise].
    let losses = steps
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let u = ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
            model.value(p, *n) + noise * (2.0 * u - 1.0)
        })
        .collect();
    Curve::new(steps.to_vec(), losses).unwrap()
}

fn grid(n: usize, max: f64) -> Vec<f64> {
    (1..=n).map(|i| max * i as f64 / n as f64).collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

#[test]
fn power_law_fit_recovers_known_parameters() {
    let truth = [1.5, 8.0, 50.0, 0.6];
    let curve = sample(&PowerLaw, &truth, &grid(200, 20_000.0), 0.0);
    let f = fit(&curve, ModelKind::PowerLaw, 0.95).unwrap();
    for (got, want) in f.values().iter().zip(truth) {
        assert!(rel(*got, want) < 1e-3, "{:?} vs {truth:?}", f.values());
    }
    assert!(f.r2 > 0.999_999);
    // With noise the truth lies inside the confidence intervals and the fit is close.
    let noisy = sample(&PowerLaw, &truth, &grid(400, 20_000.0), 0.002);
    let f = fit(&noisy, ModelKind::PowerLaw, 0.99).unwrap();
    assert!(rel(f.values()[0], 1.5) < 0.05, "{:?}", f.values());
    let [lo, hi] = f.confidence_intervals[0].1;
    assert!(lo < 1.5 && 1.5 < hi, "L∞ interval [{lo}, {hi}]");
    assert!(f.residual_std > 0.0005 && f.residual_std < 0.002, "{}", f.residual_std);
}

#[test]
fn exponential_fit_recovers_known_parameters_and_aic_picks_it() {
    let truth = [2.0, 3.0, 1500.0];
    let curve = sample(&Exponential, &truth, &grid(150, 8000.0), 0.001);
    let f = fit(&curve, ModelKind::Exponential, 0.95).unwrap();
    for (got, want) in f.values().iter().zip(truth) {
        assert!(rel(*got, want) < 0.01, "{:?}", f.values());
    }
    let fits = fit_best(&curve, 0.95).unwrap();
    assert_eq!(fits[0].model, ModelKind::Exponential, "AIC must prefer the true model");
    assert!(fits[0].aic < fits[1].aic);
}

#[test]
fn inverse_and_derivative_are_consistent() {
    for (m, p) in [
        (&PowerLaw as &dyn CurveModel, vec![1.0, 5.0, 10.0, 0.5]),
        (&Exponential, vec![1.0, 2.0, 100.0]),
    ] {
        for n in [0.0, 10.0, 50.0, 300.0] {
            let l = m.value(&p, n);
            assert!(rel(m.inverse(&p, l).unwrap(), n) < 1e-8 || n == 0.0);
            let h = 1e-3 * (n + 1.0);
            let fd = (m.value(&p, n + h) - m.value(&p, n - h)) / (2.0 * h);
            assert!(rel(m.derivative(&p, n), fd) < 1e-5, "{} at {n}", m.name());
        }
        assert_eq!(m.inverse(&p, 0.5), None, "below the asymptote");
    }
}

proptest! {
    #[test]
    fn fit_objective_gradient_matches_finite_differences(
        z in proptest::collection::vec(-1.0f64..1.5, 4),
        power in proptest::bool::ANY,
    ) {
        let curve = sample(&PowerLaw, &[1.0, 4.0, 20.0, 0.7], &grid(30, 3000.0), 0.01);
        let (model, z): (&dyn CurveModel, Vec<f64>) = if power { (&PowerLaw, z) } else { (&Exponential, vec![z[0], z[1], z[2] + 5.0]) };
        let obj = LeastSquares(Objective { model, curve: &curve });
        use argmin::core::Gradient;
        let (g, fd) = (obj.gradient(&z).unwrap(), obj.finite_difference_gradient(&z, 1e-6));
        for (i, (g, fd)) in g.iter().zip(&fd).enumerate() {
            prop_assert!((g - fd).abs() <= 1e-4 * fd.abs().max(1.0), "component {i}: {g} vs {fd}");
        }
    }
}

/// Exponential curves give an analytic optimum: with `u = b_s·e^(−N/τs)` and
/// `Δ = a_s − a_t`, `E(N) = (τt/τs)·u/(Δ + u)`, so `E = r` at `u = rΔ/(τt/τs − r)`.
fn exact_problem() -> (GrowthProblem, f64) {
    let (a_s, b_s, tau_s) = (2.0, 3.0, 1000.0);
    let (a_t, b_t, tau_t) = (1.5, 3.5, 3000.0);
    let steps = grid(300, 15_000.0);
    let fs = fit(
        &sample(&Exponential, &[a_s, b_s, tau_s], &steps, 0.0),
        ModelKind::Exponential,
        0.95,
    )
    .unwrap();
    let ft = fit(
        &sample(&Exponential, &[a_t, b_t, tau_t], &steps, 0.0),
        ModelKind::Exponential,
        0.95,
    )
    .unwrap();
    let r = 0.3;
    let u = r * (a_s - a_t) / (tau_t / tau_s - r);
    let n_opt = -tau_s * (u / b_s).ln();
    let p = GrowthProblem {
        small: fs,
        target: ft,
        flops_small: r,
        flops_target: 1.0,
        delay: 0.0,
    };
    (p, n_opt)
}

#[test]
fn both_optimal_step_methods_agree_with_the_analytic_optimum() {
    let (p, n_opt) = exact_problem();
    assert!((2000.0..6000.0).contains(&n_opt), "{n_opt}");
    let e = p.effect(n_opt).unwrap();
    assert!(rel(e, 0.3) < 1e-4, "E at the analytic optimum is {e}");
    // Target loss reachable only after the optimum.
    let opt = p.optimum(10.0, 15_000.0, 1.6).unwrap();
    assert!(rel(opt.by_root, n_opt) < 0.01, "root {} vs {n_opt}", opt.by_root);
    assert!(rel(opt.by_flops, n_opt) < 0.01, "flops {} vs {n_opt}", opt.by_flops);
    assert!(rel(opt.by_root, opt.by_flops) < 0.01);
    assert!(opt.speedup > 1.0, "{}", opt.speedup);
    // Speed-up by hand: scratch = Lt⁻¹(1.6)·Ft, staged = Fs·G + Ft·(Lt⁻¹(1.6) − N_eq(G)).
    let scratch = -3000.0 * ((1.6f64 - 1.5) / 3.5).ln();
    let staged = 0.3 * opt.by_flops + (scratch - p.n_eq(opt.by_flops).unwrap());
    assert!(rel(opt.speedup, scratch / staged) < 1e-3);
}

#[test]
fn value_function_and_equivalent_steps() {
    let (mut p, _) = exact_problem();
    // Growing at 0 with the small curve above the target's start: N_eq is where the
    // target reaches L_s(0) = 5.0, i.e. before its own start (clamped to 0).
    let ls = p.small.value(2000.0);
    let neq = p.n_eq(2000.0).unwrap();
    assert!(rel(p.target.value(neq), ls) < 1e-9);
    p.delay = 50.0;
    assert!(rel(p.value(2000.0, 100.0).unwrap(), neq + 50.0) < 1e-9);
}

#[test]
fn convergence_step_is_where_the_slope_falls_below_the_threshold() {
    let (p, _) = exact_problem();
    // |L_s′| = (3/1000)·e^(−N/1000) = 3e-6 ⇔ N = 1000·ln(1000).
    let n = p.convergence_step(3e-6, 1e6).unwrap();
    assert!(rel(n, 1000.0 * 1000f64.ln()) < 1e-3, "{n}");
}

#[test]
fn unsolvable_problems_say_why() {
    let (p, _) = exact_problem();
    // The horizon ends before E falls to Fs/Ft.
    let e = p.optimal_by_root(10.0, 500.0).unwrap_err().to_string();
    assert!(e.contains("horizon"), "{e}");
    let e = p.optimum(10.0, 15_000.0, 1.4).unwrap_err().to_string();
    assert!(e.contains("asymptote"), "{e}");
}

#[test]
fn multi_stage_plan_matches_the_two_stage_optimum_and_uses_three_stages() {
    let (p, _) = exact_problem();
    let two = plan_stages(
        &[
            PlanStage {
                curve: p.small.clone(),
                flops_per_step: 0.3,
            },
            PlanStage {
                curve: p.target.clone(),
                flops_per_step: 1.0,
            },
        ],
        1.6,
    )
    .unwrap();
    let opt = p.optimum(10.0, 15_000.0, 1.6).unwrap();
    assert!(
        rel(two.growth_steps[0], opt.by_flops) < 0.01,
        "{} vs {}",
        two.growth_steps[0],
        opt.by_flops
    );
    assert!(rel(two.total_flops, opt.staged_flops) < 1e-3);
    // A middle model helps: three stages cost less than two.
    let steps = grid(300, 15_000.0);
    let mid = fit(
        &sample(&Exponential, &[1.75, 3.2, 1800.0], &steps, 0.0),
        ModelKind::Exponential,
        0.95,
    )
    .unwrap();
    let three = plan_stages(
        &[
            PlanStage {
                curve: p.small.clone(),
                flops_per_step: 0.3,
            },
            PlanStage {
                curve: mid,
                flops_per_step: 0.55,
            },
            PlanStage {
                curve: p.target.clone(),
                flops_per_step: 1.0,
            },
        ],
        1.6,
    )
    .unwrap();
    assert_eq!(three.steps.len(), 3);
    assert!(three.total_flops <= two.total_flops * (1.0 + 1e-9));
    assert!(three.growth_steps[0] < three.growth_steps[1]);
}

#[test]
fn empirical_effect_matches_the_model_on_curve_following_runs() {
    let (p, _) = exact_problem();
    // Runs that track the target curve exactly after growth: loss = Lt(N_eq(G) + nt).
    let runs: Vec<(f64, f64, f64)> = [1000.0, 2000.0, 3000.0, 4000.0]
        .iter()
        .map(|&g| (g, 500.0, p.target.value(p.n_eq(g).unwrap() + 500.0)))
        .collect();
    let emp = empirical_effect(&p.target, &runs);
    assert_eq!(emp.len(), 3);
    for [mid, e] in emp {
        // Finite differences over 1000 steps of a smooth E: within 5% of E(mid).
        assert!(
            rel(e, p.effect(mid).unwrap()) < 0.05,
            "at {mid}: {e} vs {}",
            p.effect(mid).unwrap()
        );
    }
}

#[test]
fn degenerate_input_is_an_error_not_a_panic() {
    assert!(matches!(
        Curve::new(vec![1.0, 2.0], vec![3.0, 2.0]),
        Err(SolverError::TooFewPoints { .. })
    ));
    let s = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    assert!(Curve::new(s.clone(), vec![3.0, f64::NAN, 2.0, 1.9, 1.8, 1.7])
        .unwrap_err()
        .to_string()
        .contains("NaN"));
    assert!(Curve::new(vec![-1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![3.0; 6])
        .unwrap_err()
        .to_string()
        .contains("negative"));
    assert!(
        Curve::new(vec![1.0, 3.0, 2.0, 4.0, 5.0, 6.0], vec![3.0, 2.9, 2.8, 2.7, 2.6, 2.5])
            .unwrap_err()
            .to_string()
            .contains("increase")
    );
    assert!(Curve::new(s.clone(), vec![1.0, 1.1, 1.2, 1.3, 1.4, 1.5])
        .unwrap_err()
        .to_string()
        .contains("does not fall"));
    assert!(fit_line(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0], 0.9).is_err());
}

#[test]
fn line_fit_interval_matches_hand_computed_values() {
    // y = 1 + 2x with residuals (+0.1, −0.1, −0.1, +0.1) at x = 0..3:
    // slope 2, SSE 0.04, Sxx 5, se = √(0.04/2/5) = 0.063246; t(2, 0.975) = 4.302653.
    let f = fit_line(&[0.0, 1.0, 2.0, 3.0], &[1.1, 2.9, 4.9, 7.1], 0.95).unwrap();
    assert!((f.slope - 2.0).abs() < 1e-12);
    assert!((f.slope_se - 0.063_245_553).abs() < 1e-8);
    assert!((f.slope_hi - (2.0 + 4.302_652_73 * 0.063_245_553)).abs() < 1e-6);
}

#[test]
fn a_target_loss_the_small_model_reaches_alone_is_flagged() {
    let (p, _) = exact_problem();
    // L_s → 2.0: the small model reaches 2.2 by itself, so growing never pays at 2.2.
    let opt = p.optimum(10.0, 15_000.0, 2.2).unwrap();
    assert!(
        opt.note.as_deref().is_some_and(|n| n.contains("small model alone")),
        "{:?}",
        opt.note
    );
    assert!(p.optimum(10.0, 15_000.0, 1.6).unwrap().note.is_none());
}

/// A wsd run's curve: an exponential through the stable phase, then a decay that pulls the
/// loss down faster. Fitted whole, the curve model misreads the asymptote; fitted `until`
/// the decay starts, it recovers the stable phase's parameters.
#[test]
fn fitting_until_the_decay_recovers_the_stable_phase() {
    let truth = [2.0, 3.0, 1500.0];
    let whole = sample(&Exponential, &truth, &grid(120, 6000.0), 0.0);
    let losses = whole
        .steps
        .iter()
        .zip(&whole.losses)
        .map(|(n, l)| l - 0.3 * ((n - 4800.0) / 1200.0).max(0.0))
        .collect();
    let decayed = Curve::new(whole.steps.clone(), losses).unwrap();
    let stable = decayed.until(4800.0).unwrap();
    assert_eq!(stable.steps.len(), 96);
    assert_eq!(*stable.steps.last().unwrap(), 4800.0);
    let f = fit(&stable, ModelKind::Exponential, 0.95).unwrap();
    for (got, want) in f.values().iter().zip(truth) {
        assert!(rel(*got, want) < 1e-3, "{:?}", f.values());
    }
    let f = fit(&decayed, ModelKind::Exponential, 0.95).unwrap();
    assert!(
        rel(f.values()[0], 2.0) > 0.05,
        "the decay moves the whole fit: {:?}",
        f.values()
    );
    let e = decayed.until(200.0).unwrap_err().to_string();
    assert!(e.contains("too few points"), "{e}");
}
