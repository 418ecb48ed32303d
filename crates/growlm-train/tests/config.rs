//! Run configs: validation names the key, `--set KEY=VALUE` overrides are validated like
//! the file, and a resume refuses changes to what was trained.

use growlm_train::{apply_set, check_resume, RunConfig, TrainError};

use growlm_train::testing::TINY;

/// The error and its sources, as `a: b: c`.
fn chain(e: &TrainError) -> String {
    let mut out = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = cur {
        out.push_str(&format!(": {s}"));
        cur = s.source();
    }
    out
}

fn config_error(edit: impl Fn(&str) -> String) -> String {
    chain(&RunConfig::from_toml(&edit(TINY)).unwrap_err())
}

/// The tiny fixture with `lines` added to its `[train]` table.
fn with_train(lines: &str) -> String {
    TINY.replace("min_lr = 0.001", &format!("min_lr = 0.001\n{lines}"))
}

#[test]
fn bad_configs_are_refused_with_the_key_named() {
    // (text replaced, its replacement, what the error must name)
    let cases: [(&str, &str, &[&str]); 13] = [
        ("max_steps = 8", "max_steps = 0", &["train.max_steps"]),
        ("lr = 0.01", "lr = -0.01", &["train.lr"]),
        ("batch_size = 4", "batch_size = 4\nbatchsize = 4", &["train.batchsize"]),
        ("source = \"sotu\"", "source = \"\"", &["data.source", "sotu"]),
        ("source = \"sotu\"", "path = \"corpus.txt\"", &["data.path", "source"]),
        ("eval_every = 4", "eval_every = 0", &["train.eval_every"]),
        ("seq_len = 16", "seq_len = \"long\"", &["train.seq_len", "string"]),
        // The target stage smaller than the source.
        ("n_layers = 3", "n_layers = 1", &["stages.1", "n_layers"]),
        ("context_len = 16", "context_len = 8", &["context_len"]),
        ("[train]", "[train", &["parse"]),
        // Operator names resolve when the config is read: an unknown one is refused
        // there, with its key and the known names.
        (
            "ramp_steps = 6",
            "ramp_steps = 6\nwidth = \"net2net\"",
            &[
                "stages.1.growth.width",
                "unknown width operator `net2net`",
                "hypercloning",
            ],
        ),
        (
            "ramp_steps = 6",
            "ramp_steps = 6\ndepth = 3",
            &["stages.1.growth.depth"],
        ),
        // Only the first stage's width: the target's must stay divisible too.
        ("d_model = 16", "d_model = 15", &["stages.0.model.d_model", "divisible"]),
    ];
    for (from, to, names) in cases {
        assert!(TINY.contains(from), "the fixture has no `{from}`");
        let e = config_error(|t| t.replacen(from, to, 1));
        assert!(names.iter().all(|n| e.contains(n)), "{from} → {to}: {e}");
    }
}

#[test]
fn the_data_source_is_the_default_corpus_or_a_path() {
    let cfg = RunConfig::from_toml(&TINY.replace("source = \"sotu\"\n", "")).unwrap();
    assert_eq!(cfg.data.source, growlm_data::CorpusSource::Sotu);
    assert_eq!(
        RunConfig::from_toml(TINY).unwrap().data.source,
        growlm_data::CorpusSource::Sotu
    );
    let cfg = RunConfig::from_toml(&TINY.replace("source = \"sotu\"", "source = \"corpus.txt\"")).unwrap();
    assert_eq!(cfg.data.source, growlm_data::CorpusSource::Path("corpus.txt".into()));
    assert_eq!(RunConfig::from_toml(&cfg.to_toml()).unwrap(), cfg);
}

fn load(sets: &[&str]) -> Result<RunConfig, TrainError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.toml");
    std::fs::write(&path, TINY).unwrap();
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    RunConfig::load(&path, &sets)
}

