//! End-to-end tests of the training engine on a tiny model: the files a run writes, the
//! loss falling, determinism, resume after a kill. Config validation, `--set` and the
//! resume checks are tested in `crates/growlm-train/tests`.

mod common;

use common::*;
use growlm::train::{RunConfig, Summary, TrainError};

#[test]
fn a_run_writes_its_files_and_the_validation_loss_falls() {
    let t = trained(40, false, "name = \"never\"");
    let (cfg, out, s) = (&t.cfg, &t.out, &t.summary);
    for f in [
        "config.toml",
        "metrics.jsonl",
        "events.jsonl",
        "summary.json",
        "checkpoints/latest",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let m = metrics(&out);
    assert_eq!(m.len(), 40);
    assert_eq!(m.last().unwrap().tokens, 40 * 4 * 16);
    let vals: Vec<f64> = m.iter().filter_map(|r| r.val_loss).collect();
    assert_eq!(vals.len(), 10);
    assert!(vals.last().unwrap() < &(vals[0] - 0.3), "val loss must fall: {vals:?}");
    // FLOPs are cumulative and follow the stage's per-step count.
    let fps = cfg.stages[0].model.flops_per_step(4, 16);
    assert!((m[9].flops - 10.0 * fps).abs() < 1e-6 * fps);
    let summary: Summary = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(&summary, s);
    assert_eq!(s.final_val_loss, *vals.last().unwrap());
    assert_eq!(s.steps, 40);
    // The resolved config round-trips.
    let saved = RunConfig::from_file(&out.join("config.toml")).unwrap();
    assert_eq!(&saved, cfg);
}

#[test]
fn same_seed_gives_the_same_loss_curve() {
    let (dir, cfg) = scratch(12, false, "name = \"never\"");
    run(&cfg, &dir.join("a"), false, None).unwrap();
    run(&cfg, &dir.join("b"), false, None).unwrap();
    assert_eq!(metrics(&dir.join("a")), metrics(&dir.join("b")));
}

#[test]
fn a_killed_run_resumes_exactly() {
    let (dir, cfg) = scratch(24, false, "name = \"never\"");
    let (full, killed) = (dir.join("full"), dir.join("killed"));
    run(&cfg, &full, false, None).unwrap();
    // Killed after step 13: the last checkpoint is step 8, and steps 9–13 were logged.
    assert!(matches!(
        run(&cfg, &killed, false, Some(13)),
        Err(TrainError::Halted { step: 13 })
    ));
    assert_eq!(metrics(&killed).len(), 13);
    run(&cfg, &killed, true, None).unwrap();
    assert_eq!(metrics(&full), metrics(&killed));
}

#[test]
fn an_existing_run_is_not_overwritten_and_resume_needs_a_checkpoint() {
    let (dir, cfg) = scratch(8, false, "name = \"never\"");
    let out = dir.join("run");
    assert!(matches!(
        run(&cfg, &out, true, None),
        Err(TrainError::NothingToResume { .. })
    ));
    run(&cfg, &out, false, None).unwrap();
    let err = run(&cfg, &out, false, None).unwrap_err();
    assert!(matches!(err, TrainError::RunExists { .. }));
    assert!(err.to_string().contains("resume it"));
}

#[test]
fn a_missing_corpus_path_is_named() {
    let (dir, mut cfg) = scratch(4, false, "name = \"never\"");
    cfg.data.source = growlm::data::CorpusSource::Path("/no/such/text".into());
    let err = run(&cfg, &dir.join("r"), false, None).unwrap_err().to_string();
    assert!(err.contains("/no/such/text") && err.contains("data.source"), "{err}");
}

#[test]
fn data_that_is_not_text_or_too_small_is_refused_naming_the_file() {
    let (dir, mut cfg) = scratch(4, false, "name = \"never\"");
    let refused = |cfg: &growlm::train::RunConfig, name: &str| {
        let out = dir.join(format!("r-{name}"));
        let e = run(cfg, &out, false, None).unwrap_err().to_string();
        assert!(!out.join("metrics.jsonl").exists(), "{name}: trained anyway");
        e
    };
    let mut with = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        cfg.data.source = growlm::data::CorpusSource::Path(path.clone());
        (refused(&cfg, name), path.display().to_string())
    };
    let (e, p) = with("empty.txt", b"");
    assert!(e.contains(&p) && e.contains("is empty"), "{e}");
    let mut binary = b"ELF header ".repeat(100);
    binary[500] = 0;
    let (e, p) = with("model.bin", &binary);
    assert!(e.contains(&p) && e.contains("NUL byte at offset 500"), "{e}");
    let latin1: Vec<u8> = (0..2000).map(|i| if i % 10 == 0 { 0xE9 } else { b'a' }).collect();
    let (e, p) = with("latin1.txt", &latin1);
    assert!(
        e.contains(&p) && e.contains("200 of 2000 bytes are invalid UTF-8"),
        "{e}"
    );
    // Text, but its validation split (the last 10%: 40 bytes) cannot hold one batch of
    // 4 windows of 17 tokens.
    let (e, p) = with("short.txt", &b"a short text. ".repeat(30));
    assert!(e.contains(&p) && e.contains("data.valid_batches"), "{e}");
}

