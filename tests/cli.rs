//! The command line end to end: `policies`, `solve` on CSV files and on run directories,
//! `train` with a local corpus and the CUDA error of a CPU-only build.

use std::path::Path;
use std::process::Command;

use growlm::train::{testing, Edit};

fn xtask(args: &[&str], dir: &Path) -> (bool, String, String) {
    xtask_env(args, dir, &[])
}

/// The tiny fixture (`configs/tiny.toml`) over `text.txt` with `edits`.
fn tiny(edits: &[Edit]) -> growlm::train::RunConfig {
    testing::tiny(Path::new("text.txt"), edits).unwrap()
}

/// Runs `args` in `dir`, checks that the command succeeds and returns its output.
fn succeeds(args: &[&str], dir: &Path) -> String {
    let (ok, out, err) = xtask(args, dir);
    assert!(ok, "{args:?}: {out}\n{err}");
    out
}

/// Runs `args` in `dir` and checks that the command fails with each of `names` in its
/// error.
fn refused(args: &[&str], dir: &Path, names: &[&str]) {
    let (ok, _, err) = xtask(args, dir);
    assert!(!ok && names.iter().all(|n| err.contains(n)), "{args:?}: {err}");
}

fn write_csv(path: &Path, f: impl Fn(f64) -> f64) {
    let mut s = "step,val_loss\n".to_string();
    for i in 1..=120 {
        let n = 100.0 * i as f64;
        s.push_str(&format!("{n},{}\n", f(n)));
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn policies_lists_every_registered_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = xtask(&["policies"], dir.path());
    assert!(ok);
    for name in ["never", "fixed", "convergence", "example", "solver"] {
        assert!(out.lines().any(|l| l.starts_with(name)), "{name} missing from:\n{out}");
    }
}

#[test]
fn solve_on_csv_files_writes_the_json_keys_and_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let (s, t) = (dir.path().join("small.csv"), dir.path().join("target.csv"));
    write_csv(&s, |n| 2.0 + 3.0 * (-n / 1000.0).exp());
    write_csv(&t, |n| 1.5 + 3.5 * (-n / 3000.0).exp());
    succeeds(
        &[
            "solve",
            "--small",
            "small.csv",
            "--target",
            "target.csv",
            "--flops-ratio",
            "0.3",
            "--target-loss",
            "1.6",
            "--horizon",
            "12000",
            "--json",
            "out.json",
            "--plot",
            "out.svg",
        ],
        dir.path(),
    );
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("out.json")).unwrap()).unwrap();
    for key in [
        "optimal_growth_step",
        "optimal_growth_step_by_flops",
        "flops_ratio",
        "convergence_step",
        "predicted_speedup",
        "fits",
        "effect_conversion_rate",
    ] {
        assert!(j.get(key).is_some(), "missing {key}");
    }
    // The analytic optimum of these curves (see the solver tests) is N ≈ 3.50e3.
    let u: f64 = 0.3 * 0.5 / 2.7;
    let n_opt = -1000.0 * (u / 3.0).ln();
    let g = j["optimal_growth_step"].as_f64().unwrap();
    assert!((g - n_opt).abs() / n_opt < 0.01, "{g} vs {n_opt}");
    assert_eq!(j["fits"]["small"]["model"], "exponential");
    assert!(j["fits"]["small"]["r2"].as_f64().unwrap() > 0.9999);
    assert!(j["effect_conversion_rate"].as_array().unwrap().len() > 10);
    let svg = std::fs::read_to_string(dir.path().join("out.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
}

/// A run directory whose validation loss follows `a + b·exp(−step/f)` (every 50 steps up
/// to 6000) at `fps` FLOPs per step.
fn write_exponential_run(run: &Path, [a, b, f]: [f64; 3], fps: f64) {
    std::fs::create_dir_all(run).unwrap();
    let mut s = String::new();
    for step in 1..=6000u64 {
        let val = if step % 50 == 0 {
            format!("{}", a + b * (-(step as f64) / f).exp())
        } else {
            "null".into()
        };
        s.push_str(&format!(
            "{{\"step\":{step},\"tokens\":0,\"flops\":{},\"wall_s\":0,\"train_loss\":3.0,\"val_loss\":{val},\"lr\":0.001,\"stage\":0,\"width_active\":1.0,\"grad_norm\":1.0}}\n",
            fps * step as f64
        ));
    }
    std::fs::write(run.join("metrics.jsonl"), s).unwrap();
}

#[test]
fn solve_reads_run_directories_and_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    write_exponential_run(&dir.path().join("small"), [2.0, 3.0, 1000.0], 1.0e9);
    write_exponential_run(&dir.path().join("target"), [1.5, 3.5, 3000.0], 3.0e9);
    succeeds(
        &["solve", "--small", "small", "--target", "target", "--json", "o.json"],
        dir.path(),
    );
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("o.json")).unwrap()).unwrap();
    assert!(
        (j["flops_ratio"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9,
        "Fs/Ft from the runs' FLOPs"
    );
    assert!(j["fit_until"].is_null(), "no config.toml, every point: {j}");
    // A run trained with wsd (configs/paper-tiny-wsd.toml: 3000 steps, decay over the last 20%)
    // is fitted on its stable phase, up to step 2400, unless --fit-until says otherwise.
    let wsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/paper-tiny-wsd.toml");
    std::fs::copy(wsd, dir.path().join("target/config.toml")).unwrap();
    let solve = |extra: &[&str]| {
        let mut args = vec!["solve", "--small", "small", "--target", "target", "--json", "o.json"];
        args.extend(extra);
        let out = succeeds(&args, dir.path());
        let j: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("o.json")).unwrap()).unwrap();
        (out, j)
    };
    let (out, j) = solve(&[]);
    assert_eq!(j["fit_until"].as_f64(), Some(2400.0), "{j}");
    assert_eq!(j["fits"]["small"]["n_points"], 48, "{j}");
    assert!(
        out.contains("curves fitted up to step 2400 (the runs' wsd stable phase"),
        "{out}"
    );
    let (_, j) = solve(&["--fit-until", "5000"]);
    assert_eq!(j["fits"]["small"]["n_points"], 100, "{j}");
    refused(
        &["solve", "--small", "nope", "--target", "target"],
        dir.path(),
        &["nope"],
    );
}