#[test]
fn set_overrides_any_key_with_a_toml_value() {
    let cfg = load(&[
        "train.max_steps=30",
        "train.lr=1e-3",
        "stages.1.growth.ramp_steps=50",
        "policy.name=\"fixed\"",
        "policy.steps=[4]",
        "data.source=other/text.txt",
        "seed = 9",
        "stages.0.model.head_dim=8",
    ])
    .unwrap();
    assert_eq!(cfg.train.max_steps, 30);
    assert_eq!(cfg.train.lr, 1e-3);
    assert_eq!(cfg.stages[1].growth.as_ref().unwrap().ramp_steps, 50);
    assert_eq!(cfg.policy_name().unwrap(), "fixed");
    assert_eq!(cfg.policy["steps"], toml::Value::Array(vec![toml::Value::Integer(4)]));
    assert_eq!(
        cfg.data.source,
        growlm_data::CorpusSource::Path("other/text.txt".into())
    );
    assert_eq!(cfg.seed, 9);
    assert_eq!(cfg.stages[0].model.head_dim, Some(8));
    // Later overrides win.
    assert_eq!(load(&["train.lr=1e-3", "train.lr=2e-3"]).unwrap().train.lr, 2e-3);
    // The result is validated, not each step: shortening the run below the warm-up first
    // is fine when the warm-up is shortened too.
    let cfg = load(&["train.warmup_steps=5", "train.max_steps=2", "train.warmup_steps=0"]).unwrap();
    assert_eq!((cfg.train.max_steps, cfg.train.warmup_steps), (2, 0));
    let e = chain(&load(&["train.warmup_steps=5", "train.max_steps=2"]).unwrap_err());
    assert!(
        e.contains("override `train.max_steps=2`") && e.contains("train.warmup_steps"),
        "{e}"
    );
}

