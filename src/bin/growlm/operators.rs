//! `cargo xtask operators`: every growth operator, what it grows, where it comes from, and
//! whether it preserves the function — measured now on probe models (paper Table 1).

use anyhow::Result;
use burn_autodiff::Autodiff;
use burn_flex::Flex;
use growlm::model::GptConfig;
use growlm::ops::{depth, logit_change, width, Depth, GrowthConfig, Width};

/// Logits that move by less than this count as preserved (f32 rounding).
const TOLERANCE: f32 = 1e-5;

/// One probe: `"×2"`-style label, source and target.
type Probe = (&'static str, GptConfig, GptConfig);

fn measure(op: &GrowthConfig, (label, s, t): &Probe) -> String {
    match logit_change::<Autodiff<Flex>>(s, t, op, &Default::default()) {
        Ok(d) if d <= TOLERANCE => format!("{label}: yes ({d:.1e})"),
        Ok(d) => format!("{label}: no ({d:.1e})"),
        Err(_) => format!("{label}: refused"),
    }
}

/// Runs the command.
pub fn run() -> Result<()> {
    let base = GptConfig::new(64, 8, 16, 2, 2);
    let width_probes: [Probe; 2] = [
        ("×2", base.clone(), GptConfig::new(64, 8, 32, 2, 4)),
        ("×1.5", base.clone(), GptConfig::new(64, 8, 24, 2, 3)),
    ];
    let depth_probes: [Probe; 2] = [
        ("2→4", base.clone(), GptConfig::new(64, 8, 16, 4, 2)),
        ("2→3", base.clone(), GptConfig::new(64, 8, 16, 3, 2)),
    ];
    // Llama-family probes: 4 query heads on 2 key/value heads, SwiGLU, RoPE, untied head.
    let llama = |d: usize, layers: usize, heads: usize| GptConfig::llama(64, 8, d, layers, heads, heads / 2);
    let llama_width: [Probe; 2] = [
        ("×2", llama(16, 2, 4), llama(32, 2, 8)),
        ("×1.5", llama(16, 2, 4), llama(24, 2, 6)),
    ];
    let llama_depth: [Probe; 2] = [
        ("2→4", llama(16, 2, 4), llama(16, 4, 4)),
        ("2→3", llama(16, 2, 4), llama(16, 3, 4)),
    ];
    println!("growth operators; function preservation measured now on probe models (max |Δlogit| ≤ {TOLERANCE:.0e})");
    println!(
        "{:<6} {:<13} {:<34} {:<34} reference",
        "grows", "name", "function-preserving (GPT-Neo)", "Llama"
    );
    let row = |kind: &str, name: &str, reference: &str, op: GrowthConfig, probes: [&[Probe; 2]; 2]| {
        let [fp, ll] = probes.map(|ps| ps.iter().map(|p| measure(&op, p)).collect::<Vec<_>>().join(", "));
        println!("{kind:<6} {name:<13} {fp:<34} {ll:<34} {reference}");
    };
    for w in width::ALL {
        let op = GrowthConfig {
            width: Width(w),
            ..GrowthConfig::default()
        };
        row("width", w.name, w.reference, op, [&width_probes, &llama_width]);
    }
    for d in depth::ALL {
        // Depth operators probe with the default width operator, except those that need
        // MSG's masks.
        let op = GrowthConfig {
            depth: Depth(d),
            width: Width::named(if d.op.gates_new_layers() { "msg" } else { "pdg" })?,
            ..GrowthConfig::default()
        };
        row("depth", d.name, d.reference, op, [&depth_probes, &llama_depth]);
    }
    Ok(())
}
