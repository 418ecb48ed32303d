//! Log-likelihoods as lm-evaluation-harness 0.4 computes them for a causal model
//! (docs/evaluation.md has the rules, checked against its source): a (context,
//! continuation) pair is encoded as the whole text and the context, the continuation being
//! the whole's tokens after the context's; an empty context is the prefix (end-of-text)
//! token; the input is left-truncated to `context_len + 1` tokens. A document is scored in
//! rolling windows of `context_len` predicted tokens, each after the token before it.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use growlm_data::Tokenizer;
use growlm_model::{AttentionMasks, Gpt, GptConfig, WidthMask};

use crate::LabError;

/// One request: the tokens before the continuation, and the continuation's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Context tokens (at least one).
    pub context: Vec<u16>,
    /// Continuation tokens (at least one).
    pub continuation: Vec<u16>,
}

/// What a request scored: the continuation's summed log-probability, and whether every
/// continuation token was the model's most likely.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Summed log-probability (nats).
    pub loglikelihood: f64,
    /// Every token the argmax.
    pub greedy: bool,
}

/// A model and its tokenizer, scoring requests `batch` at a time.
pub struct Scorer<'a, B: Backend> {
    /// The model.
    pub model: &'a Gpt<B>,
    /// Its config.
    pub config: &'a GptConfig,
    /// Its width mask, read mid-ramp.
    pub mask: Option<&'a WidthMask<B>>,
    /// The text's tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// Requests scored at once.
    pub batch: usize,
}

impl<B: Backend> Scorer<'_, B> {
    fn encode(&self, text: &str) -> Result<Vec<u16>, LabError> {
        self.tokenizer
            .encode(text.as_bytes())
            .map_err(|e| LabError::Invalid(format!("cannot tokenize: {e}")))
    }

    /// The end-of-text token that stands for an empty context.
    fn prefix(&self) -> Result<u16, LabError> {
        let id = self.tokenizer.eos().ok_or_else(|| {
            LabError::Invalid("the tokenizer has no end-of-text token to stand for an empty context".into())
        })?;
        Ok(id as u16)
    }

    /// The request for `continuation` after `context`: trailing spaces of the context move to
    /// the continuation, the whole is encoded once and the continuation is what follows the
    /// context's own encoding.
    pub fn request(&self, context: &str, continuation: &str) -> Result<Request, LabError> {
        let kept = context.trim_end().len();
        let (context, continuation) = (&context[..kept], format!("{}{continuation}", &context[kept..]));
        if context.is_empty() {
            // The prefix token stands for the context, unless the continuation starts with it.
            let (prefix, mut cont) = (self.prefix()?, self.encode(&continuation)?);
            let context = match cont.first() {
                Some(&first) if first == prefix && cont.len() > 1 => vec![cont.remove(0)],
                _ => vec![prefix],
            };
            return Ok(Request {
                context,
                continuation: cont,
            });
        }
        let whole = self.encode(&format!("{context}{continuation}"))?;
        let ctx = self.encode(context)?;
        let split = ctx.len().min(whole.len());
        Ok(Request {
            context: ctx,
            continuation: whole[split..].to_vec(),
        })
    }

    /// The requests that score `text` whole: windows of `context_len` predicted tokens,
    /// the first after the prefix token, each later one after the tokens before it (the
    /// last, shorter one with a longer context). Their log-likelihoods sum to the text's.
    pub fn rolling(&self, text: &str) -> Result<(Vec<Request>, usize), LabError> {
        let tokens = self.encode(text)?;
        let n = self.config.context_len;
        let mut out = Vec::new();
        if tokens.is_empty() {
            return Ok((out, 0));
        }
        let first = n.min(tokens.len());
        out.push(Request {
            context: vec![self.prefix()?],
            continuation: tokens[..first].to_vec(),
        });
        let mut done = first;
        while done < tokens.len() {
            let len = n.min(tokens.len() - done);
            let end = done + len;
            // The window's input is the `n` tokens before `end`; its context what precedes
            // the predicted ones.
            let start = end.saturating_sub(n + 1);
            out.push(Request {
                context: tokens[start..end - len].to_vec(),
                continuation: tokens[end - len..end].to_vec(),
            });
            done = end;
        }
        Ok((out, tokens.len()))
    }

    /// Whether `r` can be scored: a context, and a continuation of 1 to `context_len`
    /// tokens (each predicted from a position the window still holds).
    pub fn fits(&self, r: &Request) -> bool {
        !r.context.is_empty() && (1..=self.config.context_len).contains(&r.continuation.len())
    }

    /// Scores `requests`, `batch` at a time, right-padded to the longest of each batch.
    pub fn score(&self, requests: &[Request]) -> Result<Vec<Scored>, LabError> {
        let n = self.config.context_len;
        let dev = self.model.wte.val().device();
        let vocab = self.config.vocab_size;
        let mut out = Vec::with_capacity(requests.len());
        // Bounded host memory: at most 2^24 logits a batch.
        let rows = (self.batch.max(1)).min((1 << 24) / (n * vocab).max(1)).max(1);
        for group in requests.chunks(rows) {
            // Input: context and continuation, left-truncated to n + 1 tokens, minus the last.
            let inputs: Vec<(Vec<u16>, usize)> = group
                .iter()
                .map(|r| {
                    let mut all: Vec<u16> = r.context.iter().chain(&r.continuation).copied().collect();
                    let cut = all.len().saturating_sub(n + 1);
                    all.drain(..cut);
                    all.pop();
                    (all, r.continuation.len())
                })
                .collect();
            let t = inputs.iter().map(|(x, _)| x.len()).max().unwrap_or(1).max(1);
            let flat: Vec<i64> = inputs
                .iter()
                .flat_map(|(x, _)| x.iter().map(|&v| v as i64).chain(std::iter::repeat_n(0, t - x.len())))
                .collect();
            let x = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [group.len(), t]), &dev);
            let masks = AttentionMasks::new(self.config, t, &dev);
            let logits = self.model.forward(x, &masks, self.mask);
            let logp = burn::tensor::activation::log_softmax(logits, 2);
            let host: Vec<f32> = logp
                .into_data()
                .convert::<f32>()
                .to_vec()
                .map_err(|e| LabError::Invalid(format!("cannot read the logits: {e:?}")))?;
            for (b, ((x, k), r)) in inputs.iter().zip(group).enumerate() {
                // Every continuation token needs an input position before it (`fits` gives
                // k ≤ x.len(): a continuation of context + 1 tokens would index before it).
                if !self.fits(r) {
                    return Err(LabError::Invalid(format!(
                        "a continuation of {k} tokens after {} does not fit the model's context of {n}",
                        r.context.len()
                    )));
                }
                let (mut ll, mut greedy) = (0.0f64, true);
                for (j, &tok) in r.continuation.iter().enumerate() {
                    // The position whose output predicts continuation token j.
                    let pos = x.len() + j + 1 - k;
                    let row = &host[(b * t + pos - 1) * vocab..(b * t + pos) * vocab];
                    ll += row[tok as usize] as f64;
                    let best = row
                        .iter()
                        .enumerate()
                        .fold((0, f32::NEG_INFINITY), |m, (i, &v)| if v > m.1 { (i, v) } else { m })
                        .0;
                    greedy &= best == tok as usize;
                }
                out.push(Scored {
                    loglikelihood: ll,
                    greedy,
                });
            }
        }
        Ok(out)
    }
}
