//! The growth transfer and the anchored law (`growlm_solver::transfer`) against hand-worked
//! values, and the transfer's fit against runs made by a known transfer.

use growlm_solver::{Anchored, GrownPoint, GrowthLaw, LawPoint, LossModel, ScalingLaw, SolverError, Transfer};

const LAW: ScalingLaw = ScalingLaw::new(1.5, 40.0, 0.4, 300.0, 0.35);

fn point(params: f64, tokens: f64, off: f64) -> LawPoint {
    LawPoint {
        params,
        tokens,
        loss: LAW.loss(params, tokens) + off,
    }
}

#[test]
fn the_anchored_law_goes_through_each_sizes_mean_residual_and_interpolates_in_ln_d() {
    // Size 1e4: two seeds at 1e6 tokens (+0.03, +0.01: mean +0.02), one at 4e6 (−0.01).
    let points = [
        point(1e4, 1e6, 0.03),
        point(1e4, 1e6, 0.01),
        point(1e4, 4e6, -0.01),
        point(2e4, 1e6, 0.005),
    ];
    let a = Anchored::new(LAW, &points);
    let close = |x: f64, y: f64| assert!((x - y).abs() < 1e-12, "{x} vs {y}");
    close(a.residual(1e4, 1e6), 0.02);
    close(a.residual(1e4, 4e6), -0.01);
    // 2e6 is halfway between 1e6 and 4e6 in ln D: (0.02 − 0.01) / 2.
    close(a.residual(1e4, 2e6), 0.005);
    // Held at the nearest end outside the measured budgets.
    close(a.residual(1e4, 1e5), 0.02);
    close(a.residual(1e4, 1e8), -0.01);
    // One budget: the same residual everywhere; a size without runs: the law alone.
    close(a.residual(2e4, 3e7), 0.005);
    close(a.residual(4e4, 1e6), 0.0);
    close(a.loss(1e4, 2e6), LAW.loss(1e4, 2e6) + 0.005);
    // Its rows rebuild it (as a `[policy]` table carries it).
    let rows = a.rows();
    assert_eq!(rows.len(), 3);
    assert_eq!(Anchored::from_rows(LAW, &rows), a);
}

#[test]
fn the_transfer_by_hand() {
    let t = Transfer {
        gain: 0.25,
        recovery: 3e4,
    };
    // 1e5 + 1.25·2e5 − 3e4.
    assert_eq!(t.tokens(1e5, 2e5), 3.2e5);
    // A recovery longer than the run leaves a hundredth of the tokens after growth.
    let long = Transfer { recovery: 1e9, ..t };
    assert_eq!(long.tokens(0.0, 1e5), 1e3);
    assert_eq!(Transfer::LOSS_MATCHING.tokens(1e5, 2e5), 3e5);

    // Grown after 1e6 tokens of 1e4 parameters into 4e4, then 1e6 tokens more. Loss matching
    // gives D_match = 0.00936887^(−1/0.35) = 623,992.5 (see the law's own test); with the
    // transfer the run is worth 623,992.5 + 1.25e6 − 3e4 = 1,843,992.5 tokens of the
    // target: L = 1.5 + 40·4e4^−0.4 + 300·1,843,992.5^−0.35 = 4.000639.
    let model = GrowthLaw {
        law: Anchored::new(LAW, &[]),
        transfer: t,
    };
    let l = model.grown_loss(1e4, 4e4, 1e6, 1e6);
    assert!((l - 4.000_639_13).abs() < 1e-6, "{l}");
    // Without a transfer and anchors it is loss matching: 4.088102.
    let matching = GrowthLaw {
        transfer: Transfer::LOSS_MATCHING,
        ..model.clone()
    };
    let m = matching.grown_loss(1e4, 4e4, 1e6, 1e6);
    assert!((m - 4.088_102_07).abs() < 1e-6, "{m}");
    assert!((m - LAW.grown_loss(1e4, 4e4, 1e6, 1e6)).abs() < 1e-12);
    // The anchors move a grown run as they move its target.
    let anchored = GrowthLaw {
        law: Anchored::new(LAW, &[point(4e4, 1e6, 0.02), point(4e4, 4e6, 0.02)]),
        ..model
    };
    assert!((anchored.grown_loss(1e4, 4e4, 1e6, 1e6) - (l + 0.02)).abs() < 1e-12);
}

#[test]
fn the_fit_recovers_a_known_transfer() {
    let law = Anchored::new(LAW, &[point(4e4, 1e6, 0.01), point(4e4, 1e7, -0.02)]);
    let truth = Transfer {
        gain: 0.2,
        recovery: 5e4,
    };
    let runs: Vec<GrownPoint> = [(2e5, 1.8e6), (5e5, 1.5e6), (1e6, 1e6), (1.5e6, 5e5), (1e6, 3e6)]
        .into_iter()
        .map(|(before, after)| GrownPoint {
            small: 1e4,
            target: 4e4,
            small_tokens: before,
            after_tokens: after,
            loss: law.grown_loss(&truth, 1e4, 4e4, before, after),
        })
        .collect();
    let fit = Transfer::fit(&law, &runs).unwrap();
    assert!((fit.transfer.gain - 0.2).abs() < 1e-4, "{fit:?}");
    assert!((fit.transfer.recovery / 5e4 - 1.0).abs() < 1e-3, "{fit:?}");
    assert!(fit.rmse < 1e-6, "{fit:?}");
    assert_eq!(fit.runs, 5);

    // Bad input is refused by what is wrong.
    assert!(matches!(
        Transfer::fit(&law, &runs[..1]),
        Err(SolverError::TooFewPoints { got: 1, needed: 2 })
    ));
    let mut bad = runs.clone();
    bad[1].loss = f64::NAN;
    let e = Transfer::fit(&law, &bad).unwrap_err().to_string();
    assert!(e.contains("finite loss"), "{e}");
    let mut shrunk = runs;
    shrunk[0].target = 5e3;
    assert!(Transfer::fit(&law, &shrunk).is_err());
}
