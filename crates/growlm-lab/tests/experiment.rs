//! Experiments end to end on a tiny corpus: references, branched arms, the report, reuse
//! of done runs, `report_only`, a solver that cannot fit, an edited arm refused; and every
//! shipped experiment file plans.

use std::path::{Path, PathBuf};

mod common;

use common::{load_error, opts, registry};
use growlm_lab::experiment::{run_experiment, silent, Experiment, ExperimentOptions, Job};
use growlm_lab::{chain, compare};
use growlm_train::{MetricsRow, RunDir};

fn experiments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
}

#[test]
fn every_shipped_experiment_parses_and_plans() {
    let mut n = 0;
    for entry in std::fs::read_dir(experiments()).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let exp = Experiment::load(&path).unwrap();
            let base = path.parent().unwrap().join(&exp.base);
            let jobs = exp.jobs(Path::new("/nonexistent"), &base).unwrap();
            // Every fixed-step arm branches from a snapshot its small reference keeps.
            for j in jobs.iter().filter(|j| j.branch.is_some()) {
                let (at, small) = j.branch.as_ref().unwrap();
                let step: u64 = at.file_name().unwrap().to_string_lossy()[5..].parse().unwrap();
                assert!(jobs[*small].keep_at.contains(&step), "{}: {}", path.display(), j.name);
            }
            n += 1;
        }
    }
    assert!(n >= 1);
}

/// A three-stage base also trains its middle stage from scratch (the planner's curve),
/// and `multistage.toml` shares the small and target references of `schedule-wsd.toml`,
/// whose two-stage `ours` it is compared with.
#[test]
fn a_three_stage_experiment_trains_the_middle_reference_and_shares_the_pool() {
    let root = experiments();
    let jobs_of = |file: &str| {
        let exp = Experiment::load(&root.join(file)).unwrap();
        assert_eq!(exp.pool.as_deref(), Some("paper-tiny-wsd"), "{file}");
        exp.jobs(Path::new("/nonexistent"), &root.join(&exp.base)).unwrap()
    };
    let (multi, two) = (jobs_of("multistage.toml"), jobs_of("schedule-wsd.toml"));
    let find = |jobs: &[Job], name: &str| jobs.iter().find(|j| j.name == name).unwrap().cfg.to_toml();
    for name in ["small-s0", "target-s0"] {
        assert_eq!(find(&multi, name), find(&two, name), "{name}");
    }
    let arm = multi.iter().find(|j| j.cfg.stages.len() == 3).unwrap();
    let middle = multi.iter().find(|j| j.name == "stage1-s0").unwrap();
    assert_eq!(middle.cfg.stages.len(), 1);
    assert_eq!(middle.cfg.stages[0].model, arm.cfg.stages[1].model);
    assert!(middle.cfg.stages[0].growth.is_none());
    assert_eq!(middle.cfg.train.max_steps, 3000);
    assert!(!two.iter().any(|j| j.name.starts_with("stage")));
}

#[test]
fn bad_experiments_are_refused_with_the_arm_named() {
    let dir = tempfile::tempdir().unwrap();
    let write = |text: &str| load_error(dir.path(), text);
    let e = write("base = \"x.toml\"\n[[arm]]\nname = \"a\"\n");
    assert!(e.contains("arm `a` needs exactly one of `grow_at`"), "{e}");
    let e = write("base = \"x.toml\"\n[[arm]]\nname = \"small\"\ngrow_at = 3\n");
    assert!(e.contains("`small`"), "{e}");
    let e = write("base = \"x.toml\"\n[[arm]]\nname = \"stage1\"\ngrow_at = 3\n");
    assert!(
        e.contains("arm name `stage1`") && e.contains("`stageN` (the references)"),
        "{e}"
    );
    let e = write("base = \"x.toml\"\n[[arm]]\nname = \"a\"\ngrow_at = 3\n[[arm]]\nname = \"a\"\ngrow_at = 4\n");
    assert!(e.contains("two arms are named `a`"), "{e}");
    let e = write("base = \"x.toml\"\nfoo = 1\n[[arm]]\nname = \"a\"\ngrow_at = 3\n");
    assert!(e.contains("not a valid experiment"), "{e}");
}

