//! A frontier experiment end to end on a tiny corpus (the CI smoke version of
//! `experiments/frontier.toml`): sizes at two budgets, the shorter budget branched from the
//! longest run at the start of its wsd decay — bit for bit the straight run — and a grown
//! arm at the same budgets measured against the envelope.

use std::path::Path;

mod common;

use common::{load_error, registry};
use growlm_lab::experiment::{run_experiment, silent, ExperimentOptions};
use growlm_train::{train, MetricsRow, RunDir, RunOptions};

/// The rows of a run with the wall clock masked.
fn rows(dir: &Path) -> Vec<MetricsRow> {
    RunDir::new(dir)
        .metrics()
        .unwrap()
        .into_iter()
        .map(|r| MetricsRow { wall_s: 0.0, ..r })
        .collect()
}

/// A small corpus of nine words in a fixed order, written into `dir`.
fn tiny_corpus(dir: &Path) -> std::path::PathBuf {
    let words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota"];
    let text: String = (0..3000).map(|i| format!("{} ", words[(i * 7 + i / 5) % 9])).collect();
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, text).unwrap();
    corpus
}

#[test]
fn a_frontier_experiment_branches_cool_downs_bit_for_bit_and_measures_the_arms() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = tiny_corpus(dir.path());
    let tiny = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny.toml")).unwrap();
    let base = tiny.replace(
        "source = \"sotu\"",
        &format!("source = {:?}", corpus.display().to_string()),
    );
    std::fs::write(dir.path().join("base.toml"), base).unwrap();
    let exp = r#"
