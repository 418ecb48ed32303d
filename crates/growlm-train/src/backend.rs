//! Backend choice at run time (docs/design.md §Backends): the run is monomorphised for each.

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn_autodiff::Autodiff;
use growlm_model::memory::{self, Available};
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

/// The memory a job on `device` allocates from ([`growlm_model::memory`]): `GROWLM_MEMORY`
/// when set, else a CUDA device's free memory (`cuMemGetInfo` on device 0, burn-cuda's
/// default device), else the host's. None where it cannot be read (a CUDA device in a
/// build without the `cuda` feature, or a driver that does not answer): then nothing is
/// checked, and an allocation that fails is the backend's error.
pub fn memory_for<B: Backend>(device: &B::Device) -> Result<Option<Available>, TrainError> {
    let on_gpu = B::name(device).to_ascii_lowercase().contains("cuda");
    Ok(memory::available_or(|| match on_gpu {
        true => cuda_free_memory(),
        false => memory::host_available(),
    })?)
}

/// The free memory of CUDA device 0.
#[cfg(feature = "cuda")]
fn cuda_free_memory() -> Option<Available> {
    let (free, total) = cudarc::driver::CudaContext::new(0).ok()?.mem_get_info().ok()?;
    Some(Available {
        bytes: free as f64,
        source: format!(
            "free memory of CUDA device 0 (cuMemGetInfo; {:.1} GiB in all)",
            total as f64 / 1024f64.powi(3)
        ),
    })
}

/// No CUDA in this build: nothing to read.
#[cfg(not(feature = "cuda"))]
fn cuda_free_memory() -> Option<Available> {
    None
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
