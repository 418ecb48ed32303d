//! The tokenizer's files of an exported model. growlm's default tokenizer maps each byte to
//! its value; written as a `tokenizers` byte-level BPE with no merges whose vocabulary gives
//! byte `b` the id `b`, `AutoTokenizer` reproduces it exactly.

use serde_json::{json, Map, Value};

/// Vocabulary size of the byte tokenizer.
pub const BYTE_VOCAB: usize = 256;

/// The printable character byte-level BPE uses for each byte (the scheme GPT-2 introduced:
/// printable Latin-1 bytes stand for themselves, the rest are shifted past 255 in order).
fn byte_char(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable(b) {
        return char::from(b);
    }
    let shifted = (0..b).filter(|x| !printable(*x)).count() as u32;
    char::from_u32(256 + shifted).expect("below 0x200")
}

/// `tokenizer.json` and `tokenizer_config.json` of the byte tokenizer, for a model with
/// `context_len` positions.
pub fn byte_tokenizer_json(context_len: usize) -> [(&'static str, Vec<u8>); 2] {
    let vocab: Map<String, Value> = (0..=255u8).map(|b| (byte_char(b).to_string(), json!(b))).collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false});
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": null,
        "decoder": byte_level,
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
    [
        (
            "tokenizer.json",
            serde_json::to_vec_pretty(&tokenizer).expect("serialises"),
        ),
        (
            "tokenizer_config.json",
            serde_json::to_vec_pretty(&config).expect("serialises"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_chars_are_distinct_and_printable() {
        let chars: std::collections::HashSet<char> = (0..=255u8).map(byte_char).collect();
        assert_eq!(chars.len(), 256);
        assert_eq!(byte_char(b'A'), 'A');
        assert_eq!(byte_char(b' '), 'Ġ'); // 0x20 is the 33rd unprintable byte: 256 + 32
        assert_eq!(byte_char(b'\n'), 'Ċ'); // 256 + 10
                                           // 0xAD comes after 0..=0x20 (33) and 0x7F..=0xA0 (34) among the unprintable bytes.
        assert_eq!(byte_char(0xAD), char::from_u32(256 + 67).unwrap());
        assert!(chars.iter().all(|c| !c.is_control() && !c.is_whitespace()));
    }
}