#[test]
fn bad_overrides_are_refused_naming_the_override_and_key() {
    let err = |sets: &[&str]| chain(&load(sets).unwrap_err());
    let e = err(&["train.nope=1"]);
    assert!(e.contains("override `train.nope=1`") && e.contains("train.nope"), "{e}");
    let e = err(&["train.lr=-1"]);
    assert!(
        e.contains("override `train.lr=-1`") && e.contains("`train.lr`") && e.contains("positive"),
        "{e}"
    );
    let e = err(&["train.lr=fast"]);
    assert!(e.contains("train.lr") && e.contains("string"), "{e}");
    let e = err(&["stages.5.model.d_model=32"]);
    assert!(e.contains("stages.5") && e.contains("2 entries"), "{e}");
    let e = err(&["stages.target.model.d_model=32"]);
    assert!(e.contains("`stages`") && e.contains("index"), "{e}");
    let e = err(&["train.lr.peak=1"]);
    assert!(e.contains("train.lr") && e.contains("not a table"), "{e}");
    let e = err(&["train.lr"]);
    assert!(e.contains("KEY=VALUE"), "{e}");
    let e = err(&["nope.x=1"]);
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn apply_set_edits_a_table_in_place() {
    let mut t: toml::Table = toml::from_str("[a]\nb = 1\n[[c]]\nd = 2").unwrap();
    apply_set(&mut t, "a.b=3").unwrap();
    apply_set(&mut t, "c.0.d=[1, 2]").unwrap();
    apply_set(&mut t, "e.f=\"x\"").unwrap();
    let want: toml::Table = toml::from_str("[a]\nb = 3\n[[c]]\nd = [1, 2]\n[e]\nf = \"x\"").unwrap();
    assert_eq!(t, want);
}

#[test]
fn resume_allows_only_raising_max_steps() {
    let saved = RunConfig::from_toml(TINY).unwrap();
    let with = |sets: &[&str]| {
        let mut t = saved.to_table();
        sets.iter().for_each(|s| apply_set(&mut t, s).unwrap());
        RunConfig::from_table(t).unwrap()
    };
    check_resume(&saved, &saved).unwrap();
    check_resume(&saved, &with(&["train.max_steps=100"])).unwrap();
    for (set, key) in [
        ("train.max_steps=4", "train.max_steps"),
        ("seed=5", "seed"),
        ("data.source=other.txt", "data.source"),
        ("train.batch_size=8", "train.batch_size"),
        ("train.seq_len=8", "train.seq_len"),
        ("stages.1.growth.ramp_steps=2", "stages.1.growth.ramp_steps"),
        ("stages.1.growth.depth=\"random\"", "stages.1.growth.depth"),
        ("policy.name=\"fixed\"", "policy.name"),
        ("train.lr=0.02", "train.lr"),
    ] {
        let e = check_resume(
            &saved,
            &with(&[set, "policy.steps=[2]"][..if set.starts_with("policy") { 2 } else { 1 }]),
        )
        .unwrap_err();
        match &e {
            TrainError::ResumeChanged { key: k, .. } => assert_eq!(k, key, "{set}"),
            e => panic!("{set}: {e}"),
        }
        assert!(e.to_string().contains(key), "{e}");
    }
}

#[test]
fn the_wsd_schedule_warms_up_holds_and_decays_linearly_at_the_end() {
    // max_steps 8, decay_frac 0.25: the last 2 updates (steps 6 and 7) decay from 0.01 to
    // min_lr 0.001 in equal parts; warm-up over steps 0–2 as in every schedule.
    let cfg = RunConfig::from_toml(&with_train("schedule = \"wsd\"\ndecay_frac = 0.25")).unwrap();
    let t = &cfg.train;
    let lrs: Vec<f64> = (0..8).map(|s| t.lr_at(s)).collect();
    let want = [0.01 / 3.0, 0.02 / 3.0, 0.01, 0.01, 0.01, 0.01, 0.0055, 0.001];
    for (s, (got, want)) in lrs.iter().zip(want).enumerate() {
        assert!((got - want).abs() < 1e-15, "step {s}: {got} != {want}");
    }
    // The decay and the warm-up may not overlap; decay_frac must be a fraction.
    let e = config_error(|_| with_train("schedule = \"wsd\"\ndecay_frac = 0.75"));
    assert!(e.contains("train.decay_frac") && e.contains("overlap"), "{e}");
    let e = config_error(|_| with_train("decay_frac = 0"));
    assert!(e.contains("train.decay_frac"), "{e}");
}

#[test]
fn rewarm_restarts_a_linear_warm_up_after_each_growth() {
    let cfg = RunConfig::from_toml(&with_train("schedule = \"constant\"\nrewarm_steps = 4")).unwrap();
    let t = &cfg.train;
    // Before any growth: the schedule itself.
    assert_eq!(t.lr_for(5, None), 0.01);
    // Grown after step 4: updates 4, 5, 6, 7 get 1/4, 2/4, 3/4, 4/4 of the schedule's rate.
    let lrs: Vec<f64> = (4..8).map(|s| t.lr_for(s, Some(4))).collect();
    assert_eq!(lrs, [0.0025, 0.005, 0.0075, 0.01]);
    // Off by default.
    let cfg = RunConfig::from_toml(TINY).unwrap();
    assert_eq!(cfg.train.lr_for(4, Some(4)), cfg.train.lr_at(4));
    // A config without it writes no key (older runs' configs compare equal on resume).
    assert!(!cfg.to_toml().contains("rewarm_steps"));
}

#[test]
fn a_llama_stage_grows_by_block_expansion_unless_it_names_a_depth_operator() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/default.toml")).unwrap();
    // The shipped main command names `stack`: kept.
    let cfg = RunConfig::from_toml(&text).unwrap();
    assert_eq!(cfg.stages[1].growth.as_ref().unwrap().depth.name(), "stack");
    assert!(cfg.stages[1].model.family == growlm_model::Family::Llama && cfg.stages[1].model.kv_heads() == 2);
    // Without a depth operator: `expand`, not the GPT-Neo default `redundant`.
    let bare = text.replace("depth = \"stack\"\n", "");
    let cfg = RunConfig::from_toml(&bare).unwrap();
    assert_eq!(
        cfg.stages[1].growth.as_ref().unwrap().depth.name(),
        growlm_model::Family::Llama.describe().default_depth
    );
    // Without a growth table at all: the same.
    let bare = bare.replace("[stages.growth]\nramp_steps = 30\n", "");
    let cfg = RunConfig::from_toml(&bare).unwrap();
    assert_eq!(cfg.stages[1].growth.as_ref().unwrap().depth.name(), "expand");
    // The config round-trips with the operator written out.
    assert!(cfg.to_toml().contains("depth = \"expand\""));
    // A GPT-Neo stage keeps its default.
    let neo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/paper-tiny.toml")).unwrap();
    let cfg = RunConfig::from_toml(&neo).unwrap();
    assert_eq!(
        cfg.stages[1].growth.clone().unwrap_or_default().depth.name(),
        "redundant"
    );
}

