//! What the fused ops' tests share: reproducible inputs, tensors from values and back, and
//! a pool of a given number of threads.

#![allow(dead_code)]

use burn::tensor::{backend::Backend, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_flex::Flex;

/// The autodiff backend the fused ops differentiate.
pub type Ad = Autodiff<Flex>;

/// Runs `f` on a pool of `threads` threads.
pub fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// `n` values in `[-scale, scale)` from a small LCG: reproducible inputs without a
/// dependency.
pub fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// A tensor of `v` with `shape` on `B`'s default device.
pub fn tensor<B: Backend, const D: usize>(v: Vec<f32>, shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(v, shape), &Default::default())
}

/// A tensor's values as f32.
pub fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}
