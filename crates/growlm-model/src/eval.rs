//! Evaluation: the mean next-token loss and perplexity of a model on a token stream —
//! cut into consecutive, non-overlapping chunks of `context_len` tokens (a partial last
//! chunk dropped), each chunk scoring its tokens 2…n given the ones before, averaged over
//! all scored tokens.

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};

use crate::{cross_entropy, AttentionMasks, Gpt, GptConfig, ModelError, WidthMask};

/// What `eval` measured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EvalResult {
    /// Mean next-token cross-entropy (nats) over the scored tokens.
    pub loss: f64,
    /// `exp(loss)`.
    pub ppl: f64,
    /// Number of scored tokens.
    pub tokens: usize,
}

/// Scores `ids` with `model` (see the module docs); `mask` is the width mask of a model
/// read mid-ramp; `batch` chunks are scored at once (the result does not depend on it).
pub fn score<B: Backend>(
    model: &Gpt<B>,
    config: &GptConfig,
    mask: Option<&WidthMask<B>>,
    ids: &[u16],
    batch: usize,
) -> Result<EvalResult, ModelError> {
    let n = config.context_len;
    let chunks: Vec<&[u16]> = ids.chunks_exact(n).collect();
    if chunks.is_empty() || n < 2 {
        return Err(ModelError::TooShort {
            tokens: ids.len(),
            context_len: n,
        });
    }
    let dev = model.wte.val().device();
    let masks = AttentionMasks::new(config, n - 1, &dev);
    let mut total = 0.0f64;
    for group in chunks.chunks(batch.max(1)) {
        let flat: Vec<i64> = group.iter().flat_map(|c| c.iter().map(|t| *t as i64)).collect();
        let x = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, vec![group.len(), n]), &dev);
        let logits = model.forward(x.clone().narrow(1, 0, n - 1), &masks, mask);
        let mean = cross_entropy(logits, x.narrow(1, 1, n - 1)).into_scalar().elem::<f64>();
        total += mean * (group.len() * (n - 1)) as f64;
    }
    let tokens = chunks.len() * (n - 1);
    let loss = total / tokens as f64;
    Ok(EvalResult {
        loss,
        ppl: loss.exp(),
        tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Int, TensorData};
    use burn_flex::Flex;

    type B = Flex;

    #[test]
    fn scores_consecutive_chunks_and_drops_the_partial_one() {
        // Hand-worked: a model whose logits are all equal predicts every token with
        // probability 1/V, so the loss is ln V whatever the text; the count is
        // (chunks) · (n − 1).
        let cfg = GptConfig::new(256, 8, 8, 1, 2);
        let mut model = cfg.init::<B>(0, &Default::default()).unwrap();
        model.wte = burn::module::Param::from_tensor(Tensor::zeros([256, 8], &Default::default()));
        let ids: Vec<u16> = (0..30).map(|i| (i * 7 % 256) as u16).collect();
        let r = score(&model, &cfg, None, &ids, 2).unwrap();
        assert_eq!(r.tokens, 3 * 7);
        assert!((r.loss - (256f64).ln()).abs() < 1e-5, "{}", r.loss);
        assert!((r.ppl - 256.0).abs() < 1e-2);
        // Fewer tokens than one chunk is an error naming the sizes.
        let e = score(&model, &cfg, None, &ids[..7], 2).unwrap_err().to_string();
        assert!(e.contains("7 tokens") && e.contains("context_len = 8"), "{e}");
    }

    #[test]
    fn batching_does_not_change_the_result() {
        let cfg = GptConfig::new(256, 16, 16, 2, 2);
        let model = cfg.init::<B>(3, &Default::default()).unwrap();
        let ids: Vec<u16> = b"the quick brown fox jumps over the lazy dog, again and again and again."
            .iter()
            .map(|b| *b as u16)
            .collect();
        let one = score(&model, &cfg, None, &ids, 1).unwrap();
        let all = score(&model, &cfg, None, &ids, 64).unwrap();
        assert_eq!(one.tokens, 4 * 15);
        assert!((one.loss - all.loss).abs() < 1e-6);
        // Against a direct computation on the chunks.
        let masks = AttentionMasks::new(&cfg, 15, &Default::default());
        let mut sum = 0.0;
        for c in ids.chunks_exact(16) {
            let x: Vec<i64> = c.iter().map(|t| *t as i64).collect();
            let x = Tensor::<B, 2, Int>::from_data(TensorData::new(x, vec![1, 16]), &Default::default());
            sum += model
                .loss(x.clone().narrow(1, 0, 15), x.narrow(1, 1, 15), &masks, None)
                .into_scalar() as f64;
        }
        assert!((one.loss - sum / 4.0).abs() < 1e-6);
    }
}
