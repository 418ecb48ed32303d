//! `growlm` (and `cargo xtask`, which runs this same binary in place): the growlm command
//! line for the GPT-Neo, Llama and Qwen2 families — train, policies, operators, solve, compare,
//! experiment, bench, replay, trend, export, grow, eval, info. `cargo install --path .`
//! installs it; the shipped configs travel inside it (`growlm::configs`).

mod bench;
mod compare;
mod eval;
mod experiment;
mod export;
mod gpu_check;
mod grow;
mod info;
mod operators;
mod replay;
mod solve;
mod trend;

use std::path::PathBuf;

/// mimalloc keeps freed pages for reuse: with the system allocator a training step spent a
/// quarter of its time in page faults, as each step's large activation buffers went back to
/// the kernel and were faulted in again (docs/speed.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the mimalloc (v3) that libmimalloc-sys 0.1.49 builds.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory mapped instead of purging it after mimalloc's delay: a step's 8 MB
/// activation buffers were purged between steps and faulted back in as fresh (zeroed)
/// huge pages, 13,000–25,000 faults per d=256 bench, against about 600 without purging,
/// and 5–15% of the step (docs/speed.md). A training process holds its peak memory
/// anyway. `MIMALLOC_PURGE_DELAY` in the environment still decides when it is set.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an allocator option by its index; valid for the pinned version.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use growlm::train::{run_on, DeviceKind, Edit, Progress, RunDir, RunOptions};

#[derive(Parser)]
#[command(
    name = "growlm",
    about = "growlm: progressive pre-training of GPT-Neo, Llama and Qwen2 models by model growth",
    after_help = "`cargo xtask …` in the repository runs this same command."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a (staged) run from a TOML config.
    Train(TrainArgs),
    /// List the registered growth-schedule policies.
    Policies,
    /// List the growth operators with their function preservation, measured now.
    Operators,
    /// Fit loss curves and predict the optimal growth point (paper §3.2, eq. 1–3).
    Solve(solve::SolveArgs),
    /// Equal-loss speed-up of runs against a from-scratch reference (paper Table 2).
    Compare(compare::CompareArgs),
    /// Run an experiment: references, arms branched from the small reference, a report.
    Experiment(experiment::ExperimentArgs),
    /// Training throughput of a stage: ms/step, tokens/s, FLOP/s and MFU.
    Bench(bench::BenchArgs),
    /// Where a policy would grow on an existing run's validation curve.
    Replay(replay::ReplayArgs),
    /// ×frontier of one arm of each kept frontier experiment against the grown model's parameters
    Trend(trend::TrendArgs),
    /// A PNG next to each SVG figure: the files given, and every `.svg` in the directories given.
    Png {
        /// SVG files, or directories of them (an experiment's output, docs/figures).
        paths: Vec<PathBuf>,
        /// Pixels per SVG unit.
        #[arg(long, default_value_t = 2.0)]
        scale: f32,
    },
    /// Write a run's model as a Hugging Face directory (GPT-Neo, Llama or Qwen2).
    Export(export::ExportArgs),
    /// Grow a Hugging Face GPT-Neo, Llama or Qwen2 model offline into a stage's model, with a mask-free operator.
    Grow(grow::GrowArgs),
    /// Mean next-token loss and perplexity of a model on a text.
    Eval(eval::EvalArgs),
    /// Parameter counts, FLOPs per step and memory of each stage of a config.
    Info(info::InfoArgs),
    /// The checks that need a GPU (forward, growth, resume, throughput) on CUDA, as one report.
    GpuCheck(gpu_check::GpuCheckArgs),
}

/// The backend that trains the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Device {
    /// burn-flex on the CPU.
    Flex,
    /// burn-ndarray on the CPU.
    Ndarray,
    /// burn-cuda on the first GPU (needs a build with the `cuda` feature).
    Cuda,
}