/// A relative `data.source` beside the config file, and not in the working directory, is
/// read from beside the file; one the working directory has stays as it is.
#[test]
fn a_corpus_beside_its_config_is_found_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/tiny.toml")).unwrap();
    std::fs::write(dir.path().join("my-corpus.txt"), "text ".repeat(100)).unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, tiny.replace("source = \"sotu\"", "source = \"my-corpus.txt\"")).unwrap();
    let cfg = growlm_train::RunConfig::from_file(&file).unwrap();
    let want = std::path::absolute(dir.path().join("my-corpus.txt")).unwrap();
    assert_eq!(cfg.data.source, growlm_data::CorpusSource::Path(want));
    // The working directory (the package's) has `Cargo.toml`: that one is meant.
    std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
    std::fs::write(&file, tiny.replace("source = \"sotu\"", "source = \"Cargo.toml\"")).unwrap();
    let cfg = growlm_train::RunConfig::from_file(&file).unwrap();
    assert_eq!(cfg.data.source, growlm_data::CorpusSource::Path("Cargo.toml".into()));
    // A glob beside the config is found too.
    std::fs::create_dir(dir.path().join("shards")).unwrap();
    std::fs::write(dir.path().join("shards/a.jsonl"), "{\"text\": \"x\"}\n").unwrap();
    std::fs::write(&file, tiny.replace("source = \"sotu\"", "source = \"shards/*.jsonl\"")).unwrap();
    let cfg = growlm_train::RunConfig::from_file(&file).unwrap();
    let want = std::path::absolute(dir.path().join("shards/*.jsonl")).unwrap();
    assert_eq!(cfg.data.source, growlm_data::CorpusSource::Path(want));
}

/// A relative `data.tokenizer = { file = … }` beside the config file, and not in the
/// working directory, is read from beside the file (validation reads it, so the path is
/// settled before); the vocabulary follows that file.
#[test]
fn a_tokenizer_beside_its_config_is_found_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/tiny.toml")).unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../growlm-data/tests/fixtures/corpus/tokenizer.json"
    );
    std::fs::create_dir(dir.path().join("tok")).unwrap();
    std::fs::copy(fixture, dir.path().join("tok/tokenizer.json")).unwrap();
    let file = dir.path().join("c.toml");
    let with = |tok: &str| tiny.replace("[data]", &format!("[data]\ntokenizer = {{ file = \"{tok}\" }}"));
    std::fs::write(&file, with("tok/tokenizer.json")).unwrap();
    let cfg = growlm_train::RunConfig::from_file(&file).unwrap();
    let want = std::path::absolute(dir.path().join("tok/tokenizer.json")).unwrap();
    assert_eq!(cfg.data.tokenizer, growlm_data::TokenizerKind::File(want.clone()));
    let vocab = growlm_data::Tokenizer::from_file(&want).unwrap().vocab_size();
    assert!(
        cfg.stages.iter().all(|s| s.model.vocab_size == vocab),
        "the vocabulary follows the file"
    );
    // Given through an override, the same rule holds.
    std::fs::write(&file, &tiny).unwrap();
    let set = growlm_train::Edit::Set("data.tokenizer={file=\"tok/tokenizer.json\"}".into());
    let cfg = growlm_train::RunConfig::load_edited(&file, &[set]).unwrap();
    assert_eq!(cfg.data.tokenizer, growlm_data::TokenizerKind::File(want));
    // Found nowhere: the error names the path as written.
    std::fs::write(&file, with("nowhere/tokenizer.json")).unwrap();
    let err = growlm_train::RunConfig::from_file(&file).unwrap_err();
    let mut chain = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        chain += &format!(": {c}");
        cause = c.source();
    }
    assert!(chain.contains("nowhere/tokenizer.json"), "{chain}");
}
