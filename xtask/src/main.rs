//! `cargo xtask`: the growlm command line — train, policies, solve.

mod solve;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use growlm::train::{run_on, DeviceKind, RunConfig, RunOptions};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "growlm: progressive pre-training by model growth")]
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
    /// Fit loss curves and predict the optimal growth point (paper §3.2, eq. 1–3).
    Solve(solve::SolveArgs),
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Run config (TOML). On --resume, the run directory's config.toml is used.
    #[arg(long, default_value = "configs/default.toml")]
    config: PathBuf,
    /// Backend: flex (CPU, default), ndarray (CPU) or cuda (needs the `cuda` feature).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Text file or directory to train on instead of the config's data source.
    #[arg(long)]
    data: Option<String>,
    /// Run directory (default: runs/<config name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override train.max_steps.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Override the seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Growth-schedule policy (overrides the config's [policy]).
    #[arg(long)]
    policy: Option<String>,
    /// Train only stage N of the config from scratch (policy `never`): the reference
    /// curves the solver needs, e.g. `--only-stage 1` for the target model.
    #[arg(long)]
    only_stage: Option<usize>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
}

fn train(args: TrainArgs) -> Result<()> {
    let device = DeviceKind::parse(&args.device)
        .with_context(|| format!("unknown --device `{}`; use flex, ndarray or cuda", args.device))?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .config
            .file_stem()
            .map_or("run".into(), |s| s.to_string_lossy().to_string());
        PathBuf::from("runs").join(stem)
    });
    let saved = out.join("config.toml");
    let mut cfg = if args.resume && saved.is_file() {
        RunConfig::from_file(&saved)?
    } else {
        RunConfig::from_file(&args.config)?
    };
    if let Some(d) = args.data {
        cfg.data.source = d;
    }
    if let Some(n) = args.max_steps {
        cfg.train.max_steps = n;
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    if let Some(p) = &args.policy {
        cfg.set_policy(p);
    }
    if let Some(n) = args.only_stage {
        let stage = cfg
            .stages
            .get(n)
            .cloned()
            .with_context(|| format!("--only-stage {n}: the config has {} stages (0-based)", cfg.stages.len()))?;
        cfg.stages = vec![growlm::train::StageConfig { growth: None, ..stage }];
        cfg.set_policy("never");
    }
    cfg.validate()?;
    let registry = growlm::registry();
    let opts = RunOptions {
        out_dir: out.clone(),
        resume: args.resume,
        progress: true,
        cache_dir: growlm::data::default_cache_dir(),
        halt_after: None,
        device_name: device.name().to_string(),
    };
    eprintln!("run directory: {}", out.display());
    let s = run_on(device, &cfg, &opts, &registry)?;
    println!(
        "done: {} steps, {} tokens, {:.3e} FLOPs, {:.1} s ({:.0} tokens/s); final val loss {:.4} (best {:.4}); grew at {:?}; stage {}",
        s.steps,
        s.tokens,
        s.flops,
        s.wall_s,
        s.tokens as f64 / s.wall_s.max(1e-9),
        s.final_val_loss,
        s.best_val_loss,
        s.growth_steps,
        s.final_stage
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match dispatch(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Train(a) => train(a),
        Command::Solve(a) => solve::run(a),
        Command::Policies => {
            for e in growlm::registry().entries() {
                println!("{:<12} {}", e.name, e.summary);
            }
            Ok(())
        }
    }
}