/// `solve --via`: the multi-stage plan on exponential curves `Lj = aj + bj·exp(−n/fj)` at
/// `Fj` FLOPs per step, against the hand-worked optimum. Minimising
/// `Fj·Lj⁻¹(ℓ) − Fj+1·Lj+1⁻¹(ℓ)` over ℓ gives
/// `ℓ = (Fj·fj·aj+1 − Fj+1·fj+1·aj) / (Fj·fj − Fj+1·fj+1)`: 2.1 for small → medium and 1.86
/// for medium → target. The small model leaves at step 1000·ln(3/0.1) = 3401.2; the medium
/// model continues at its equal-loss step 2000·ln(3.3/0.4) and leaves at 2000·ln(3.3/0.16),
/// 2000·ln 2.5 = 1832.6 steps later.
#[test]
fn solve_via_a_middle_run_plans_three_stages_as_worked_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    write_exponential_run(&dir.path().join("small"), [2.0, 3.0, 1000.0], 1.0e9);
    write_exponential_run(&dir.path().join("medium"), [1.7, 3.3, 2000.0], 2.0e9);
    write_exponential_run(&dir.path().join("target"), [1.5, 3.5, 3000.0], 3.0e9);
    let args = [
        "solve",
        "--small",
        "small",
        "--via",
        "medium",
        "--target",
        "target",
        "--target-loss",
        "1.8",
        "--json",
        "o.json",
    ];
    let out = succeeds(&args, dir.path());
    assert!(out.contains("multi-stage plan to loss 1.8000"), "{out}");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("o.json")).unwrap()).unwrap();
    let plan = &j["plan"];
    let close = |v: &serde_json::Value, want: f64, tol: f64| {
        let got = v.as_f64().unwrap();
        assert!((got - want).abs() <= tol * want, "{got} vs {want}\n{plan}");
    };
    close(&plan["growth_losses"][0], 2.1, 1e-3);
    close(&plan["growth_losses"][1], 1.86, 1e-3);
    let first = 1000.0 * 30f64.ln();
    close(&plan["growth_steps"][0], first, 2e-3);
    close(&plan["growth_steps"][1], first + 2000.0 * 2.5f64.ln(), 2e-3);
    // The target runs from its equal-loss step at 1.86 to the target loss 1.8.
    close(&plan["steps"][2], 3000.0 * (0.36f64 / 0.3).ln(), 2e-3);
    // A CSV curve carries no FLOPs: the middle stage needs a run directory.
    write_csv(&dir.path().join("m.csv"), |n| 1.7 + 3.3 * (-n / 2000.0).exp());
    let mut bad = args;
    bad[4] = "m.csv";
    let (ok, out, err) = xtask(&bad, dir.path());
    assert!(
        ok && out.contains("multi-stage plan: every stage needs a run directory"),
        "{out}\n{err}"
    );
    assert!(out.contains("m.csv has none"), "{out}");
}

#[test]
fn train_runs_on_local_text_and_cuda_needs_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let text = testing::cycled_words(&["the ", "union ", "is ", "strong. "], 3000);
    std::fs::write(dir.path().join("text.txt"), text).unwrap();
    // The tiny fixture's first stage alone.
    let cfg = tiny(&[Edit::MaxSteps(6)]).only_stage(0).unwrap().to_toml();
    std::fs::write(dir.path().join("c.toml"), cfg).unwrap();
    let out = succeeds(
        &["train", "--config", "c.toml", "--data", "text.txt", "--out", "r"],
        dir.path(),
    );
    assert!(out.contains("done: 6 steps"), "{out}");
    assert!(dir.path().join("r/summary.json").is_file());
    if !cfg!(feature = "cuda") {
        refused(
            &[
                "train", "--config", "c.toml", "--data", "text.txt", "--out", "r2", "--device", "cuda",
            ],
            dir.path(),
            &["cuda` feature"],
        );
    }
    refused(
        &["train", "--config", "c.toml", "--out", "r3", "--device", "tpu"],
        dir.path(),
        &["--device"],
    );
}

/// From a directory without the repository's `configs/`: the shipped configs travel inside
/// the command (the default when none is given, or one named), the run goes to
/// `./runs/NAME`, and a name that is neither a file nor a shipped config is refused by name.
#[test]
fn the_command_runs_from_any_directory_with_its_shipped_configs() {
    let dir = tempfile::tempdir().unwrap();
    let text = "We hold these truths to be self-evident, that all men are created equal. ";
    std::fs::write(dir.path().join("text.txt"), text.repeat(400)).unwrap();
    // The main command's pair, L32x2 -> L32x4: 54,560 parameters in the target.
    let info = succeeds(&["info"], dir.path());
    assert!(info.contains("54560") || info.contains("54,560"), "{info}");
    for name in ["llama-d64", "configs/llama-d64.toml"] {
        let out = succeeds(&["info", "--config", name], dir.path());
        assert!(out.contains("target             201280"), "{name}: {out}");
    }
    succeeds(
        &[
            "train",
            "--data",
            "text.txt",
            "--max-steps",
            "40",
            "--set",
            "train.eval_every=20",
            "--set",
            "data.valid_batches=2",
        ],
        dir.path(),
    );
    let saved = std::fs::read_to_string(dir.path().join("runs/default/config.toml")).unwrap();
    assert!(
        saved.contains("max_steps = 40") && saved.contains("family = \"llama\""),
        "{saved}"
    );
    refused(&["info", "--config", "no-such-config"], dir.path(), &["no-such-config"]);
}

