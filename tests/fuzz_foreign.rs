//! Fuzzing what others give growlm (issue: resource bounds): a real exported Hugging Face
//! directory (a GPT-Neo, or a Llama, with a trained BPE tokenizer) with one file mutated — `config.json`
//! fields pushed to extremes, the safetensors header (length, dtypes, shapes, offsets) and
//! data, the tokenizer files — and loaded as `cargo xtask eval --model DIR` loads it.
//!
//! Every case ends in a model that loads or in an error naming the file; never a panic, a
//! hang (each case has 20 s) or a peak resident set over 1 GiB. CI runs proptest's default
//! 256 cases; a campaign: `PROPTEST_CASES=10000 cargo test --release --test fuzz_foreign`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use burn_flex::Flex;
use growlm::data::{Tokenizer, TokenizerKind};
use growlm::model::GptConfig;
use proptest::prelude::*;
use serde_json::{json, Value};

/// The exported directories every case copies (built once): a GPT-Neo and a Llama model
/// (grouped key/value heads, untied head) with the same BPE tokenizer.
fn fixtures() -> &'static [PathBuf; 2] {
    static DIRS: OnceLock<(tempfile::TempDir, [PathBuf; 2])> = OnceLock::new();
    &DIRS
        .get_or_init(|| {
            let tmp = tempfile::tempdir().unwrap();
            let corpus = std::fs::read(common::write_corpus(tmp.path())).unwrap();
            let tok = Tokenizer::build(
                TokenizerKind::Bpe { vocab_size: 300 },
                &corpus,
                &tmp.path().join("cache"),
            )
            .unwrap();
            let neo = GptConfig::new(300, 16, 16, 2, 2);
            let llama = GptConfig {
                tie_embeddings: Some(false),
                ..GptConfig::llama(300, 16, 16, 2, 2, 1)
            };
            let dirs = [tmp.path().join("hf"), tmp.path().join("hf-llama")];
            for (cfg, dir) in [neo, llama].iter().zip(&dirs) {
                let model = cfg.init::<Flex>(0, &Default::default()).unwrap();
                growlm::hf::export_model(&model, cfg, dir, tok.eos(), &tok.hf_files(16)).unwrap();
            }
            (tmp, dirs)
        })
        .1
}

/// Loads `dir` as `eval --model` does: the model, then its tokenizer.
fn load(dir: &Path) -> Result<(), String> {
    let m = growlm::hf::import_model::<Flex>(dir, None, &Default::default()).map_err(|e| chain(&e))?;
    growlm::interop::hf_tokenizer(dir, m.config.vocab_size).map_err(|e| chain(&e))?;
    Ok(())
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s += &format!(": {c}");
        src = c.source();
    }
    s
}

/// The process's peak resident set (VmHWM) in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Numbers at the edges of what JSON and the parsers take.
fn extreme() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(-1)),
        Just(json!(4097)),
        Just(json!(1 << 20)),
        Just(json!((1u64 << 20) + 1)),
        Just(json!(1u64 << 31)),
        Just(json!(1u64 << 53)),
        Just(json!(u64::MAX)),
        Just(json!(1e308)),
        Just(json!(0.5)),
        Just(json!(null)),
        Just(json!("12")),
        Just(json!([[["global"], 1_000_000_000u64]])),
        Just(json!([[["local", "global"], 1]])),
        Just(json!({"a": 1})),
        (0u64..100_000).prop_map(|n| json!(n)),
    ]
}

const CONFIG_KEYS: [&str; 14] = [
    "vocab_size",
    "max_position_embeddings",
    "hidden_size",
    "num_layers",
    "num_heads",
    "intermediate_size",
    "attention_types",
    "window_size",
    "layer_norm_epsilon",
    "activation_function",
    "model_type",
    "tie_word_embeddings",
    "eos_token_id",
    "initializer_range",
];

/// Llama's `config.json` fields a mutation of a Llama directory picks from.
const LLAMA_KEYS: [&str; 14] = [
    "vocab_size",
    "max_position_embeddings",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "head_dim",
    "rms_norm_eps",
    "rope_theta",
    "rope_parameters",
    "model_type",
    "tie_word_embeddings",
    "hidden_act",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// `config.json`: a field set to `value`, or removed.
    Config(usize, Option<Value>),
    /// The layer pattern repeated `n` times with `len` kinds each.
    Pattern(usize, u64),
    /// The safetensors header's 8-byte length replaced.
    HeaderLen(u64),
    /// A tensor's `dtype`, `shape` or `data_offsets` in the header replaced.
    Header(usize, usize, Value),
    /// Bytes of `model.safetensors` (0) or `tokenizer.json` (1) flipped.
    Flip(usize, Vec<(f64, u8)>),
    /// A file truncated to a fraction (0: config, 1: weights, 2: tokenizer).
    Truncate(usize, f64),
    /// A file replaced by garbage.
    Garbage(usize, Vec<u8>),
    /// The tokenizer's vocabulary given an id far out of range, or its merges garbage.
    Vocab(Value),
}