#[test]
fn a_failing_checkpoint_write_stops_the_run_keeps_the_last_checkpoint_and_resume_is_exact() {
    let (dir, cfg) = scratch(24, false, "name = \"never\"");
    let (full, faulty) = (dir.join("full"), dir.join("faulty"));
    run(&cfg, &full, false, None).unwrap();
    // A file where the checkpoint of step 16 wants its directory: the write fails.
    let blocker = faulty.join("checkpoints").join(".tmp-step-000000016");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, "in the way").unwrap();
    let e = run(&cfg, &faulty, false, None).unwrap_err();
    assert!(e.to_string().contains(".tmp-step-000000016"), "{e}");
    // The previous checkpoint is intact and the run resumes from it once the fault is gone.
    let last = growlm::train::latest_checkpoint(&faulty).unwrap();
    assert!(last.ends_with("step-000000008"), "{}", last.display());
    std::fs::remove_file(&blocker).unwrap();
    run(&cfg, &faulty, true, None).unwrap();
    assert_eq!(metrics(&full), metrics(&faulty));
}

/// Data parallelism (`--devices 2`: two peers sharing the CPU, gradients averaged by
/// burn's collective all-reduce) through a growth and its masked ramp: the curve is one
/// device's up to summation order, the same bit for bit on every run, and a killed run
/// resumes exactly.
#[test]
fn two_peers_give_the_one_device_curve_deterministically_and_resume_exactly() {
    let (dir, cfg) = scratch(20, true, "name = \"fixed\"\nsteps = [6]");
    let path = |name: &str| dir.join(name);
    run_on_devices(&cfg, &path("one"), false, None, 1).unwrap();
    let s = run_on_devices(&cfg, &path("two"), false, None, 2).unwrap();
    assert_eq!(s.growth_steps, vec![6]);
    run_on_devices(&cfg, &path("two-again"), false, None, 2).unwrap();
    assert_eq!(metrics(&path("two")), metrics(&path("two-again")));

    let (one, two) = (metrics(&path("one")), metrics(&path("two")));
    assert_eq!(one.len(), 20);
    let mut differs = false;
    for (a, b) in one.iter().zip(&two) {
        assert_eq!(
            (a.step, a.stage, a.tokens, a.flops),
            (b.step, b.stage, b.tokens, b.flops)
        );
        assert_eq!(a.width_active, b.width_active);
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-4 * x.abs().max(1.0);
        for (name, x, y) in [
            ("train loss", a.train_loss, b.train_loss),
            ("grad norm", a.grad_norm, b.grad_norm),
        ] {
            assert!(close(x, y), "step {}: {name} {x} vs {y}", a.step);
        }
        if let (Some(x), Some(y)) = (a.val_loss, b.val_loss) {
            assert!(close(x, y), "step {}: val {x} vs {y}", a.step);
        }
        differs |= a.train_loss != b.train_loss;
    }
    // The peers really computed on halves: the sums are not the one device's bit for bit.
    assert!(differs, "two peers gave exactly one device's curve");

    assert!(matches!(
        run_on_devices(&cfg, &path("killed"), false, Some(13), 2),
        Err(TrainError::Halted { step: 13 })
    ));
    run_on_devices(&cfg, &path("killed"), true, None, 2).unwrap();
    assert_eq!(metrics(&path("two")), metrics(&path("killed")));
}

