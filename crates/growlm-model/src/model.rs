//! The GPT-Neo-style decoder (docs/design.md §Model; paper eq. 4 and, with a mask, eq. 7).
//!
//! GPT-Neo as Hugging Face `transformers` computes it (`GPTNeoForCausalLM`): learned
//! absolute position embeddings, pre-LayerNorm blocks (attention, then an MLP with the tanh
//! GELU, `gelu_new`), a final LayerNorm and an LM head tied to the token embedding. The
//! query, key and value projections have no bias; the attention output, the MLP and the
//! LayerNorms do. Attention scores are not scaled by 1/√head_dim (GPT-Neo's choice). Weight
//! matrices are stored `[d_in, d_out]` (the transpose of `torch.nn.Linear`'s layout).

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{backend::Backend, Bool, DType, FloatDType, Int, Tensor};

use growlm_fused::AttentionPattern;

use crate::layers::{Dense, Initializer, LayerNorm};
pub use crate::mlp::Mlp;
use crate::{cross_entropy, AttentionMasks, GptConfig, ModelError, WidthMask};
use crate::{MlpKind, Norm, Positions};

/// Multi-head causal self-attention.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// Query projection `[d_model, n_heads·head_dim]`.
    pub query: Dense<B>,
    /// Key projection.
    pub key: Dense<B>,
    /// Value projection.
    pub value: Dense<B>,
    /// Output projection `[n_heads·head_dim, d_model]`.
    pub out: Dense<B>,
    n_heads: usize,
    head_dim: usize,
    /// Llama: key/value heads (GPT-Neo: `n_heads`).
    n_kv_heads: usize,
    /// Rotary positions on queries and keys (Llama's).
    rotary: bool,
    /// Scores scaled by `1/√head_dim` (Llama's; GPT-Neo's are not).
    scaled: bool,
}

impl<B: Backend> Attention<B> {
    /// With `attn`, Q, K and V are masked per dim (eq. 7): a masked dim adds nothing to
    /// the scores and its output is zero. The scores `Q·Kᵀ` are not divided by √head_dim,
    /// as in GPT-Neo. `window` is 0 for global attention, else the local window that
    /// `causal` masks.
    ///
    /// On burn-flex in f32 the attention itself is one fused kernel with its own backward
    /// ([`growlm_fused::attention`]), which also applies Llama's rotary positions and reads
    /// grouped key/value heads in place; elsewhere it is decomposed into rotated copies,
    /// repeated key/value heads, split heads, scores, the mask, a softmax and the merge.
    fn forward(
        &self,
        x: Tensor<B, 3>,
        masks: &AttentionMasks<B>,
        window: usize,
        attn: Option<&Tensor<B, 3>>,
        kv: Option<&Tensor<B, 3>>,
    ) -> Tensor<B, 3> {
        let masked = |y: Tensor<B, 3>, m: Option<&Tensor<B, 3>>| match m {
            Some(m) => y * m.clone(),
            None => y,
        };
        // Grouped key/value heads take their own mask; otherwise Q's.
        let kv = if self.n_kv_heads == self.n_heads { attn } else { kv };
        let q = masked(self.query.forward(x.clone()), attn);
        let (k, v) = (
            masked(self.key.forward(x.clone()), kv),
            masked(self.value.forward(x), kv),
        );
        let [b, t, _] = q.dims();
        let (h, kvh, hd) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let rope = masks.rope.as_ref().filter(|_| self.rotary);
        let scale = if self.scaled { 1.0 / (hd as f32).sqrt() } else { 1.0 };
        let pattern = AttentionPattern { window, scale };
        // Fused: grouped heads read in place, queries and keys rotated inside the kernel.
        let (q, k, v) = match growlm_fused::attention(q, k, v, h, kvh, pattern, rope.map(|r| &r.host)) {
            Ok(y) => return self.out.forward(y),
            Err(qkv) => qkv,
        };
        let (q, k, v) = match rope {
            Some(rope) => {
                let q = rope.apply(q.reshape([b, t, h, hd])).reshape([b, t, h * hd]);
                let k = rope.apply(k.reshape([b, t, kvh, hd]));
                // Query head `i` reads key/value head `i / (h / kv)` (transformers' `repeat_kv`).
                let group = |y: Tensor<B, 4>| {
                    if kvh == h {
                        y.reshape([b, t, h * hd])
                    } else {
                        y.unsqueeze_dim::<5>(3)
                            .expand([b, t, kvh, h / kvh, hd])
                            .reshape([b, t, h * hd])
                    }
                };
                (q, group(k), group(v.reshape([b, t, kvh, hd])))
            }
            None => (q, k, v),
        };
        let y = self.decomposed(q, k, v, masks.get(window), scale);
        self.out.forward(y)
    }