fn mutations() -> impl Strategy<Value = Mutation> {
    let header_values = prop_oneof![
        Just(json!("F64")),
        Just(json!("I8")),
        Just(json!("BOOL")),
        Just(json!("F16")),
        Just(json!("X9")),
        Just(json!([])),
        Just(json!([0])),
        Just(json!([u64::MAX, 2])),
        Just(json!([1u64 << 40, 1u64 << 40])),
        Just(json!([0, u64::MAX])),
        Just(json!([5, 3])),
        (0u64..10_000, 0u64..10_000).prop_map(|(a, b)| json!([a, b])),
    ];
    prop_oneof![
        (0..CONFIG_KEYS.len(), prop::option::weighted(0.9, extreme())).prop_map(|(k, v)| Mutation::Config(k, v)),
        (
            1usize..4,
            prop_oneof![Just(0u64), Just(1u64 << 30), Just(u64::MAX / 2), 0u64..10]
        )
            .prop_map(|(l, n)| Mutation::Pattern(l, n)),
        prop_oneof![Just(0u64), Just(7), Just(u64::MAX), Just(1u64 << 40), 0u64..4096].prop_map(Mutation::HeaderLen),
        (0usize..64, 0usize..3, header_values).prop_map(|(t, f, v)| Mutation::Header(t, f, v)),
        (0usize..2, prop::collection::vec((0.0..1.0f64, 1u8..=255), 1..16)).prop_map(|(f, v)| Mutation::Flip(f, v)),
        (0usize..3, 0.0..1.0f64).prop_map(|(f, x)| Mutation::Truncate(f, x)),
        (0usize..3, prop::collection::vec(any::<u8>(), 0..256)).prop_map(|(f, g)| Mutation::Garbage(f, g)),
        extreme().prop_map(Mutation::Vocab),
    ]
}

const FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// Applies `m` to the directory `dir` (a Llama one when `llama`); returns the file it
/// touched.
fn apply(dir: &Path, m: &Mutation, llama: bool) -> &'static str {
    let rw_json = |name: &str, f: &mut dyn FnMut(&mut Value)| {
        let p = dir.join(name);
        let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    };
    match m {
        Mutation::Config(k, v) => {
            let key = if llama {
                LLAMA_KEYS[*k % LLAMA_KEYS.len()]
            } else {
                CONFIG_KEYS[*k]
            };
            rw_json(FILES[0], &mut |c| match v {
                Some(v) => c[key] = v.clone(),
                None => {
                    c.as_object_mut().unwrap().remove(key);
                }
            });
            FILES[0]
        }
        Mutation::Pattern(len, n) => {
            let kinds: Vec<&str> = ["global", "local", "global"][..*len].to_vec();
            rw_json(FILES[0], &mut |c| c["attention_types"] = json!([[kinds, n]]));
            FILES[0]
        }
        Mutation::HeaderLen(n) => {
            let p = dir.join(FILES[1]);
            let mut b = std::fs::read(&p).unwrap();
            b[..8].copy_from_slice(&n.to_le_bytes());
            std::fs::write(&p, b).unwrap();
            FILES[1]
        }
        Mutation::Header(t, field, v) => {
            let p = dir.join(FILES[1]);
            let b = std::fs::read(&p).unwrap();
            let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
            let mut header: Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
            let names: Vec<String> = header
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "__metadata__")
                .cloned()
                .collect();
            let name = &names[t % names.len()];
            header[name][["dtype", "shape", "data_offsets"][*field]] = v.clone();
            let h = serde_json::to_vec(&header).unwrap();
            let mut out = (h.len() as u64).to_le_bytes().to_vec();
            out.extend(h);
            out.extend(&b[8 + n..]);
            std::fs::write(&p, out).unwrap();
            FILES[1]
        }
        Mutation::Flip(f, flips) => {
            let name = FILES[1 + f];
            let p = dir.join(name);
            let mut b = std::fs::read(&p).unwrap();
            for (at, x) in flips {
                let k = ((at * b.len() as f64) as usize).min(b.len() - 1);
                b[k] ^= x;
            }
            std::fs::write(&p, b).unwrap();
            name
        }
        Mutation::Truncate(f, x) => {
            let p = dir.join(FILES[*f]);
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..(b.len() as f64 * x) as usize]).unwrap();
            FILES[*f]
        }
        Mutation::Garbage(f, g) => {
            std::fs::write(dir.join(FILES[*f]), g).unwrap();
            FILES[*f]
        }
        Mutation::Vocab(v) => {
            rw_json(FILES[2], &mut |t| {
                if let Some(vocab) = t["model"]["vocab"].as_object_mut() {
                    vocab.insert("zz".into(), v.clone());
                }
                t["model"]["merges"] = json!([v.clone()]);
            });
            FILES[2]
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn the_fixtures_load() {
    for dir in fixtures() {
        load(dir).unwrap();
    }
}

proptest! {
    /// One mutated file: the directory loads, or the error names the file; no panic, no
    /// hang, no peak resident set over 1 GiB.
    #[test]
    fn a_mutated_hugging_face_directory_loads_or_is_refused_naming_the_file(m in mutations(), llama in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        copy_dir(&fixtures()[usize::from(llama)], &dir);
        let file = apply(&dir, &m, llama);
        let (tx, rx) = std::sync::mpsc::channel();
        let d = dir.clone();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(|| load(&d));
            let _ = tx.send(r);
        });
        let outcome = rx.recv_timeout(Duration::from_secs(20));
        let Ok(outcome) = outcome else {
            return Err(TestCaseError::fail(format!("no answer within 20 s: {m:?}")));
        };
        let Ok(result) = outcome else {
            return Err(TestCaseError::fail(format!("panicked: {m:?}")));
        };
        if let Err(e) = result {
            prop_assert!(e.contains(file), "{m:?}: the error does not name {file}: {e}");
        }
        let peak = peak_rss();
        prop_assert!(peak < 1 << 30, "{m:?}: peak resident set {peak} bytes");
    }
}
