//! Cost of one training step (forward, backward, AdamW) on burn-flex: the unmasked model
//! against the same model during a PDG ramp (width mask active), and a growth operation.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::{Int, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_flex::Flex;
use criterion::{criterion_group, criterion_main, Criterion};
use growlm::model::{ActiveWidth, AttentionMasks, GptConfig, WidthMask};
use growlm::ops::{Growth, GrowthConfig};

type B = Autodiff<Flex>;

fn tokens(b: usize, t: usize) -> Tensor<B, 2, Int> {
    let v: Vec<i64> = (0..b * t).map(|i| ((i * 31 + 7) % 256) as i64).collect();
    Tensor::from_data(TensorData::new(v, vec![b, t]), &Default::default())
}

fn bench(c: &mut Criterion) {
    let dev = Default::default();
    // The target of configs/paper-tiny-wsd.toml: d=128, 4 layers, 4 heads; batch 16 × 128 tokens.
    let cfg = GptConfig::new(256, 128, 128, 4, 4);
    let small = GptConfig::new(256, 128, 96, 2, 3);
    let masks = AttentionMasks::<B>::new(&cfg, 128, &dev);
    let (x, y) = (tokens(16, 128), tokens(16, 128));
    let mid_ramp = WidthMask::new(
        &cfg,
        ActiveWidth {
            hidden: 112,
            attn: 112,
            ffn: 448,
        },
        &dev,
    )
    .unwrap();
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10);
    for (name, width) in [("no_mask", None), ("pdg_ramp_mask", Some(&mid_ramp))] {
        let mut model = cfg.init::<B>(0, &dev).unwrap();
        let mut optim = AdamWConfig::new().init();
        g.bench_function(name, |b| {
            b.iter(|| {
                let loss = model.loss(x.clone(), y.clone(), &masks, width);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(1e-3, model.clone(), grads);
            })
        });
    }
    g.finish();
    let model = small.init::<B>(0, &dev).unwrap();
    let optim = AdamWConfig::new().init();
    c.bench_function("grow_96x2_to_128x4", |b| {
        b.iter(|| {
            Growth::new(&small, &cfg, &GrowthConfig::default(), 1)
                .apply(&model, &optim, AdamWConfig::new().init())
                .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
