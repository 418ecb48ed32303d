//! Tokenizers (DESIGN.md §Data): bytes (the default: id = byte value) and GPT-2's BPE, the
//! tokenizer GPT-Neo uses, with its ranks taken from the `tiktoken-rs` crate (nothing is
//! downloaded). Token streams are cached next to the corpus, keyed by the tokenizer and the
//! text's checksum, so runs do not re-tokenize.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{sha256_hex, write_atomic, ByteTokenizer, DataError};

/// Which tokenizer turns text into ids (`[data] tokenizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// One id per byte; vocabulary 256.
    #[default]
    Byte,
    /// GPT-2's byte-level BPE (`r50k_base`); vocabulary 50257, `<|endoftext|>` = 50256.
    Gpt2,
}

/// GPT-2's end-of-text id.
const GPT2_EOT: u32 = 50256;

impl TokenizerKind {
    /// Vocabulary size; the model's `vocab_size` follows it.
    pub fn vocab_size(self) -> usize {
        match self {
            Self::Byte => ByteTokenizer::VOCAB_SIZE,
            Self::Gpt2 => GPT2_EOT as usize + 1,
        }
    }

    /// The end-of-text id, if the tokenizer has one.
    pub fn eos(self) -> Option<usize> {
        match self {
            Self::Byte => None,
            Self::Gpt2 => Some(GPT2_EOT as usize),
        }
    }

    /// The name in configs and cache files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Byte => "byte",
            Self::Gpt2 => "gpt2",
        }
    }

    /// Token ids of `text` (GPT-2 reads it as UTF-8, invalid bytes replaced).
    pub fn encode(self, text: &[u8]) -> Vec<u16> {
        match self {
            Self::Byte => ByteTokenizer.encode(text),
            Self::Gpt2 => {
                let bpe = tiktoken_rs::r50k_base_singleton();
                let text = String::from_utf8_lossy(text);
                bpe.encode_ordinary(&text)
                    .into_iter()
                    .map(|r| u16::try_from(r).expect("GPT-2 ids are below 50257"))
                    .collect()
            }
        }
    }

    /// `text` tokenized, read from the cache under `cache_dir` when it was tokenized before
    /// (keyed by tokenizer and the text's SHA-256), else tokenized and cached. The byte
    /// tokenizer is not cached: it costs nothing.
    pub fn encode_cached(self, text: &[u8], cache_dir: &Path) -> Result<Vec<u16>, DataError> {
        if self == Self::Byte {
            return Ok(self.encode(text));
        }
        let dir = cache_dir.join("tokens");
        let path = dir.join(format!("{}-{}.u16", self.name(), &sha256_hex(text)[..32]));
        if let Ok(bytes) = std::fs::read(&path) {
            if bytes.len() % 2 == 0 {
                return Ok(bytes
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect());
            }
        }
        let ids = self.encode(text);
        std::fs::create_dir_all(&dir).map_err(|source| DataError::Io {
            path: dir.clone(),
            source,
        })?;
        let bytes: Vec<u8> = ids.iter().flat_map(|t| t.to_le_bytes()).collect();
        write_atomic(&path, &bytes)?;
        Ok(ids)
    }

    /// The tokenizer's files for a Hugging Face model directory that reproduce its ids:
    /// for bytes a `tokenizers` byte-level BPE without merges, for GPT-2 its `vocab.json`
    /// and `merges.txt` rebuilt from the ranks.
    pub fn hf_files(self, context_len: usize) -> Vec<(&'static str, Vec<u8>)> {
        match self {
            Self::Byte => byte_files(context_len),
            Self::Gpt2 => gpt2_files(context_len),
        }
    }
}

/// The printable character byte-level BPE uses for each byte (the scheme GPT-2 introduced:
/// printable Latin-1 bytes stand for themselves, the rest are shifted past 255 in order).
pub fn byte_char(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable(b) {
        return char::from(b);
    }
    let shifted = (0..b).filter(|x| !printable(*x)).count() as u32;
    char::from_u32(256 + shifted).expect("below 0x200")
}

fn byte_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| byte_char(*b)).collect()
}

fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("JSON values serialise")
}

fn byte_files(context_len: usize) -> Vec<(&'static str, Vec<u8>)> {
    use serde_json::{json, Map, Value};
    let vocab: Map<String, Value> = (0..=255u8).map(|b| (byte_char(b).to_string(), json!(b))).collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false});
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null, "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": false, "vocab": vocab, "merges": []
        }
    });
    let config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": context_len,
        "clean_up_tokenization_spaces": false
    });
    vec![
        ("tokenizer.json", json_bytes(&tokenizer)),
        ("tokenizer_config.json", json_bytes(&config)),
    ]
}

/// GPT-2's tokens as bytes, by id (0..50256), read off the `tiktoken-rs` ranks.
fn gpt2_tokens() -> Vec<Vec<u8>> {
    let bpe = tiktoken_rs::r50k_base_singleton();
    (0..GPT2_EOT)
        .map(|r| bpe.decode_bytes(&[r]).expect("every rank below 50256 is a token"))
        .collect()
}

