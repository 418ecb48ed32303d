//! Runs through the library: observers see the run in order and a user's observer can be
//! attached; an observer can stop a run as a kill would; `--resume` refuses a changed seed
//! or data source and allows a raised step budget.

use std::path::{Path, PathBuf};

use burn_autodiff::Autodiff;
use burn_flex::Flex;
use growlm_policy::{Registry, ValPoint};
use growlm_train::{
    load_trained, train, Edit, GrowEvent, HaltAfter, MetricsRow, Observer, RunConfig, RunOptions, RunStart, Summary,
    TrainError,
};

type TB = Autodiff<Flex>;

fn registry() -> Registry {
    let mut r = Registry::new();
    growlm_policy_never::register(&mut r);
    growlm_policy_fixed::register(&mut r);
    r
}

/// A small text with learnable structure, written by the test.
fn corpus(dir: &Path, salt: usize) -> PathBuf {
    let words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota"];
    let text: String = (0..3000)
        .map(|i| format!("{} ", words[(i * 7 + i / 5 + salt) % words.len()]))
        .collect();
    let path = dir.join(format!("corpus-{salt}.txt"));
    std::fs::write(&path, text).unwrap();
    path
}

fn config(corpus: &Path, max_steps: u64) -> RunConfig {
    let text = format!(
        r#"
seed = 1
[data]
source = "{}"
valid_batches = 1
[train]
batch_size = 2
seq_len = 8
max_steps = {max_steps}
lr = 0.01
eval_every = 3
checkpoint_every = 4
[[stages]]
[stages.model]
context_len = 8
d_model = 8
n_layers = 1
n_heads = 2
[[stages]]
[stages.model]
context_len = 8
d_model = 12
n_layers = 2
n_heads = 3
[stages.growth]
ramp_steps = 2
[policy]
name = "fixed"
steps = [5]
"#,
        corpus.display()
    );
    RunConfig::from_toml(&text).unwrap()
}

fn run(cfg: &RunConfig, out: &Path, resume: bool, observers: &mut [&mut dyn Observer]) -> Result<Summary, TrainError> {
    let opts = RunOptions {
        resume,
        cache_dir: out.join("cache"),
        ..RunOptions::new(out)
    };
    train::<TB>(cfg, &opts, &registry(), &Default::default(), observers)
}

/// Records every call, in order.
#[derive(Default)]
struct Log(Vec<String>);

impl Observer for Log {
    fn on_start(&mut self, s: &RunStart<'_>) -> Result<(), TrainError> {
        self.0.push(format!("start {:?}", s.resumed_at));
        Ok(())
    }
    fn on_step(&mut self, r: &MetricsRow) -> Result<(), TrainError> {
        self.0.push(format!("step {}", r.step));
        Ok(())
    }
    fn on_evaluation(&mut self, p: &ValPoint) -> Result<(), TrainError> {
        self.0.push(format!("eval {}", p.step));
        Ok(())
    }
    fn on_growth(&mut self, e: &GrowEvent) -> Result<(), TrainError> {
        self.0.push(format!("grow {}", e.step));
        Ok(())
    }
    fn on_checkpoint(&mut self, step: u64, path: &Path) -> Result<(), TrainError> {
        assert!(path.join("state.json").is_file() && path.join("config.toml").is_file());
        self.0.push(format!("ckpt {step}"));
        Ok(())
    }
    fn on_end(&mut self, s: &Summary) -> Result<(), TrainError> {
        self.0.push(format!("end {}", s.steps));
        Ok(())
    }
}

/// Options for a run in `out` branched from `snapshot`, with the corpus cache in `dir`.
fn branched_from(snapshot: &std::path::Path, out: &std::path::Path, dir: &std::path::Path) -> RunOptions {
    RunOptions {
        branch_from: Some(snapshot.to_path_buf()),
        cache_dir: dir.join("cache"),
        ..RunOptions::new(out)
    }
}

