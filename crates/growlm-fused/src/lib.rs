//! Fused CPU kernels for growlm's default backend, burn-flex: causal self-attention,
//! softmax cross-entropy, GPT-Neo's GELU and LayerNorm, and the linear layer with its bias,
//! each one kernel forward and one
//! backward, as custom autodiff ops (burn's backend-extension route: a forward on the inner
//! backend and a `Backward` step on `Autodiff<Flex>`). Every kernel runs its rows on
//! rayon's pool with a fixed arithmetic per row, so results do not depend on the number of
//! threads.
//!
//! The model calls [`attention()`], [`cross_entropy()`], [`gelu()`], [`layer_norm()`] and
//! [`linear()`] for any backend; they return the
//! inputs back (`Err`) when the backend is not burn-flex (plain or under autodiff) or the
//! dtype is not f32, and the model then takes its decomposed path. So CUDA, ndarray and
//! mixed precision compute exactly as before.
//!
//! Paper: the attention of eq. 4 and the loss of §3.2's training objective; docs/design.md
//! §Backends.

#![warn(missing_docs)]

pub mod attention;
pub mod entropy;
pub mod linear;
pub mod norm;
mod ops;
pub mod rope;
pub mod simd;

use std::any::{Any, TypeId};

use burn::tensor::ops::FloatTensor;
use burn::tensor::{backend::Backend, Shape, Tensor, TensorData, TensorPrimitive};
use burn_autodiff::Autodiff;
use burn_flex::{Flex, FlexTensor};

pub use attention::{AttentionPattern, AttentionShape, Rope};
pub use linear::Weight;
pub use ops::attention::attention;
pub use ops::entropy::cross_entropy;
pub use ops::gelu::{gelu, swiglu};
pub use ops::linear::{linear, LinearInputs};
pub use ops::norm::{layer_norm, rms_norm};

/// The autodiff backend the fused ops differentiate.
pub(crate) type Ad = Autodiff<Flex>;

/// Moves `slot`'s value out as a `T` when its type is `T`; leaves it otherwise.
pub(crate) fn take_as<S: 'static, T: 'static>(slot: &mut Option<S>) -> Option<T> {
    (slot as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
}

pub(crate) fn is<B: 'static, T: 'static>() -> bool {
    TypeId::of::<B>() == TypeId::of::<T>()
}

/// Whether the fused kernels serve backend `B`: burn-flex, plain or under autodiff, unless
/// they are switched off ([`enabled`]).
pub fn serves<B: Backend>() -> bool {
    (is::<B, Flex>() || is::<B, Ad>()) && enabled()
}

/// The environment variable that switches the fused kernels off (`GROWLM_FUSED=off`):
/// every backend then takes the decomposed path, for a side-by-side comparison or to rule
/// the kernels out when chasing a difference. Read once per process.
pub const SWITCH: &str = "GROWLM_FUSED";

thread_local! {
    static OFF_HERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the fused kernels off on this thread: every op `f` calls takes the
/// decomposed path (for comparing the two paths in one process).
pub fn decomposed<R>(f: impl FnOnce() -> R) -> R {
    let before = OFF_HERE.with(|c| c.replace(true));
    let out = f();
    OFF_HERE.with(|c| c.set(before));
    out
}

/// Whether the fused kernels are on: unless [`SWITCH`] is `off`, `0` or `false`, or this
/// thread is inside [`decomposed`].
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    !OFF_HERE.with(|c| c.get())
        && *ON.get_or_init(|| {
            !std::env::var(SWITCH)
                .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "off" | "0" | "false"))
        })
}

pub(crate) fn from_vec(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

pub(crate) fn slice(t: &FlexTensor) -> &[f32] {
    // Every tensor reaching here passed the f32 check and `to_contiguous`: a dense buffer.
    t.as_slice::<f32>().unwrap_or(&[])
}

pub(crate) fn float<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

pub(crate) fn wrap<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}
