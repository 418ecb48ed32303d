//! Tests of the tokenizers: GPT-2 ids and merges, the token cache, a trained BPE.

use super::*;
use crate::hf_files::{byte_char, byte_string, gpt2_merges, gpt2_tokens};

#[test]
fn gpt2_ids_are_gpt2s() {
    // Published GPT-2 ids: "Hello world" → [15496, 995]; " the" is 262.
    let gpt2 = Tokenizer::named(TokenizerKind::Gpt2).unwrap();
    assert_eq!(gpt2.encode(b"Hello world").unwrap(), vec![15496, 995]);
    assert_eq!(gpt2.encode(b" the").unwrap(), vec![262]);
    assert_eq!(TokenizerKind::Gpt2.vocab_size(), 50257);
    assert_eq!(gpt2.eos(), Some(50256));
    assert_eq!(Tokenizer::byte().encode(b"Hi").unwrap(), vec![72, 105]);
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
    let gpt2 = Tokenizer::named(TokenizerKind::Gpt2).unwrap();
    let text = b"The state of the union is strong.";
    let a = gpt2.encode_cached(text, dir.path()).unwrap();
    assert_eq!(a, gpt2.encode(text).unwrap());
    let files: Vec<_> = std::fs::read_dir(token_cache_dir(dir.path())).unwrap().collect();
    assert_eq!(files.len(), 1);
    // Read back from the cache, bit for bit; another text gets its own entry.
    assert_eq!(gpt2.encode_cached(text, dir.path()).unwrap(), a);
    gpt2.encode_cached(b"Another text.", dir.path()).unwrap();
    assert_eq!(std::fs::read_dir(token_cache_dir(dir.path())).unwrap().count(), 2);
}

fn sample_text() -> Vec<u8> {
    let words = [
        "the", "union", "state", "of", "our", "is", "strong", "people", "nation", "we",
    ];
    let mut s = String::new();
    for i in 0..20_000usize {
        s += words[(i * 7 + i / 3) % words.len()];
        s += if i % 13 == 12 { ".\n" } else { " " };
    }
    s.into_bytes()
}

#[test]
fn a_trained_bpe_round_trips_compresses_and_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let text = sample_text();
    let kind = TokenizerKind::Bpe { vocab_size: 300 };
    let t = Tokenizer::build(kind.clone(), &text, dir.path()).unwrap();
    let ids = t.encode(&text).unwrap();
    assert!(ids.iter().all(|i| (*i as usize) < 300));
    // Merges learned: far fewer ids than bytes.
    assert!(ids.len() * 3 < text.len(), "{} ids for {} bytes", ids.len(), text.len());
    // Decoding gives the text back.
    let (tok, _) = t.trained.as_ref().unwrap();
    let back = tok
        .decode(&ids.iter().map(|i| *i as u32).collect::<Vec<_>>(), false)
        .unwrap();
    assert_eq!(back.as_bytes(), text.as_slice());
    assert!(t.eos().is_some());
    // Trained once: a second build reads the cache and gives the same tokenizer.
    let again = Tokenizer::build(kind, &text, dir.path()).unwrap();
    assert_eq!(again.json(), t.json());
    let files = t.hf_files(64);
    assert_eq!(files[0].0, "tokenizer.json");
    // Out-of-range vocabularies are refused.
    let e = Tokenizer::build(TokenizerKind::Bpe { vocab_size: 100 }, &text, dir.path()).unwrap_err();
    assert!(e.to_string().contains("258 to 65536"), "{e}");
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
