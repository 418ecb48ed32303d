//! `cargo xtask experiment FILE.toml`: the paper's evaluation protocol (§4.3, §5,
//! Appendix A) as one command, run by `growlm::lab::experiment`; this module parses the
//! flags, logs each run's progress and prints the report.

use std::path::{Path, PathBuf};

use anyhow::Result;
use growlm::lab::experiment::{run_experiment, ExperimentOptions, JobStart};
use growlm::train::{GrowEvent, MetricsRow, Observer, RunStart, Summary, TrainError};

/// Arguments of `cargo xtask experiment`.
#[derive(clap::Args)]
pub struct ExperimentArgs {
    /// Experiment file (TOML), e.g. `experiments/smoke.toml`.
    file: PathBuf,
    /// Runs trained at once [default: the number of CPU cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Experiment directory [default: `runs/experiments/FILE_STEM`].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Backend.
    #[arg(long, value_enum, default_value_t = crate::Device::Flex)]
    device: crate::Device,
    /// Train nothing: report on the runs that are done (the others are listed as missing).
    #[arg(long)]
    report_only: bool,
    /// Train only the references (a frontier's sizes), to predict the arms before any of
    /// them exists (docs/solver.md).
    #[arg(long, conflicts_with = "report_only")]
    sizes_only: bool,
    /// Also write a small copy of the finished experiment into DIR, to commit (no
    /// checkpoints): `--report-only --out DIR` rebuilds the report from it.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Only these of the experiment's seeds, e.g. `--seeds 0,1` (a study split over sessions
    /// or machines, into the same `--out`) [default: all].
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
}

/// Prints a line per run at its start, growths, the first evaluation in each tenth of its
/// steps and its end.
struct Log {
    name: String,
    every: u64,
    shown: u64,
}

impl Observer for Log {
    fn on_start(&mut self, s: &RunStart<'_>) -> Result<(), TrainError> {
        let how = s.resumed_at.map_or("from scratch".into(), |n| format!("from step {n}"));
        eprintln!("[{}] start {how}, {} steps", self.name, s.config.train.max_steps);
        Ok(())
    }
    fn on_step(&mut self, r: &MetricsRow) -> Result<(), TrainError> {
        if let Some(v) = r.val_loss.filter(|_| r.step / self.every > self.shown) {
            self.shown = r.step / self.every;
            eprintln!("[{}] step {} val loss {v:.4}", self.name, r.step);
        }
        Ok(())
    }
    fn on_growth(&mut self, e: &GrowEvent) -> Result<(), TrainError> {
        eprintln!(
            "[{}] grew at step {}: loss {:.6} → {:.6}",
            self.name, e.step, e.loss_before, e.loss_after
        );
        Ok(())
    }
    fn on_end(&mut self, s: &Summary) -> Result<(), TrainError> {
        eprintln!(
            "[{}] done: final val loss {:.4}, {:.3e} FLOPs, {:.0} s",
            self.name, s.final_val_loss, s.flops, s.wall_s
        );
        Ok(())
    }
}

fn log(job: &JobStart<'_>) -> Box<dyn Observer> {
    if let Some(note) = &job.note {
        eprintln!("[{}] {note}", job.name);
    }
    Box::new(Log {
        name: job.name.to_string(),
        every: (job.cfg.train.max_steps / 10).max(1),
        shown: 0,
    })
}

/// Runs the command.
pub fn run(a: ExperimentArgs) -> Result<()> {
    let stem = a
        .file
        .file_stem()
        .map_or("experiment".into(), |s| s.to_string_lossy().to_string());
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/experiments").join(&stem));
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = ExperimentOptions {
        command: format!(
            "cargo xtask experiment {} --out {}{}{}",
            a.file.display(),
            out.display(),
            a.jobs.map_or(String::new(), |j| format!(" --jobs {j}")),
            (a.seeds.as_ref()).map_or(String::new(), |s| format!(
                " --seeds {}",
                (s.iter().map(u64::to_string)).collect::<Vec<_>>().join(",")
            ))
        ),
        file: a.file,
        out,
        jobs,
        device: a.device.into(),
        report_only: a.report_only,
        sizes_only: a.sizes_only,
        keep: a.keep,
        seeds: a.seeds,
    };
    eprintln!(
        "experiment {} → {} ({jobs} at a time)",
        opts.file.display(),
        opts.out.display()
    );
    let (_, md) = run_experiment(&opts, &growlm::registry(), &log)?;
    println!("{md}");
    eprintln!(
        "wrote {} and the figures",
        Path::new(&opts.out).join("report.md").display()
    );
    Ok(())
}
