//! `cargo xtask solve`: fit the small and target loss curves, predict the optimal growth
//! point (paper eq. 3) and the speed-up, compare with grown runs (Appendix A), with
//! `growlm::lab::solve`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use growlm::lab::solve::budget::{self, Budget, BudgetInputs};
use growlm::lab::solve::{self, CurveChoice, FlopsRatio, SolveInputs};
use growlm::solver::{ModelKind, Transfer};
use growlm::train::Edit;

#[derive(clap::Args)]
pub struct SolveArgs {
    /// Small model's curve: a run directory (its metrics.jsonl) or a CSV `step,val_loss`.
    #[arg(long, required_unless_present_any = ["budget", "budget_steps"])]
    small: Option<PathBuf>,
    /// Target model's from-scratch curve (run directory or CSV).
    #[arg(long, required_unless_present_any = ["budget", "budget_steps"])]
    target: Option<PathBuf>,
    /// "Whether": at this many training FLOPs, predict the final loss of each size alone
    /// and of the config's small model grown into its target at the best growth step, from
    /// a law L(N, D) fitted to the --frontier runs, and recommend the lowest.
    #[arg(long, conflicts_with_all = ["small", "target", "budget_steps"])]
    budget: Option<f64>,
    /// Or a staged run's steps (`train.max_steps`): the growth step of the lowest predicted
    /// iso-FLOP gap, and whether it beats every size alone (what the `solver` policy with
    /// `law` does).
    #[arg(long, conflicts_with_all = ["small", "target"])]
    budget_steps: Option<u64>,
    /// With --budget: finished from-scratch run directories of at least 2 sizes and 2
    /// budgets (e.g. a frontier experiment's size runs).
    #[arg(long, num_args = 1..)]
    frontier: Vec<PathBuf>,
    /// With --budget: the staged config whose first stage grows into its last.
    #[arg(long, default_value = "configs/default.toml")]
    config: PathBuf,
    /// With --budget: override a key of --config, as for `train`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// From-scratch curves of the stages between small and target, in order (run
    /// directories: their metrics carry FLOPs per step). With them, `solve` also plans a
    /// multi-stage growth small → via… → target to the target loss (beyond the paper).
    #[arg(long, num_args = 1..)]
    via: Vec<PathBuf>,
    /// Fs/Ft, FLOPs per step of the small model over the target's.
    #[arg(long)]
    flops_ratio: Option<f64>,
    /// Run config of the small model (its first stage is used) to compute Fs.
    #[arg(long)]
    small_config: Option<PathBuf>,
    /// Run config of the target model (its last stage is used) to compute Ft.
    #[arg(long)]
    target_config: Option<PathBuf>,
    /// Loss at which to compare FLOPs (default: the target's last measured loss).
    #[arg(long)]
    target_loss: Option<f64>,
    /// Last growth step considered (default: twice the small curve's last step).
    #[arg(long)]
    horizon: Option<f64>,
    /// Fit only the validation points at or before this step. Default: for run directories
    /// trained with a `wsd` schedule (their `config.toml` says so), its stable phase, up to
    /// `max_steps·(1 − decay_frac)` (the earliest among them), since the curve models of
    /// eq. 1 do not describe the final decay; else every point.
    #[arg(long)]
    fit_until: Option<f64>,
    /// Curve model: power_law, exponential, or best (by AIC, default).
    #[arg(long, default_value = "best")]
    model: String,
    /// |L_s'| threshold per step for the convergence-stage step (paper: 3e-6).
    #[arg(long, default_value_t = 3e-6)]
    convergence_threshold: f64,
    /// Recovery delay δ in target steps.
    #[arg(long, default_value_t = 0.0)]
    delay: f64,
    /// Grown runs (run directories that grew once) for the empirical E; with --budget, to
    /// calibrate the growth transfer beyond loss matching.
    #[arg(long, num_args = 1..)]
    grown: Vec<PathBuf>,
    /// With --budget: a growth transfer carried over as given (μ, R in tokens), e.g. fitted
    /// by `--grown` at another scale (docs/solver.md, "Pre-registering a new scale").
    #[arg(long, value_name = "GAIN,RECOVERY", conflicts_with = "grown")]
    transfer: Option<Transfer>,
    /// With --budget-steps: also predict the growth at these steps (an experiment's cells).
    #[arg(long, num_args = 1.., requires = "budget_steps")]
    grow_at: Vec<u64>,
    /// Write the result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an SVG plot here.
    #[arg(long)]
    plot: Option<PathBuf>,
}