#[test]
fn a_batch_that_does_not_split_over_the_devices_is_refused() {
    let (dir, cfg) = scratch(4, false, "name = \"never\"");
    let e = run_on_devices(&cfg, &dir.join("r"), false, None, 3).unwrap_err();
    match e {
        TrainError::Config { key, reason } => {
            assert_eq!(key, "train.batch_size");
            assert!(reason.contains("4 does not split into 3"), "{reason}");
        }
        e => panic!("unexpected error: {e}"),
    }
}

/// A writer that fails as a full disk would (an observer returning ENOSPC for the metrics
/// line of step 13, or for the growth event of step 10; the engine's own writers fail into
/// the same path): the run stops with that error, writes no checkpoint after it, the
/// checkpoint of step 8 stays loadable, and resuming once the fault is gone gives the
/// uninterrupted run.
#[test]
fn a_failing_metrics_or_events_write_stops_the_run_and_resume_is_exact() {
    use growlm::train::{GrowEvent, MetricsRow, Observer};
    struct DiskFull {
        path: std::path::PathBuf,
        on_step: Option<u64>,
        on_growth: bool,
    }
    impl DiskFull {
        fn fail(&self) -> Result<(), TrainError> {
            Err(TrainError::io(&self.path)(std::io::Error::from_raw_os_error(28)))
        }
    }
    impl Observer for DiskFull {
        fn on_step(&mut self, row: &MetricsRow) -> Result<(), TrainError> {
            if self.on_step == Some(row.step) {
                return self.fail();
            }
            Ok(())
        }
        fn on_growth(&mut self, _: &GrowEvent) -> Result<(), TrainError> {
            if self.on_growth {
                return self.fail();
            }
            Ok(())
        }
    }
    let (dir, cfg) = scratch(24, true, "name = \"fixed\"\nsteps = [10]");
    let full = dir.join("full");
    run(&cfg, &full, false, None).unwrap();
    for (name, on_step, on_growth) in [("metrics", Some(13), false), ("events", None, true)] {
        let out = dir.join(name);
        let mut fault = DiskFull {
            path: out.join(format!("{name}.jsonl")),
            on_step,
            on_growth,
        };
        let e = growlm::train::train::<TB>(
            &cfg,
            &opts(&out, false),
            &growlm::registry(),
            &Default::default(),
            &mut [&mut fault],
        )
        .unwrap_err();
        let text = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(
            text.contains(&format!("{name}.jsonl")) && text.contains("No space left"),
            "{text}"
        );
        let last = growlm::train::latest_checkpoint(&out).unwrap();
        assert!(last.ends_with("step-000000008"), "{}", last.display());
        run(&cfg, &out, true, None).unwrap();
        assert_eq!(metrics(&full), metrics(&out), "{name}");
        let events = |d: &std::path::Path| std::fs::read_to_string(d.join("events.jsonl")).unwrap();
        assert_eq!(events(&full), events(&out), "{name}");
    }
}

/// Mixed precision (`train.precision = "bf16"`) through a PDG growth and its masked ramp:
/// the run completes, is deterministic, learns as the f32 run does, and growth preserves
/// the function exactly on the f32 master weights.
#[test]
fn a_bf16_run_grows_through_its_ramp_and_learns_like_f32() {
    let (dir, mut cfg) = scratch(24, true, "name = \"fixed\"\nsteps = [6]");
    let f32_run = run(&cfg, &dir.join("f32"), false, None).unwrap();
    cfg.train.precision = growlm::train::Precision::Bf16;
    let a = run(&cfg, &dir.join("a"), false, None).unwrap();
    run(&cfg, &dir.join("b"), false, None).unwrap();
    assert_eq!(metrics(&dir.join("a")), metrics(&dir.join("b")));
    assert_eq!(a.growth_steps, vec![6]);
    let rows = metrics(&dir.join("a"));
    assert!(rows.iter().all(|r| r.train_loss.is_finite()));
    assert!(
        (a.final_val_loss - f32_run.final_val_loss).abs() < 0.05 * f32_run.final_val_loss,
        "bf16 {} vs f32 {}",
        a.final_val_loss,
        f32_run.final_val_loss
    );
    let events = std::fs::read_to_string(dir.join("a/events.jsonl")).unwrap();
    let e: serde_json::Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert_eq!(e["loss_before"], e["loss_after"], "{e}");
}
