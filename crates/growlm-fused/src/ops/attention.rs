//! The fused causal attention (grouped key/value heads and rotary positions included) as a
//! custom autodiff op on `Autodiff<Flex>`: the forward
//! kernel of [`crate::attention::forward`] on the inner backend, and a `Backward` step that runs
//! its backward kernel.

use burn::tensor::ops::FloatTensor;
use burn::tensor::{backend::Backend, DType, Tensor};
use burn_flex::{Flex, FlexTensor};

use super::{record, Saved};
use crate::attention::{self as kernel, AttentionPattern, AttentionShape, Rope};
use crate::{float, from_vec, serves, slice, take_as, wrap, Ad};

/// Saved for the attention backward step: the inputs and each row's log-sum-exp.
#[derive(Debug, Clone)]
struct AttentionState {
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    lse: FlexTensor,
    shape: AttentionShape,
    pattern: AttentionPattern,
    rope: Option<Rope>,
}

impl Saved<3> for AttentionState {
    fn backward(self, dy: FlexTensor, wanted: [bool; 3]) -> [Option<FlexTensor>; 3] {
        let (n, nkv) = (self.shape.len(), self.shape.kv_len());
        let (mut dq, mut dk, mut dv) = (vec![0.0f32; n], vec![0.0f32; nkv], vec![0.0f32; nkv]);
        kernel::backward(
            slice(&self.q),
            slice(&self.k),
            slice(&self.v),
            slice(&dy),
            slice(&self.lse),
            self.shape,
            self.pattern,
            self.rope.as_ref(),
            [&mut dq, &mut dk, &mut dv],
        );
        let (b, t, hd) = (self.shape.batch, self.shape.seq, self.shape.head_dim);
        let dims = [
            [b, t, self.shape.heads * hd],
            [b, t, self.shape.kv_heads * hd],
            [b, t, self.shape.kv_heads * hd],
        ];
        let mut grads = [dq, dk, dv].into_iter().zip(dims);
        wanted.map(|w| grads.next().filter(|_| w).map(|(g, dims)| from_vec(g, dims)))
    }
}

/// The forward kernel on burn-flex tensors: the output and the log-sum-exp.
fn attention_flex(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    shape: AttentionShape,
    pattern: AttentionPattern,
    rope: Option<&Rope>,
) -> (FlexTensor, FlexTensor) {
    let mut out = vec![0.0f32; shape.len()];
    let mut lse = vec![0.0f32; shape.rows()];
    kernel::forward(slice(q), slice(k), slice(v), shape, pattern, rope, &mut out, &mut lse);
    (
        from_vec(out, [shape.batch, shape.seq, shape.heads * shape.head_dim]),
        from_vec(lse, [shape.batch, shape.heads, shape.seq]),
    )
}

/// Causal self-attention of `q: [batch, seq, heads·head_dim]` on `k, v: [batch, seq,
/// kv_heads·head_dim]` (heads side by side in the last dim, as the projections give them)
/// → `[batch, seq, heads·head_dim]`, fused, with its own backward under autodiff. Query
/// head `h` reads key/value head `h / (heads / kv_heads)` in place (grouped-query
/// attention, no repeated heads); with `rope`, queries and keys are rotated inside the
/// kernel as it reads them.
///
/// `Err` gives the inputs back when the backend is not served ([`serves`]), a tensor is not
/// f32, the shapes disagree, `heads` does not divide the last dim, `kv_heads` does not
/// divide `heads` or the rotary tables do not cover the sequence: the caller then takes the
/// decomposed path.
#[allow(clippy::type_complexity)]
pub fn attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
    kv_heads: usize,
    pattern: AttentionPattern,
    rope: Option<&Rope>,
) -> Result<Tensor<B, 3>, (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>)> {
    let [b, t, a] = q.dims();
    let fits = serves::<B>()
        && heads > 0
        && kv_heads > 0
        && a % heads == 0
        && heads % kv_heads == 0
        && k.dims() == [b, t, a / heads * kv_heads]
        && v.dims() == k.dims()
        && rope.is_none_or(|r| r.covers(t, a / heads))
        && [&q, &k, &v].iter().all(|x| x.dtype() == DType::F32);
    if !fits {
        return Err((q, k, v));
    }
    let shape = AttentionShape {
        batch: b,
        seq: t,
        heads,
        kv_heads,
        head_dim: a / heads,
    };
    let (mut sq, mut sk, mut sv) = (Some(q), Some(k), Some(v));
    if let (Some(q), Some(k), Some(v)) = (
        take_as::<_, Tensor<Flex, 3>>(&mut sq),
        take_as::<_, Tensor<Flex, 3>>(&mut sk),
        take_as::<_, Tensor<Flex, 3>>(&mut sv),
    ) {
        let [q, k, v] = [q, k, v].map(|x| float(x).to_contiguous());
        let out = wrap::<Flex, 3>(attention_flex(&q, &k, &v, shape, pattern, rope).0);
        return Ok(take_as(&mut Some(out)).expect("B is Flex"));
    }
    if let (Some(q), Some(k), Some(v)) = (
        take_as::<_, Tensor<Ad, 3>>(&mut sq),
        take_as::<_, Tensor<Ad, 3>>(&mut sk),
        take_as::<_, Tensor<Ad, 3>>(&mut sv),
    ) {
        let out = wrap::<Ad, 3>(attention_autodiff(float(q), float(k), float(v), shape, pattern, rope));
        return Ok(take_as(&mut Some(out)).expect("B is Autodiff<Flex>"));
    }
    match (sq, sk, sv) {
        (Some(q), Some(k), Some(v)) => Err((q, k, v)),
        // `serves::<B>()` held, so one of the two branches above took all three.
        _ => unreachable!("fused attention: inputs taken but not served"),
    }
}

pub(crate) type AdPrimitive = FloatTensor<Ad>;

fn attention_autodiff(
    q: AdPrimitive,
    k: AdPrimitive,
    v: AdPrimitive,
    shape: AttentionShape,
    pattern: AttentionPattern,
    rope: Option<&Rope>,
) -> AdPrimitive {
    let (cq, ck, cv) = (
        q.primitive.to_contiguous(),
        k.primitive.to_contiguous(),
        v.primitive.to_contiguous(),
    );
    let (out, lse) = attention_flex(&cq, &ck, &cv, shape, pattern, rope);
    let state = AttentionState {
        q: cq,
        k: ck,
        v: cv,
        lse,
        shape,
        pattern,
        rope: rope.cloned(),
    };
    record([&q, &k, &v], state, out)
}
