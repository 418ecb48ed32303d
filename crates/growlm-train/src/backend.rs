//! Backend choice at run time (DESIGN.md §Backends): the run is monomorphised for each.

use burn_autodiff::Autodiff;
use growlm_policy::Registry;

use crate::{train, Observer, RunConfig, RunOptions, Summary, TrainError};

/// Which burn backend trains the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// burn-flex on the CPU (default).
    Flex,
    /// burn-ndarray on the CPU.
    NdArray,
    /// burn-cuda on the first GPU (needs the `cuda` feature).
    Cuda,
}

impl DeviceKind {
    /// Lower-case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::NdArray => "ndarray",
            Self::Cuda => "cuda",
        }
    }
}

/// Runs [`train`] on the chosen backend.
pub fn run_on(
    kind: DeviceKind,
    cfg: &RunConfig,
    opts: &RunOptions,
    registry: &Registry,
    observers: &mut [&mut dyn Observer],
) -> Result<Summary, TrainError> {
    match kind {
        DeviceKind::Flex => train::<Autodiff<burn_flex::Flex>>(cfg, opts, registry, &Default::default(), observers),
        DeviceKind::NdArray => {
            train::<Autodiff<burn_ndarray::NdArray>>(cfg, opts, registry, &Default::default(), observers)
        }
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => train::<Autodiff<burn_cuda::Cuda>>(cfg, opts, registry, &Default::default(), observers),
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => Err(TrainError::CudaNotBuilt),
    }
}
