//! Downstream tasks (paper Table 2's columns) against lm-evaluation-harness 0.4.13 on the
//! same local files and the same Hugging Face exports (a byte-level Llama, a byte-level
//! GPT-Neo and a Llama with a trained BPE tokenizer): accuracies equal, perplexities within
//! 1e-4 relative. The fixture, its task YAMLs and the script that recorded lm-eval's numbers
//! are in tests/fixtures/eval/ (make_expected.py). Bad task files are refused naming the
//! file and the line.

use std::path::{Path, PathBuf};

use burn_flex::Flex;
use growlm::lab::downstream::{evaluate, read_task, wikitext_detokenize, Docs, Scorer, TaskFile, TaskKind};

/// Calls `f` with a scorer of an untrained byte-level model whose context is 4 tokens.
fn tiny_scorer(f: impl FnOnce(Scorer<'_, Flex>)) {
    let cfg = growlm::model::GptConfig::new(256, 4, 8, 1, 2);
    let model = cfg.init::<Flex>(0, &Default::default()).unwrap();
    let tokenizer = growlm::data::Tokenizer::byte();
    f(Scorer {
        model: &model,
        config: &cfg,
        mask: None,
        tokenizer: &tokenizer,
        batch: 2,
    })
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval")
}

/// (growlm's task name, its file, lm-eval's task name in the fixture).
const TASKS: [(&str, &str, &str); 6] = [
    ("lambada", "lambada.jsonl", "growlm_lambada"),
    ("wikitext2", "wikitext.jsonl", "growlm_wikitext"),
    // Pages with WikiText's raw spacing, scored detokenized as lm-eval's `wikitext` does.
    ("wikitext2", "wikitext_raw.jsonl", "growlm_wikitext_raw"),
    ("ptb", "ptb.jsonl", "growlm_ptb"),
    ("piqa", "piqa.jsonl", "growlm_piqa"),
    ("choice", "mc.jsonl", "growlm_mc"),
];

#[test]
fn every_task_equals_lm_evaluation_harness_on_every_fixture_model() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap()).unwrap();
    let dev = Default::default();
    let mut checked = 0;
    for model in ["llama-byte", "neo-byte", "llama-bpe"] {
        let m = growlm::interop::for_eval::<Flex>(&fixtures().join("models").join(model), None, &dev).unwrap();
        let scorer = Scorer {
            model: &m.model,
            config: &m.config,
            mask: None,
            tokenizer: &m.tokenizer,
            batch: 8,
        };
        for (name, file, theirs) in TASKS {
            let task = TaskFile {
                name: name.into(),
                kind: TaskKind::named(name).unwrap(),
                path: fixtures().join(file),
            };
            let ours = serde_json::to_value(evaluate(&scorer, &task).unwrap()).unwrap();
            let want = &expected["models"][model]["tasks"][theirs]["results"];
            assert!(want.is_object(), "{model} {theirs}: no recorded results");
            for metric in [
                "acc",
                "acc_norm",
                "perplexity",
                "word_perplexity",
                "byte_perplexity",
                "bits_per_byte",
            ] {
                let Some(w) = want.get(format!("{metric},none")).and_then(|v| v.as_f64()) else {
                    assert!(
                        ours.get(metric).is_none(),
                        "{model} {name}: {metric} lm-eval does not report"
                    );
                    continue;
                };
                let got = ours[metric]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{model} {name}: no {metric}"));
                if metric.starts_with("acc") {
                    assert_eq!(got, w, "{model} {name}: {metric}");
                } else {
                    let rel = (got - w).abs() / w.abs();
                    assert!(
                        rel <= 1e-4,
                        "{model} {name}: {metric} {got} against lm-eval's {w} ({rel:.1e} relative)"
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * (2 + 3 + 3 + 3 + 2 + 2));
}

/// growlm's WikiText detokenizer returns, for every raw fixture page, the text lm-eval's
/// `wikitext_detokenizer` returned (recorded by make_expected.py), character for character;
/// every page is changed by it, so the check is not vacuous.
#[test]
fn the_wikitext_detokenizer_equals_lm_evaluation_harnesss() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap()).unwrap();
    let pages = &expected["detokenized"]["wikitext_raw.jsonl"];
    let pages = pages
        .as_array()
        .expect("make_expected.py records the detokenized pages");
    let Docs::Rolling(raw) = read_task(
        &TaskFile::parse(&format!(
            "wikitext2={}",
            fixtures().join("wikitext_raw.jsonl").display()
        ))
        .unwrap(),
    )
    .unwrap() else {
        panic!("a rolling task")
    };
    assert_eq!(raw.len(), pages.len());
    for (page, want) in raw.iter().zip(pages) {
        let want = want.as_str().unwrap();
        assert_ne!(page, want, "every fixture page has spacing to undo");
        assert_eq!(wikitext_detokenize(page), want);
    }
}

#[test]
fn bad_task_files_are_refused_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |kind: &str, text: &str| {
        let path = dir.path().join(format!("{kind}.jsonl"));
        std::fs::write(&path, text).unwrap();
        let task = TaskFile::parse(&format!("{kind}={}", path.display())).unwrap();
        let e = read_task(&task).unwrap_err().to_string();
        assert!(e.contains(&*path.display().to_string()), "{e}");
        e
    };
    let good = r#"{"goal": "Open a jar", "sol1": "Twist the lid.", "sol2": "Bite it.", "label": 0}"#;
    let e = refused("piqa", &format!("{good}\n{{\"goal\": \"x\",\n"));
    assert!(e.contains("line 2") && e.contains("not a JSON object"), "{e}");
    let e = refused(
        "piqa",
        &format!("{good}\n{good}\n{{\"goal\": \"x\", \"sol1\": \"a\", \"label\": 1}}\n"),
    );
    assert!(e.contains("line 3") && e.contains("no field `sol2`"), "{e}");
    let e = refused("piqa", &good.replace("\"label\": 0", "\"label\": 2"));
    assert!(e.contains("line 1") && e.contains("out of range for 2 choices"), "{e}");
    let e = refused("choice", r#"{"context": "c", "choices": ["a", "b", "c"], "label": -1}"#);
    assert!(e.contains("`label` is -1"), "{e}");
    let e = refused("choice", r#"{"context": "c", "choices": ["a", 3], "label": 0}"#);
    assert!(e.contains("not a string"), "{e}");
    let e = refused("lambada", "\n\n");
    assert!(e.contains("has no example"), "{e}");
    let e = refused("wikitext2", r#"{"title": "no page field"}"#);
    assert!(e.contains("no field `page`"), "{e}");
    let e = refused("lambada", r#"{"text": "oneword"}"#);
    assert!(e.contains("no last word"), "{e}");
    let e = TaskFile::parse("hellaswag=x.jsonl").unwrap_err().to_string();
    assert!(e.contains("unknown task `hellaswag`") && e.contains("choice"), "{e}");
}

#[test]
fn a_document_is_scored_in_rolling_windows_as_lm_eval_cuts_them() {
    // Hand-worked for a context of 4 and the 10 bytes "abcdefghij": the first window
    // predicts a–d after the prefix (end-of-text) token; the second e–h after d; the last,
    // shorter one i–j after f, g and h (the 4 inputs before j).
    tiny_scorer(|scorer| {
        let (windows, tokens) = scorer.rolling("abcdefghij").unwrap();
        let b = |s: &str| s.bytes().map(u16::from).collect::<Vec<_>>();
        let got: Vec<(Vec<u16>, Vec<u16>)> = windows.into_iter().map(|r| (r.context, r.continuation)).collect();
        assert_eq!(tokens, 10);
        assert_eq!(
            got,
            vec![(vec![10], b("abcd")), (b("d"), b("efgh")), (b("fgh"), b("ij"))]
        );
        // A context's trailing spaces move to the continuation, as lm-eval's encoding does.
        let r = scorer.request("the cat ", "sat").unwrap();
        assert_eq!((r.context, r.continuation), (b("the cat"), b(" sat")));
        // An empty context is the prefix token, or the continuation's own first token when it
        // is the prefix token.
        let r = scorer.request("", "ab").unwrap();
        assert_eq!((r.context, r.continuation), (vec![10], b("ab")));
        let r = scorer.request("", "\nab").unwrap();
        assert_eq!((r.context, r.continuation), (vec![10], b("ab")));
        // Scores: one per request, the same whatever the batch.
        let reqs = vec![
            scorer.request("ab", " c").unwrap(),
            scorer.request("abcdefg", "h").unwrap(),
        ];
        let one = Scorer { batch: 1, ..scorer };
        let (x, y) = (scorer.score(&reqs).unwrap(), one.score(&reqs).unwrap());
        for (a, b) in x.iter().zip(&y) {
            assert!((a.loglikelihood - b.loglikelihood).abs() < 1e-5 && a.greedy == b.greedy);
        }
    });
}

/// A continuation longer than the model's context is refused naming its example (a PIQA
/// answer against a 64-byte model, here 4 bytes), and one of exactly context + 1 tokens is
/// refused too, not read from before its window.
#[test]
fn an_answer_longer_than_the_context_is_refused_naming_its_example() {
    tiny_scorer(|scorer| {
        // "abcd" is 4 tokens: it fits; " abcd" is context + 1 and " abcdefgh" more.
        let fits = scorer.request("xyz", "abcd").unwrap();
        assert!(scorer.fits(&fits) && scorer.score(&[fits]).is_ok());
        for cont in [" abcd", " abcdefgh"] {
            let r = scorer.request("xyz", cont).unwrap();
            assert!(!scorer.fits(&r), "{cont}");
            let err = scorer.score(&[r]).unwrap_err().to_string();
            assert!(err.contains("does not fit"), "{cont}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.jsonl");
        let lines = [
            r#"{"context": "a", "choices": ["b", "c"], "label": 0}"#,
            "",
            r#"{"context": "a", "choices": ["b", "a long answer"], "label": 1}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let task = TaskFile {
            name: "choice".into(),
            kind: TaskKind::named("choice").unwrap(),
            path: path.clone(),
        };
        let err = evaluate(&scorer, &task).unwrap_err().to_string();
        for part in [
            "long.jsonl",
            "example 2",
            "14 tokens",
            "context of 4",
            "1 of 4 requests",
            "leave it out",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
    });
}