impl From<Device> for DeviceKind {
    fn from(d: Device) -> Self {
        match d {
            Device::Flex => DeviceKind::Flex,
            Device::Ndarray => DeviceKind::NdArray,
            Device::Cuda => DeviceKind::Cuda,
        }
    }
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Run config (TOML) [default: configs/default.toml, carried inside the command, so it
    /// runs from any directory; on --resume, the run directory's config.toml]. A shipped
    /// config may be named without its file: `--config llama-d64`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override a config key with a TOML value, e.g. `--set train.lr=1e-3`,
    /// `--set stages.1.growth.ramp_steps=50`, `--set policy.threshold=0.1` (repeatable;
    /// `stages.N` indexes the stage list from 0).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Backend.
    #[arg(long, value_enum, default_value_t = Device::Flex)]
    device: Device,
    /// Corpus instead of the config's (`--set data.source=PATH`): text, JSONL, Parquet, a directory, a glob.
    #[arg(long)]
    data: Option<String>,
    /// Run directory (default: `runs/CONFIG_NAME`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Same as `--set train.max_steps=N`.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Same as `--set seed=N`.
    #[arg(long)]
    seed: Option<u64>,
    /// Growth-schedule policy (replaces the config's `[policy]` unless it names the same).
    #[arg(long)]
    policy: Option<String>,
    /// Train only stage N of the config from scratch (policy `never`): the reference
    /// curves the solver needs, e.g. `--only-stage 1` for the target model.
    #[arg(long)]
    only_stage: Option<usize>,
    /// Continue the run in --out from its last checkpoint. Only `train.max_steps` may be
    /// raised (and the device changed); anything else that differs is refused.
    #[arg(long)]
    resume: bool,
    /// Start stage 0 from a Hugging Face GPT-Neo, Llama or Qwen2 directory (`config.json` must describe
    /// stage 0's model); the optimizer starts fresh.
    #[arg(long, conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    /// Data parallelism: split each batch over N devices of the backend (N CUDA GPUs, or
    /// N threads sharing the CPU) and average their gradients with burn's collective
    /// all-reduce. `train.batch_size` must be divisible by N.
    #[arg(long, default_value_t = 1)]
    devices: usize,
    /// Only tokenize the data (into the token store), print what it holds, and stop.
    #[arg(long)]
    prepare_data: bool,
    #[command(flatten)]
    dist: growlm::launch::DistArgs,
}

impl TrainArgs {
    /// The config edits: `--policy` first (so that `--set policy.KEY=…` sets the new
    /// policy's parameters), then the `--set` overrides, then the dedicated flags.
    fn edits(&self) -> Vec<Edit> {
        let mut edits: Vec<Edit> = self.policy.iter().cloned().map(Edit::PolicyName).collect();
        edits.extend(self.sets.iter().cloned().map(Edit::Set));
        edits.extend(self.data.clone().map(Edit::DataSource));
        edits.extend(self.max_steps.map(Edit::MaxSteps));
        edits.extend(self.seed.map(Edit::Seed));
        edits
    }
}

/// Writes a result file atomically, naming it in the error.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    growlm::fs::write_atomic(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn train(args: TrainArgs) -> Result<()> {
    let default_config = PathBuf::from(growlm::configs::DEFAULT);
    let out = (args.out.clone()).unwrap_or_else(|| growlm::configs::default_run_dir(args.config.as_deref()));
    if args.dist.local {
        return Ok(growlm::launch::local(
            args.dist.nnodes.unwrap_or(1),
            args.dist.master_port,
            &out,
        )?);
    }
    let saved = out.join("config.toml");
    let (path, resolved) = match &args.config {
        Some(p) => (p.clone(), false),
        None if args.resume && saved.is_file() => (saved, true),
        None => (default_config, false),
    };
    let mut cfg = growlm::configs::load(&path, &args.edits())?;
    // A run directory's config.toml is already resolved: `--only-stage` was applied to it.
    if let Some(n) = args.only_stage.filter(|_| !resolved) {
        cfg = cfg.only_stage(n).with_context(|| format!("--only-stage {n}"))?;
    }
    if args.prepare_data {
        let summary = growlm::train::prepare_data(&cfg, &RunOptions::new(&out).cache_dir)?;
        println!("{summary}");
        return Ok(());
    }
    let registry = growlm::registry();
    let device = DeviceKind::from(args.device);
    let from_hf = |dir: &PathBuf| growlm::interop::init_from_hf(dir, &cfg.stages[0].model);
    let opts = RunOptions {
        resume: args.resume,
        init: (args.init_from.as_ref())
            .map(|d| from_hf(d).with_context(|| format!("--init-from {}", d.display())))
            .transpose()?,
        device_name: match args.devices {
            1 => device.name().to_string(),
            n => format!("{}×{n}", device.name()),
        },
        devices: args.devices,
        dist: args.dist.resolve()?,
        ..RunOptions::new(out.clone())
    };
    eprintln!("run directory: {}", out.display());
    let mut progress = Progress::new();
    let s = run_on(device, &cfg, &opts, &registry, &mut [&mut progress])?;
    println!("{s}");
    println!(
        "loss curves: {}",
        growlm::lab::plot::loss_svg(&RunDir::new(&out))?.display()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    match dispatch(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(h) = growlm::hints::hint(&e) {
                eprintln!("hint: {h}");
            }
            // A collective that failed: the local launcher starts the ranks again on it.
            let collective = |c: &(dyn std::error::Error + 'static)| {
                matches!(c.downcast_ref(), Some(growlm::train::TrainError::Collective(_)))
            };
            match e.chain().any(collective) {
                true => std::process::ExitCode::from(growlm::train::COLLECTIVE_EXIT),
                false => std::process::ExitCode::FAILURE,
            }
        }
    }
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Train(a) => train(a),
        Command::Solve(a) => solve::run(a),
        Command::Compare(a) => compare::run(a),
        Command::Experiment(a) => experiment::run(a),
        Command::Bench(a) => bench::run(a),
        Command::GpuCheck(a) => gpu_check::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Trend(a) => trend::run(a),
        Command::Png { paths, scale } => paths.iter().try_for_each(|p| {
            let pngs = match p.is_dir() {
                true => growlm::lab::plot::png_dir(p, scale)?,
                false => vec![growlm::lab::plot::png(p, scale)?],
            };
            pngs.iter().for_each(|f| println!("wrote {}", f.display()));
            Ok(())
        }),
        Command::Export(a) => export::run(a),
        Command::Grow(a) => grow::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Info(a) => info::run(a),
        Command::Operators => operators::run(),
        Command::Policies => {
            for e in growlm::registry().entries() {
                println!("{:<12} {}", e.name, e.summary);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `cargo xtask …` command the README and the guide in `docs/` show (in their
    /// `sh` blocks, leaving out usage synopses with `[optional]` parts) parses.
    #[test]
    fn every_command_the_readme_shows_parses() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
        let mut files = vec![root.join("README.md")];
        for entry in std::fs::read_dir(root.join("docs")).unwrap().flatten() {
            files.push(entry.path());
        }
        let readme: String = files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .map(|p| std::fs::read_to_string(p).unwrap() + "\n")
            .collect();
        let mut in_sh = false;
        let mut checked = 0;
        for line in readme.lines() {
            if line.starts_with("```") {
                in_sh = line == "```sh";
                continue;
            }
            let Some(rest) = line.trim().strip_prefix("cargo xtask ").filter(|_| in_sh) else {
                continue;
            };
            // A shell comment after the command is not an argument.
            let rest = rest.split(" #").next().unwrap_or_default();
            if rest.contains('[') || rest.contains('…') {
                continue;
            }
            let argv = std::iter::once("cargo xtask").chain(rest.split_whitespace());
            if let Err(e) = Cli::try_parse_from(argv) {
                panic!("README command `cargo xtask {rest}` does not parse:\n{e}");
            }
            checked += 1;
        }
        assert!(checked >= 20, "found only {checked} README commands");
    }

    #[test]
    fn flags_become_overrides_after_the_sets() {
        let cli = Cli::try_parse_from([
            "x",
            "train",
            "--set",
            "train.lr=1e-3",
            "--data",
            "a b.txt",
            "--seed",
            "5",
            "--max-steps",
            "9",
        ])
        .unwrap();
        let Command::Train(args) = cli.command else {
            panic!("not train")
        };
        let edits: Vec<String> = args.edits().iter().map(Edit::to_string).collect();
        assert_eq!(
            edits,
            [
                "train.lr=1e-3",
                "data.source=\"a b.txt\"",
                "train.max_steps=9",
                "seed=5"
            ]
        );
        assert!(Cli::try_parse_from(["x", "train", "--device", "tpu"]).is_err());
    }
}