#[test]
fn observers_see_the_run_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&corpus(dir.path(), 0), 6);
    let mut log = Log::default();
    run(&cfg, &dir.path().join("r"), false, &mut [&mut log]).unwrap();
    let want = [
        "start None",
        "step 1",
        "step 2",
        "eval 3",
        "step 3",
        "step 4",
        "ckpt 4",
        "step 5",
        "grow 5",
        "eval 6",
        "step 6",
        "ckpt 6",
        "end 6",
    ];
    assert_eq!(log.0, want);
}

#[test]
fn an_observer_error_stops_the_run_before_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&corpus(dir.path(), 0), 6);
    let out = dir.path().join("r");
    let e = run(&cfg, &out, false, &mut [&mut HaltAfter(4)]).unwrap_err();
    assert!(matches!(e, TrainError::Halted { step: 4 }), "{e}");
    assert_eq!(growlm_train::latest_checkpoint(&out), None);
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 4);
}

#[test]
fn resume_refuses_a_changed_seed_or_data_and_allows_more_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (corpus(dir.path(), 0), corpus(dir.path(), 1));
    let cfg = config(&a, 8);
    let out = dir.path().join("r");
    run(&cfg, &out, false, &mut []).unwrap();
    let mut reseeded = cfg.clone();
    reseeded.seed = 5;
    let e = run(&reseeded, &out, true, &mut []).unwrap_err();
    assert!(
        matches!(&e, TrainError::ResumeChanged { key, .. } if key == "seed"),
        "{e}"
    );
    assert!(
        e.to_string().contains("`seed` was 1") && e.to_string().contains("is 5"),
        "{e}"
    );
    let mut other = cfg.clone();
    other.data.source = growlm_data::CorpusSource::Path(b);
    let e = run(&other, &out, true, &mut []).unwrap_err();
    assert!(
        matches!(&e, TrainError::ResumeChanged { key, .. } if key == "data.source"),
        "{e}"
    );
    // Raising the budget continues the run; it then matches a straight run of 12 steps.
    let mut longer = cfg.clone();
    longer.train.max_steps = 12;
    let s = run(&longer, &out, true, &mut []).unwrap();
    assert_eq!(s.steps, 12);
    let saved = RunConfig::from_file(&out.join("config.toml")).unwrap();
    assert_eq!(saved.train.max_steps, 12);
}

/// A three-stage config (8 → 12 → 16 wide) whose second growth, at step 6, comes while
/// the first ramp (from step 4, 10 steps) is still running; strong weight decay.
fn three_stages(corpus: &Path) -> RunConfig {
    let mut t = config(corpus, 12).to_table();
    let extra: toml::Table = toml::from_str(
        r#"
[[stages]]
[stages.model]
context_len = 8
d_model = 16
n_layers = 2
n_heads = 4
[stages.growth]
ramp_steps = 10
"#,
    )
    .unwrap();
    t["stages"]
        .as_array_mut()
        .unwrap()
        .extend(extra["stages"].as_array().unwrap().iter().cloned());
    for set in [
        "stages.1.growth.ramp_steps=10",
        "policy.steps=[4, 6]",
        "train.weight_decay=0.5",
        "train.lr=0.05",
    ] {
        growlm_train::apply_set(&mut t, set).unwrap();
    }
    RunConfig::from_table(t).unwrap()
}

#[test]
fn a_growth_during_a_ramp_preserves_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = three_stages(&corpus(dir.path(), 0));
    let out = dir.path().join("r");
    let s = run(&cfg, &out, false, &mut []).unwrap();
    assert_eq!(s.growth_steps, [4, 6]);
    let events: Vec<GrowEvent> = growlm_train::output::read_jsonl(&out.join("events.jsonl")).unwrap();
    for e in &events {
        assert!((e.loss_before - e.loss_after).abs() <= 1e-5, "{e:?}");
    }
}