    fn decomposed(
        &self,
        q: Tensor<B, 3>,
        k: Tensor<B, 3>,
        v: Tensor<B, 3>,
        causal: &Tensor<B, 4, Bool>,
        scale: f32,
    ) -> Tensor<B, 3> {
        let [b, t, _] = q.dims();
        let (h, hd) = (self.n_heads, self.head_dim);
        let split = |y: Tensor<B, 3>| y.reshape([b, t, h, hd]).swap_dims(1, 2);
        let mut scores = split(q).matmul(split(k).swap_dims(2, 3));
        if scale != 1.0 {
            scores = scores.mul_scalar(scale);
        }
        let scores = scores.mask_fill(causal.clone(), f32::NEG_INFINITY);
        let y = softmax(scores, 3).matmul(split(v));
        y.swap_dims(1, 2).reshape([b, t, h * hd])
    }
}

/// A freshly initialised norm of `kind` over `d` dims.
fn norm<B: Backend>(kind: Norm, d: usize, eps: f64, device: &B::Device) -> LayerNorm<B> {
    match kind {
        Norm::LayerNorm => LayerNorm::init(d, eps, device),
        Norm::RmsNorm => LayerNorm::rms(d, eps, device),
    }
}

/// One pre-LayerNorm transformer block (eq. 4).
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    /// LayerNorm before attention.
    pub ln_attn: LayerNorm<B>,
    /// Self-attention.
    pub attn: Attention<B>,
    /// LayerNorm before the MLP.
    pub ln_mlp: LayerNorm<B>,
    /// The MLP.
    pub mlp: Mlp<B>,
    /// Local-attention window; 0 for a global layer.
    window: usize,
}

impl<B: Backend> Block<B> {
    /// Builds a freshly initialised block for layer `layer` of `config`.
    pub fn init(config: &GptConfig, layer: usize, init: &mut Initializer, device: &B::Device) -> Self {
        let (d, a, kv, f) = (config.d_model, config.attn_dim(), config.kv_dim(), config.ffn_dim());
        let std = config.init_std;
        // GPT-2's scaled init of the projections that write into the residual stream.
        let out_std = std / (2.0 * config.n_layers as f64).sqrt();
        let parts = config.components();
        // GPT-Neo: biases on the output projections; Llama: none; Qwen2: on q/k/v only.
        let bias = parts.biases;
        let norm = || norm(parts.norm, d, config.layer_norm_eps, device);
        Self {
            ln_attn: norm(),
            attn: Attention {
                query: Dense::init(d, a, std, parts.qkv_biases, init, device),
                key: Dense::init(d, kv, std, parts.qkv_biases, init, device),
                value: Dense::init(d, kv, std, parts.qkv_biases, init, device),
                out: Dense::init(a, d, out_std, bias, init, device),
                n_heads: config.n_heads,
                head_dim: config.head_dim(),
                n_kv_heads: config.kv_heads(),
                rotary: parts.positions == Positions::Rotary,
                scaled: parts.scaled_scores,
            },
            ln_mlp: norm(),
            mlp: Mlp {
                gate: (parts.mlp == MlpKind::Swiglu).then(|| Dense::init(d, f, std, bias, init, device)),
                up: Dense::init(d, f, std, bias, init, device),
                down: Dense::init(f, d, out_std, bias, init, device),
            },
            window: config.window(layer).unwrap_or(0),
        }
    }

