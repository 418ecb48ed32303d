//! Growth operators (docs/design.md §Growth operators; paper §3.3–3.5, §4.1, Table 1).
//!
//! A growth is a width operator plus a depth operator ([`GrowthConfig`]). Together they
//! give a per-tensor [`TensorPlan`], applied alike to the parameters and to AdamW's
//! moments:
//! - width (`width/`): `pdg` (ours: copy into the leading block, new units switched on by
//!   the eq. 5–7 [`Ramp`]), `direct-copy`, `fpi`, `hypercloning`, `aki`;
//! - depth (`depth/`): `redundant` (ours: copies of the neighbour with LayerNorm and
//!   biases zero, §3.4), `random`, `identity`, `stack`;
//! - both at once, any factor the operators allow (§3.5).
//!
//! Files: `operator.rs` (the operator traits), `width/` and `depth/` (one file per
//! operator, registered in the folder's `mod.rs`), `registry.rs` (the registries' shape),
//! `handle.rs` (operator names resolved to handles), `growth_config.rs` (the
//! `[stages.growth]` table, what can grow), `plan.rs` (per-tensor plans and their
//! application), `moments.rs` (optimizer-record surgery), `grow.rs` (the growth), `ramp.rs`
//! (eq. 5–7), `probe.rs` (measured function preservation).

pub mod depth;
mod grow;
mod growth_config;
mod handle;
mod moments;
mod operator;
mod plan;
mod probe;
mod ramp;
mod registry;
pub mod width;

pub use grow::{Grown, Growth, GrowthReport};
pub use growlm_model::{
    assign_params, named_params, param_shapes, param_values, to_host, Axis, HostTensor, NamedParams,
};
pub use growth_config::{check_growth, default_depth_for, GrowthConfig};
pub use handle::{Depth, Width};
pub use moments::{host_moments, map_optimizer};
pub use operator::{AxisMap, DepthOp, LayerOrigin, WidthOp};
pub use plan::{apply, plan, Fill, TensorPlan, WidthMaps};
pub use probe::{logit_change, logit_change_in, perturb_norms_and_biases};
pub use ramp::{MsgRamp, Ramp, RampState};
pub use registry::Registered;

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
    /// `[stages.growth]` names an operator that does not exist.
    #[error("unknown {kind} operator `{name}`; known: {known} (`cargo xtask operators` lists them)")]
    UnknownOperator {
        /// `width` or `depth`.
        kind: &'static str,
        /// The name given.
        name: String,
        /// The registered names.
        known: String,
    },
    /// The target config is invalid.
    #[error(transparent)]
    Model(growlm_model::ModelError),
}