#[test]
fn set_overrides_and_resume_refusals_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = testing::cycled_words(&["the ", "union ", "is ", "strong. "], 3000);
    std::fs::write(dir.path().join("text.txt"), &text).unwrap();
    std::fs::write(dir.path().join("other.txt"), text.replace("union", "nation")).unwrap();
    let cfg = tiny(&[
        Edit::MaxSteps(100),
        Edit::Set("train.eval_every=2".into()),
        Edit::Set("train.checkpoint_every=2".into()),
    ])
    .only_stage(0)
    .unwrap()
    .to_toml();
    std::fs::write(dir.path().join("c.toml"), cfg).unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--config", "c.toml", "--out", "r"];
        args.extend_from_slice(extra);
        xtask(&args, dir.path())
    };
    let (ok, out, err) = train(&["--set", "train.max_steps=4"]);
    assert!(ok && out.contains("done: 4 steps"), "{out}\n{err}");
    // The library names the run directory; the command line adds the flags that fix it.
    let (ok, _, err) = train(&["--set", "train.max_steps=4"]);
    assert!(
        !ok && err.contains("already holds a run") && err.contains("hint: pass --resume"),
        "{err}"
    );
    refused(
        &["train", "--config", "c.toml", "--out", "y", "--data", "no/such.txt"],
        dir.path(),
        &["data.source", "hint: pass --data PATH"],
    );
    refused(
        &["train", "--config", "c.toml", "--out", "x", "--set", "train.nope=1"],
        dir.path(),
        &["train.nope"],
    );
    refused(
        &["train", "--config", "c.toml", "--out", "x", "--set", "train.lr=-1"],
        dir.path(),
        &["train.lr"],
    );
    refused(
        &["train", "--config", "c.toml", "--out", "x", "--policy", "fixed"],
        dir.path(),
        &["policy.steps"],
    );
    // Resume from the run directory's own config: a changed seed or data is refused…
    refused(
        &["train", "--out", "r", "--resume", "--seed", "5"],
        dir.path(),
        &["`seed`"],
    );
    refused(
        &["train", "--out", "r", "--resume", "--data", "other.txt"],
        dir.path(),
        &["`data.source`"],
    );
    // …and a raised budget continues the run.
    let (ok, out, err) = xtask(&["train", "--out", "r", "--resume", "--max-steps", "6"], dir.path());
    assert!(ok && out.contains("done: 6 steps"), "{out}\n{err}");
}

#[test]
fn compare_writes_the_speed_up_table_json_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, rows: &[(u64, f64, Option<f64>)]| {
        std::fs::create_dir_all(dir.path().join(name)).unwrap();
        let text: String = rows
            .iter()
            .map(|&(step, flops, val)| {
                format!(
                    "{{\"step\":{step},\"tokens\":{},\"flops\":{flops},\"wall_s\":{},\"train_loss\":3.0,\"val_loss\":{},\"lr\":0.001,\"stage\":0,\"width_active\":1.0,\"grad_norm\":1.0}}\n",
                    step * 10,
                    step as f64,
                    val.map_or("null".to_string(), |v| v.to_string())
                )
            })
            .collect();
        std::fs::write(dir.path().join(name).join("metrics.jsonl"), text).unwrap();
    };
    write(
        "ref",
        &[
            (1, 100.0, Some(4.0)),
            (2, 200.0, Some(3.0)),
            (3, 300.0, None),
            (4, 400.0, Some(2.0)),
        ],
    );
    write("grown", &[(1, 50.0, Some(3.5)), (2, 100.0, Some(2.5))]);
    let out = succeeds(
        &[
            "compare",
            "--reference",
            "ref",
            "grown",
            "--json",
            "c.json",
            "--plot",
            "c.svg",
        ],
        dir.path(),
    );
    assert!(out.contains("grown"), "{out}");
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("c.json")).unwrap()).unwrap();
    let r = &rows[0];
    // The reference reaches 2.5 halfway between 200 (3.0) and 400 (2.0): 300 FLOPs.
    assert_eq!(r["reference_flops_to_loss"], 300.0);
    assert_eq!(r["speedup_flops"], 3.0);
    assert_eq!(r["reached"], true);
    for key in ["run", "final_val_loss", "flops", "speedup_tokens", "speedup_wall"] {
        assert!(r.get(key).is_some(), "missing {key}");
    }
    assert!(std::fs::read_to_string(dir.path().join("c.svg"))
        .unwrap()
        .contains("<svg"));
    refused(&["compare", "--reference", "nope", "grown"], dir.path(), &["nope"]);
}

#[test]
fn operators_lists_every_operator_with_measured_preservation() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = xtask(&["operators"], dir.path());
    assert!(ok, "{err}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{out}"))
            .to_string()
    };
    for (name, want) in [
        ("pdg", "×2: yes"),
        ("direct-copy", "×2: no"),
        ("fpi", "×1.5: no"),
        ("hypercloning", "×1.5: refused"),
        ("aki", "×2: no"),
        ("redundant", "2→3: yes"),
        ("random", "2→4: no"),
        ("identity", "2→4: yes"),
        ("stack", "2→4: no"),
    ] {
        assert!(line(name).contains(want), "{name}: {}", line(name));
    }
}

