//! Growth operators (DESIGN.md §Growth operators; paper §3.3–3.5, Table 1).
//!
//! A growth maps (source config, parameters, optimizer state) to the target's through a
//! per-tensor [`TensorPlan`], applied alike to the parameters and to AdamW's moments:
//! - width: the source is copied into the leading block of each tensor and the rest
//!   initialised as a fresh model would; a [`Ramp`] then switches new dims, heads and FFN
//!   units on over `[Gb, Ge]` (progressive dimensionality growth, eq. 5–7);
//! - depth: [`DepthOp::Redundant`] layers copy the adjacent layer's attention and MLP
//!   weights with zero LayerNorm weights and biases, an identity at `Gb` (§3.4);
//! - both at once, any factor in any dimension (§3.5).

mod grow;
mod plan;
mod ramp;

pub use grow::{
    assign_params, check_growth, grow, host_moments, layer_map, named_params, plan, DepthOp, Grown, GrowthConfig,
    GrowthReport, LayerOrigin, NamedParams,
};
pub use plan::{apply, Fill, HostTensor, TensorPlan};
pub use ramp::Ramp;

/// Errors of growth operators.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum OpsError {
    /// The target is smaller than the source in some dimension.
    #[error("cannot grow: target {what} = {target} is smaller than the source's {from}; growth only enlarges a model")]
    Shrink {
        /// The dimension.
        what: &'static str,
        /// Source size.
        from: usize,
        /// Target size.
        target: usize,
    },
    /// The two configs cannot be related by a function-preserving growth.
    #[error("cannot grow: {0}")]
    Incompatible(String),
    /// The target config is invalid.
    #[error(transparent)]
    Model(growlm_model::ModelError),
}
