//! The solver's report in-process, against hand-worked values: Fs/Ft from the runs'
//! FLOPs, the wsd stable phase, and the multi-stage plan on exponential curves.

use std::path::Path;

use growlm_lab::solve::{solve, FlopsRatio, SolveInputs};
use growlm_train::{MetricsRow, RunDir};

/// A run directory whose validation loss follows `a + b·exp(−step/f)` (every 50 steps up
/// to 6000) at `fps` FLOPs per step.
fn exponential_run(run: &Path, [a, b, f]: [f64; 3], fps: f64) {
    std::fs::create_dir_all(run).unwrap();
    let rows: String = (1..=6000u64)
        .map(|step| {
            let row = MetricsRow {
                step,
                tokens: 0,
                flops: fps * step as f64,
                wall_s: 0.0,
                train_loss: 3.0,
                val_loss: (step % 50 == 0).then(|| a + b * (-(step as f64) / f).exp()),
                lr: 1e-3,
                stage: 0,
                width_active: 1.0,
                grad_norm: 1.0,
                skipped: 0,
            };
            serde_json::to_string(&row).unwrap() + "\n"
        })
        .collect();
    std::fs::write(RunDir::new(run).file(RunDir::METRICS), rows).unwrap();
}

#[test]
fn the_flops_ratio_and_the_fitted_points_come_from_the_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (small, target) = (dir.path().join("small"), dir.path().join("target"));
    exponential_run(&small, [2.0, 3.0, 1000.0], 1.0e9);
    exponential_run(&target, [1.5, 3.5, 3000.0], 3.0e9);
    let s = solve(&SolveInputs::new(&small, &target)).unwrap();
    assert!((s.report.flops_ratio - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!((s.report.fit_until, s.report.fits.small.n_points), (None, 120));
    // The exact curves are recovered: a = 2, b = 3, f = 1000 (the fit's parameter names).
    let p = &s.report.fits.small.parameters;
    assert!(p.values().any(|v| (v - 1000.0).abs() < 1e-3), "{p:?}");
    // A wsd run (3000 steps, decay over the last 20%) is fitted on its stable phase.
    let wsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/paper-tiny-wsd.toml");
    std::fs::copy(wsd, target.join("config.toml")).unwrap();
    let s = solve(&SolveInputs::new(&small, &target)).unwrap();
    assert!(s.stable_phase);
    assert_eq!((s.report.fit_until, s.report.fits.small.n_points), (Some(2400.0), 48));
    // A given ratio must be positive.
    let bad = SolveInputs {
        flops_ratio: FlopsRatio::Given(-1.0),
        ..SolveInputs::new(&small, &target)
    };
    assert!(solve(&bad).unwrap_err().to_string().contains("positive"));
}

/// The multi-stage plan on exponential curves `Lj = aj + bj·exp(−n/fj)` at `Fj` FLOPs per
/// step, against the hand-worked optimum. Minimising `Fj·Lj⁻¹(ℓ) − Fj+1·Lj+1⁻¹(ℓ)` over ℓ
/// gives `ℓ = (Fj·fj·aj+1 − Fj+1·fj+1·aj) / (Fj·fj − Fj+1·fj+1)`: 2.1 for small → medium
/// and 1.86 for medium → target. The small model leaves at step 1000·ln(3/0.1); the
/// medium model continues at its equal-loss step and leaves 2000·ln 2.5 steps later.
#[test]
fn the_multi_stage_plan_matches_the_hand_worked_optimum() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, abf: [f64; 3], fps: f64| {
        let p = dir.path().join(name);
        exponential_run(&p, abf, fps);
        p
    };
    let small = run("small", [2.0, 3.0, 1000.0], 1.0e9);
    let medium = run("medium", [1.7, 3.3, 2000.0], 2.0e9);
    let target = run("target", [1.5, 3.5, 3000.0], 3.0e9);
    let inputs = SolveInputs {
        via: vec![medium],
        target_loss: Some(1.8),
        ..SolveInputs::new(&small, &target)
    };
    let s = solve(&inputs).unwrap();
    let plan = s.report.plan.as_ref().expect("a plan");
    let close = |got: f64, want: f64, tol: f64| assert!((got - want).abs() <= tol * want, "{got} vs {want}");
    close(plan.growth_losses[0], 2.1, 1e-3);
    close(plan.growth_losses[1], 1.86, 1e-3);
    let first = 1000.0 * 30f64.ln();
    close(plan.growth_steps[0], first, 2e-3);
    close(plan.growth_steps[1], first + 2000.0 * 2.5f64.ln(), 2e-3);
    close(plan.steps[2], 3000.0 * (0.36f64 / 0.3).ln(), 2e-3);
    assert_eq!(s.plan_names.len(), 3);
    // A CSV middle curve carries no FLOPs: the plan says so, the two-stage answer stands.
    let csv = dir.path().join("m.csv");
    std::fs::write(
        &csv,
        "step,val_loss\n50,4\n100,3.9\n150,3.8\n200,3.7\n250,3.65\n300,3.6\n",
    )
    .unwrap();
    let s = solve(&SolveInputs {
        via: vec![csv],
        ..inputs
    })
    .unwrap();
    let e = s.report.plan_error.unwrap();
    assert!(e.contains("m.csv has none"), "{e}");
    assert!(s.report.optimal_growth_step.is_some() || s.report.error.is_some());
}