#[test]
fn masked_entries_stay_as_grown_despite_weight_decay() {
    use burn::module::Module;
    use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = three_stages(&corpus(dir.path(), 0));
    cfg.stages.truncate(2);
    cfg.policy = toml::from_str("name = \"fixed\"\nsteps = [4]").unwrap();
    // Ramp over 40 steps from step 4: hidden 8 → 12 at ceil(4/40) = 1 dim per step, the
    // FFN (32 → 48) in step. Steps 4–7 train with at most 11 hidden dims and 44 FFN units
    // on, so FFN unit 47 is masked throughout; the checkpoint at step 8 holds it.
    cfg.stages[1].growth.as_mut().unwrap().ramp_steps = 40;
    let out = dir.path().join("r");
    run(&cfg, &out, false, &mut [&mut HaltAfter(9)]).unwrap_err();
    let ckpt = growlm_train::latest_checkpoint(&out).unwrap();
    let target = &cfg.stages[1].model;
    let device = Default::default();
    let model = target
        .init::<TB>(0, &device)
        .unwrap()
        .load_file(
            ckpt.join("model"),
            &NamedMpkFileRecorder::<FullPrecisionSettings>::new(),
            &device,
        )
        .unwrap();
    let grown = target
        .init::<TB>(growlm_train::stage_seed(cfg.seed, 1), &device)
        .unwrap();
    // Weight decay 0.5 at lr 0.05 would shrink an unprotected entry by 2.5% per step.
    let col = |p: &burn::module::Param<burn::tensor::Tensor<TB, 2>>, c: usize| {
        let [r, n] = p.dims();
        let v = p.val().into_data().to_vec::<f32>().unwrap();
        (0..r).map(|i| v[i * n + c]).collect::<Vec<f32>>()
    };
    let still_off = col(&model.blocks[0].mlp.up.weight, 47);
    assert_eq!(
        still_off,
        col(&grown.blocks[0].mlp.up.weight, 47),
        "masked FFN unit drifted"
    );
    // An active unit did train.
    assert_ne!(
        col(&model.blocks[0].mlp.up.weight, 0),
        col(&grown.blocks[0].mlp.up.weight, 0)
    );
}

/// The small model alone (`--only-stage 0`): what an experiment's small reference trains.
fn only_small(cfg: &RunConfig, max_steps: u64) -> RunConfig {
    let mut small = cfg.clone();
    small.stages.truncate(1);
    small.set_policy("never");
    small.train.max_steps = max_steps;
    small
}

fn without_wall(rows: Vec<MetricsRow>) -> Vec<String> {
    rows.into_iter()
        .map(|r| serde_json::to_string(&MetricsRow { wall_s: 0.0, ..r }).unwrap())
        .collect()
}

