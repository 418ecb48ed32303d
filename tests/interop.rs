//! Hugging Face interop end to end: a trained run exported and read back, a run started
//! from an exported model, and offline growth of a GPT-Neo checkpoint that keeps its
//! function.

mod common;

use std::path::Path;

use burn::optim::AdamWConfig;
use burn::tensor::{Distribution, Int, Tensor};
use burn_flex::Flex;
use common::{metrics, opts, run, scratch, tiny_config, Scratch, TB};
use growlm::hf::{export_model, import_model};
use growlm::model::{AttentionMasks, Gpt, GptConfig};
use growlm::ops::{assign_params, param_values, Growth, GrowthConfig};
use growlm::train::{load_trained, train, InitWeights};

fn logits<B: burn::tensor::backend::Backend>(m: &Gpt<B>, cfg: &GptConfig, seed: u64) -> Vec<f32> {
    let dev = Default::default();
    B::seed(&dev, seed);
    let x = Tensor::<B, 2, Int>::random(
        [3, cfg.context_len],
        Distribution::Uniform(0.0, cfg.vocab_size as f64),
        &dev,
    );
    let masks = AttentionMasks::new(cfg, cfg.context_len, &dev);
    m.forward(x, &masks, None).into_data().to_vec::<f32>().unwrap()
}

#[test]
fn a_trained_run_exports_and_reads_back_bit_for_bit() {
    let dir = Scratch::new();
    let out = dir.path().join("run");
    // Grows at 8 with a 6-step ramp: by step 16 the mask is off.
    run(
        &dir.config(16, true, "name = \"fixed\"\nsteps = [8]"),
        &out,
        false,
        None,
    )
    .unwrap();
    let t = load_trained::<Flex>(&out, &Default::default()).unwrap();
    assert_eq!(t.state.stage, 1);
    let hf = dir.path().join("hf");
    export_model(
        &t.model,
        &t.config,
        &hf,
        None,
        &growlm::data::Tokenizer::byte().hf_files(16),
    )
    .unwrap();
    let back = import_model::<Flex>(&hf, Some(&t.config), &Default::default()).unwrap();
    assert_eq!(logits(&t.model, &t.config, 1), logits(&back.model, &back.config, 1));
}

#[test]
fn a_run_starts_from_an_exported_model() {
    let dir = Scratch::new();
    let src = dir.path().join("src");
    let cfg = dir.config(12, false, "name = \"never\"");
    run(&cfg, &src, false, None).unwrap();
    let t = load_trained::<Flex>(&src, &Default::default()).unwrap();
    let hf = dir.path().join("hf");
    export_model(&t.model, &t.config, &hf, None, &[]).unwrap();
    let m = import_model::<Flex>(&hf, Some(&cfg.stages[0].model), &Default::default()).unwrap();
    let init = InitWeights {
        source: hf.display().to_string(),
        values: param_values::<Flex, _>(&m.model),
    };
    let fresh = dir.path().join("fresh");
    run(&cfg, &fresh, false, None).unwrap();
    let warm = dir.path().join("warm");
    let o = growlm::train::RunOptions {
        init: Some(init.clone()),
        ..opts(&warm, false)
    };
    train::<TB>(&cfg, &o, &growlm::registry(), &Default::default(), &mut []).unwrap();
    // The first step of the warm start sees the trained weights: its loss is the source
    // run's loss level, far below a fresh model's.
    let (f, w, s) = (metrics(&fresh), metrics(&warm), metrics(&src));
    assert!(
        w[0].train_loss < f[0].train_loss - 0.3,
        "{} vs {}",
        w[0].train_loss,
        f[0].train_loss
    );
    assert!((w[0].train_loss - s.last().unwrap().train_loss).abs() < 0.5);
    assert_eq!(
        std::fs::read_to_string(warm.join("init-from.txt")).unwrap().trim(),
        init.source
    );
    // Weights of another shape are refused, naming the parameter.
    let mut wrong = init;
    wrong.values.get_mut("wpe").unwrap().shape = vec![8, 32];
    let o = growlm::train::RunOptions {
        init: Some(wrong),
        ..opts(&dir.path().join("wrong"), false)
    };
    let e = train::<TB>(&cfg, &o, &growlm::registry(), &Default::default(), &mut [])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`wpe`") && e.contains("[8, 32]"), "{e}");
}

#[test]
fn offline_growth_of_the_gpt_neo_fixture_keeps_its_function() {
    // The transformers-made fixture (3 layers: global, local, global) grown 2x in width
    // with HyperCloning and 2x in depth with redundant layers, then written and read back.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/growlm-hf/tests/fixtures/tiny-gpt-neo");
    let mut src = import_model::<TB>(&fixture, None, &Default::default()).unwrap();
    // The fixture's weight matrices have std 0.5 (25x GPT-Neo's init), which with GPT-Neo's
    // unscaled attention scores saturates the softmax and turns f32 rounding of the wider
    // sums into |Δlogit| ~1e-4. Scaled by 0.3 the model is well conditioned (|Δlogit| ~7e-7).
    let scaled = param_values::<TB, _>(&src.model)
        .into_iter()
        .map(|(k, mut t)| {
            if t.shape.len() == 2 {
                t.values.iter_mut().for_each(|v| *v *= 0.3);
            }
            (k, t)
        })
        .collect();
    src.model = assign_params::<TB, _>(src.model, &scaled);
    let mut target = src.config.clone();
    (target.d_model, target.n_heads, target.n_layers, target.ffn_dim) = (32, 4, 6, Some(80));
    for (width, depth) in [("hypercloning", "redundant"), ("fpi", "identity")] {
        let op = GrowthConfig::named(width, depth, 0).unwrap();
        let g = Growth::new(&src.config, &target, &op, 0)
            .apply(&src.model, &AdamWConfig::new().init(), AdamWConfig::new().init())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        export_model(&g.model, &target, dir.path(), None, &[]).unwrap();
        let back = import_model::<Flex>(dir.path(), Some(&target), &Default::default()).unwrap();
        let (a, b) = (logits(&src.model, &src.config, 2), logits(&back.model, &back.config, 2));
        let d = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        // The fixture's random weights give logits of tens: f32 rounding scales with them.
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 1.0);
        assert!(
            d <= 1e-5 * scale,
            "{width}+{depth}: max |Δlogit| {d}, max |logit| {scale}"
        );
    }
}