/// Kill tests (issue: reliability): a real `xtask train` child is SIGKILLed at 24 points
/// spread over a staged run (growth at step 40, a PDG ramp over steps 40–80, a checkpoint
/// every 5 steps) and resumed after each kill; the final metrics (wall times aside),
/// events and checkpoint equal those of an uninterrupted run.
#[test]
fn a_train_killed_at_two_dozen_points_resumes_to_the_uninterrupted_run() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..6000)
        .map(|i| ["the ", "state ", "of ", "our ", "union ", "is ", "strong. "][(i * 7 + i / 3) % 7])
        .collect();
    std::fs::write(dir.path().join("text.txt"), text).unwrap();
    let cfg = tiny(&[
        Edit::Seed(5),
        Edit::MaxSteps(120),
        Edit::Set("data.valid_batches=1".into()),
        Edit::Set("train.lr=3e-3".into()),
        Edit::Set("train.warmup_steps=0".into()),
        Edit::Set("train.eval_every=10".into()),
        Edit::Set("train.checkpoint_every=5".into()),
        Edit::Set("stages.1.growth.ramp_steps=40".into()),
        testing::policy("fixed", "steps = [40]").unwrap(),
    ])
    .to_toml();
    std::fs::write(dir.path().join("c.toml"), cfg).unwrap();
    let train = |out: &str, resume: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_growlm"));
        c.args(["train", "--config", "c.toml", "--data", "text.txt", "--out", out])
            .current_dir(dir.path())
            .env("GROWLM_CACHE", dir.path().join("cache"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if resume {
            c.arg("--resume");
        }
        c
    };
    assert!(train("full", false).status().unwrap().success());

    // 24 kill points chosen by progress, not by time (so that a loaded machine moves
    // nothing): seeded-random steps over the run, some right after a checkpoint step (the
    // checkpoint is being written then). The child is SIGKILLed as soon as its metrics show
    // that step, then resumed from its last checkpoint (or started again when none exists).
    let killed = dir.path().join("killed");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut targets: Vec<usize> = (0..24)
        .map(|k| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let step = 1 + (x >> 33) as usize % 118;
            if k % 4 == 0 {
                step / 5 * 5 + 5
            } else {
                step
            }
        })
        .collect();
    targets.sort_unstable();
    let logged = || {
        std::fs::read_to_string(killed.join("metrics.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let (mut kills, mut at_steps) = (0, Vec::new());
    for &target in &targets {
        let resume = killed.join("checkpoints/latest").is_file();
        let mut child = train("killed", resume).spawn().unwrap();
        let clock = Instant::now();
        while logged() < target && child.try_wait().unwrap().is_none() && clock.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_micros(200));
        }
        if child.try_wait().unwrap().is_some() {
            continue; // finished (or failed) before the kill point; the final run checks it
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        at_steps.push(logged());
    }
    let resume = killed.join("checkpoints/latest").is_file();
    assert!(
        train("killed", resume).status().unwrap().success(),
        "the final resume failed"
    );
    eprintln!("killed {kills} times, after these numbers of logged steps: {at_steps:?}");
    assert!(
        kills >= 20,
        "only {kills} kills landed before the run finished: {at_steps:?}"
    );
    assert!(killed.join("summary.json").is_file());

    let strip = |p: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                if let Some(o) = v.as_object_mut() {
                    o.remove("wall_s");
                }
                v
            })
            .collect()
    };
    for f in ["metrics.jsonl", "events.jsonl"] {
        assert_eq!(strip(&dir.path().join("full").join(f)), strip(&killed.join(f)), "{f}");
    }
    // The final checkpoints hold the same weights (the files' bytes differ: burn's random
    // parameter ids), and the same optimizer state: ten more steps give the same curve.
    let weights = |run: &str| {
        let t = growlm::train::load_trained::<burn_flex::Flex>(&dir.path().join(run), &Default::default()).unwrap();
        let mut v: Vec<_> = growlm::ops::param_values::<burn_flex::Flex, _>(&t.model)
            .into_iter()
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert!(weights("full") == weights("killed"), "the final weights differ");
    for run in ["full", "killed"] {
        let mut c = train(run, true);
        assert!(c.args(["--max-steps", "130"]).status().unwrap().success());
    }
    assert_eq!(
        strip(&dir.path().join("full/metrics.jsonl")),
        strip(&killed.join("metrics.jsonl")),
        "continued"
    );
}