    /// Sets which attention pattern this block uses (0: global, else the window).
    pub fn set_window(&mut self, window: usize) {
        self.window = window;
    }

    /// `gate` scales the residual branches (MSG's mask of a new block).
    fn forward(
        &self,
        x: Tensor<B, 3>,
        masks: &AttentionMasks<B>,
        width: Option<&WidthMask<B>>,
        gate: Option<f32>,
    ) -> Tensor<B, 3> {
        let c = width.map(|m| (&m.hidden, m.hidden_sum));
        let keep = |y: Tensor<B, 3>| {
            let y = match width {
                Some(m) => y * m.hidden.clone(),
                None => y,
            };
            match gate {
                Some(g) => y.mul_scalar(g),
                None => y,
            }
        };
        let a = self.attn.forward(
            self.ln_attn.forward(x.clone(), c),
            masks,
            self.window,
            width.map(|m| &m.attn),
            width.and_then(|m| m.kv.as_ref()),
        );
        let x = x + keep(a);
        let mut hdn = self.mlp.hidden(self.ln_mlp.forward(x.clone(), c));
        if let Some(m) = width {
            hdn = hdn * m.ffn.clone();
        }
        x.clone() + keep(self.mlp.down.forward(hdn))
    }
}

/// The decoder, of any family ([`crate::Family`]).
#[derive(Module, Debug)]
pub struct Gpt<B: Backend> {
    /// Token embedding `[vocab, d_model]`, also the LM head when tied.
    pub wte: Param<Tensor<B, 2>>,
    /// GPT-Neo's position embedding `[context_len, d_model]` (Llama: rotary, no table).
    pub wpe: Option<Param<Tensor<B, 2>>>,
    /// The transformer blocks.
    pub blocks: Vec<Block<B>>,
    /// Final LayerNorm (Llama: RMSNorm).
    pub ln_f: LayerNorm<B>,
    /// An untied LM head `[vocab, d_model]` (Llama with `tie_embeddings = false`).
    pub lm_head: Option<Param<Tensor<B, 2>>>,
}

impl GptConfig {
    /// Builds a freshly initialised model, its values drawn from a generator seeded with
    /// `seed` (the same on every backend).
    pub fn init<B: Backend>(&self, seed: u64, device: &B::Device) -> Result<Gpt<B>, ModelError> {
        self.validate("model")?;
        let mut init = Initializer::new(seed);
        let wte = init.normal(self.vocab_size, self.d_model, self.init_std, device);
        let parts = self.components();
        let wpe = (parts.positions == Positions::Learned)
            .then(|| init.normal(self.context_len, self.d_model, self.init_std / 2.0, device));
        let blocks = (0..self.n_layers)
            .map(|l| Block::init(self, l, &mut init, device))
            .collect();
        let lm_head = (!self.tied()).then(|| init.normal(self.vocab_size, self.d_model, self.init_std, device));
        Ok(Gpt {
            wte: Param::from_tensor(wte),
            wpe: wpe.map(Param::from_tensor),
            blocks,
            ln_f: norm(parts.norm, self.d_model, self.layer_norm_eps, device),
            lm_head: lm_head.map(Param::from_tensor),
        })
    }
}