#[test]
fn a_branch_from_the_small_reference_equals_a_straight_staged_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(dir.path(), 0);
    let mut staged = config(&data, 9); // grows at step 5
    staged.train.schedule = growlm_train::Schedule::Constant;
    let small_reference = |cfg: &RunConfig, name: &str| {
        let reference = dir.path().join(name);
        let opts = RunOptions {
            keep_at: vec![4],
            cache_dir: dir.path().join("cache"),
            ..RunOptions::new(&reference)
        };
        train::<TB>(&only_small(cfg, 8), &opts, &registry(), &Default::default(), &mut []).unwrap();
        growlm_train::snapshot_path(&reference, 4)
    };
    let snapshot = small_reference(&staged, "small");
    assert!(snapshot.join("state.json").is_file(), "no snapshot after step 4");

    let straight = dir.path().join("straight");
    let a = run(&staged, &straight, false, &mut []).unwrap();
    let branched = dir.path().join("branch");
    let opts = branched_from(&snapshot, &branched, dir.path());
    let b = train::<TB>(&staged, &opts, &registry(), &Default::default(), &mut []).unwrap();
    assert_eq!(
        (a.final_val_loss, a.flops, a.tokens),
        (b.final_val_loss, b.flops, b.tokens)
    );
    assert_eq!(b.growth_steps, [5]);
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    let rows = |d: &Path| without_wall(growlm_train::output::read_jsonl(&d.join("metrics.jsonl")).unwrap());
    assert_eq!(rows(&straight).len(), 9);
    assert_eq!(
        rows(&straight),
        rows(&branched),
        "the branch's curve differs bit for bit"
    );
    let events = |d: &Path| -> Vec<(f64, f64)> {
        growlm_train::output::read_jsonl::<GrowEvent>(&d.join("events.jsonl"))
            .unwrap()
            .iter()
            .map(|e| (e.loss_before, e.loss_after))
            .collect()
    };
    assert_eq!(events(&straight), events(&branched));
    assert!(read(&branched, "config.toml").contains("fixed"));

    // A wsd schedule whose decay starts after the branch point, with a re-warm-up after the
    // growth, branches from the constant-LR small reference (its trained steps' LRs agree)
    // and equals its own straight run; the LR written per step is the schedule's.
    let mut wsd = staged.clone();
    wsd.train.schedule = growlm_train::Schedule::Wsd;
    wsd.train.decay_frac = 0.34; // steps 6, 7, 8 decay
    wsd.train.rewarm_steps = 2;
    let wsd_straight = dir.path().join("wsd-straight");
    run(&wsd, &wsd_straight, false, &mut []).unwrap();
    let wsd_branched = dir.path().join("wsd-branch");
    let opts = branched_from(&snapshot, &wsd_branched, dir.path());
    train::<TB>(&wsd, &opts, &registry(), &Default::default(), &mut []).unwrap();
    assert_eq!(rows(&wsd_straight), rows(&wsd_branched));
    let lrs: Vec<f64> = growlm_train::output::read_jsonl::<MetricsRow>(&wsd_branched.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .map(|r| r.lr)
        .collect();
    let t = &wsd.train;
    let want: Vec<f64> = (0..9).map(|s| t.lr_for(s, (s >= 5).then_some(5))).collect();
    assert_eq!(lrs, want);
    // Step 5 (the first after growing at 5) is re-warmed; 6–8 decay to min_lr.
    assert_eq!(lrs[5], t.lr_at(5) / 2.0);
    assert_eq!(lrs[8], t.min_lr);

    // What the snapshot's steps depend on may not change: the seed, the small model, or
    // (for a cosine schedule) the LR of a trained step.
    let refused = |cfg: RunConfig, snapshot: &Path, want: &str| {
        let out = dir.path().join(format!("refused-{want}"));
        let opts = branched_from(&snapshot, &out, dir.path());
        let e = train::<TB>(&cfg, &opts, &registry(), &Default::default(), &mut []).unwrap_err();
        assert!(
            matches!(&e, TrainError::BranchChanged { key, .. } if key.starts_with(want)),
            "{want}: {e}"
        );
    };
    refused(
        RunConfig {
            seed: 2,
            ..staged.clone()
        },
        &snapshot,
        "seed",
    );
    let mut wider = staged.clone();
    wider.stages[0].model.d_model = 12;
    wider.stages[0].model.n_heads = 3;
    refused(wider, &snapshot, "stages.0.model.d_model");
    // A cosine schedule decays over max_steps: the 8-step reference's LR is not the 9-step
    // run's.
    let mut cosine = staged.clone();
    cosine.train.schedule = growlm_train::Schedule::Cosine;
    let snapshot = small_reference(&cosine, "small-cosine");
    refused(cosine, &snapshot, "lr at step 1");
}

