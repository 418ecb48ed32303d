//! Fuzzing (issue: reliability): random configs built from the real schema with mutated
//! values, random `--set` strings, and corrupted checkpoint files. Nothing may panic, and
//! every refusal names the key or the file.
//!
//! CI runs proptest's default number of cases per property; for a campaign run e.g.
//! `PROPTEST_CASES=10000 cargo test --release --test fuzz` (the corrupted-checkpoint
//! property is capped at a tenth of that: each case resumes a run).

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use common::*;
use growlm::train::{RunConfig, TrainError};
use proptest::prelude::*;

/// A config with every section and a two-stage growth, the base of the mutations.
const BASE: &str = r#"
seed = 3
[data]
source = "corpus.txt"
valid_batches = 2
tokenizer = "byte"
[train]
batch_size = 4
seq_len = 16
max_steps = 40
lr = 1e-2
min_lr = 1e-3
warmup_steps = 3
schedule = "cosine"
eval_every = 4
checkpoint_every = 8
grad_clip = 1.0
on_nonfinite = "skip"
max_skips_in_row = 3
[[stages]]
name = "small"
[stages.model]
context_len = 16
d_model = 16
n_layers = 2
n_heads = 2
[[stages]]
name = "target"
[stages.model]
context_len = 16
d_model = 24
n_layers = 3
n_heads = 3
attention = { alternating = { window = 4 } }
[stages.growth]
width = "pdg"
depth = "redundant"
ramp_steps = 6
[policy]
name = "convergence"
"#;

/// Every key path of a TOML value (`train.lr`, `stages.1.model.d_model`).
fn paths(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    let join = |k: &str| growlm::train::dotted(prefix, k);
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                out.push(join(k));
                paths(v, &join(k), out);
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                paths(v, &join(&i.to_string()), out);
            }
        }
        _ => {}
    }
}

/// Values of every TOML type, edge cases included.
fn values() -> impl Strategy<Value = toml::Value> {
    use toml::Value as V;
    prop_oneof![
        prop::sample::select(vec![0i64, 1, -1, 2, 3, 7, 16, 255, 256, 100_000, i64::MAX, i64::MIN])
            .prop_map(V::Integer),
        any::<i64>().prop_map(V::Integer),
        prop::sample::select(vec![
            0.0f64,
            -0.0,
            1e-300,
            -1.0,
            0.5,
            1.0,
            1e300,
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY
        ])
        .prop_map(V::Float),
        any::<f64>().prop_map(V::Float),
        prop::sample::select(vec![
            "", "x", "byte", "gpt2", "pdg", "msg", "fixed", "never", "cosine", "../nope", "sotu"
        ])
        .prop_map(|s| V::String(s.into())),
        "\\PC{0,12}".prop_map(V::String),
        any::<bool>().prop_map(V::Boolean),
        Just(V::Array(vec![])),
        Just(V::Array(vec![V::Integer(1), V::Integer(2)])),
        Just(V::Array(vec![V::String("a".into())])),
        Just(V::Table(toml::Table::new())),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, toml::Value),
    Remove(usize),
    AddUnknown(usize, toml::Value),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        3 => (any::<usize>(), values()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), values()).prop_map(|(i, v)| Mutation::AddUnknown(i, v)),
    ];
    prop::collection::vec(one, 1..4)
}

/// Sets, removes or adds below `path` in `root`; `None` for the value removes.
fn edit(root: &mut toml::Value, path: &str, value: Option<toml::Value>) {
    let parts: Vec<&str> = path.split('.').collect();
    let mut node = root;
    for p in &parts[..parts.len() - 1] {
        node = match node {
            toml::Value::Table(t) => t.get_mut(*p).unwrap(),
            toml::Value::Array(a) => match p.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    let last = parts[parts.len() - 1];
    match node {
        toml::Value::Table(t) => match value {
            Some(v) => {
                t.insert(last.to_string(), v);
            }
            None => {
                t.remove(last);
            }
        },
        toml::Value::Array(a) => {
            let Some(i) = last.parse::<usize>().ok().filter(|i| *i < a.len()) else {
                return;
            };
            match value {
                Some(v) => a[i] = v,
                None => {
                    a.remove(i);
                }
            }
        }
        _ => {}
    }
}

/// The whole error chain as text.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(e) = src {
        s.push_str(": ");
        s.push_str(&e.to_string());
        src = e.source();
    }
    s
}

/// The key a config error names, if it names one (the innermost `Config` error).
fn named_key(e: &TrainError) -> Option<String> {
    match e {
        TrainError::Config { key, .. } => Some(key.clone()),
        TrainError::InFile { source, .. } | TrainError::Override { source, .. } => named_key(source),
        TrainError::Parse { .. } => Some("<toml syntax: the parser names the line>".into()),
        TrainError::Policy(_) => Some("policy".into()),
        // Errors of the model and operator crates name their key in backquotes.
        e => {
            let text = chain(e);
            let start = text.find('`')? + 1;
            let len = text[start..].find('`')?;
            Some(text[start..start + len].to_string())
        }
    }
}