impl<B: Backend> Gpt<B> {
    /// Next-token logits.
    ///
    /// # Shapes
    /// `tokens: [batch, seq]` (seq ≤ context_len) → `[batch, seq, vocab]`.
    pub fn forward(
        &self,
        tokens: Tensor<B, 2, Int>,
        masks: &AttentionMasks<B>,
        width: Option<&WidthMask<B>>,
    ) -> Tensor<B, 3> {
        let [b, t] = tokens.dims();
        let [vocab, d] = self.wte.dims();
        // A model cast to a low precision (`cast`) multiplies by its mask in that precision.
        let cast_width;
        let width = match (width, self.wte.val().dtype()) {
            (Some(m), dtype) if dtype != DType::F32 => {
                cast_width = m.clone().cast(FloatDType::from(dtype));
                Some(&cast_width)
            }
            (w, _) => w,
        };
        let mut x = self.wte.val().select(0, tokens.reshape([b * t])).reshape([b, t, d]);
        if let Some(wpe) = &self.wpe {
            x = x + wpe.val().narrow(0, 0, t).unsqueeze::<3>();
        }
        if let Some(m) = width {
            x = x * m.hidden.clone();
        }
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x, masks, width, width.and_then(|m| m.gate(i)));
        }
        let x = self.ln_f.forward(x, width.map(|m| (&m.hidden, m.hidden_sum)));
        // The head `[vocab, d]` read as `x·headᵀ`: fused on burn-flex in f32.
        let head = self.lm_head.as_ref().unwrap_or(&self.wte).val();
        let logits = match growlm_fused::linear(x.reshape([b * t, d]), head, None, growlm_fused::Weight::OutIn) {
            Ok(logits) => logits,
            Err((x, head, _)) => x.matmul(head.transpose()),
        };
        logits.reshape([b, t, vocab])
    }

    /// Mean next-token cross-entropy (nats) of `inputs` predicting `targets`.
    ///
    /// # Shapes
    /// `inputs, targets: [batch, seq]` → `[1]`.
    pub fn loss(
        &self,
        inputs: Tensor<B, 2, Int>,
        targets: Tensor<B, 2, Int>,
        masks: &AttentionMasks<B>,
        width: Option<&WidthMask<B>>,
    ) -> Tensor<B, 1> {
        let logits = self.forward(inputs, masks, width);
        // A model cast to a low precision (`cast`) still takes its loss in f32.
        let logits = match logits.dtype() {
            DType::F32 => logits,
            _ => logits.cast(FloatDType::F32),
        };
        cross_entropy(logits, targets)
    }

    /// The model with every parameter cast to `dtype`, for mixed-precision training: the
    /// cast is part of the autodiff graph, so a forward and backward pass of the cast model
    /// computes in `dtype` and its gradients arrive, cast back, on this model's (f32)
    /// parameters — the master weights the optimizer updates.
    pub fn cast(self, dtype: FloatDType) -> Self {
        struct Cast(FloatDType);
        impl<B: Backend> ModuleMapper<B> for Cast {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
                let dtype = self.0;
                param.map(|t| t.cast(dtype))
            }
        }
        self.map(&mut Cast(dtype))
    }

    /// Checks that the tensors of this model have the shapes `config` gives.
    pub fn check_shapes(&self, config: &GptConfig) -> Result<(), ModelError> {
        let expect = |what: &str, got: Vec<usize>, want: Vec<usize>| {
            if got == want {
                Ok(())
            } else {
                Err(ModelError::ShapeMismatch {
                    what: what.to_string(),
                    expected: want,
                    got,
                })
            }
        };
        let (d, a, f) = (config.d_model, config.attn_dim(), config.ffn_dim());
        expect("wte", self.wte.dims().to_vec(), vec![config.vocab_size, d])?;
        if let Some(wpe) = &self.wpe {
            expect("wpe", wpe.dims().to_vec(), vec![config.context_len, d])?;
        }
        if let Some(head) = &self.lm_head {
            expect("lm_head", head.dims().to_vec(), vec![config.vocab_size, d])?;
        }
        let (has_wpe, has_head) = (self.wpe.is_some(), self.lm_head.is_some());
        let learned = config.components().positions == Positions::Learned;
        if has_wpe != learned || has_head == config.tied() {
            return Err(ModelError::ShapeMismatch {
                what: format!("the model's family (position table: {has_wpe}, untied head: {has_head})"),
                expected: vec![usize::from(learned), usize::from(!config.tied())],
                got: vec![usize::from(has_wpe), usize::from(has_head)],
            });
        }
        expect("blocks", vec![self.blocks.len()], vec![config.n_layers])?;
        for (i, blk) in self.blocks.iter().enumerate() {
            expect(
                &format!("blocks.{i}.attn.query"),
                blk.attn.query.weight.dims().to_vec(),
                vec![d, a],
            )?;
            expect(
                &format!("blocks.{i}.mlp.up"),
                blk.mlp.up.weight.dims().to_vec(),
                vec![d, f],
            )?;
        }
        Ok(())
    }
}
