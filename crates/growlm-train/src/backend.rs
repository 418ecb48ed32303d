//! Backend choice at run time (DESIGN.md §Backends): the run is monomorphised for each.

use burn::tensor::backend::AutodiffBackend;
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

/// Work generic over the backend, run on the one a [`DeviceKind`] names: the one place
/// that maps a device kind to a burn backend (training, benches and checks all go
/// through [`DeviceKind::dispatch`]).
pub trait WithBackend {
    /// What the work returns.
    type Output;
    /// Runs the work on backend `B` (autodiff over the device's backend).
    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output;
}

impl DeviceKind {
    /// Runs `work` on this kind's backend and its default device; an error for `Cuda` in
    /// a build without the `cuda` feature.
    pub fn dispatch<W: WithBackend>(self, work: W) -> Result<W::Output, TrainError> {
        match self {
            Self::Flex => Ok(work.run::<Autodiff<burn_flex::Flex>>(&Default::default())),
            Self::NdArray => Ok(work.run::<Autodiff<burn_ndarray::NdArray>>(&Default::default())),
            #[cfg(feature = "cuda")]
            Self::Cuda => Ok(work.run::<Autodiff<burn_cuda::Cuda>>(&Default::default())),
            #[cfg(not(feature = "cuda"))]
            Self::Cuda => Err(TrainError::CudaNotBuilt),
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
    struct Train<'a, 'o> {
        cfg: &'a RunConfig,
        opts: &'a RunOptions,
        registry: &'a Registry,
        observers: &'a mut [&'o mut dyn Observer],
    }
    impl WithBackend for Train<'_, '_> {
        type Output = Result<Summary, TrainError>;
        fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
            train::<B>(self.cfg, self.opts, self.registry, device, self.observers)
        }
    }
    kind.dispatch(Train {
        cfg,
        opts,
        registry,
        observers,
    })?
}