/// A finished run directory made by hand: `configs/tiny.toml` as its config, a two-point
/// curve ending at `loss` after `flops` FLOPs, in stage `stage` (1: it grew at step 5).
fn hand_made_run(dir: &Path, flops: f64, loss: f64, stage: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny.toml");
    std::fs::copy(tiny, dir.join("config.toml")).unwrap();
    let row = |step: u64, f: f64, l: f64| {
        format!(
            "{{\"step\":{step},\"tokens\":{},\"flops\":{f},\"wall_s\":0,\"train_loss\":3.0,\"val_loss\":{l},\"lr\":0.01,\"stage\":{stage},\"width_active\":1.0,\"grad_norm\":1.0}}\n",
            step * 16
        )
    };
    std::fs::write(
        dir.join("metrics.jsonl"),
        row(5, flops / 2.0, loss + 1.0) + &row(10, flops, loss),
    )
    .unwrap();
    let grew = if stage == 1 { "[5]" } else { "[]" };
    std::fs::write(
        dir.join("summary.json"),
        format!(
            "{{\"final_val_loss\":{loss},\"best_val_loss\":{loss},\"steps\":10,\"tokens\":160,\"flops\":{flops},\"wall_s\":1.0,\
             \"final_stage\":{stage},\"growth_steps\":{grew},\"policy\":\"fixed\",\"device\":\"flex\"}}"
        ),
    )
    .unwrap();
    if stage == 1 {
        std::fs::write(
            dir.join("events.jsonl"),
            "{\"event\":\"grow\",\"step\":5,\"from_stage\":0,\"to_stage\":1,\"operator\":\"pdg+redundant\",\
             \"params_before\":100,\"params_after\":400,\"loss_before\":3.5,\"loss_after\":3.5}\n",
        )
        .unwrap();
    }
}

/// `compare --frontier` on hand-made curves: A (1e12, 3.0), B (1e13, 2.0), C (1e14, 1.6)
/// are the envelope, D (2e13, 2.5) is beaten. A grown run of 10^12.5 FLOPs ending at 2.4:
/// the envelope there is 2.5 (gap −0.1) and reaches 2.4 at 10^12.6 FLOPs (×frontier
/// 10^0.1 = 1.258925).
#[test]
fn compare_frontier_matches_a_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    for (name, flops, loss) in [("A", 1e12, 3.0), ("B", 1e13, 2.0), ("C", 1e14, 1.6), ("D", 2e13, 2.5)] {
        hand_made_run(&dir.path().join(name), flops, loss, 0);
    }
    hand_made_run(&dir.path().join("G"), 10f64.powf(12.5), 2.4, 1);
    let args = [
        "compare",
        "G",
        "--frontier",
        "A",
        "B",
        "C",
        "D",
        "--json",
        "f.json",
        "--plot",
        "f.svg",
    ];
    let out = succeeds(&args, dir.path());
    assert!(
        out.contains("the compute-optimal frontier of 4 from-scratch runs"),
        "{out}"
    );
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("f.json")).unwrap()).unwrap();
    let names: Vec<&str> = j["envelope"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["run"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A", "B", "C"]);
    let g = &j["runs"][0];
    assert!((g["iso_flop_gap"].as_f64().unwrap() + 0.1).abs() < 1e-6, "{g}");
    assert!((g["x_frontier"].as_f64().unwrap() - 1.258_925_4).abs() < 1e-6, "{g}");
    // The growth factor: the final model's parameters (tiny.toml's stage 1) over the
    // 100 its growth event says it had before.
    let params = g["params"].as_f64().unwrap();
    assert!(
        params > 100.0 && g["growth_factor"].as_f64() == Some(params / 100.0),
        "{g}"
    );
    assert!(std::fs::read_to_string(dir.path().join("f.svg"))
        .unwrap()
        .starts_with("<svg"));
    // Without runs, the frontier's own runs are measured: D lies above it.
    let (ok, out, _) = xtask(&["compare", "--frontier", "A", "B", "C", "D"], dir.path());
    assert!(
        ok && out.lines().any(|l| l.starts_with('D') && l.contains("+0.")),
        "{out}"
    );
    // --reference and --frontier exclude each other; one of them is needed.
    assert!(!xtask(&["compare", "G", "--reference", "A", "--frontier", "B"], dir.path()).0);
    assert!(!xtask(&["compare", "G"], dir.path()).0);
}

fn xtask_env(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_growlm"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A model too large for the memory available is refused before anything is allocated or
/// written, naming the stage, the estimate, what is available and what to lower; the
/// override lets a tight fit through; `info` says what fits.
#[test]
fn a_model_too_large_for_memory_is_refused_before_the_run_directory_exists() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("text.txt"), "the union is strong. ".repeat(200)).unwrap();
    let cfg = tiny(&[Edit::MaxSteps(4)]).only_stage(0).unwrap().to_toml();
    std::fs::write(dir.path().join("c.toml"), cfg).unwrap();
    // The issue's case: 4.6e11 parameters pass validation (under MAX_PARAMS), and are refused
    // by the memory check on any machine.
    let huge = [
        "train",
        "--config",
        "c.toml",
        "--out",
        "big",
        "--set",
        "stages.0.model.d_model=196608",
        "--set",
        "stages.0.model.n_heads=6",
    ];
    let (ok, _, err) = xtask(&huge, dir.path());
    assert!(!ok, "{err}");
    assert!(
        err.contains("stages.0 (`small`) needs about")
            && err.contains("GiB is available")
            && err.contains("lower stages.0.model.d_model")
            && err.contains("GROWLM_MEMORY=off"),
        "{err}"
    );
    assert!(!err.contains("panicked") && !dir.path().join("big").exists(), "{err}");
    // A small run against a 1 MiB allowance is refused, and allowed with the override.
    let small = ["train", "--config", "c.toml", "--out", "r"];
    let (ok, _, err) = xtask_env(&small, dir.path(), &[("GROWLM_MEMORY", "1KiB")]);
    assert!(
        !ok && err.contains("0.00 GiB is available (GROWLM_MEMORY=1KiB)"),
        "{err}"
    );
    assert!(!dir.path().join("r").exists());
    let (ok, out, err) = xtask_env(&small, dir.path(), &[("GROWLM_MEMORY", "off")]);
    assert!(ok && out.contains("done: 4 steps"), "{out}\n{err}");
    let (ok, _, err) = xtask_env(&small, dir.path(), &[("GROWLM_MEMORY", "lots")]);
    assert!(!ok && err.contains("`lots` is not a size"), "{err}");
    // `info` says whether each stage fits.
    let (ok, out, _) = xtask_env(
        &["info", "--config", "c.toml"],
        dir.path(),
        &[("GROWLM_MEMORY", "1KiB")],
    );
    assert!(
        ok && out.contains("stages.0 (`small`)") && out.contains("does NOT fit"),
        "{out}"
    );
}

