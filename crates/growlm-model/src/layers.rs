//! The decoder's building blocks (docs/design.md §Model): seeded initialisation on the CPU,
//! dense layers stored `[d_in, d_out]`, GPT-Neo's tanh GELU (`gelu_new`) and LayerNorm,
//! each able to compute the masked (narrower) function a width mask asks for (paper eq. 7).

use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Draws initial parameter values on the CPU from a seeded generator, so that the same
/// seed gives the same initial model on every backend and in every thread.
pub struct Initializer {
    rng: StdRng,
}

impl Initializer {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// `n` values drawn from N(0, std²).
    pub fn normal_values(&mut self, n: usize, std: f64) -> Vec<f32> {
        let dist = Normal::new(0.0f64, std).expect("std is validated positive");
        (0..n).map(|_| dist.sample(&mut self.rng) as f32).collect()
    }

    /// A `[rows, cols]` tensor drawn from N(0, std²).
    pub fn normal<B: Backend>(&mut self, rows: usize, cols: usize, std: f64, device: &B::Device) -> Tensor<B, 2> {
        let v = self.normal_values(rows * cols, std);
        Tensor::from_data(TensorData::new(v, vec![rows, cols]), device)
    }
}

/// A linear layer `y = x·W (+ b)` with `W: [d_in, d_out]`.
#[derive(Module, Debug)]
pub struct Dense<B: Backend> {
    /// `[d_in, d_out]`.
    pub weight: Param<Tensor<B, 2>>,
    /// `[d_out]`; `None` for GPT-Neo's query, key and value projections.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> Dense<B> {
    pub(crate) fn init(
        d_in: usize,
        d_out: usize,
        std: f64,
        bias: bool,
        init: &mut Initializer,
        device: &B::Device,
    ) -> Self {
        Self {
            weight: Param::from_tensor(init.normal(d_in, d_out, std, device)),
            bias: bias.then(|| Param::from_tensor(Tensor::zeros([d_out], device))),
        }
    }

    /// One 2-D matmul over all `batch · seq` rows (not a broadcast batched matmul); on
    /// burn-flex in f32 the fused [`growlm_fused::linear()`], the bias added inside the product.
    ///
    /// # Shapes
    /// `x: [batch, seq, d_in]` → `[batch, seq, d_out]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        dense(x, self.weight.val(), self.bias.as_ref().map(|p| p.val()))
    }
}

/// `x·weight (+ bias)` over all `batch · seq` rows as one 2-D matmul ([`Dense::forward`]).
pub(crate) fn dense<B: Backend>(x: Tensor<B, 3>, weight: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Tensor<B, 3> {
    let [b, t, d_in] = x.dims();
    let x = x.reshape([b * t, d_in]);
    let y = match growlm_fused::linear(x, weight, bias, growlm_fused::Weight::InOut) {
        Ok(y) => y,
        Err((x, weight, bias)) => {
            let y = x.matmul(weight);
            match bias {
                Some(bias) => y + bias.unsqueeze::<2>(),
                None => y,
            }
        }
    };
    let [_, d_out] = y.dims();
    y.reshape([b, t, d_out])
}

/// GELU with the tanh approximation, GPT-Neo's `gelu_new`:
/// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
///
/// Computed as `x·σ(2u)` with `u = √(2/π)·x·(1 + 0.044715·x²)`, which equals the above since
/// `(1 + tanh u)/2 = σ(2u)`: six element-wise passes instead of nine, and the logistic
/// function is one fused op with a cheap backward on every backend, where `tanh` cost a
/// quarter of a CPU training step (libm `tanhf`/`expm1f`, forward and backward). On
/// burn-flex in f32 it is one fused kernel each way ([`growlm_fused::gelu`]).
pub fn gelu_new<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let x = match growlm_fused::gelu(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    const TWO_SQRT_2_OVER_PI: f64 = 2.0 * 0.797_884_560_802_865_4;
    let two_u = (x.clone() * x.clone())
        .mul_scalar(0.044715 * TWO_SQRT_2_OVER_PI)
        .add_scalar(TWO_SQRT_2_OVER_PI)
        * x.clone();
    x * sigmoid(two_u)
}

/// LayerNorm with learned scale (`gamma`) and shift (`beta`); without a shift, RMSNorm
/// (Llama): `x / √(mean(x²) + eps) · gamma`.
#[derive(Module, Debug)]
pub struct LayerNorm<B: Backend> {
    /// Scale, `[d]`.
    pub gamma: Param<Tensor<B, 1>>,
    /// Shift, `[d]`; `None` for RMSNorm.
    pub beta: Option<Param<Tensor<B, 1>>>,
    eps: f64,
}

impl<B: Backend> LayerNorm<B> {
    pub(crate) fn init(d: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([d], device)),
            beta: Some(Param::from_tensor(Tensor::zeros([d], device))),
            eps,
        }
    }

    /// An RMSNorm (no shift, no centring).
    pub(crate) fn rms(d: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([d], device)),
            beta: None,
            eps,
        }
    }

    /// Normalises over the last dim; with a mask `c` whose values sum to `n`, the mean and
    /// variance (RMSNorm: the mean square) are weighted by `c` (for a 0/1 mask: taken over
    /// the active dims only) and the output is multiplied by `c` (the `LN(h) ∘ C` of
    /// eq. 7). A LayerNorm or RMSNorm without a mask, on burn-flex in f32, is one fused
    /// kernel each way ([`growlm_fused::layer_norm`], [`growlm_fused::rms_norm`]).
    ///
    /// # Shapes
    /// `x: [batch, seq, d]` → `[batch, seq, d]`; `mask: [1, 1, d]`.
    pub fn forward(&self, x: Tensor<B, 3>, mask: Option<(&Tensor<B, 3>, f64)>) -> Tensor<B, 3> {
        let gamma = || self.gamma.val().unsqueeze::<3>();
        let Some(beta) = &self.beta else {
            return match mask {
                None => match growlm_fused::rms_norm(x, self.gamma.val(), self.eps) {
                    Ok(y) => y,
                    Err((x, _)) => {
                        let ms = x.clone().square().mean_dim(2);
                        x * (ms + self.eps).sqrt().recip() * gamma()
                    }
                },
                Some((c, n)) => {
                    let ms = (x.clone().square() * c.clone()).sum_dim(2).div_scalar(n);
                    x * (ms + self.eps).sqrt().recip() * gamma() * c.clone()
                }
            };
        };
        let affine = |x: Tensor<B, 3>| x * gamma() + beta.val().unsqueeze::<3>();
        match mask {
            None => match growlm_fused::layer_norm(x, self.gamma.val(), beta.val(), self.eps) {
                Ok(y) => y,
                Err((x, _, _)) => {
                    let (var, mean) = x.clone().var_mean_bias(2);
                    affine((x - mean).div((var + self.eps).sqrt()))
                }
            },
            Some((c, n)) => {
                let mean = (x.clone() * c.clone()).sum_dim(2).div_scalar(n);
                let centered = x - mean;
                let var = (centered.clone().square() * c.clone()).sum_dim(2).div_scalar(n);
                affine(centered.div((var + self.eps).sqrt())) * c.clone()
            }
        }
    }
}