/// A two-stage experiment on a corpus the test writes: tiny, so it runs in a debug build
/// in seconds.
fn tiny(dir: &Path, arm_sets: &str) -> PathBuf {
    let words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota"];
    let text: String = (0..3000).map(|i| format!("{} ", words[(i * 7 + i / 5) % 9])).collect();
    std::fs::write(dir.join("corpus.txt"), text).unwrap();
    let base = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny.toml"))
        .unwrap()
        .replace(
            "source = \"sotu\"",
            &format!("source = {:?}", dir.join("corpus.txt").display().to_string()),
        );
    std::fs::write(dir.join("base.toml"), base).unwrap();
    let exp = format!(
        "base = \"base.toml\"\nsets = ['train.max_steps=12', 'train.schedule=\"constant\"', 'train.eval_every=3', 'train.checkpoint_every=4']\n[[arm]]\nname = \"ours\"\ngrow_at = 6\nsteps_after = 9\n{arm_sets}\n\
         [[arm]]\nname = \"late\"\ngrow_at = [9]\nseeds = [3, 4]\n"
    );
    std::fs::write(dir.join("e.toml"), exp).unwrap();
    dir.join("e.toml")
}

#[test]
fn an_experiment_runs_branches_reports_and_reuses_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = tiny(dir.path(), "");
    let out = dir.path().join("out");
    let reg = registry();
    let run = |o: &ExperimentOptions| run_experiment(o, &reg, &silent).map(|r| r.0);
    run(&opts(&file, &out)).unwrap();
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let runs = results["runs"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r["dir"].as_str().unwrap()).collect();
    assert_eq!(names, ["ours-s3", "late-s3", "late-s4"]);
    for r in runs {
        assert_eq!(r["branched"], true, "{r}");
        let speedup = r["speedup_flops"].as_f64().unwrap();
        assert!(speedup.is_finite() && speedup > 0.0, "{r}");
    }
    assert_eq!(runs[0]["growth_steps"], serde_json::json!([6]));
    // The branch's curve starts with the small reference's, bit for bit.
    let rows = |name: &str| -> Vec<MetricsRow> { RunDir::new(out.join(name)).metrics().unwrap() };
    let (small, ours) = (rows("small-s3"), rows("ours-s3"));
    assert_eq!(ours.len(), 15);
    assert_eq!(
        serde_json::to_string(&small[..5]).unwrap(),
        serde_json::to_string(&ours[..5]).unwrap()
    );
    assert!(out.join("small-s4").join("snapshots").join("step-000000008").is_dir());
    for f in ["report.md", "loss-flops.svg", "ours-s3/loss.svg", "target-s4/loss.svg"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| ours | [3] | [6] |"), "{report}");
    assert!(report.contains("| late | [3, 4] | [9] |"), "{report}");
    // The small model alone is measured against the target as the arms are.
    let refs = results["references"].as_array().unwrap();
    let small = refs.iter().find(|r| r["run"] == "small-s3").unwrap();
    let read = |name: &str| RunDir::new(out.join(name)).curve().unwrap();
    let want = compare("small-s3", &read("small-s3"), &read("target-s3"), None).unwrap();
    assert_eq!(small["speedup_flops"].as_f64(), Some(want.speedup_flops), "{small}");
    let target = refs.iter().find(|r| r["run"] == "target-s3").unwrap();
    assert!(target["speedup_flops"].is_null(), "{target}");
    assert!(
        report.contains(&format!("| small-s3 | 12 | {:.4} |", want.final_val_loss)),
        "{report}"
    );

    // Run again: everything is reused, nothing retrained.
    let summary = out.join("ours-s3").join("summary.json");
    let before = std::fs::metadata(&summary).unwrap().modified().unwrap();
    run(&opts(&file, &out)).unwrap();
    assert_eq!(std::fs::metadata(&summary).unwrap().modified().unwrap(), before);

    // Kept: a thinned copy without checkpoints, measured the same; `report_only` on it
    // rebuilds the same results, and a rerun into it trains nothing.
    let kept = dir.path().join("kept");
    let keep = ExperimentOptions {
        keep: Some(kept.clone()),
        seeds: None,
        ..opts(&file, &out)
    };
    let full = run(&keep).unwrap();
    assert!(kept.join("report.md").is_file() && kept.join("loss-flops.svg").is_file());
    for name in ["small-s3", "target-s3", "ours-s3", "late-s4"] {
        let (a, b) = (RunDir::new(out.join(name)), RunDir::new(kept.join(name)));
        assert!(b.is_done() && !kept.join(name).join("checkpoints").exists(), "{name}");
        assert!(!kept.join(name).join("snapshots").exists(), "{name}");
        assert!(
            b.metrics().unwrap().len() < a.metrics().unwrap().len(),
            "{name} not thinned"
        );
        assert_eq!(a.curve().unwrap(), b.curve().unwrap(), "{name}");
        assert_eq!(a.own_wall_s().unwrap(), b.own_wall_s().unwrap(), "{name}");
    }
    let from_kept = ExperimentOptions {
        report_only: true,
        ..opts(&file, &kept)
    };
    let again = run(&from_kept).unwrap();
    let numbers = |r: &growlm_lab::experiment::Results| {
        let mut v = serde_json::to_value(r).unwrap();
        for k in ["seconds", "command"] {
            v[k] = serde_json::Value::Null;
        }
        v.to_string()
            .replace(&kept.display().to_string(), &out.display().to_string())
    };
    assert_eq!(numbers(&full), numbers(&again));
    let summary_kept = kept.join("ours-s3").join("summary.json");
    let before_kept = std::fs::metadata(&summary_kept).unwrap().modified().unwrap();
    run(&opts(&file, &kept)).unwrap();
    assert_eq!(
        std::fs::metadata(&summary_kept).unwrap().modified().unwrap(),
        before_kept
    );
    // Keeping into the run directory itself is refused.
    let e = chain(
        &run(&ExperimentOptions {
            keep: Some(out.clone()),
            seeds: None,
            ..opts(&file, &out)
        })
        .unwrap_err(),
    );
    assert!(e.contains("that is where the runs are"), "{e}");

    // report_only trains nothing and lists what is missing.
    std::fs::remove_dir_all(out.join("late-s4")).unwrap();
    let only = ExperimentOptions {
        report_only: true,
        ..opts(&file, &out)
    };
    let results = run(&only).unwrap();
    assert!(!out.join("late-s4").exists());
    assert_eq!(results.missing, ["late-s4"]);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("| late | [3] | [9] |") && report.contains("Not run yet"),
        "{report}"
    );
    assert!(report.contains("`late-s4`"), "{report}");
    // A solver that cannot fit (four evaluations) is reported, and the report written.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("solve = true\n{text}")).unwrap();
    run(&only).unwrap();
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("The solver: ") && report.contains("too few points"),
        "{report}"
    );
    std::fs::write(&file, text).unwrap();

    // An edited arm is refused, naming its directory, not overwritten.
    let file = tiny(dir.path(), "sets = ['stages.1.growth.ramp_steps=3']");
    let e = chain(&run(&opts(&file, &out)).unwrap_err());
    assert!(
        e.contains("ours-s3 was trained with another config") && e.contains("ramp_steps"),
        "{e}"
    );
}

