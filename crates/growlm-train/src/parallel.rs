//! Data parallelism (issue: scale) through burn's own collective all-reduce
//! (`burn::collective`, burn-collective 0.21).
//!
//! With `N` peers each step's batch is cut into `N` equal slices along the batch axis. Peer
//! `i` runs on its own thread with its own replica of the model (`Module::fork`: the same
//! parameter ids and values, a fresh autodiff leaf per parameter, so the peers' graphs share
//! nothing and their backward passes run side by side), computes the mean loss of its slice
//! and its gradients, and the peers average the gradients with one all-reduce of one buffer
//! (`crate::flat`: `ReduceOperation::Mean`, the parameters in the model's order). The mean over equal slices of
//! the slices' mean losses is the mean loss of the batch, so the averaged gradient is the
//! full batch's gradient up to floating-point summation order; the loop then applies the
//! one optimizer step it always applies, on the one model it keeps.
//!
//! Peer `i` runs on the device with index `base + i` of the run's device type (`cuda:0`,
//! `cuda:1`, …); a CPU backend has one device, so its peers are threads sharing it — on a
//! CPU this is how a training step keeps every core busy, since most element-wise kernels
//! run on one thread.
//!
//! Reproducibility: with one or two peers every run of the same seed, config and backend
//! gives the same curve bit for bit (a sum of two tensors does not depend on order). With
//! more than two, burn-collective 0.21 sums the peers in the order of a `std::HashMap`
//! (`local/all_reduce/tree.rs`), which differs between processes, so curves agree only up to
//! summation order.

use std::sync::{Mutex, MutexGuard};

use burn::collective::{self, CollectiveConfig, PeerId};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Device as _, DeviceId, DeviceOps};
use burn::tensor::{ElementConversion, FloatDType, Int, Tensor};
use growlm_model::{AttentionMasks, Gpt, WidthMask};

use crate::TrainError;

/// burn-collective keeps one session per backend and process: runs with peers in one
/// process (tests) take turns.
static SESSION: Mutex<()> = Mutex::new(());

/// A collective session of `n` peers for the run; ended (reset) when dropped.
pub struct DataParallel<B: AutodiffBackend> {
    devices: Vec<B::Device>,
    _session: MutexGuard<'static, ()>,
}

impl<B: AutodiffBackend> DataParallel<B> {
    /// Registers `n ≥ 2` peers on the devices after `device`. `batch_size` must split
    /// evenly.
    ///
    /// Runs with peers in one process take turns: this waits until any earlier session
    /// has been dropped.
    pub fn start(n: usize, batch_size: usize, device: &B::Device) -> Result<Self, TrainError> {
        if !batch_size.is_multiple_of(n) {
            return Err(TrainError::Config {
                key: "train.batch_size".into(),
                reason: format!(
                    "{batch_size} does not split into {n} equal slices for {n} devices; \
                     use a batch size divisible by {n} or another device count"
                ),
            });
        }
        let session = SESSION.lock().unwrap_or_else(|e| e.into_inner());
        let base = device.id();
        let devices: Vec<B::Device> = (0..n)
            .map(|i| {
                let index = base.index_id as usize + i;
                let index = u16::try_from(index).map_err(|_| TrainError::Config {
                    key: "devices".into(),
                    reason: format!("device index {index} is out of range"),
                })?;
                Ok(B::Device::from_id(DeviceId::new(base.type_id, index)))
            })
            .collect::<Result<_, TrainError>>()?;
        collective::reset_collective::<B::InnerBackend>();
        let config = CollectiveConfig::default().with_num_devices(n);
        // `register` returns once all `n` peers have registered: one thread each.
        let registered: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = devices
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let (d, config) = (d.clone(), config.clone());
                    s.spawn(move || collective::register::<B::InnerBackend>(PeerId::from(i), d, config))
                })
                .collect();
            handles.into_iter().map(|h| h.join()).collect()
        });
        for r in registered {
            r.map_err(|_| collective_error("a peer panicked while registering"))?
                .map_err(|e| collective_error(format!("register: {e:?}")))?;
        }
        Ok(Self {
            devices,
            _session: session,
        })
    }

    /// Number of peers.
    pub fn peers(&self) -> usize {
        self.devices.len()
    }

    /// The mean loss of the batch `(x, y)` and its gradients averaged over the peers (on
    /// the first peer's device, where the loop's model lives); with `low`, each peer
    /// computes in that float type (mixed precision, see `Precision`).
    pub fn gradients(
        &self,
        model: &Gpt<B>,
        (x, y): (Tensor<B, 2, Int>, Tensor<B, 2, Int>),
        masks: &AttentionMasks<B>,
        width: Option<&WidthMask<B>>,
        low: Option<FloatDType>,
    ) -> Result<(f64, GradientsParams), TrainError> {
        let n = self.peers();
        let rows = x.dims()[0];
        if !rows.is_multiple_of(n) {
            return Err(TrainError::Config {
                key: "train.batch_size".into(),
                reason: format!("{rows} rows do not split into {n} equal slices"),
            });
        }
        let per = rows / n;
        // Everything a peer needs is prepared before any peer starts: a peer blocks in the
        // all-reduce until all have joined, so none may be left waiting on a failure here.
        let inputs: Vec<_> = self
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let r = i * per..(i + 1) * per;
                (
                    i,
                    x.clone().slice(r.clone()).to_device(d),
                    y.clone().slice(r).to_device(d),
                    model.clone().fork(d),
                    masks.clone().to_device(d),
                    width.map(|w| w.clone().to_device(d)),
                )
            })
            .collect();
        let results: Vec<Result<(f64, GradientsParams), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = inputs
                .into_iter()
                .map(|(i, x, y, replica, masks, width)| {
                    s.spawn(move || {
                        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            // Mixed precision: compute in `low`, gradients land on the f32 replica.
                            let compute = match low {
                                Some(dtype) => replica.clone().cast(dtype),
                                None => replica.clone(),
                            };
                            let loss = compute.loss(x, y, &masks, width.as_ref());
                            let value = loss.clone().into_scalar().elem::<f64>();
                            let grads = GradientsParams::from_grads(loss.backward(), &replica);
                            let grads = crate::flat::all_reduce_mean(&replica, grads, PeerId::from(i));
                            (value, grads)
                        }));
                        let failed = |what: String| {
                            // Wake the peers blocked in the all-reduce: a reset fails them.
                            collective::reset_collective::<B::InnerBackend>();
                            Err(format!("peer {i}: {what}"))
                        };
                        match step {
                            Ok((value, Ok(grads))) => Ok((value, grads)),
                            Ok((_, Err(e))) => failed(format!("all-reduce: {e:?}")),
                            Err(panic) => {
                                let msg = panic
                                    .downcast_ref::<&str>()
                                    .map(|s| s.to_string())
                                    .or_else(|| panic.downcast_ref::<String>().cloned())
                                    .unwrap_or_else(|| "panicked".into());
                                failed(format!("panicked: {msg}"))
                            }
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a peer thread died".into())))
                .collect()
        });
        let mut loss = 0.0;
        let mut first = None;
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok((value, grads)) => {
                    loss += value;
                    first.get_or_insert(grads);
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(collective_error(errors.join("; ")));
        }
        let grads = first.expect("at least two peers");
        Ok((loss / n as f64, grads.to_device(&self.devices[0], model)))
    }
}

impl<B: AutodiffBackend> Drop for DataParallel<B> {
    fn drop(&mut self) {
        collective::reset_collective::<B::InnerBackend>();
    }
}

fn collective_error(what: impl Into<String>) -> TrainError {
    TrainError::Collective(what.into())
}