#[test]
fn a_run_directory_has_one_writer_and_a_stale_lock_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&corpus(dir.path(), 0), 4);
    let out = dir.path().join("r");
    std::fs::create_dir_all(&out).unwrap();
    // A live process (this one) holds the lock: refused, naming it.
    std::fs::write(out.join("run.lock"), std::process::id().to_string()).unwrap();
    let e = run(&cfg, &out, false, &mut []).unwrap_err();
    assert!(
        matches!(&e, TrainError::RunLocked { pid, .. } if *pid == std::process::id()),
        "{e}"
    );
    assert!(
        e.to_string().contains("run.lock") && e.to_string().contains("still running"),
        "{e}"
    );
    assert!(
        !out.join("metrics.jsonl").exists(),
        "a refused run wrote into the directory"
    );
    // A lock left by a process that is gone is taken over, and released at the end.
    std::fs::write(out.join("run.lock"), "4000000000").unwrap();
    run(&cfg, &out, false, &mut []).unwrap();
    assert!(!out.join("run.lock").exists());
    // While a run trains, its lock holds this pid.
    struct Peek(PathBuf, Option<String>);
    impl Observer for Peek {
        fn on_start(&mut self, _: &RunStart<'_>) -> Result<(), TrainError> {
            self.1 = std::fs::read_to_string(&self.0).ok();
            Ok(())
        }
    }
    let out2 = dir.path().join("r2");
    let mut peek = Peek(out2.join("run.lock"), None);
    run(&cfg, &out2, false, &mut [&mut peek]).unwrap();
    assert_eq!(peek.1, Some(std::process::id().to_string()));
}

#[test]
fn a_nonfinite_step_stops_naming_the_last_checkpoint_or_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&corpus(dir.path(), 0), 40);
    cfg.set_policy("never");
    // A learning rate that blows the weights up once the warm-up has raised it.
    cfg.train.lr = 1e5;
    cfg.train.warmup_steps = 20;
    let out = dir.path().join("stop");
    let e = run(&cfg, &out, false, &mut []).unwrap_err();
    let TrainError::Diverged {
        step,
        checkpoint,
        skipped,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert!(*step > 4, "diverged at step {step}: make it later");
    let want = (step - 1) / 4 * 4;
    assert_eq!(
        checkpoint
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string()),
        Some(format!("step-{want:09}"))
    );
    assert_eq!(*skipped, 0);
    assert!(
        e.to_string().contains(&format!("step-{want:09}")) && e.to_string().contains("on_nonfinite"),
        "{e}"
    );
    let rows: Vec<MetricsRow> = growlm_train::output::read_jsonl(&out.join("metrics.jsonl")).unwrap();
    assert_eq!(rows.len() as u64, step - 1, "the diverged step is not logged");

    // Skipping: the updates of non-finite steps are skipped and counted, and the run stops
    // after max_skips_in_row of them in a row.
    cfg.train.on_nonfinite = growlm_train::OnNonFinite::Skip;
    cfg.train.max_skips_in_row = 3;
    let out = dir.path().join("skip");
    let e = run(&cfg, &out, false, &mut []).unwrap_err();
    let TrainError::Diverged { skipped, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(*skipped, 3, "{e}");
    let rows: Vec<MetricsRow> = growlm_train::output::read_jsonl(&out.join("metrics.jsonl")).unwrap();
    let counts: Vec<u64> = rows.iter().rev().take(3).map(|r| r.skipped).collect();
    assert_eq!(counts, [3, 2, 1]);
    assert!(rows
        .iter()
        .rev()
        .take(3)
        .all(|r| !r.train_loss.is_finite() || !r.grad_norm.is_finite()));
    // The checkpoint holds finite weights only.
    let ckpt = growlm_train::latest_checkpoint(&out).unwrap();
    let state: growlm_train::RunState =
        serde_json::from_slice(&std::fs::read(ckpt.join("state.json")).unwrap()).unwrap();
    assert!(state.skipped <= 3);
}