/// A one-stage tiny config with a BPE of `vocab` tokens trained on `corpus`.
fn bpe_config(corpus: &Path, steps: u64, vocab: usize) -> growlm::train::RunConfig {
    let mut cfg = tiny_config(corpus, steps, false, "name = \"never\"");
    cfg.data.tokenizer = growlm::data::TokenizerKind::Bpe { vocab_size: vocab };
    cfg.stages[0].model.vocab_size = vocab;
    cfg
}

#[test]
fn a_bpe_run_keeps_its_trained_tokenizer_and_exports_it() {
    let dir = Scratch::new();
    let cfg = bpe_config(&dir.corpus, 6, 300);
    let out = dir.path().join("run");
    run(&cfg, &out, false, None).unwrap();
    let json = std::fs::read_to_string(out.join("tokenizer.json")).unwrap();
    let tok = growlm::data::Tokenizer::from_json(cfg.data.tokenizer, &json).unwrap();
    // The corpus' words are merged: fewer ids than bytes.
    let text = std::fs::read(&dir.corpus).unwrap();
    assert!(tok.encode(&text).unwrap().len() * 2 < text.len());
    let t = load_trained::<Flex>(&out, &Default::default()).unwrap();
    let hf = dir.path().join("hf");
    export_model(&t.model, &t.config, &hf, tok.eos(), &tok.hf_files(16)).unwrap();
    assert_eq!(std::fs::read_to_string(hf.join("tokenizer.json")).unwrap(), json);
    assert_eq!(
        import_model::<Flex>(&hf, Some(&t.config), &Default::default())
            .unwrap()
            .config
            .vocab_size,
        300
    );
}

#[test]
fn the_model_vocabulary_follows_the_tokenizer() {
    let base = |extra: &str| {
        format!(
            "[data]\nsource = \"x.txt\"\ntokenizer = \"gpt2\"\n[train]\nbatch_size = 2\nseq_len = 8\nmax_steps = 4\nlr = 1e-3\nwarmup_steps = 0\neval_every = 2\ncheckpoint_every = 2\n\
             [[stages]]\nname = \"a\"\nmodel = {{ context_len = 8, d_model = 8, n_layers = 1, n_heads = 2{extra} }}\n[policy]\nname = \"never\"\n"
        )
    };
    let cfg = growlm::train::RunConfig::from_toml(&base("")).unwrap();
    assert_eq!(cfg.stages[0].model.vocab_size, 50257);
    let e = growlm::train::RunConfig::from_toml(&base(", vocab_size = 256"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("stages.0.model.vocab_size") && e.contains("50257"), "{e}");
    let bad = base("").replace("\"gpt2\"", "{ bpe = { vocab_size = 100 } }");
    let e = growlm::train::RunConfig::from_toml(&bad).unwrap_err().to_string();
    assert!(e.contains("data.tokenizer") && e.contains("258 to 65536"), "{e}");
}

#[test]
fn a_checkpoint_from_before_exact_gpt_neo_is_refused() {
    use burn::module::{Module, Param};
    use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
    let (dir, mut cfg) = scratch(8, false, "name = \"never\"");
    let out = dir.path().join("run");
    run(&cfg, &out, false, None).unwrap();
    // Write the checkpoint's model back with a query bias and without checksums, as
    // growlm wrote them before.
    let ckpt = growlm::train::latest_checkpoint(&out).unwrap();
    let mut m = load_trained::<Flex>(&out, &Default::default()).unwrap().model;
    m.blocks[0].attn.query.bias = Some(Param::from_tensor(Tensor::zeros([16], &Default::default())));
    m.save_file(
        ckpt.join("model"),
        &NamedMpkFileRecorder::<FullPrecisionSettings>::new(),
    )
    .unwrap();
    std::fs::remove_file(ckpt.join("SHA256SUMS")).unwrap();
    let e = load_trained::<Flex>(&out, &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("exact GPT-Neo") && e.contains("step-"), "{e}");
    cfg.train.max_steps = 12;
    let e = run(&cfg, &out, true, None).unwrap_err().to_string();
    assert!(e.contains("exact GPT-Neo"), "{e}");
}

#[test]
fn a_bpe_run_resumes_exactly_with_its_own_tokenizer() {
    let dir = Scratch::new();
    let mut cfg = bpe_config(&dir.corpus, 8, 280);
    // Constant LR: raising max_steps then leaves the schedule of the first steps unchanged.
    cfg.train.schedule = growlm::train::Schedule::Constant;
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    run(&cfg, &a, false, None).unwrap();
    let json = std::fs::read_to_string(a.join("tokenizer.json")).unwrap();
    // The resumed run reads the run directory's tokenizer, not the cache (removed here).
    std::fs::remove_dir_all(a.join("cache")).unwrap();
    let mut longer = cfg.clone();
    longer.train.max_steps = 12;
    run(&longer, &a, true, None).unwrap();
    assert_eq!(std::fs::read_to_string(a.join("tokenizer.json")).unwrap(), json);
    run(&longer, &b, false, None).unwrap();
    assert_eq!(metrics(&a), metrics(&b));
}
