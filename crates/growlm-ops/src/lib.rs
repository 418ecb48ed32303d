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

//!
//! Files: `operator.rs` (the `[stages.growth]` table, layer origins, what can grow),
//! `plan.rs` (per-tensor plans and their application), `params.rs` (parameters by path),
//! `moments.rs` (optimizer-record surgery), `grow.rs` (the growth), `ramp.rs` (eq. 5–6).

mod grow;
mod moments;
mod operator;
mod params;
mod plan;
mod ramp;

pub use grow::{grow, Grown, GrowthReport};
pub use moments::{host_moments, map_optimizer};
pub use operator::{check_growth, layer_map, DepthOp, GrowthConfig, LayerOrigin};
pub use params::{assign_params, named_params, to_host, NamedParams};
pub use plan::{apply, plan, Fill, HostTensor, TensorPlan};
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