base = "base.toml"
seeds = [3, 4]
sets = ['train.schedule="wsd"', 'train.warmup_steps=2', 'train.decay_frac=0.2', 'train.eval_every=2', 'train.checkpoint_every=5']
[[size]]
name = "d8"
stage = 0
budgets = [10, 20]
[[size]]
name = "d12"
stage = 1
budgets = [10, 20]
[[size]]
name = "d32"
model = { context_len = 16, d_model = 32, n_layers = 2, n_heads = 4 }
budgets = [10, 20]
[[arm]]
name = "grown"
policy = "convergence"
budgets = [10, 20]
[[arm]]
name = "fr"
budgets = [20]
grow_frac = [0.25, 0.5]
"#;
    let file = dir.path().join("frontier.toml");
    std::fs::write(&file, exp).unwrap();
    let out = dir.path().join("out");
    let opts = common::opts(&file, &out);
    let (results, report) = run_experiment(&opts, &registry(), &silent).unwrap();
    // A kept copy (thinned, no checkpoints, branched cool-downs included) measures the
    // same, and rebuilds the same report on its own.
    let kept = dir.path().join("kept");
    run_experiment(
        &ExperimentOptions {
            keep: Some(kept.clone()),
            seeds: None,
            ..opts.clone()
        },
        &registry(),
        &silent,
    )
    .unwrap();
    let only = ExperimentOptions {
        out: kept.clone(),
        report_only: true,
        ..opts.clone()
    };
    let (again, _) = run_experiment(&only, &registry(), &silent).unwrap();
    assert!(again.missing.is_empty() && !kept.join("d12-20-s3/snapshots").exists());
    let frontier = |r: &growlm_lab::experiment::Results| serde_json::to_string(&r.frontier).unwrap();
    assert_eq!(frontier(&results), frontier(&again));
    // The trend reads an arm back from the kept copy: its ×frontier, the corpus and the
    // grown model's parameters, and draws it with the corpus in the legend.
    use growlm_lab::trend;
    let arm = results
        .frontier
        .as_ref()
        .unwrap()
        .arms
        .iter()
        .find(|a| a.arm == "fr-20-at50")
        .unwrap();
    let p = trend::point(&kept, "fr-20-at50").unwrap();
    assert_eq!(
        (Some(p.x_frontier), p.gap, p.seeds.clone()),
        (arm.x_frontier, arm.iso_flop_gap, vec![3, 4])
    );
    let cfg = RunDir::new(out.join("fr-20-at50-s3")).config().unwrap();
    assert_eq!(p.params, cfg.stages.last().unwrap().model.num_params());
    assert_eq!(p.corpus, "corpus");
    let fig = dir.path().join("trend.svg");
    trend::trend_svg(&fig, "t", std::slice::from_ref(&p)).unwrap();
    assert!(std::fs::read_to_string(&fig).unwrap().contains("corpus (2 seeds)"));
    assert!(trend::markdown(&[p]).contains("| corpus |"));
    let e = trend::point(&kept, "nope").unwrap_err().to_string();
    assert!(e.contains("no arm `nope`") && e.contains("fr-20-at25"), "{e}");
    // No small/target references: the sizes are the references.
    assert!(!out.join("small-s3").exists() && !out.join("target-s3").exists());
    // The 20-step run kept a snapshot where the 10-step budget's decay begins (10 − 2 = 8),
    // and the 10-step run branched from it.
    assert!(RunDir::new(out.join("d12-20-s3"))
        .path()
        .join("snapshots/step-000000008")
        .is_dir());
    let short = RunDir::new(out.join("d12-10-s3"));
    assert!(short.is_branched());

    // Bit for bit: the branched cool-down equals a straight run with that budget.
    let cfg = short.config().unwrap();
    let straight = dir.path().join("straight");
    let o = RunOptions {
        cache_dir: dir.path().join("cache"),
        ..RunOptions::new(&straight)
    };
    train::<burn_autodiff::Autodiff<burn_flex::Flex>>(&cfg, &o, &registry(), &Default::default(), &mut []).unwrap();
    assert_eq!(rows(short.path()), rows(&straight));
    assert_eq!(
        short.summary().unwrap().final_val_loss.to_bits(),
        RunDir::new(&straight).summary().unwrap().final_val_loss.to_bits()
    );

    // The frontier: an envelope per seed, every size at every budget, the arm measured.
    let f = results.frontier.expect("a frontier experiment has frontier results");
    assert_eq!(f.envelopes.iter().map(|e| e.seed).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(f.sizes.len(), 6);
    assert!(f
        .sizes
        .iter()
        .all(|s| s.final_val_loss.n == 2 && s.final_val_loss.ci.is_some()));
    let labels: Vec<&str> = f.arms.iter().map(|a| a.arm.as_str()).collect();
    assert_eq!(labels, ["grown-10", "grown-20", "fr-20-at25", "fr-20-at50"]);
    // A `grow_frac` cell grows once, after round(fraction x budget) steps.
    for (label, frac, step) in [("fr-20-at25", 0.25, 5), ("fr-20-at50", 0.5, 10)] {
        let a = f.arms.iter().find(|a| a.arm == label).unwrap();
        assert_eq!((a.name.as_str(), a.budget, a.grow_frac), ("fr", Some(20), Some(frac)));
        for seed in [3, 4] {
            let s = RunDir::new(out.join(format!("{label}-s{seed}"))).summary().unwrap();
            assert_eq!((s.growth_steps.as_slice(), s.steps), (&[step][..], 20), "{label}");
        }
    }
    for a in &f.arms {
        assert_eq!(a.seeds, [3, 4]);
        assert!(a.growth_factor.is_some_and(|g| g > 1.0), "{a:?}");
        assert!(
            a.x_target.is_some(),
            "the Table 2 measure against d12's longest run: {a:?}"
        );
        let measured = a.x_frontier.is_some() as usize + a.iso_flop_gap.is_some() as usize;
        assert!(measured > 0 || a.outside > 0, "{a:?}");
    }
    // Each row's gap is its loss minus the envelope there, by the envelope's own numbers.
    for (row, seed) in f.rows.iter().zip([3, 3, 3, 3, 4, 4, 4, 4]) {
        let env = &f.envelopes.iter().find(|e| e.seed == seed).unwrap().envelope;
        if let Some(g) = row.iso_flop_gap {
            assert!((g - (row.final_val_loss - env.loss_at(row.flops).unwrap())).abs() < 1e-12);
        }
    }
    // The law over the 12 size runs predicts every grown arm from its runs' growth steps.
    let law = f.law.as_ref().expect("3 sizes at 2 budgets fit the law");
    assert_eq!(law.fit.points, 12);
    assert_eq!(law.cells.len(), 4);
    let cell = law.cells.iter().find(|c| c.arm == "fr-20-at25").unwrap();
    let cfg = RunDir::new(out.join("fr-20-at25-s3")).config().unwrap();
    let pair = growlm_lab::solve::budget::growth_pair(&cfg).unwrap();
    assert!((cell.predicted - pair.grown(&law.fit.law, 5, 20).loss).abs() < 1e-12);
    assert!((cell.error - (cell.predicted - cell.measured.mean)).abs() < 1e-12);
    assert_eq!(law.within, law.cells.iter().filter(|c| c.error.abs() <= 0.01).count());
    assert!(report.contains("the law L(N, D) against the grown arms"), "{report}");
    // Calibrated: the law anchored at the size runs, with a transfer fitted to the other
    // arms' runs (leave one arm out), predicts the arm's runs.
    use growlm_lab::solve::budget::{answer, grown_point, law_points, Budget, BudgetInputs};
    use growlm_solver::{Anchored, GrowthLaw, Transfer};
    let runs: Vec<std::path::PathBuf> = ["d8", "d12", "d32"]
        .iter()
        .flat_map(|s| [10, 20].map(|b| [3, 4].map(|seed| out.join(format!("{s}-{b}-s{seed}")))))
        .flatten()
        .collect();
    let named = |p: &std::path::PathBuf| (p.file_name().unwrap().to_string_lossy().into_owned(), RunDir::new(p));
    let (points, _) = law_points(&runs.iter().map(named).collect::<Vec<_>>()).unwrap();
    let grown_dirs = |arms: &[&str]| -> Vec<std::path::PathBuf> {
        arms.iter()
            .flat_map(|a| [3, 4].map(|seed| out.join(format!("{a}-s{seed}"))))
            .collect()
    };
    let others: Vec<_> = grown_dirs(&["grown-10", "grown-20", "fr-20-at50"])
        .iter()
        .map(|p| grown_point(&RunDir::new(p)).unwrap())
        .collect();
    let anchored = Anchored::new(law.fit.law, &points);
    let model = GrowthLaw {
        transfer: Transfer::fit(&anchored, &others).unwrap().transfer,
        law: anchored,
    };
    let k = cell
        .calibrated
        .expect("6 runs of the other arms calibrate the transfer");
    assert!((k.predicted - pair.grown(&model, 5, 20).loss).abs() < 1e-12, "{k:?}");
    assert!((k.error - (k.predicted - cell.measured.mean)).abs() < 1e-12);
    assert_eq!(law.transfer.map(|t| t.runs), Some(8));
    assert_eq!(law.calibrated, 4);
    assert!(report.contains("leave one arm out"), "{report}");
    // `solve --budget` on the same runs: the same law, every size alone at the budget, and
    // the lowest predicted loss recommended.
    let inputs = BudgetInputs {
        runs: runs.clone(),
        config: dir.path().join("base.toml"),
        edits: vec![],
        budget: Budget::Flops(f.rows[0].flops),
        grown: vec![],
        carried: None,
        grow_at: vec![],
    };
    let r = answer(&inputs).unwrap();
    // The same points (in another order: the optimum of these tiny runs is flat in E and B,
    // so the parameters may differ, the fit's quality not).
    assert_eq!(r.fit.points, law.fit.points);
    assert!((r.fit.rmse - law.fit.rmse).abs() < 1e-4, "{:?} vs {:?}", r.fit, law.fit);
    assert_eq!(r.answer.alone.len(), 3);
    let lowest = r
        .answer
        .alone
        .iter()
        .chain([&r.answer.best_growth])
        .map(|o| o.loss)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(r.answer.recommended.loss, lowest);
    assert!(r.policy.contains("name = \"solver\"") && r.policy.contains("law = {"));
    // The policy table it prints builds the `solver` policy.
    let table: toml::Table = toml::from_str(&r.policy).unwrap();
    let mut reg = registry();
    growlm_policy_solver::register(&mut reg);
    reg.build("solver", table["policy"].as_table().unwrap()).unwrap();
    assert!(r.transfer.is_none());
    // With grown runs, the transfer is fitted to them and the growth predicted by it.
    let all = grown_dirs(&["grown-10", "grown-20", "fr-20-at25", "fr-20-at50"]);
    let c = answer(&BudgetInputs {
        grown: all.clone(),
        ..inputs.clone()
    })
    .unwrap();
    let t = c.transfer.expect("8 grown runs");
    assert_eq!(t.runs, 8);
    let model = GrowthLaw {
        law: Anchored::new(c.fit.law, &points),
        transfer: t.transfer,
    };
    let g = &c.answer.best_growth;
    assert_eq!(g.loss, c.pair.grown(&model, g.grow_at.unwrap(), g.steps).loss);
    // The same transfer carried over as given (no grown run) predicts the same.
    let carried = answer(&BudgetInputs {
        carried: Some(t.transfer),
        ..inputs.clone()
    })
    .unwrap();
    assert!(carried.transfer.is_none() && carried.carried == Some(t.transfer));
    assert_eq!(carried.answer.best_growth.loss, c.answer.best_growth.loss);
    assert_eq!(carried.policy, c.policy);
    assert!(carried.to_string().contains("carried over as given"), "{carried}");
    // Growth steps asked for are predicted by the same model; they need a budget in steps.
    let cells = answer(&BudgetInputs {
        carried: Some(t.transfer),
        budget: Budget::Steps(20),
        grow_at: vec![5, 10],
        ..inputs.clone()
    })
    .unwrap();
    for (o, g) in cells.at.iter().zip([5, 10]) {
        assert_eq!(o.loss, c.pair.grown(&model, g, 20).loss);
        assert!(cells.to_string().contains(&format!("grow at {g}")), "{cells}");
    }
    // Pre-registered: that prediction, written as `solve --json` writes it and named by the
    // experiment, is set beside each grown arm of its budget at the step its runs took.
    std::fs::write(
        dir.path().join("prediction.json"),
        serde_json::to_string(&cells).unwrap(),
    )
    .unwrap();
    let registered = dir.path().join("registered.toml");
    std::fs::write(&registered, format!("prediction = \"prediction.json\"\n{exp}")).unwrap();
    let (pre, pre_report) = run_experiment(
        &ExperimentOptions {
            file: registered,
            report_only: true,
            ..opts.clone()
        },
        &registry(),
        &silent,
    )
    .unwrap();
    let mut named = pre.frontier.unwrap().preregistered;
    assert_eq!(named.len(), 1, "the experiment names one prediction");
    let p = named.remove(0);
    assert_eq!(p.best_at, cells.answer.best_growth.grow_at);
    for (label, i) in [("fr-20-at25", 0), ("fr-20-at50", 1)] {
        let c = p.cells.iter().find(|c| c.arm == label).expect(label);
        let o = &cells.at[i];
        assert!(
            c.exact && c.predicted_at == [o.grow_at.unwrap()] && c.grew_at == c.predicted_at,
            "{c:?}"
        );
        assert_eq!((c.predicted, c.predicted_x), (o.loss, o.x_frontier));
        assert!((c.error - (c.predicted - c.measured.mean)).abs() < 1e-12);
        let x = o.x_frontier.expect("the law reaches the arm's loss");
        assert_eq!(c.predicted_grow, x > 1.0);
        assert_eq!(c.right, c.measured_best.agrees(x > 1.0));
    }
    // The 10-step arm is not of the budget predicted; every other arm with a gap is.
    assert!(p.cells.iter().all(|c| c.arm != "grown-10"));
    let with_gap = f
        .arms
        .iter()
        .filter(|a| a.budget == Some(20) && a.iso_flop_gap.is_some());
    assert_eq!(p.cells.len(), with_gap.count());
    assert_eq!(p.within, p.cells.iter().filter(|c| c.error.abs() <= 0.01).count());
    assert!(
        pre_report.contains("### Pre-registered") && pre_report.contains("| fr-20-at25 | 5 | 5 |"),
        "{pre_report}"
    );
    // A list of predictions (one per budget) sets each beside its arms: the same file
    // twice gives the same comparison twice.
    let listed = dir.path().join("listed.toml");
    std::fs::write(
        &listed,
        format!("prediction = [\"prediction.json\", \"prediction.json\"]\n{exp}"),
    )
    .unwrap();
    let (both, _) = run_experiment(
        &ExperimentOptions {
            file: listed,
            report_only: true,
            ..opts.clone()
        },
        &registry(),
        &silent,
    )
    .unwrap();
    let both = both.frontier.unwrap().preregistered;
    let json = |p: &growlm_lab::experiment::Preregistered| serde_json::to_string(p).unwrap();
    assert_eq!(both.len(), 2);
    assert!(both.iter().all(|b| json(b) == json(&p)));
    // A file that is not a prediction is refused by name.
    std::fs::write(dir.path().join("prediction.json"), "{}").unwrap();
    let e = run_experiment(
        &ExperimentOptions {
            file: dir.path().join("registered.toml"),
            report_only: true,
            ..opts.clone()
        },
        &registry(),
        &silent,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("prediction.json") && e.contains("solve --budget"), "{e}");
    for (budget, at) in [(Budget::Steps(20), 20), (Budget::Flops(1e9), 5)] {
        let e = answer(&BudgetInputs {
            budget,
            grow_at: vec![at],
            ..inputs.clone()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("growth step") || e.contains("budget in steps"), "{e}");
    }
    // A carried transfer with grown runs to fit another is refused.
    let e = answer(&BudgetInputs {
        carried: Some(t.transfer),
        ..BudgetInputs {
            grown: all.clone(),
            ..inputs.clone()
        }
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("give one of the two"), "{e}");
    // Its policy table carries the transfer and the anchors to the `solver` policy.
    let table: toml::Table = toml::from_str(&c.policy).unwrap();
    let p = reg.build("solver", table["policy"].as_table().unwrap()).unwrap();
    assert!(p.describe().contains("transfer μ"), "{}", p.describe());
    assert_eq!(
        table["policy"]["anchors"].as_array().map(Vec::len),
        Some(model.law.rows().len())
    );
    // A run that never grew is refused by name.
    let e = answer(&BudgetInputs {
        grown: vec![runs[0].clone()],
        ..inputs.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("d8-10-s3") && e.contains("grew 0 times"), "{e}");
    // An unfinished run is refused by name.
    let e = answer(&BudgetInputs {
        runs: vec![dir.path().join("nope")],
        ..inputs
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("nope") && e.contains("not a finished run"), "{e}");
    // The cost: every seed done; the branches counted from their branch point.
    assert_eq!(f.cost.seeds, 2);
    assert!(f.cost.ratio > 1.0 && f.cost.sizes_s > f.cost.largest_s, "{:?}", f.cost);
    let own = short.own_wall_s().unwrap();
    assert!(own >= 0.0 && own < short.summary().unwrap().wall_s, "{own}");
    assert!(
        report.contains("## The compute-optimal frontier") && report.contains("| grown-20 |"),
        "{report}"
    );
    assert!(out.join("frontier.svg").is_file() && out.join("loss-flops.svg").is_file());
}

#[test]
fn bad_sizes_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let write = |text: &str| load_error(dir.path(), text);
    let arm = "[[arm]]\nname = \"a\"\npolicy = \"convergence\"\n";
    let e = write(&format!("base = \"x\"\n[[size]]\nname = \"s\"\nbudgets = [10]\n{arm}"));
    assert!(e.contains("size `s` needs exactly one of `stage`"), "{e}");
    let e = write(&format!("base = \"x\"\n[[size]]\nname = \"s\"\nstage = 0\n{arm}"));
    assert!(e.contains("size `s` needs exactly one of `budgets`"), "{e}");
    let e = write(&format!(
        "base = \"x\"\n[[size]]\nname = \"a\"\nstage = 0\nflops = [1e12]\n{arm}"
    ));
    assert!(e.contains("named `a`"), "{e}");
    let e = write("base = \"x\"\n[[arm]]\nname = \"a\"\ngrow_at = 5\nbudgets = [10]\n");
    assert!(e.contains("`budgets` needs `policy`"), "{e}");
    let frac = |f: &str| {
        write(&format!(
            "base = \"x\"\n[[arm]]\nname = \"a\"\nbudgets = [10]\ngrow_frac = {f}\n"
        ))
    };
    let e = frac("[1.0]");
    assert!(
        e.contains("`grow_frac` 1 is not a fraction of the budget in (0, 1)"),
        "{e}"
    );
    let e = frac("[0.251, 0.249]");
    assert!(e.contains("round to the same percent"), "{e}");
    let e = write("base = \"x\"\n[[arm]]\nname = \"a\"\ngrow_frac = [0.5]\n");
    assert!(e.contains("`grow_frac` needs `budgets`"), "{e}");
    // Planned against the tiny fixture: two runs of one directory, and the keys that need
    // the small and target references, are refused.
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny.toml");
    let plan = |text: &str| {
        let p = dir.path().join("p.toml");
        std::fs::write(&p, format!("base = {:?}\n{text}", tiny.display().to_string())).unwrap();
        let exp = growlm_lab::Experiment::load(&p).unwrap();
        growlm_lab::chain(&exp.jobs(dir.path(), &tiny).unwrap_err())
    };
    let e = plan("[[size]]\nname = \"a\"\nstage = 0\nbudgets = [100]\n[[arm]]\nname = \"a-100\"\npolicy = \"never\"\n");
    assert!(e.contains("share the directory `a-100-s3`"), "{e}");
    let e = plan(
        "solve = true\n[[size]]\nname = \"a\"\nstage = 0\nbudgets = [100]\n[[arm]]\nname = \"g\"\npolicy = \"never\"\n",
    );
    assert!(e.contains("`solve`"), "{e}");
}

/// A scale study in small (the CI smoke version of experiments/llama-d64.toml with its
/// pre-registration, docs/solver.md): the recipe at width 8 measured whole, its transfer
/// fitted; the same recipe at width 16 trains its sizes only, is predicted from them and the
/// transfer carried over as given, the prediction written before
/// any grown run of that scale exists; then its arms train and the report sets them beside
/// the prediction; the trend reads both scales back.
#[test]
fn a_scale_study_is_predicted_before_its_arms_run() {
    use growlm_lab::solve::budget::{answer, Budget, BudgetInputs};
    use growlm_lab::trend;
    let dir = tempfile::tempdir().unwrap();
    let corpus = tiny_corpus(dir.path());
    let model = |d: usize, l: usize| {
        format!("family = \"llama\"\ncontext_len = 16\nd_model = {d}\nn_layers = {l}\nn_heads = 2\nn_kv_heads = 1\nffn_dim = {}\ntie_embeddings = true\n", d * 11 / 4)
    };
    let scale = |d: usize| -> std::path::PathBuf {
        let base = format!(
            "seed = 0\n[data]\nsource = {:?}\nvalid_batches = 2\n[train]\nbatch_size = 4\nseq_len = 16\nmax_steps = 20\nlr = 0.01\nmin_lr = 0.001\nwarmup_steps = 2\nschedule = \"wsd\"\ndecay_frac = 0.2\neval_every = 2\ncheckpoint_every = 5\n[[stages]]\nname = \"small\"\n[stages.model]\n{}[[stages]]\nname = \"target\"\n[stages.model]\n{}[stages.growth]\ndepth = \"stack\"\nramp_steps = 2\n[policy]\nname = \"never\"\n",
            corpus.display().to_string(),
            model(d, 2),
            model(d, 4)
        );
        std::fs::write(dir.path().join(format!("base{d}.toml")), base).unwrap();
        let exp = format!(
            "base = \"base{d}.toml\"\nseeds = [0, 1]\n[[size]]\nname = \"two\"\nstage = 0\nbudgets = [10, 20]\n[[size]]\nname = \"three\"\nmodel = {{ family = \"llama\", context_len = 16, d_model = {d}, n_layers = 3, n_heads = 2, n_kv_heads = 1, ffn_dim = {}, tie_embeddings = true }}\nbudgets = [10, 20]\n[[size]]\nname = \"four\"\nstage = 1\nbudgets = [10, 20]\n[[arm]]\nname = \"at\"\nbudgets = [20]\ngrow_frac = [0.25, 0.5]\n",
            d * 11 / 4
        );
        let file = dir.path().join(format!("scale{d}.toml"));
        std::fs::write(&file, exp).unwrap();
        file
    };
    let opts = |file: std::path::PathBuf, d: usize| common::opts(&file, &dir.path().join(format!("out{d}")));
    // The scale below, measured whole; its transfer fitted to its grown runs.
    let small = opts(scale(8), 8);
    run_experiment(&small, &registry(), &silent).unwrap();
    let runs = |out: &Path, names: &[&str]| -> Vec<std::path::PathBuf> {
        names
            .iter()
            .flat_map(|n| [0, 1].map(|s| out.join(format!("{n}-s{s}"))))
            .collect()
    };
    let sizes = ["two-10", "two-20", "three-10", "three-20", "four-10", "four-20"];
    let below = answer(&BudgetInputs {
        runs: runs(&small.out, &sizes),
        config: dir.path().join("base8.toml"),
        edits: vec![],
        budget: Budget::Steps(20),
        grown: runs(&small.out, &["at-20-at25", "at-20-at50"]),
        carried: None,
        grow_at: vec![],
    })
    .unwrap();
    let t = below.transfer.expect("4 grown runs fit the transfer").transfer;
    // The scale above: its sizes only, then the prediction, before any grown run exists.
    let file = scale(16);
    let big = opts(file.clone(), 16);
    let (sized, _) = run_experiment(
        &ExperimentOptions {
            sizes_only: true,
            ..big.clone()
        },
        &registry(),
        &silent,
    )
    .unwrap();
    assert!(
        sized.missing.iter().any(|m| m.starts_with("at-20-at25")),
        "{:?}",
        sized.missing
    );
    assert!(!big.out.join("at-20-at25-s0").exists());
    let ratio = below.pair.target.params;
    let prediction = answer(&BudgetInputs {
        runs: runs(&big.out, &sizes),
        config: dir.path().join("base16.toml"),
        edits: vec![],
        budget: Budget::Steps(20),
        grown: vec![],
        carried: Some(t),
        grow_at: vec![5, 10],
    })
    .unwrap();
    let ratio = prediction.pair.target.params / ratio;
    assert!(ratio > 3.0, "width 16 has about 4x the parameters of width 8: {ratio}");
    assert!(prediction.at.iter().all(|o| o.x_frontier.is_some()), "{prediction}");
    std::fs::write(
        dir.path().join("prediction16.json"),
        serde_json::to_string(&prediction).unwrap(),
    )
    .unwrap();
    let registered = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("prediction = \"prediction16.json\"\n{registered}")).unwrap();
    // Then the arms: the sizes are reused, and each arm is set beside its prediction.
    let (results, report) = run_experiment(&big, &registry(), &silent).unwrap();
    assert!(results.missing.is_empty());
    let f = results.frontier.unwrap();
    let p = f
        .preregistered
        .first()
        .cloned()
        .expect("the experiment names its prediction");
    for (label, i) in [("at-20-at25", 0), ("at-20-at50", 1)] {
        let Some(c) = p.cells.iter().find(|c| c.arm == label) else {
            // An arm outside the envelope on every seed has no gap to be right about.
            assert!(f.arms.iter().any(|a| a.arm == label && a.iso_flop_gap.is_none()));
            continue;
        };
        assert!(c.exact, "{c:?}");
        assert_eq!(c.predicted, prediction.at[i].loss);
    }
    assert!(!p.cells.is_empty() && report.contains("### Pre-registered"), "{report}");
    // The trend over the two scales: the grown model's parameters grow 4-fold.
    let points: Vec<_> = [&small.out, &big.out]
        .iter()
        .filter_map(|d| trend::point(d, "at-20-at50").ok())
        .collect();
    assert_eq!(points.len(), 2, "both scales' arm is inside its envelope");
    assert!(points[1].params as f64 / points[0].params as f64 > 3.0);
    let fig = dir.path().join("trend.svg");
    trend::trend_svg(&fig, "trend", &points).unwrap();
    assert!(fig.is_file());
}
