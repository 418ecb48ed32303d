//! Measuring function preservation (paper Table 1, measured rather than declared): grow a
//! probe model and compare its logits before and after, with the mask as it stands at
//! `Gb`.

use std::collections::HashMap;

use burn::optim::AdamWConfig;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use growlm_model::{AttentionMasks, Gpt, GptConfig};

use crate::{assign_params, named_params, Growth, GrowthConfig, OpsError};

/// Gives every LayerNorm gain and shift and every bias of `model` a deterministic
/// non-trivial value (a fresh model has gains 1 and shifts and biases 0, which would hide
/// a growth that mishandles those paths).
pub fn perturb_norms_and_biases<B: AutodiffBackend>(model: Gpt<B>) -> Gpt<B> {
    let mut values = HashMap::new();
    for (path, (_, mut t)) in named_params::<B, _>(&model) {
        let (base, amp) = if path.ends_with("gamma") {
            (1.0, 0.5)
        } else if path.ends_with("beta") || path.ends_with("bias") {
            (0.0, 0.3)
        } else {
            continue;
        };
        let salt = path
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        for (i, v) in t.values.iter_mut().enumerate() {
            let x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
            *v = base + amp * ((x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0);
        }
        values.insert(path, t);
    }
    assign_params(model, &values)
}

/// The largest change of any logit when a probe model of `source` (with perturbed norms
/// and biases) grows into `target` with `op`, on a fixed batch; the grown model runs with
/// its mask at `Gb`. Zero up to float rounding means function-preserving.
pub fn logit_change<B: AutodiffBackend>(
    source: &GptConfig,
    target: &GptConfig,
    op: &GrowthConfig,
    device: &B::Device,
) -> Result<f32, OpsError> {
    logit_change_in::<B>(source, target, op, device, None)
}

/// [`logit_change`] with both models cast to the float type `low` for the forward passes
/// (mixed precision: growth itself works on the f32 weights).
pub fn logit_change_in<B: AutodiffBackend>(
    source: &GptConfig,
    target: &GptConfig,
    op: &GrowthConfig,
    device: &B::Device,
    low: Option<burn::tensor::FloatDType>,
) -> Result<f32, OpsError> {
    let model = perturb_norms_and_biases(source.init::<B>(11, device).map_err(OpsError::Model)?);
    let optim = AdamWConfig::new().init();
    let grown = Growth::new(source, target, op, 12).apply(&model, &optim, AdamWConfig::new().init())?;
    let t = source.context_len.min(8);
    let ids: Vec<i64> = (0..2 * t).map(|i| ((i * 13 + 5) % source.vocab_size) as i64).collect();
    let x = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, vec![2, t]), device);
    let (model, grown_model) = match low {
        Some(dtype) => (model.cast(dtype), grown.model.cast(dtype)),
        None => (model, grown.model),
    };
    let before = model.forward(x.clone(), &AttentionMasks::new(source, t, device), None);
    let width = grown.ramp.width_mask(target, 0, device).map_err(OpsError::Model)?;
    let after = grown_model.forward(x, &AttentionMasks::new(target, t, device), width.as_ref());
    let change = (before - after).abs().max();
    Ok(change.cast(burn::tensor::FloatDType::F32).into_scalar().elem::<f32>())
}
