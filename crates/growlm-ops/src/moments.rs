//! Optimizer-record surgery: AdamW's moments follow the parameters through a growth
//! (docs/design.md §Growth operators: the paper copies optimizer state for every method).

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::AdaptorRecord;
use burn::optim::AdaptiveMomentumState;
use burn::optim::{AdamW, AdamWState, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use growlm_model::Gpt;

use crate::plan::{apply, TensorPlan, WidthMaps};
use crate::OpsError;
use growlm_model::{to_host, HostTensor, NamedParams};

/// Maps `optim`'s state for the source parameters `src` onto the target parameters
/// `fresh` (the grown model's ids), following `plans`: copied entries carry their moments
/// (an entry scaled by `s` has its first moment scaled by `s` and its second by `s²`), new
/// entries start at zero, and the step count carries over.
pub fn map_optimizer<B: AutodiffBackend>(
    plans: &[TensorPlan],
    maps: &WidthMaps,
    src: &NamedParams,
    fresh: &NamedParams,
    optim: &OptimizerAdaptor<AdamW, Gpt<B>, B>,
    fresh_optim: OptimizerAdaptor<AdamW, Gpt<B>, B>,
    device: &B::Device,
) -> Result<OptimizerAdaptor<AdamW, Gpt<B>, B>, OpsError> {
    let record = optim.to_record();
    let time = src
        .get("wte")
        .and_then(|(id, _)| record.get(id))
        .map(|r| moment_time::<B>(r.clone()))
        .unwrap_or(0);
    let mut new_record = fresh_optim.to_record();
    for p in plans {
        let (new_id, f) = fresh
            .get(&p.target)
            .ok_or_else(|| OpsError::Incompatible(format!("model has no parameter `{}`", p.target)))?;
        let state = |path: &Option<String>| {
            path.as_ref()
                .and_then(|path| src.get(path))
                .and_then(|(id, _)| record.get(id).cloned())
                .map(|r| host_moments::<B>(r, f.shape.len()))
        };
        let (own, up) = (state(&p.source), state(&p.upper));
        // The first moment maps like the weights, the second like their squares.
        let moment = |pick: fn(&(HostTensor, HostTensor)) -> &HostTensor, power| {
            apply(
                &f.shape,
                p,
                maps,
                None,
                own.as_ref().map(pick),
                up.as_ref().map(pick),
                power,
            )
        };
        let (m1, m2) = (moment(|m| &m.0, 1), moment(|m| &m.1, 2));
        new_record.insert(*new_id, adaptor_record::<B>(m1, m2, time, device));
    }
    Ok(fresh_optim.load_record(new_record))
}

type Record<B> = AdaptorRecord<AdamW, B>;

/// Step count of a rank-2 parameter's AdamW state.
fn moment_time<B: AutodiffBackend>(r: Record<B>) -> usize {
    let s: AdamWState<B::InnerBackend, 2> = r.into_state();
    s.momentum.time
}

/// Reads AdamW's first and second moments from an optimizer record entry.
pub fn host_moments<B: AutodiffBackend>(r: Record<B>, rank: usize) -> (HostTensor, HostTensor) {
    if rank == 1 {
        let s: AdamWState<B::InnerBackend, 1> = r.into_state();
        (to_host(s.momentum.moment_1), to_host(s.momentum.moment_2))
    } else {
        let s: AdamWState<B::InnerBackend, 2> = r.into_state();
        (to_host(s.momentum.moment_1), to_host(s.momentum.moment_2))
    }
}

fn adaptor_record<B: AutodiffBackend>(m1: HostTensor, m2: HostTensor, time: usize, device: &B::Device) -> Record<B> {
    fn state<B: Backend, const D: usize>(
        m1: HostTensor,
        m2: HostTensor,
        time: usize,
        device: &B::Device,
    ) -> AdamWState<B, D> {
        let t = |h: HostTensor| Tensor::<B, D>::from_data(TensorData::new(h.values, h.shape), device);
        AdamWState {
            momentum: AdaptiveMomentumState {
                time,
                moment_1: t(m1),
                moment_2: t(m2),
                max_moment_2: None,
            },
        }
    }
    if m1.shape.len() == 1 {
        AdaptorRecord::from_state(state::<B::InnerBackend, 1>(m1, m2, time, device))
    } else {
        AdaptorRecord::from_state(state::<B::InnerBackend, 2>(m1, m2, time, device))
    }
}