/// Whether `key` is a key of the config schema (or a `--set` given whole): its first
/// segment is a top-level key.
fn schema_key(key: &str) -> bool {
    let first = key.split('.').next().unwrap_or_default();
    [
        "seed",
        "data",
        "train",
        "stages",
        "policy",
        "(empty override)",
        "<toml syntax: the parser names the line>",
    ]
    .contains(&first)
        || key.contains('=')
}

proptest! {
    /// Mutated configs: no panic; a valid one survives a round trip and builds its
    /// policy; an invalid one is refused naming a key of the schema.
    #[test]
    fn mutated_configs_never_panic_and_refusals_name_the_key(muts in mutations()) {
        let mut root = toml::Value::Table(BASE.parse::<toml::Table>().unwrap());
        for m in &muts {
            let mut all = Vec::new();
            paths(&root, "", &mut all);
            if all.is_empty() {
                break;
            }
            match m {
                Mutation::Set(i, v) => edit(&mut root, &all[i % all.len()].clone(), Some(v.clone())),
                Mutation::Remove(i) => edit(&mut root, &all[i % all.len()].clone(), None),
                Mutation::AddUnknown(i, v) => {
                    let parent = all[i % all.len()].clone();
                    edit(&mut root, &format!("{parent}.fuzz_unknown"), Some(v.clone()));
                }
            }
        }
        let text = toml::to_string(&root).unwrap_or_default();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            RunConfig::from_toml(&text).map(|cfg| {
                let policy = cfg
                    .policy_name()
                    .map_err(|e| e.to_string())
                    .and_then(|name| growlm::registry().build(name, &cfg.policy).map(|_| ()).map_err(|e| e.to_string()));
                (cfg, policy)
            })
        }));
        let Ok(result) = outcome else {
            return Err(TestCaseError::fail(format!("panicked on config:\n{text}")));
        };
        match result {
            Ok((cfg, policy)) => {
                // Compared as text: a NaN in a free-form policy table is not equal to itself.
                prop_assert_eq!(RunConfig::from_toml(&cfg.to_toml()).unwrap().to_toml(), cfg.to_toml());
                if let Err(e) = policy {
                    prop_assert!(e.contains("policy"), "policy refusal without its name: {}", e);
                }
            }
            Err(e) => {
                let key = named_key(&e);
                prop_assert!(key.as_deref().is_some_and(schema_key), "refusal names no key of the schema: {}\n{}", chain(&e), text);
            }
        }
    }

    /// Random `--set` strings over a config file: no panic; a refusal names the override
    /// and, inside it, the key.
    #[test]
    fn random_set_overrides_never_panic_and_name_the_override(
        key in prop_oneof![
            prop::sample::select(vec![
                "seed", "train.lr", "train.max_steps", "train.batch_size", "train.warmup_steps", "train.schedule",
                "data.source", "data.tokenizer", "data.valid_batches", "stages.0.model.d_model", "stages.1.model.n_heads",
                "stages.1.growth.width", "stages.1.growth.ramp_steps", "stages.9.model", "stages.x", "policy.name",
                "policy.steps", "train.lr.deeper", "", ".", "a..b", "train.", "nope",
            ]).prop_map(String::from),
            "[a-z_.0-9]{0,24}",
        ],
        value in prop_oneof![
            values().prop_map(|v| toml::to_string(&toml::Table::from_iter([("v".to_string(), v)]))
                .map(|s| s.trim_start_matches("v = ").trim_end().to_string())
                .unwrap_or_default()),
            "\\PC{0,16}",
        ],
        eq in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, BASE).unwrap();
        let set = if eq { format!("{key}={value}") } else { format!("{key}{value}") };
        let outcome = catch_unwind(AssertUnwindSafe(|| RunConfig::load(&file, std::slice::from_ref(&set))));
        let Ok(result) = outcome else {
            return Err(TestCaseError::fail(format!("panicked on --set {set}")));
        };
        if let Err(e) = result {
            let text = chain(&e);
            prop_assert!(
                matches!(&e, TrainError::Override { set: s, .. } if *s == set),
                "refusal does not name the override {set:?}: {text}"
            );
            prop_assert!(named_key(&e).is_some_and(|k| schema_key(&k) || set.starts_with(&k)), "no key named: {}", text);
        }
    }
}

