//! Fitting cost of the loss-curve models on 100 and 10,000 points.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use growlm_solver::{fit, Curve, CurveModel, ModelKind, PowerLaw};

fn curve(n: usize) -> Curve {
    let p = [1.5, 8.0, 50.0, 0.6];
    let steps: Vec<f64> = (1..=n).map(|i| 20_000.0 * i as f64 / n as f64).collect();
    let losses = steps
        .iter()
        .enumerate()
        .map(|(i, s)| PowerLaw.value(&p, *s) + 0.002 * (((i * 7919) % 1000) as f64 / 500.0 - 1.0))
        .collect();
    Curve::new(steps, losses).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fit");
    g.sample_size(10);
    for n in [100, 10_000] {
        let data = curve(n);
        for kind in ModelKind::ALL {
            g.bench_with_input(BenchmarkId::new(format!("{kind:?}"), n), &data, |b, d| {
                b.iter(|| fit(d, kind, 0.95).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
