//! The files a Hugging Face tokenizer directory holds for growlm's tokenizers
//! (`tokenizer.json`, `vocab.json`, `merges.txt`, the configs), written beside an exported
//! model so that `AutoTokenizer.from_pretrained` reads the same ids.

use std::collections::HashMap;

/// GPT-2's end-of-text id (`<|endoftext|>`, the last of its tokens).
pub(crate) const GPT2_EOT: u32 = 50256;

/// The byte tokenizer's end-of-text (and beginning-of-text), declared in an export: byte 10,
/// the newline. A byte vocabulary has no token outside the text, and adding one would change
/// the model; growlm's corpora are text in which a newline ends every document (an address,
/// a verse), so it is what the model has seen before each one. lm-evaluation-harness needs
/// such a token: it prefixes every scored continuation with it.
pub const BYTE_EOS: u8 = b'\n';

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

pub(crate) fn byte_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| byte_char(*b)).collect()
}

pub(crate) fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("JSON values serialise")
}

pub(crate) fn byte_files(context_len: usize) -> Vec<(&'static str, Vec<u8>)> {
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
    let eos = byte_char(BYTE_EOS).to_string();
    let config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": context_len,
        "bos_token": eos, "eos_token": eos,
        "clean_up_tokenization_spaces": false
    });
    let special = json!({"bos_token": eos, "eos_token": eos});
    vec![
        ("tokenizer.json", json_bytes(&tokenizer)),
        ("tokenizer_config.json", json_bytes(&config)),
        ("special_tokens_map.json", json_bytes(&special)),
    ]
}

/// GPT-2's tokens as bytes, by id (0..50256), read off the `tiktoken-rs` ranks.
pub(crate) fn gpt2_tokens() -> Vec<Vec<u8>> {
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
pub(crate) fn offset(parts: &[&[u8]], i: usize) -> usize {
    parts[..i].iter().map(|p| p.len()).sum()
}

pub(crate) fn gpt2_files(context_len: usize) -> Vec<(&'static str, Vec<u8>)> {
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
