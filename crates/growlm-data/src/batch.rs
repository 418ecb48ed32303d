//! Tokenization and deterministic batching (paper §4.3: every run sees the same batch at
//! the same step, so runs with different schedules compare fairly).

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{DataError, Shards, TokenStore};

/// The byte-level tokenizer: each byte is a token, so the vocabulary has 256 entries and
/// any text round-trips exactly.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteTokenizer;

impl ByteTokenizer {
    /// Vocabulary size.
    pub const VOCAB_SIZE: usize = 256;

    /// Token ids of `text`.
    pub fn encode(&self, text: &[u8]) -> Vec<u16> {
        text.iter().map(|&b| u16::from(b)).collect()
    }

    /// Text of `tokens` (ids ≥ 256 become `?`).
    pub fn decode(&self, tokens: &[u16]) -> Vec<u8> {
        tokens.iter().map(|&t| u8::try_from(t).unwrap_or(b'?')).collect()
    }
}

/// One batch of `batch_size` sequences of `seq_len` tokens; `targets` are `inputs` shifted
/// by one position. Both are row-major `[batch_size, seq_len]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Input token ids.
    pub inputs: Vec<i64>,
    /// Next-token targets.
    pub targets: Vec<i64>,
    /// Number of sequences.
    pub batch_size: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
}

/// A split's token ids: in memory (a text corpus), or in a token store's shards, read a
/// window at a time.
#[derive(Debug, Clone)]
enum Tokens {
    Memory(Vec<u16>),
    Store(Arc<Shards>),
}

impl Tokens {
    fn len(&self) -> usize {
        match self {
            Self::Memory(v) => v.len(),
            Self::Store(s) => usize::try_from(s.len()).unwrap_or(usize::MAX),
        }
    }

    /// Appends the window of `seq_len + 1` ids at `start` to `batch` as inputs and targets.
    fn window(&self, start: usize, seq_len: usize, batch: &mut Batch, buf: &mut Vec<u32>) -> Result<(), DataError> {
        match self {
            Self::Memory(v) => {
                let w = &v[start..start + seq_len + 1];
                batch.inputs.extend(w[..seq_len].iter().map(|&t| i64::from(t)));
                batch.targets.extend(w[1..].iter().map(|&t| i64::from(t)));
            }
            Self::Store(s) => {
                buf.clear();
                s.read(start as u64, seq_len + 1, buf)?;
                batch.inputs.extend(buf[..seq_len].iter().map(|&t| i64::from(t)));
                batch.targets.extend(buf[1..].iter().map(|&t| i64::from(t)));
            }
        }
        Ok(())
    }
}

/// Draws training batches as a pure function of `(seed, step)` and serves a fixed
/// validation set.
#[derive(Debug, Clone)]
pub struct Batcher {
    train: Tokens,
    valid: Tokens,
    batch_size: usize,
    seq_len: usize,
    seed: u64,
}

/// SplitMix64 finaliser: spreads `(seed, step)` over the seed space.
fn mix(seed: u64, step: u64) -> u64 {
    let mut z = seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Batcher {
    /// A batcher over tokenized training and validation streams.
    pub fn new(
        train: Vec<u16>,
        valid: Vec<u16>,
        batch_size: usize,
        seq_len: usize,
        seed: u64,
    ) -> Result<Self, DataError> {
        Self::with_tokens(Tokens::Memory(train), Tokens::Memory(valid), batch_size, seq_len, seed)
    }

    /// A batcher over a token store's shards: windows are read as they are drawn, so the
    /// memory held does not grow with the corpus.
    pub fn from_store(store: TokenStore, batch_size: usize, seq_len: usize, seed: u64) -> Result<Self, DataError> {
        let train = Tokens::Store(Arc::new(store.train));
        Self::with_tokens(train, Tokens::Store(Arc::new(store.valid)), batch_size, seq_len, seed)
    }

    fn with_tokens(
        train: Tokens,
        valid: Tokens,
        batch_size: usize,
        seq_len: usize,
        seed: u64,
    ) -> Result<Self, DataError> {
        if batch_size == 0 || seq_len == 0 {
            return Err(DataError::Config {
                key: if batch_size == 0 {
                    "train.batch_size"
                } else {
                    "train.seq_len"
                }
                .into(),
                reason: "must be at least 1".into(),
            });
        }
        for (what, s) in [("training", &train), ("validation", &valid)] {
            if s.len() <= seq_len + 1 {
                return Err(DataError::TooShort {
                    split: what.into(),
                    tokens: s.len(),
                    needed: seq_len + 2,
                });
            }
        }
        Ok(Self {
            train,
            valid,
            batch_size,
            seq_len,
            seed,
        })
    }

    /// Tokens per batch.
    pub fn tokens_per_batch(&self) -> usize {
        self.batch_size * self.seq_len
    }

    /// A checksum of what the batches are drawn from: each split's length and 16 windows
    /// of 256 tokens spread over it. Processes of one run compare it at the start.
    pub fn fingerprint(&self) -> Result<String, DataError> {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let (mut batch, mut buf) = (self.empty(), Vec::new());
        for t in [&self.train, &self.valid] {
            h.update((t.len() as u64).to_le_bytes());
            let n = 255.min(t.len() - 1);
            for k in 0..16 {
                batch.inputs.clear();
                batch.targets.clear();
                t.window(k * (t.len() - n - 1) / 15, n, &mut batch, &mut buf)?;
                batch.inputs.iter().for_each(|i| h.update(i.to_le_bytes()));
            }
        }
        Ok(hex::encode(h.finalize()))
    }

    /// Tokens in the training split.
    pub fn train_tokens(&self) -> usize {
        self.train.len()
    }

    /// Tokens in the validation split.
    pub fn valid_tokens(&self) -> usize {
        self.valid.len()
    }

    fn empty(&self) -> Batch {
        Batch {
            inputs: Vec::with_capacity(self.tokens_per_batch()),
            targets: Vec::with_capacity(self.tokens_per_batch()),
            batch_size: self.batch_size,
            seq_len: self.seq_len,
        }
    }

    /// The training batch of step `step`: random windows of the training stream drawn from
    /// a generator seeded by `(seed, step)` alone.
    pub fn train_batch(&self, step: u64) -> Result<Batch, DataError> {
        let mut rng = StdRng::seed_from_u64(mix(self.seed, step));
        let max_start = self.train.len() - self.seq_len - 1;
        let (mut batch, mut buf) = (self.empty(), Vec::new());
        for _ in 0..self.batch_size {
            let start = rng.random_range(0..=max_start);
            self.train.window(start, self.seq_len, &mut batch, &mut buf)?;
        }
        Ok(batch)
    }

    /// The fixed validation set: `n_batches` batches of windows spread evenly over the
    /// validation stream. The same for every run with the same data and shapes.
    pub fn valid_batches(&self, n_batches: usize) -> Result<Vec<Batch>, DataError> {
        let n = n_batches * self.batch_size;
        let max_start = self.valid.len() - self.seq_len - 1;
        let starts: Vec<usize> = (0..n)
            .map(|i| if n <= 1 { 0 } else { i * max_start / (n - 1) })
            .collect();
        let mut buf = Vec::new();
        starts
            .chunks(self.batch_size)
            .map(|chunk| {
                let mut batch = self.empty();
                for &s in chunk {
                    self.valid.window(s, self.seq_len, &mut batch, &mut buf)?;
                }
                Ok(batch)
            })
            .collect()
    }
}
