//! An experiment's `[eval]` table end to end on a tiny corpus: every finished run scored
//! once and its results kept in the run, the report's downstream table over seeds, a rerun
//! that does not score again, a kept copy that carries them, and the numbers equal to
//! scoring the run directly. The corpus is named relative to the experiment file.

use std::path::Path;

mod common;

use common::{opts, registry};
use growlm_lab::downstream::{evaluate, Scorer, TaskFile, TaskKind};
use growlm_lab::experiment::{run_experiment, silent, ExperimentOptions, DOWNSTREAM_FILE};

fn setup(dir: &Path) -> std::path::PathBuf {
    let words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota"];
    let text: String = (0..3000).map(|i| format!("{} ", words[(i * 7 + i / 5) % 9])).collect();
    std::fs::write(dir.join("corpus.txt"), text).unwrap();
    let base = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny.toml"))
        .unwrap()
        .replace("source = \"sotu\"", "source = \"elsewhere.txt\"");
    // The base config in a folder of its own; the experiment's `sets` name the corpus
    // beside the experiment file, relative to it.
    std::fs::create_dir_all(dir.join("cfg")).unwrap();
    std::fs::write(dir.join("cfg/base.toml"), base).unwrap();
    let piqa: String = (0..6)
        .map(|i| {
            format!(
                "{{\"goal\": \"{} {}\", \"sol1\": \"{}\", \"sol2\": \"{} {}\", \"label\": {}}}\n",
                words[i],
                words[i + 1],
                words[i + 2],
                words[i + 3],
                words[(i * 5) % 9],
                i % 2
            )
        })
        .collect();
    std::fs::write(dir.join("piqa.jsonl"), piqa).unwrap();
    let lambada: String = (0..5)
        .map(|i| {
            format!(
                "{{\"text\": \"{} {} {} {}\"}}\n",
                words[i],
                words[i + 2],
                words[i + 1],
                words[i + 3]
            )
        })
        .collect();
    std::fs::write(dir.join("lambada.jsonl"), lambada).unwrap();
    std::fs::write(
        dir.join("e.toml"),
        "base = \"cfg/base.toml\"\nseeds = [4, 5]\nsets = ['data.source=\"corpus.txt\"', 'train.max_steps=12', 'train.schedule=\"constant\"', 'train.eval_every=3', 'train.checkpoint_every=4']\n\
         [eval]\ntasks = { piqa = \"piqa.jsonl\", lambada = \"lambada.jsonl\" }\nbatch = 4\n\
         [[arm]]\nname = \"late\"\ngrow_at = [9]\n",
    )
    .unwrap();
    dir.join("e.toml")
}

#[test]
fn an_experiments_eval_table_scores_every_run_once_and_reports_over_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let file = setup(dir.path());
    let out = dir.path().join("out");
    let reg = registry();
    let (results, md) = run_experiment(&opts(&file, &out), &reg, &silent).unwrap();
    let labels: Vec<&str> = results.downstream.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels.len(), 3, "{labels:?}");
    assert!(labels.contains(&"late"), "{labels:?}");
    for row in &results.downstream {
        let keys: Vec<&str> = row.metrics.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["lambada.acc", "lambada.perplexity", "piqa.acc", "piqa.acc_norm"]);
        assert!(row.metrics.values().all(|v| v.n == 2 && v.mean.is_finite()), "{row:?}");
    }
    assert!(
        md.contains("## Downstream tasks") && md.contains("piqa.acc_norm"),
        "{md}"
    );
    // The kept numbers are the run's own: scoring its checkpoint directly gives them (the
    // target's, trained alone; the arm ends mid-ramp and is scored with its width mask).
    let run = out.join("target-s5");
    let t = growlm_train::load_trained::<burn_flex::Flex>(&run, &Default::default()).unwrap();
    let tokenizer = t.tokenizer().unwrap();
    let scorer = Scorer {
        model: &t.model,
        config: &t.config,
        mask: None,
        tokenizer: &tokenizer,
        batch: 1,
    };
    let task = TaskFile {
        name: "piqa".into(),
        kind: TaskKind::Piqa,
        path: dir.path().join("piqa.jsonl"),
    };
    let direct = evaluate(&scorer, &task).unwrap();
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join(DOWNSTREAM_FILE)).unwrap()).unwrap();
    assert_eq!(kept["results"][1]["acc"].as_f64(), direct.acc);
    // A rerun does not score again; a kept copy carries the results for --report-only.
    let stamp = |p: &Path| std::fs::metadata(p.join(DOWNSTREAM_FILE)).unwrap().modified().unwrap();
    let before = stamp(&out.join("late-s5"));
    let keep = dir.path().join("kept");
    let with_keep = ExperimentOptions {
        keep: Some(keep.clone()),
        ..opts(&file, &out)
    };
    let (again, _) = run_experiment(&with_keep, &reg, &silent).unwrap();
    assert_eq!(stamp(&out.join("late-s5")), before);
    assert_eq!(again.downstream, results.downstream);
    let report_only = ExperimentOptions {
        report_only: true,
        ..opts(&file, &keep)
    };
    let (rebuilt, _) = run_experiment(&report_only, &reg, &silent).unwrap();
    assert_eq!(rebuilt.downstream, results.downstream);
    // A changed task list scores again.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace(", lambada = \"lambada.jsonl\"", "");
    std::fs::write(&file, text).unwrap();
    let (fewer, _) = run_experiment(&opts(&file, &out), &reg, &silent).unwrap();
    assert!(fewer.downstream.iter().all(|r| r.metrics.len() == 2));
}