/// Floats read back from a run's JSON files are the very values written (serde_json's
/// `float_roundtrip`): a resumed run's policy sees the live run's history bit for bit.
/// Without it, about one value in a few thousand came back one ulp off, and the
/// `convergence` policy's curve fit turned that into a different growth step.
#[test]
fn floats_in_run_files_round_trip_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.jsonl");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let values: Vec<f64> = (0..20_000)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            1.0 + (x >> 11) as f64 / (1u64 << 53) as f64 * 3.0
        })
        .collect();
    let text: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{}\n", serde_json::json!({"step": i, "loss": v})))
        .collect();
    std::fs::write(&path, text).unwrap();
    let back: Vec<serde_json::Value> = growlm_train::output::read_jsonl(&path).unwrap();
    let bad = values
        .iter()
        .zip(&back)
        .filter(|(v, b)| b["loss"].as_f64().map(f64::to_bits) != Some(v.to_bits()))
        .count();
    assert_eq!(bad, 0, "{bad} of {} values changed", values.len());
}

/// A model read mid-ramp cannot be exported (GPT-Neo has no mask); after the ramp it can,
/// with the tokenizer it was trained with.
#[test]
fn a_model_mid_ramp_is_refused_and_exported_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = growlm_train::testing::cycled_words(&["the ", "union ", "is ", "strong. "], 3000);
    std::fs::write(dir.path().join("c.txt"), text).unwrap();
    let mut cfg = growlm_train::testing::tiny(
        &dir.path().join("c.txt"),
        &[
            Edit::MaxSteps(10),
            Edit::Set("train.eval_every=5".into()),
            Edit::Set("train.checkpoint_every=5".into()),
            Edit::Set("stages.1.growth.ramp_steps=8".into()),
            growlm_train::testing::policy("fixed", "steps = [6]").unwrap(),
        ],
    )
    .unwrap();

    let run_dir = dir.path().join("run");
    let go = |cfg: &RunConfig, resume: bool| {
        let o = RunOptions {
            resume,
            cache_dir: dir.path().join("cache"),
            ..RunOptions::new(&run_dir)
        };
        train::<Autodiff<Flex>>(cfg, &o, &registry(), &Default::default(), &mut []).unwrap();
    };
    go(&cfg, false);
    let t = load_trained::<Flex>(&run_dir, &Default::default()).unwrap();
    let e = t.check_not_mid_ramp().unwrap_err().to_string();
    assert!(
        e.contains("at step 10 the model is mid-ramp") && e.contains("until step 14"),
        "{e}"
    );
    cfg.train.max_steps = 14;
    go(&cfg, true);
    let t = load_trained::<Flex>(&run_dir, &Default::default()).unwrap();
    t.check_not_mid_ramp().unwrap();
    assert_eq!(t.config, cfg.stages[1].model);
    assert_eq!(*t.tokenizer().unwrap().kind(), growlm_data::TokenizerKind::Byte);
}

/// The same documents as text files, compressed JSONL and Parquet (growlm-data's fixtures)
/// train the same curve, bit for bit; and a run from the token store resumes exactly.
#[test]
fn the_same_documents_in_every_format_train_the_same_curve_and_resume_exactly() {
    let same = Path::new(env!("CARGO_MANIFEST_DIR")).join("../growlm-data/tests/fixtures/corpus/same");
    let dir = tempfile::tempdir().unwrap();
    let rows = |source: &str, name: &str, cut: Option<u64>| {
        let mut cfg = only_small(&config(&same.join(source), 10), 10);
        cfg.data.split = Some(growlm_data::Split::Documents);
        cfg.data.valid_fraction = 0.25;
        let out = dir.path().join(name);
        if let Some(at) = cut {
            run(&cfg, &out, false, &mut [&mut HaltAfter(at)]).unwrap_err();
            run(&cfg, &out, true, &mut []).unwrap();
        } else {
            run(&cfg, &out, false, &mut []).unwrap();
        }
        let read = growlm_train::output::read_jsonl(&out.join("metrics.jsonl")).unwrap();
        without_wall(read)
    };
    let text = rows("text", "text", None);
    assert_eq!(text.len(), 10);
    assert_eq!(rows("docs.jsonl.zst", "zst", None), text);
    assert_eq!(rows("docs.parquet", "parquet", None), text);
    assert_eq!(rows("docs.parquet", "resumed", Some(6)), text);
}
