//! `cargo xtask bench`: training throughput of one stage of a config, measured by
//! `growlm::train::measure` (ms/step, tokens/s, FLOP/s, MFU against the matmul peak
//! measured in the same run).

use std::path::PathBuf;

use anyhow::Result;
use growlm::train::{torch, BenchResult, BenchSpec, DeviceKind, TrainError};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Run config (TOML).
    #[arg(long, default_value = "configs/paper-tiny.toml")]
    pub(crate) config: PathBuf,
    /// Stage whose model is timed (0-based) [default: the last].
    #[arg(long)]
    pub(crate) stage: Option<usize>,
    /// Timed steps (after 2 warm-up steps).
    #[arg(long, default_value_t = 10)]
    pub(crate) steps: usize,
    /// Backend.
    #[arg(long, value_enum, default_value_t = crate::Device::Flex)]
    pub(crate) device: crate::Device,
    /// Sequences per step instead of the config's `train.batch_size` (e.g. to fit a
    /// paper-size model on one GPU).
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Data-parallel peers, as `train --devices N` (threads sharing the CPU).
    #[arg(long, default_value_t = 1)]
    pub(crate) devices: usize,
    /// Write the figures as JSON.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Also time the same stage in PyTorch (`benches/torch_reference.py`, with as many
    /// threads as this machine has) in each mode — eager, sdpa and sdpa under
    /// `torch.compile` — and print growlm ÷ each, and ÷ the fastest. Needs `torch` (and
    /// `transformers` for Llama) in `--python`'s environment.
    #[arg(long)]
    pub(crate) against_torch: bool,
    /// The Python that runs the PyTorch side of `--against-torch`.
    #[arg(long, default_value = "python3", requires = "against_torch")]
    pub(crate) python: PathBuf,
}

/// The PyTorch reference script (in the repository's `benches/`).
const TORCH_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/torch_reference.py");

/// Times the stage `a` names on `device`; errors name the flags.
pub(crate) fn measure(a: &BenchArgs, device: DeviceKind) -> Result<BenchResult> {
    let spec = BenchSpec {
        config: growlm::configs::load(&a.config, &[])?,
        name: a.config.display().to_string(),
        stage: a.stage,
        steps: a.steps,
        batch_size: a.batch_size,
        devices: a.devices,
        device_name: device.name().to_string(),
    };
    // The library names its own keys; here they are flags.
    device.dispatch(&spec)?.map_err(|e| match e {
        TrainError::Config { key, reason } if ["stage", "steps", "batch_size", "devices"].contains(&key.as_str()) => {
            anyhow::anyhow!("--{}: {reason}", key.replace('_', "-"))
        }
        e => e.into(),
    })
}

/// The CPU threads PyTorch gets: as many as this machine has.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs the command.
pub fn run(a: BenchArgs) -> Result<()> {
    let script = std::path::Path::new(TORCH_SCRIPT);
    if a.against_torch {
        torch::check_torch(&a.python, script).map_err(|e| anyhow::anyhow!("--against-torch: {e} (--python PATH)"))?;
    }
    let r = measure(&a, a.device.into())?;
    println!("{r}");
    if let Some(p) = &a.json {
        crate::write_file(p, serde_json::to_string_pretty(&r)?.as_bytes())?;
    }
    if a.against_torch {
        let run = |mode| torch::torch_figures(&a.python, script, &a.config, r.stage, a.steps, threads(), mode);
        let all = torch::every_mode(run).map_err(|e| anyhow::anyhow!("--against-torch: {e}"))?;
        for t in &all {
            println!(
                "  {t}\n    growlm ÷ it: {:.2}× tokens/s",
                r.tokens_per_s / t.tokens_per_s
            );
        }
        if let Some(t) = torch::fastest(&all) {
            println!(
                "  growlm ÷ PyTorch's fastest ({}): {:.2}× tokens/s",
                t.device,
                r.tokens_per_s / t.tokens_per_s
            );
        }
    }
    Ok(())
}
