//! The compute-optimal frontier's envelope and measures (`growlm_lab::frontier`) on
//! hand-made points, against values worked by hand.

use growlm_lab::frontier::*;

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

/// Two sizes on one FLOP grid: the small one's 1.28e12 run (1.74) is a hair cheaper
/// than the large one's (1.66). Joining the lowest points in FLOPs order went from the
/// large size's 6.4e11 (1.75) to the small size's 1.74 and lifted the envelope between;
/// the minimum of the sizes' curves follows the large size: at 10^(log 6.4e11 + half
/// the octave) it is 1.75 − 0.09/2 = 1.705.
#[test]
fn sizes_on_one_flop_grid_make_the_envelope_of_their_curves() {
    let sized = |name: &str, flops: f64, loss: f64, params: usize| FrontierRun {
        params,
        ..run(name, flops, loss)
    };
    let runs = [
        sized("s-640", 6.4e11, 1.80, 20),
        sized("s-1280", 1.2799e12, 1.74, 20),
        sized("l-640", 6.4001e11, 1.75, 35),
        sized("l-1280", 1.28e12, 1.66, 35),
    ];
    let env = Envelope::new(&runs).unwrap();
    let mid = (6.4001e11f64.ln() + (1.28e12f64.ln() - 6.4001e11f64.ln()) / 2.0).exp();
    assert!((env.loss_at(mid).unwrap() - 1.705).abs() < 1e-12);
    let on: Vec<&str> = env.points.iter().map(|p| p.run.as_str()).collect();
    assert_eq!(on, ["s-640", "l-640", "l-1280"]);
    // A run at mid ending at 1.72 is above the envelope there (gap +0.015), and the
    // envelope reaches 1.72 at a third of the octave on the large size's line.
    let r = measure(&env, &run("g", mid, 1.72));
    assert!((r.iso_flop_gap.unwrap() - 0.015).abs() < 1e-12, "{r:?}");
    let at = (6.4001e11f64.ln() + (1.28e12f64.ln() - 6.4001e11f64.ln()) / 3.0).exp();
    assert!((r.x_frontier.unwrap() - at / mid).abs() < 1e-9, "{r:?}");
    // Each point of the figure's polyline is the envelope there, from where both sizes
    // have joined (their first budgets differ by 1e-5 of a decade: no vertical drop).
    let curve = env.curve();
    assert!(curve.iter().all(|&(x, y)| env.loss_at(x) == Some(y)));
    assert_eq!(curve[0], (6.4001e11, 1.75));
    assert_eq!(curve.last(), Some(&(1.28e12, 1.66)));
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