/// A tiny run with one checkpoint (step 8 of 12), trained once for every corrupted copy.
fn trained_run(dir: &Path) -> (RunConfig, PathBuf) {
    let corpus = write_corpus(dir);
    let cfg = tiny_config(&corpus, 12, true, "name = \"fixed\"\nsteps = [5]");
    let out = dir.join("run");
    assert!(matches!(
        run(&cfg, &out, false, Some(9)),
        Err(TrainError::Halted { step: 9 })
    ));
    (cfg, out)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[derive(Debug, Clone)]
enum Damage {
    Truncate(f64),
    Flip(Vec<(f64, u8)>),
    Garbage(Vec<u8>),
    Empty,
    Delete,
}

fn damages() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0.0..1.0f64).prop_map(Damage::Truncate),
        prop::collection::vec((0.0..1.0f64, 1u8..=255), 1..8).prop_map(Damage::Flip),
        prop::collection::vec(any::<u8>(), 0..512).prop_map(Damage::Garbage),
        Just(Damage::Empty),
        Just(Damage::Delete),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: (ProptestConfig::default().cases / 10).max(16),
        ..ProptestConfig::default()
    })]

    /// A damaged checkpoint file (model, optimizer state, run state, config, checksums;
    /// truncated, bit-flipped, garbage, empty or missing): resuming never panics and
    /// either refuses naming a file of the run, or — when the damage cannot matter —
    /// resumes to the curve of an undamaged resume.
    #[test]
    fn a_damaged_checkpoint_is_refused_naming_the_file(file in 0usize..16, damage in damages(), seed in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, good) = trained_run(dir.path());
        let ckpt = growlm::train::latest_checkpoint(&good).unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&ckpt).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        let victim_name = files[file % files.len()].file_name().unwrap().to_owned();
        let bad = dir.path().join("bad");
        copy_dir(&good, &bad);
        let victim = growlm::train::latest_checkpoint(&bad).unwrap().join(&victim_name);
        let bytes = std::fs::read(&victim).unwrap();
        match &damage {
            Damage::Truncate(f) => std::fs::write(&victim, &bytes[..(bytes.len() as f64 * f) as usize]).unwrap(),
            Damage::Flip(flips) => {
                let mut b = bytes.clone();
                for (i, (at, x)) in flips.iter().enumerate() {
                    if !b.is_empty() {
                        let k = ((*at * b.len() as f64) as usize + i * (seed % 7) as usize) % b.len();
                        b[k] ^= x;
                    }
                }
                std::fs::write(&victim, b).unwrap();
            }
            Damage::Garbage(g) => std::fs::write(&victim, g).unwrap(),
            Damage::Empty => std::fs::write(&victim, b"").unwrap(),
            Damage::Delete => std::fs::remove_file(&victim).unwrap(),
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| run(&cfg, &bad, true, None)));
        let Ok(result) = outcome else {
            return Err(TestCaseError::fail(format!("panicked: {damage:?} of {victim_name:?}")));
        };
        match result {
            Err(e) => {
                // The damaged checkpoint is named — or, with its state.json gone, the run
                // has no checkpoint left to resume, and says so naming the run.
                let text = chain(&e);
                let ckpt = bad.join("checkpoints");
                prop_assert!(
                    text.contains(&*ckpt.to_string_lossy())
                        || matches!(e, TrainError::NothingToResume { .. }) && text.contains(&*bad.to_string_lossy()),
                    "refusal names neither the checkpoint nor the run: {}",
                    text
                );
            }
            Ok(_) => {
                // Only damage that leaves the checkpoint's content intact may resume (the
                // checksum list itself deleted, or a flip that changed nothing).
                let clean = dir.path().join("clean");
                copy_dir(&good, &clean);
                run(&cfg, &clean, true, None).unwrap();
                prop_assert_eq!(metrics(&bad), metrics(&clean), "{:?} of {:?} resumed to another curve", damage, victim_name);
            }
        }
    }
}

/// Wrong shapes: a checkpoint of another model in place of the run's. The checksums are
/// rewritten to match, so the shape check itself must refuse it.
#[test]
fn a_checkpoint_of_another_model_is_refused_naming_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, good) = trained_run(dir.path());
    let other_cfg = {
        let mut t = cfg.to_table();
        let model = &mut t["stages"].as_array_mut().unwrap()[1]["model"];
        model["d_model"] = toml::Value::Integer(32);
        model["n_heads"] = toml::Value::Integer(4);
        RunConfig::from_table(t).unwrap()
    };
    let other = dir.path().join("other");
    assert!(matches!(
        run(&other_cfg, &other, false, Some(9)),
        Err(TrainError::Halted { step: 9 })
    ));
    let (mine, theirs) = (
        growlm::train::latest_checkpoint(&good).unwrap(),
        growlm::train::latest_checkpoint(&other).unwrap(),
    );
    for f in ["model.mpk", "optim.mpk"] {
        std::fs::copy(theirs.join(f), mine.join(f)).unwrap();
    }
    let sums: String = ["config.toml", "model.mpk", "optim.mpk", "state.json"]
        .iter()
        .map(|f| {
            format!(
                "{}  {f}\n",
                growlm::data::sha256_hex(&std::fs::read(mine.join(f)).unwrap())
            )
        })
        .collect();
    std::fs::write(mine.join("SHA256SUMS"), sums).unwrap();
    let e = run(&cfg, &good, true, None).unwrap_err();
    let text = chain(&e);
    assert!(text.contains(&*mine.to_string_lossy()), "{text}");
}
