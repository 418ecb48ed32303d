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
//! Across processes (`crate::dist`): the same, with the peers of every process in one
//! collective; process `r`'s peer `i` is global peer `r·n + i` and takes that slice of the
//! batch, so the global batch and its curve are one process's. The loss each peer computed
//! rides in the gradient buffer, so every process logs the mean over all peers. A watchdog
//! stops a process whose collective has not answered within the timeout (a dead rank).
//!
//! Reproducibility: with one or two peers every run of the same seed, config and backend
//! gives the same curve bit for bit (a sum of two tensors does not depend on order). With
//! more than two, burn-collective 0.21 sums the peers in the order of a `std::HashMap`
//! (`local/all_reduce/tree.rs`), which differs between processes, so curves agree only up to
//! summation order.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use burn::collective::{self, CollectiveConfig, PeerId};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Device as _, DeviceId, DeviceOps};
use burn::tensor::{ElementConversion, FloatDType, Int, Tensor};
use growlm_model::{AttentionMasks, Gpt, WidthMask};

use crate::{Distributed, TrainError};

/// burn-collective keeps one session per backend and process: runs with peers in one
/// process (tests) take turns.
static SESSION: Mutex<()> = Mutex::new(());

/// A collective session of `n` peers for the run; ended (reset) when dropped.
pub struct DataParallel<B: AutodiffBackend> {
    devices: Vec<B::Device>,
    /// This process's rank and the number of processes (1 and 0 without `dist`).
    rank: usize,
    nodes: usize,
    /// Since when this process waits in a collective, for the watchdog.
    waiting: Arc<Mutex<Option<Instant>>>,
    /// Across processes, each collective call's config (its session number → config).
    per_call: Option<PerCall>,
    _session: MutexGuard<'static, ()>,
}