/// A Hugging Face config whose layer pattern would expand to a billion layers is refused at
/// once (it used to grow to 18.9 GB before the layer bound was checked), and an oversized
/// config.json is refused before it is read.
#[test]
fn a_hostile_hugging_face_config_is_refused_before_it_is_expanded() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    std::fs::create_dir(&model).unwrap();
    let config = |layers: &str, types: &str| {
        format!(
            r#"{{"model_type": "gpt_neo", "vocab_size": 256, "max_position_embeddings": 16,
            "hidden_size": 16, "num_layers": {layers}, "num_heads": 2, "attention_types": {types},
            "window_size": 8, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}}"#
        )
    };
    std::fs::write(
        model.join("config.json"),
        config("1000000000", r#"[[["global"], 1000000000]]"#),
    )
    .unwrap();
    let eval = ["eval", "--model", "m", "--data", "t.txt"];
    std::fs::write(dir.path().join("t.txt"), "some text to score ".repeat(20)).unwrap();
    let (ok, _, err) = xtask(&eval, dir.path());
    assert!(
        !ok && err.contains("num_layers = 1000000000 is larger than growlm supports (4096)"),
        "{err}"
    );
    std::fs::write(
        model.join("config.json"),
        config("2", r#"[[["global"], 9223372036854775807], [["global"], 9]]"#),
    )
    .unwrap();
    let (ok, _, err) = xtask(&eval, dir.path());
    assert!(
        !ok && err.contains("attention_types covers more than 4096 layers"),
        "{err}"
    );
    std::fs::write(model.join("config.json"), vec![b' '; (1 << 20) + 1]).unwrap();
    let (ok, _, err) = xtask(&eval, dir.path());
    assert!(
        !ok && err.contains("more than growlm reads for a model's config.json"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bench_times_a_tiny_config_writes_its_json_and_names_a_missing_stage() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.toml"), testing::TINY).unwrap();
    succeeds(
        &[
            "bench",
            "--config",
            "c.toml",
            "--steps",
            "2",
            "--devices",
            "2",
            "--json",
            "b.json",
        ],
        dir.path(),
    );
    let json = dir.path().join("b.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["devices"], 2);
    for k in [
        "ms_per_step",
        "tokens_per_s",
        "model_flops_per_s",
        "peak_flops_per_s",
        "mfu",
    ] {
        assert!(v[k].as_f64().is_some_and(|x| x > 0.0 && x.is_finite()), "{k}: {v}");
    }
    // tokens/s is batch·seq (4·16) over the step time; MFU is FLOP/s over the peak.
    let ms = v["ms_per_step"].as_f64().unwrap();
    assert!((v["tokens_per_s"].as_f64().unwrap() - 64.0 / (ms / 1e3)).abs() < 1e-6);
    let mfu = v["model_flops_per_s"].as_f64().unwrap() / v["peak_flops_per_s"].as_f64().unwrap();
    assert!((v["mfu"].as_f64().unwrap() - mfu).abs() < 1e-12);
    assert!(v["ms_per_growth"].as_f64().is_some() && v["ms_per_step_masked"].as_f64().is_some());
    refused(
        &["bench", "--config", "c.toml", "--steps", "2", "--stage", "5"],
        dir.path(),
        &["--stage: there is no stage 5"],
    );
}

/// A tokenization SIGKILLed after its first sources resumes to the store of one that ran
/// through: the same manifest (counts, checksums) and the same shards, byte for byte.
#[test]
fn a_tokenization_killed_midway_resumes_to_the_same_store() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("shards")).unwrap();
    let words = [
        "the", "state", "of", "our", "union", "is", "strong", "and", "free", "people",
    ];
    for f in 0..8 {
        let mut text = String::new();
        for d in 0..1500 {
            let body: Vec<&str> = (0..150)
                .map(|i| words[(i * 7 + d * 3 + f + i / 11) % words.len()])
                .collect();
            text += &format!("{{\"text\": \"{} {d}\"}}\n", body.join(" "));
        }
        std::fs::write(dir.path().join(format!("shards/{f}.jsonl")), text).unwrap();
    }
    let prepare = |cache: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_growlm"));
        c.args([
            "train",
            "--config",
            "tiny",
            "--data",
            "shards/*.jsonl",
            "--prepare-data",
        ])
        .args(["--set", "data.tokenizer=\"gpt2\""])
        .current_dir(dir.path())
        .env("GROWLM_CACHE", dir.path().join(cache))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        c
    };
    let store = |cache: &str| {
        let stores = dir.path().join(cache).join("stores");
        std::fs::read_dir(&stores).ok()?.flatten().next().map(|e| e.path())
    };
    assert!(prepare("whole").status().unwrap().success());
    let mut child = prepare("killed").spawn().unwrap();
    let start = Instant::now();
    let mut killed_midway = false;
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(s) = store("killed") {
            if s.join("00001.json").exists() {
                killed_midway = !s.join("manifest.json").exists();
                child.kill().unwrap();
                break;
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.wait().unwrap();
    assert!(
        killed_midway,
        "the tokenization finished before it could be killed; give it more text"
    );
    assert!(prepare("killed").status().unwrap().success());
    let (a, b) = (store("whole").unwrap(), store("killed").unwrap());
    let manifest = |d: &Path| {
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap();
        for s in m["sources"].as_array_mut().unwrap() {
            s["train"]["mtime_ns"] = 0.into();
            s["valid"]["mtime_ns"] = 0.into();
        }
        m
    };
    assert_eq!(manifest(&a), manifest(&b));
    for i in 0..8 {
        for split in ["train", "valid"] {
            let name = format!("{i:05}.{split}.u16");
            assert!(
                std::fs::read(a.join(&name)).unwrap() == std::fs::read(b.join(&name)).unwrap(),
                "{name}"
            );
        }
    }
}

/// A corpus and the run flags of the tests across processes: the tiny config, grown at
/// step 10 of 40, checkpoints every 5 steps.
fn across_processes_fixture() -> (tempfile::TempDir, Vec<String>, std::sync::MutexGuard<'static, ()>) {
    // One such test at a time: they take ports on 127.0.0.1.
    static PORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..8000)
        .map(|i| ["the ", "state ", "of ", "our ", "union ", "is ", "strong. "][(i * 7 + i / 3) % 7])
        .collect();
    std::fs::write(dir.path().join("text.txt"), text).unwrap();
    let args = [
        "train",
        "--config",
        "tiny",
        "--data",
        "text.txt",
        "--max-steps",
        "40",
        "--policy",
        "fixed",
        "--set",
        "policy.steps=[10]",
        "--set",
        "train.checkpoint_every=5",
    ];
    (dir, args.iter().map(|s| s.to_string()).collect(), guard)
}

fn growlm_in(dir: &Path, args: &[String], more: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_growlm"));
    c.args(args)
        .args(more)
        .current_dir(dir)
        .env("GROWLM_CACHE", dir.join("cache"))
        .env("GROWLM_COLLECTIVE_TIMEOUT", "10")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    c
}

/// Runs a command across processes to its end. burn-collective 0.21's global all-reduce
/// sometimes hangs (about one 40-step run in ten here) or fails a rank; the watchdog or the
/// launcher then stops every rank naming it, and the run is continued as a user would,
/// with --resume (at most 3 times); the tests then compare the curve it leaves.
fn across_to_the_end(d: &Path, args: &[String], more: &[&str]) {
    let mut flags: Vec<&str> = more.to_vec();
    for _ in 0..4 {
        let out = growlm_in(d, args, &flags).output().unwrap();
        if out.status.success() {
            return;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let hung = err.contains("no answer from the other ranks") || err.contains("the other ranks were stopped");
        assert!(hung, "{more:?}: {err}");
        if !flags.contains(&"--resume") {
            flags.push("--resume");
        }
    }
    panic!("{more:?}: hung 4 times");
}

fn metric_rows(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["wall_s"] = 0.into();
            v
        })
        .collect()
}

/// 2 processes × 1 peer (on 127.0.0.1), 1 process × 2 peers and 1 process × 1 peer train
/// the same curve through a growth: the first 10 steps within 1e-5, the end within 5e-3.
#[test]
fn two_processes_train_the_curve_of_one_through_a_growth() {
    let (dir, args, _ports) = across_processes_fixture();
    let d = dir.path();
    let run = |more: &[&str]| {
        let out = growlm_in(d, &args, more).output().unwrap();
        assert!(
            out.status.success(),
            "{more:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["--out", "one"]);
    run(&["--out", "threads", "--devices", "2"]);
    across_to_the_end(d, &args, &["--out", "procs", "--nnodes", "2", "--local"]);
    let one = metric_rows(&d.join("one"));
    assert_eq!(one.len(), 40);
    for other in ["threads", "procs"] {
        let rows = metric_rows(&d.join(other));
        assert_eq!(rows.len(), 40, "{other}");
        for (a, b) in one.iter().zip(&rows) {
            assert_eq!(a["stage"], b["stage"], "{other} step {}", a["step"]);
            let (x, y) = (a["train_loss"].as_f64().unwrap(), b["train_loss"].as_f64().unwrap());
            let tol = if a["step"].as_u64().unwrap() <= 10 { 1e-5 } else { 5e-3 };
            assert!((x - y).abs() <= tol, "{other} step {}: {x} vs {y}", a["step"]);
        }
        let last = |r: &[serde_json::Value]| r.iter().rev().find_map(|m| m["val_loss"].as_f64()).unwrap();
        assert!(
            (last(&one) - last(&rows)).abs() <= 5e-3,
            "{other}: final val {} vs {}",
            last(&one),
            last(&rows)
        );
    }
    assert_eq!(one[10]["stage"], 1, "the run grew at step 10");
}

/// A rank SIGKILLed mid-run: the other stops by itself within its timeout with a clear
/// error, and rerunning every rank with --resume gives the uninterrupted run's curve.
#[test]
fn a_killed_rank_stops_the_other_and_the_resume_equals_the_uninterrupted_run() {
    use std::time::{Duration, Instant};
    let (dir, args, _ports) = across_processes_fixture();
    let d = dir.path();
    across_to_the_end(d, &args, &["--out", "whole", "--nnodes", "2", "--local"]);
    // The ranks started by hand (as on two machines), in the launcher's layout.
    let port = growlm::launch::free_ports(growlm::train::Distributed::ports(2) - 1)
        .unwrap()
        .to_string();
    let rank = |r: &str, out: &str| {
        let flags = ["--nnodes", "2", "--node-rank", r, "--master-port", &port, "--out", out];
        growlm_in(d, &args, &flags).spawn().unwrap()
    };
    // One cut run: rank 1 killed once its checkpoint at step 15 is written, 25 steps before
    // the end; rank 0 must stop by itself. burn-collective's global path is not always
    // well behaved, so a cut that goes wrong is tried once more, in a fresh directory.
    let cut = |name: &str| -> Result<(), String> {
        std::fs::create_dir_all(d.join(name).join("ranks")).unwrap();
        let r0 = rank("0", name);
        let mut r1 = rank("1", &format!("{name}/ranks/1"));
        let start = Instant::now();
        let pointer = d.join(name).join("ranks/1/checkpoints/latest");
        while !std::fs::read_to_string(&pointer).is_ok_and(|p| p.contains("15"))
            && start.elapsed() < Duration::from_secs(90)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let rows_at_kill = metric_rows(&d.join(name).join("ranks/1")).len();
        r1.kill().unwrap();
        r1.wait().unwrap();
        let killed = Instant::now();
        let out = r0.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if rows_at_kill >= 40 || metric_rows(&d.join(name)).len() >= 40 {
            return Err(format!("the kill came too late ({rows_at_kill} steps)"));
        }
        if out.status.success() {
            return Err(format!(
                "rank 0 went on without rank 1 (killed after {rows_at_kill} steps): {err}"
            ));
        }
        if killed.elapsed() > Duration::from_secs(30) {
            return Err(format!("rank 0 took {:?} to stop", killed.elapsed()));
        }
        if !(err.contains("rank 0 of 2") || err.contains("collective")) {
            return Err(format!("rank 0 stopped without naming the ranks: {err}"));
        }
        Ok(())
    };
    let name = match cut("cut") {
        Ok(()) => "cut",
        Err(first) => {
            cut("cut2").unwrap_or_else(|second| panic!("first cut: {first}; second cut: {second}"));
            "cut2"
        }
    };
    across_to_the_end(d, &args, &["--out", name, "--nnodes", "2", "--local", "--resume"]);
    assert_eq!(metric_rows(&d.join(name)), metric_rows(&d.join("whole")));
}

/// Two ranks started by hand (as on two machines) on the fixture, on `port`, each with its
/// own extra flags; returns each rank's exit status and error output.
fn two_ranks(dirs: [&Path; 2], args: &[String], port: u16, extra: [&[&str]; 2]) -> Vec<(bool, String)> {
    let port = port.to_string();
    let children: Vec<_> = (0..2)
        .map(|r| {
            let rank = r.to_string();
            let out = format!("rank{r}");
            let mut flags = vec![
                "--nnodes",
                "2",
                "--node-rank",
                &rank,
                "--master-port",
                &port,
                "--out",
                &out,
            ];
            flags.extend_from_slice(extra[r]);
            growlm_in(dirs[r], args, &flags).spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
        })
        .collect()
}

/// Ranks that would train different things are refused at the start, each naming what
/// differs: a config, or the data behind the same config (rank 1 started in a directory
/// whose `text.txt` has other text).
#[test]
fn ranks_that_differ_are_refused_at_the_start_naming_what_differs() {
    let (dir, args, _ports) = across_processes_fixture();
    let d = dir.path();
    let other = d.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let text = std::fs::read_to_string(d.join("text.txt")).unwrap();
    std::fs::write(other.join("text.txt"), text.replace("union", "nation")).unwrap();
    for (rank1_dir, extra, what) in [
        (d, &["--set", "train.lr=0.002"][..], "the ranks differ in the config"),
        (other.as_path(), &[][..], "the ranks differ in the data"),
    ] {
        // burn-collective 0.21's global path sometimes hangs on a call (the watchdog then
        // names it); such a start is tried again on fresh ports.
        let mut tries = Vec::new();
        for _ in 0..3 {
            let port = growlm::launch::free_ports(growlm::train::Distributed::ports(2) - 1).unwrap();
            let ranks = two_ranks([d, rank1_dir], &args, port, [&[], extra]);
            if ranks.iter().any(|(_, e)| e.contains("no answer from the other ranks")) {
                tries.push(format!("{ranks:?}"));
                continue;
            }
            for (r, (ok, err)) in ranks.iter().enumerate() {
                assert!(!ok && err.contains(what), "{extra:?}: rank {r}: {err}");
            }
            assert!(!d.join("rank0/metrics.jsonl").exists(), "{extra:?}: rank 0 trained");
            tries.clear();
            break;
        }
        assert!(tries.is_empty(), "{extra:?} hung 3 times: {tries:?}");
    }
}

/// A port already taken is named, with the flag that moves it; a rank whose master never
/// answers stops within its timeout, naming the address it waited for.
#[test]
fn a_port_in_use_and_an_unreachable_master_are_named() {
    use std::time::{Duration, Instant};
    let (dir, args, _ports) = across_processes_fixture();
    let d = dir.path();
    let port = growlm::launch::free_ports(growlm::train::Distributed::ports(2) - 1).unwrap();
    let taken = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
    let p = port.to_string();
    let rank0 = ["--nnodes", "2", "--node-rank", "0", "--master-port", &p, "--out", "r0"];
    let out = growlm_in(d, &args, &rank0).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(&format!("port {port}")) && err.contains("--master-port"),
        "{err}"
    );
    drop(taken);
    // Rank 1 alone: nobody listens at rank 0's address.
    let rank1 = ["--nnodes", "2", "--node-rank", "1", "--master-port", &p, "--out", "r1"];
    let start = Instant::now();
    let out = growlm_in(d, &args, &rank1).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}: {err}",
        start.elapsed()
    );
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}