/// `seeds` runs one part of an experiment's seeds: here only seed 4, which only the arm
/// `late` runs, so `ours` plans nothing; a seed the experiment does not run is refused.
#[test]
fn only_the_seeds_asked_for_are_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = tiny(dir.path(), "");
    let out = dir.path().join("out");
    let reg = registry();
    let only = |seeds: Vec<u64>| ExperimentOptions {
        seeds: Some(seeds),
        ..opts(&file, &out)
    };
    let (results, _) = run_experiment(&only(vec![4]), &reg, &silent).unwrap();
    let names: Vec<&str> = results.runs.iter().map(|r| r.dir.as_str()).collect();
    assert_eq!(names, ["late-s4"]);
    let mut trained: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with("-s3") || n.ends_with("-s4"))
        .collect();
    trained.sort();
    assert_eq!(trained, ["late-s4", "small-s4", "target-s4"]);
    let e = run_experiment(&only(vec![7]), &reg, &silent).unwrap_err().to_string();
    assert!(e.contains("--seeds 7") && e.contains("[3, 4]"), "{e}");
}

#[test]
fn sizes_only_trains_the_references_and_lists_the_arms_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let file = tiny(dir.path(), "");
    let out = dir.path().join("out");
    let reg = registry();
    let first = ExperimentOptions {
        sizes_only: true,
        ..opts(&file, &out)
    };
    let results = run_experiment(&first, &reg, &silent).unwrap().0;
    for name in ["small-s3", "target-s3", "small-s4", "target-s4"] {
        assert!(RunDir::new(out.join(name)).is_done(), "{name}");
    }
    assert_eq!(results.missing, ["ours-s3", "late-s3", "late-s4"]);
    assert!(!out.join("ours-s3").exists());
    // The arms' branch points were kept, so the whole experiment then branches from them
    // and trains only the arms.
    let summary = out.join("small-s3").join("summary.json");
    let before = std::fs::metadata(&summary).unwrap().modified().unwrap();
    let results = run_experiment(&opts(&file, &out), &reg, &silent).unwrap().0;
    assert!(results.missing.is_empty());
    assert!(RunDir::new(out.join("ours-s3")).is_branched());
    assert_eq!(std::fs::metadata(&summary).unwrap().modified().unwrap(), before);
}