impl<B: AutodiffBackend> DataParallel<B> {
    /// Registers `n ≥ 2` peers on the devices after `device`. `batch_size` must split
    /// evenly.
    ///
    /// Runs with peers in one process take turns: this waits until any earlier session
    /// has been dropped.
    pub fn start(
        n: usize,
        batch_size: usize,
        device: &B::Device,
        dist: Option<&Distributed>,
    ) -> Result<Self, TrainError> {
        let nodes = dist.map_or(1, |d| d.nnodes as usize);
        if !batch_size.is_multiple_of(n * nodes) {
            let all = n * nodes;
            return Err(TrainError::Config {
                key: "train.batch_size".into(),
                reason: format!(
                    "{batch_size} does not split into {all} equal slices for {all} peers ({nodes} processes × {n} devices); \
                     use a batch size divisible by {all} or another device count"
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
        let config = match dist {
            Some(d) => {
                d.start()?;
                d.config(n, 0)?
            }
            None => CollectiveConfig::default().with_num_devices(n),
        };
        let waiting = Arc::new(Mutex::new(Some(Instant::now())));
        if let Some(d) = dist {
            crate::dist::watchdog(waiting.clone(), d.clone());
        }
        // Across processes each collective call is a session of its own (see `Self::call`).
        let per_call = match dist {
            Some(d) => Some(PerCall {
                configs: (0..u64::from(Distributed::PORT_TURNS))
                    .map(|c| d.config(n, c))
                    .collect::<Result<_, _>>()?,
                calls: std::sync::atomic::AtomicU64::new(0),
                dist: d.clone(),
            }),
            None => None,
        };
        // `register` returns once all `n` peers have registered: one thread each.
        let registered: Vec<_> = std::thread::scope(|s| {
            if per_call.is_some() {
                return Vec::new();
            }
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
        *waiting.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(Self {
            devices,
            rank: dist.map_or(0, |d| d.rank as usize),
            nodes,
            waiting,
            per_call,
            _session: session,
        })
    }

    /// Runs `f` (a collective call of peer `i`) in the session: across processes, a
    /// session opened for the call and finished after it. burn-collective 0.21's global
    /// all-reduce answers once per registration: its nodes' sync (`global/node/sync.rs`)
    /// clears a copy of the list of synced nodes, not the list, so a second all-reduce
    /// waits forever. Registering, reducing and finishing per step costs 3–5 ms on
    /// 127.0.0.1 (measured with 2 processes).
    fn call<T>(
        per_call: Option<(&PerCall, u64)>,
        i: usize,
        device: &B::Device,
        f: impl FnOnce() -> Result<T, collective::CollectiveError>,
    ) -> Result<T, collective::CollectiveError> {
        let Some((p, call)) = per_call else {
            return f();
        };
        let config = p.configs[(call % p.configs.len() as u64) as usize].clone();
        collective::register::<B::InnerBackend>(PeerId::from(i), device.clone(), config)?;
        if i == 0 {
            p.dist.wait_ready(call);
        }
        let out = f();
        collective::finish_collective::<B::InnerBackend>(PeerId::from(i))?;
        out
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
        if !rows.is_multiple_of(n * self.nodes) {
            return Err(TrainError::Config {
                key: "train.batch_size".into(),
                reason: format!("{rows} rows do not split into {} equal slices", n * self.nodes),
            });
        }
        let per = rows / (n * self.nodes);
        let first = self.rank * n;
        // Everything a peer needs is prepared before any peer starts: a peer blocks in the
        // all-reduce until all have joined, so none may be left waiting on a failure here.
        let inputs: Vec<_> = self
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let r = (first + i) * per..(first + i + 1) * per;
                (
                    (i, d.clone()),
                    x.clone().slice(r.clone()).to_device(d),
                    y.clone().slice(r).to_device(d),
                    model.clone().fork(d),
                    masks.clone().to_device(d),
                    width.map(|w| w.clone().to_device(d)),
                )
            })
            .collect();
        let call = self.next_call();
        *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let results: Vec<Result<(f64, GradientsParams), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = inputs
                .into_iter()
                .map(|((i, device), x, y, replica, masks, width)| {
                    let per_call = self.per_call.as_ref().map(|p| (p, call));
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
                            // The loss, and across processes the call's stamp (`Distributed::stamp`).
                            let mut extras = vec![value as f32];
                            extras.extend(per_call.map_or(vec![], |(p, call)| p.dist.stamp(call)));
                            let reduced = Self::call(per_call, i, &device, || {
                                crate::flat::all_reduce_mean(&replica, grads, &extras, PeerId::from(i))
                            });
                            (value, reduced)
                        }));
                        let failed = |what: String| {
                            // Wake the peers blocked in the all-reduce: a reset fails them.
                            collective::reset_collective::<B::InnerBackend>();
                            Err(format!("peer {i}: {what}"))
                        };
                        match step {
                            Ok((value, Ok((grads, mean)))) => match per_call {
                                Some((p, call)) => match p.dist.check_stamp(call, &mean[1..]) {
                                    Ok(()) => Ok((f64::from(mean[0]), grads)),
                                    Err(e) => failed(e.to_string()),
                                },
                                None => Ok((value, grads)),
                            },
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
        *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = None;
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
        let grads = first.expect("at least one peer");
        // Across processes every peer's value is the global mean already, so this is too.
        let loss = loss / n as f64;
        Ok((loss, grads.to_device(&self.devices[0], model)))
    }
}

impl<B: AutodiffBackend> Drop for DataParallel<B> {
    fn drop(&mut self) {
        collective::reset_collective::<B::InnerBackend>();
    }
}

impl<B: AutodiffBackend> DataParallel<B> {
    /// Refuses to start when the processes differ in any of `items` (name, hex digest):
    /// each peer adds 8 bytes of each digest, and their squares, to one all-reduce, and a
    /// digest whose bytes have a variance over the peers differs somewhere.
    pub fn check_same(&self, items: &[(&str, String)]) -> Result<(), TrainError> {
        let mut values: Vec<f32> = Vec::new();
        for (_, hex) in items {
            let bytes = hex::decode(&hex[..16]).unwrap_or_default();
            values.extend(bytes.iter().map(|&b| f32::from(b)));
        }
        let squares: Vec<f32> = values.iter().map(|v| v * v).collect();
        let all = [values.clone(), squares].concat();
        let call = self.next_call();
        *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let results: Vec<Result<Vec<f32>, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .devices
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let t = Tensor::<B::InnerBackend, 1>::from_floats(all.as_slice(), d);
                    let per_call = self.per_call.as_ref().map(|p| (p, call));
                    s.spawn(move || {
                        Self::call(per_call, i, d, || {
                            collective::all_reduce::<B::InnerBackend>(
                                PeerId::from(i),
                                t.into_primitive().tensor(),
                                collective::ReduceOperation::Mean,
                            )
                        })
                        .map(|r| {
                            Tensor::<B::InnerBackend, 1>::from_primitive(burn::tensor::TensorPrimitive::Float(r))
                                .into_data()
                                .to_vec::<f32>()
                                .unwrap_or_default()
                        })
                        .map_err(|e| format!("{e:?}"))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a peer died".into())))
                .collect()
        });
        *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mean = results
            .into_iter()
            .next()
            .expect("one peer")
            .map_err(collective_error)?;
        let k = values.len();
        for (j, (name, _)) in items.iter().enumerate() {
            let differs = (j * 8..j * 8 + 8).any(|p| (mean[k + p] - mean[p] * mean[p]).abs() > 1e-3);
            if differs {
                return Err(collective_error(format!(
                    "the ranks differ in {name}: every rank must run the same growlm, config and data \
                     (and, resuming, from the same checkpoint)"
                )));
            }
        }
        Ok(())
    }
}

/// Across processes: the configs of the sessions, taken in turn, and the calls so far.
struct PerCall {
    dist: Distributed,
    configs: Vec<CollectiveConfig>,
    calls: std::sync::atomic::AtomicU64,
}

impl<B: AutodiffBackend> DataParallel<B> {
    /// The number of this collective call (the same on every rank: they call in step).
    fn next_call(&self) -> u64 {
        self.per_call
            .as_ref()
            .map_or(0, |p| p.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

fn collective_error(what: impl Into<String>) -> TrainError {
    TrainError::Collective(what.into())
}
