//! The optimizer: AdamW as the run config sets it, and global-norm gradient clipping.

use burn::module::Module;
use burn::module::{ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use growlm_model::Gpt;

use crate::RunConfig;

/// AdamW over the growlm model.
pub type Optim<B> = OptimizerAdaptor<AdamW, Gpt<B>, B>;

/// AdamW with the run's β₁, β₂ and decoupled weight decay (ε = 1e-8).
pub fn adamw(cfg: &RunConfig) -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(cfg.train.beta1 as f32)
        .with_beta_2(cfg.train.beta2 as f32)
        .with_epsilon(1e-8)
        .with_weight_decay(cfg.train.weight_decay as f32)
}

/// Scales the gradients so that their global L2 norm is at most `max_norm` (0 disables
/// clipping); returns the norm before clipping.
pub fn clip_global_norm<B: AutodiffBackend>(model: &Gpt<B>, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    struct SumSq<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        total: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for SumSq<'_, B> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(p.id) {
                let s = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(p.id) {
                self.grads
                    .register::<B::InnerBackend, D>(p.id, g.mul_scalar(self.factor));
            }
        }
    }
    let mut v = SumSq::<B> { grads, total: None };
    model.visit(&mut v);
    let norm = v.total.map_or(0.0, |t| t.into_scalar().elem::<f64>().sqrt());
    if max_norm > 0.0 && norm > max_norm {
        model.visit(&mut Scale {
            grads,
            factor: max_norm / (norm + 1e-6),
        });
    }
    norm
}