impl SolveArgs {
    /// The library's inputs; the flags are checked here and named in errors.
    fn inputs(self) -> Result<SolveInputs> {
        let model = match self.model.as_str() {
            "best" => CurveChoice::Best,
            m => CurveChoice::Model(
                ModelKind::parse(m)
                    .with_context(|| format!("unknown --model `{m}`; use power_law, exponential or best"))?,
            ),
        };
        let flops_ratio = match (self.flops_ratio, self.small_config, self.target_config) {
            (Some(r), _, _) if !(r > 0.0 && r.is_finite()) => bail!("--flops-ratio must be positive, got {r}"),
            (Some(r), _, _) => FlopsRatio::Given(r),
            (None, Some(small), Some(target)) => FlopsRatio::FromConfigs { small, target },
            (None, None, None) => FlopsRatio::FromRuns,
            _ => bail!("--small-config and --target-config go together"),
        };
        Ok(SolveInputs {
            via: self.via,
            flops_ratio,
            target_loss: self.target_loss,
            horizon: self.horizon,
            fit_until: self.fit_until,
            model,
            convergence_threshold: self.convergence_threshold,
            delay: self.delay,
            grown: self.grown,
            ..SolveInputs::new(self.small.unwrap_or_default(), self.target.unwrap_or_default())
        })
    }
}

pub fn run(a: SolveArgs) -> Result<()> {
    if a.budget.is_some() || a.budget_steps.is_some() {
        return budget(a);
    }
    let (json, plot) = (a.json.clone(), a.plot.clone());
    let csv = a.small.iter().chain(&a.target).any(|p| !p.is_dir());
    let no_ratio = a.flops_ratio.is_none() && a.small_config.is_none();
    let s = solve::solve(&a.inputs()?).map_err(|e| {
        let e = anyhow::Error::new(e);
        if csv && no_ratio {
            e.context("give --flops-ratio R, or --small-config and --target-config (CSV curves carry no FLOPs)")
        } else {
            e
        }
    })?;
    print!("{s}");
    solve::write(&s, json.as_deref(), plot.as_deref())?;
    for p in json.iter().chain(&plot) {
        println!("  wrote {}", p.display());
    }
    Ok(())
}

/// `solve --budget`: the law's answer, printed, and its JSON when asked.
fn budget(a: SolveArgs) -> Result<()> {
    if a.frontier.is_empty() {
        bail!("--budget needs --frontier RUN... (finished from-scratch runs of at least 2 sizes and 2 budgets)");
    }
    let inputs = BudgetInputs {
        runs: a.frontier,
        config: a.config,
        edits: a.sets.into_iter().map(Edit::Set).collect(),
        budget: match (a.budget, a.budget_steps) {
            (Some(f), _) => Budget::Flops(f),
            (None, Some(n)) => Budget::Steps(n),
            (None, None) => unreachable!("checked by the caller"),
        },
        grown: a.grown,
        carried: a.transfer,
        grow_at: a.grow_at,
    };
    let r = budget::answer(&inputs)?;
    print!("{r}");
    if let Some(p) = &a.json {
        growlm::fs::write_atomic(p, serde_json::to_string_pretty(&r)?.as_bytes())?;
        println!("  wrote {}", p.display());
    }
    Ok(())
}