/// GPT-2's merges in rank order, rebuilt from the ranks: the token of rank `r` is what byte
/// pair encoding of its own bytes, with only the merges of rank below `r`, leaves as two
/// parts; those parts are its merge.
pub fn gpt2_merges() -> Vec<(Vec<u8>, Vec<u8>)> {
    let tokens = gpt2_tokens();
    let rank: HashMap<&[u8], usize> = tokens.iter().enumerate().map(|(i, t)| (t.as_slice(), i)).collect();
    let mut merges = Vec::with_capacity(tokens.len() - 256);
    for (r, t) in tokens.iter().enumerate().skip(256) {
        let mut parts: Vec<&[u8]> = (0..t.len()).map(|i| &t[i..i + 1]).collect();
        while parts.len() > 2 {
            let best = (0..parts.len() - 1)
                .filter_map(|i| {
                    let joined = &t[offset(&parts, i)..offset(&parts, i) + parts[i].len() + parts[i + 1].len()];
                    rank.get(joined).filter(|&&k| k < r).map(|&k| (k, i))
                })
                .min();
            let Some((_, i)) = best else { break };
            let start = offset(&parts, i);
            parts[i] = &t[start..start + parts[i].len() + parts[i + 1].len()];
            parts.remove(i + 1);
        }
        debug_assert_eq!(parts.len(), 2, "token {r}");
        merges.push((parts[0].to_vec(), parts[1].to_vec()));
    }
    merges
}

/// Byte offset of `parts[i]` within the token the parts tile.
fn offset(parts: &[&[u8]], i: usize) -> usize {
    parts[..i].iter().map(|p| p.len()).sum()
}

fn gpt2_files(context_len: usize) -> Vec<(&'static str, Vec<u8>)> {
    use serde_json::{json, Map, Value};
    let mut vocab: Map<String, Value> = gpt2_tokens()
        .iter()
        .enumerate()
        .map(|(i, t)| (byte_string(t), json!(i)))
        .collect();
    vocab.insert("<|endoftext|>".into(), json!(GPT2_EOT));
    let mut merges = String::from("#version: 0.2\n");
    for (a, b) in gpt2_merges() {
        merges += &format!("{} {}\n", byte_string(&a), byte_string(&b));
    }
    let eot = "<|endoftext|>";
    let config = json!({
        "tokenizer_class": "GPT2Tokenizer",
        "model_max_length": context_len,
        "bos_token": eot, "eos_token": eot, "unk_token": eot,
        "add_prefix_space": false
    });
    let special = json!({"bos_token": eot, "eos_token": eot, "unk_token": eot});
    vec![
        ("vocab.json", json_bytes(&Value::Object(vocab))),
        ("merges.txt", merges.into_bytes()),
        ("tokenizer_config.json", json_bytes(&config)),
        ("special_tokens_map.json", json_bytes(&special)),
    ]
}

/// Where [`TokenizerKind::encode_cached`] keeps token streams under `cache_dir`.
pub fn token_cache_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_ids_are_gpt2s() {
        // Published GPT-2 ids: "Hello world" → [15496, 995]; " the" is 262.
        assert_eq!(TokenizerKind::Gpt2.encode(b"Hello world"), vec![15496, 995]);
        assert_eq!(TokenizerKind::Gpt2.encode(b" the"), vec![262]);
        assert_eq!(TokenizerKind::Gpt2.vocab_size(), 50257);
        assert_eq!(TokenizerKind::Byte.encode(b"Hi"), vec![72, 105]);
    }

    #[test]
    fn gpt2_merges_start_as_gpt2s_do() {
        // GPT-2's merges.txt begins "Ġ t", "Ġ a", "h e", "i n", "r e", "o n".
        let m = gpt2_merges();
        assert_eq!(m.len(), 50000);
        let first: Vec<String> = m[..6]
            .iter()
            .map(|(a, b)| format!("{} {}", byte_string(a), byte_string(b)))
            .collect();
        assert_eq!(first, ["Ġ t", "Ġ a", "h e", "i n", "r e", "o n"]);
        // Every merge joins two existing tokens into the token of its rank.
        let tokens = gpt2_tokens();
        for (i, (a, b)) in m.iter().enumerate() {
            assert_eq!([a.as_slice(), b.as_slice()].concat(), tokens[256 + i], "merge {i}");
        }
    }

    #[test]
    fn the_cache_returns_what_was_tokenized_and_is_keyed_by_text() {
        let dir = tempfile::tempdir().unwrap();
        let a = TokenizerKind::Gpt2
            .encode_cached(b"The state of the union is strong.", dir.path())
            .unwrap();
        assert_eq!(a, TokenizerKind::Gpt2.encode(b"The state of the union is strong."));
        let files: Vec<_> = std::fs::read_dir(token_cache_dir(dir.path())).unwrap().collect();
        assert_eq!(files.len(), 1);
        // Read back from the cache, bit for bit; another text gets its own entry.
        assert_eq!(
            TokenizerKind::Gpt2
                .encode_cached(b"The state of the union is strong.", dir.path())
                .unwrap(),
            a
        );
        TokenizerKind::Gpt2.encode_cached(b"Another text.", dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(token_cache_dir(dir.path())).unwrap().count(), 2);
    }

    #[test]
    fn byte_chars_are_distinct_and_printable() {
        let chars: std::collections::HashSet<char> = (0..=255u8).map(byte_char).collect();
        assert_eq!(chars.len(), 256);
        assert_eq!(byte_char(b'A'), 'A');
        assert_eq!(byte_char(b' '), 'Ġ');
        assert_eq!(byte_char(b'\n'), 'Ċ');
        // 0xAD comes after 0..=0x20 (33) and 0x7F..=0xA0 (34) among the unprintable bytes.
        assert_eq!(byte_char(0xAD), char::from_u32(256 + 67).unwrap());
    }
}
