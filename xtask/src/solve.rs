//! `cargo xtask solve`: fit the small and target loss curves, predict the optimal growth
//! point (paper eq. 3) and the speed-up, compare with grown runs (Appendix A).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use growlm::solver::{
    empirical_effect, fit, fit_best, plan_stages, read_curve, Curve, Fit, GrowthProblem, LoadedCurve, ModelKind,
    Optimum, Plan, PlanStage,
};
use growlm::train::{GrowEvent, MetricsRow, RunConfig, Schedule};
use plotters::prelude::*;
use serde_json::json;

#[derive(clap::Args)]
pub struct SolveArgs {
    /// Small model's curve: a run directory (its metrics.jsonl) or a CSV `step,val_loss`.
    #[arg(long)]
    small: PathBuf,
    /// Target model's from-scratch curve (run directory or CSV).
    #[arg(long)]
    target: PathBuf,
    /// From-scratch curves of the stages between small and target, in order (run
    /// directories: their metrics carry FLOPs per step). With them, `solve` also plans a
    /// multi-stage growth small → via… → target to the target loss (beyond the paper).
    #[arg(long, num_args = 1..)]
    pub via: Vec<PathBuf>,
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
    pub fit_until: Option<f64>,
    /// Curve model: power_law, exponential, or best (by AIC, default).
    #[arg(long, default_value = "best")]
    model: String,
    /// |L_s'| threshold per step for the convergence-stage step (paper: 3e-6).
    #[arg(long, default_value_t = 3e-6)]
    convergence_threshold: f64,
    /// Recovery delay δ in target steps.
    #[arg(long, default_value_t = 0.0)]
    delay: f64,
    /// Grown runs (run directories that grew once) for the empirical E.
    #[arg(long, num_args = 1..)]
    grown: Vec<PathBuf>,
    /// Write the result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an SVG plot here.
    #[arg(long)]
    plot: Option<PathBuf>,
}

impl SolveArgs {
    /// `solve --small S --target T --grown G… --json J --plot P` with the defaults.
    pub fn for_runs(small: PathBuf, target: PathBuf, grown: Vec<PathBuf>, json: PathBuf, plot: PathBuf) -> Self {
        Self {
            small,
            target,
            via: Vec::new(),
            fit_until: None,
            flops_ratio: None,
            small_config: None,
            target_config: None,
            target_loss: None,
            horizon: None,
            model: "best".into(),
            convergence_threshold: 3e-6,
            delay: 0.0,
            grown,
            json: Some(json),
            plot: Some(plot),
        }
    }
}

/// A curve file or run directory, cut at `--fit-until` when given.
fn read_run(path: &Path, until: Option<f64>) -> Result<LoadedCurve> {
    let mut run = read_curve(path)?;
    if let Some(step) = until {
        run.curve = run
            .curve
            .until(step)
            .with_context(|| format!("{} up to --fit-until {step}", path.display()))?;
    }
    Ok(run)
}

fn config_flops(path: &Path, last: bool) -> Result<f64> {
    let cfg = RunConfig::from_file(path)?;
    let stage = if last { cfg.stages.last() } else { cfg.stages.first() }.context("config has no stages")?;
    Ok(stage.model.flops_per_step(cfg.train.batch_size, cfg.train.seq_len))
}

fn fit_curve(curve: &Curve, model: &str) -> Result<Fit> {
    Ok(match model {
        "best" => fit_best(curve, 0.95)?.remove(0),
        m => fit(
            curve,
            ModelKind::parse(m)
                .with_context(|| format!("unknown --model `{m}`; use power_law, exponential or best"))?,
            0.95,
        )?,
    })
}

fn fit_json(f: &Fit) -> serde_json::Value {
    json!({
        "model": f.model,
        "parameters": f.params.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "r2": f.r2,
        "residual_std": f.residual_std,
        "aic": f.aic,
        "bic": f.bic,
        "confidence": f.confidence,
        "confidence_intervals": f.confidence_intervals.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "n_points": f.n_points,
        "solver": f.solver,
    })
}

/// (Gb, nt, final loss) of a grown run directory.
fn grown_run(dir: &Path) -> Result<(f64, f64, f64)> {
    let events: Vec<GrowEvent> = growlm::train::output::read_jsonl(&dir.join("events.jsonl"))
        .with_context(|| format!("grown run {}", dir.display()))?;
    let gb = events
        .first()
        .with_context(|| format!("{} never grew (events.jsonl is empty)", dir.display()))?
        .step as f64;
    let rows: Vec<MetricsRow> = growlm::train::output::read_jsonl(&dir.join("metrics.jsonl"))?;
    let last = rows
        .iter()
        .rev()
        .find(|r| r.val_loss.is_some())
        .with_context(|| format!("{} has no validation loss", dir.display()))?;
    Ok((gb, last.step as f64 - gb, last.val_loss.unwrap_or(f64::NAN)))
}

/// The last step of the stable phase of a run directory trained with a `wsd` schedule.
fn wsd_stable_end(path: &Path) -> Result<Option<f64>> {
    let saved = path.join("config.toml");
    if !saved.is_file() {
        return Ok(None);
    }
    let train = RunConfig::from_file(&saved)?.train;
    Ok((train.schedule == Schedule::Wsd).then(|| (train.max_steps - train.decay_len()) as f64))
}

pub fn run(mut a: SolveArgs) -> Result<()> {
    let mut stable_phase = false;
    if a.fit_until.is_none() {
        let ends: Vec<Option<f64>> = [&a.small, &a.target]
            .into_iter()
            .chain(&a.via)
            .map(|p| wsd_stable_end(p))
            .collect::<Result<_>>()?;
        a.fit_until = ends.into_iter().flatten().reduce(f64::min);
        stable_phase = a.fit_until.is_some();
    }
    let (small, target) = (read_run(&a.small, a.fit_until)?, read_run(&a.target, a.fit_until)?);
    let ratio = match (a.flops_ratio, &a.small_config, &a.target_config) {
        (Some(r), _, _) if r > 0.0 && r.is_finite() => r,
        (Some(r), _, _) => bail!("--flops-ratio must be positive, got {r}"),
        (None, Some(s), Some(t)) => config_flops(s, false)? / config_flops(t, true)?,
        (None, None, None) => match (small.flops_per_step, target.flops_per_step) {
            (Some(s), Some(t)) => s / t,
            _ => bail!("give --flops-ratio R, or --small-config and --target-config (CSV curves carry no FLOPs)"),
        },
        _ => bail!("--small-config and --target-config go together"),
    };
    let (fs, ft) = (fit_curve(&small.curve, &a.model)?, fit_curve(&target.curve, &a.model)?);
    let last_small = *small.curve.steps.last().unwrap_or(&1.0);
    let horizon = a.horizon.unwrap_or(2.0 * last_small);
    let lo = small.curve.steps[0].max(1.0);
    let target_loss = a
        .target_loss
        .unwrap_or_else(|| ft.value(*target.curve.steps.last().unwrap_or(&1.0)));
    let problem = GrowthProblem {
        small: fs.clone(),
        target: ft.clone(),
        flops_small: ratio,
        flops_target: 1.0,
        delay: a.delay,
    };
    let optimum: Result<Optimum, _> = problem.optimum(lo, horizon, target_loss);
    let convergence = problem.convergence_step(a.convergence_threshold, horizon * 10.0);
    let e_curve = problem.effect_curve(lo, horizon, 100);
    let grown: Vec<(f64, f64, f64)> = a.grown.iter().map(|d| grown_run(d)).collect::<Result<_>>()?;
    let empirical = empirical_effect(&ft, &grown);
    // A plan that cannot be made is reported beside the two-stage result, not instead of it.
    let plan = (!a.via.is_empty()).then(|| {
        let ends = [(&fs, small.flops_per_step), (&ft, target.flops_per_step)];
        plan(&a, ends, target_loss).map_err(|e| format!("{e:#}"))
    });
    let gb_ci = fs.delta_ci(|p| {
        let mut q = problem.clone();
        q.small.params.iter_mut().zip(p).for_each(|(a, b)| a.1 = *b);
        q.optimal_by_root(lo, horizon).ok()
    });

    println!("growlm solve — paper §3.2, eq. 1–3");
    for (name, f) in [("small", &fs), ("target", &ft)] {
        let params: Vec<String> = f.params.iter().map(|(k, v)| format!("{k}={v:.4}")).collect();
        println!(
            "  {name:<6} {:<11} {} | R² {:.5}, residual sd {:.4}, AIC {:.1}, {} points",
            format!("{:?}", f.model),
            params.join(" "),
            f.r2,
            f.residual_std,
            f.aic,
            f.n_points
        );
    }
    println!(
        "  Fs/Ft = {ratio:.4}; horizon {lo:.0}..{horizon:.0} steps; target loss {target_loss:.4}{}",
        a.fit_until.map_or(String::new(), |u| format!(
            "; curves fitted up to step {u:.0}{}",
            if stable_phase {
                " (the runs' wsd stable phase; --fit-until to change)"
            } else {
                ""
            }
        ))
    );
    match &optimum {
        Ok(o) => {
            println!(
                "  optimal growth step (E = Fs/Ft):      {:.0}{}",
                o.by_root,
                gb_ci.map_or(String::new(), |[l, h]| format!("  (95% CI {l:.0}..{h:.0})"))
            );
            println!("  optimal growth step (min total FLOPs): {:.0}", o.by_flops);
            if let Some(n) = &o.note {
                println!("  note: {n}");
            }
            println!(
                "  predicted speed-up at loss {:.4}: ×{:.3} ({:.3e} vs {:.3e} small-step units)",
                o.target_loss, o.speedup, o.staged_flops, o.scratch_flops
            );
        }
        Err(e) => println!("  optimal growth step: {e}"),
    }
    println!(
        "  convergence-stage step (|L_s'| < {:e}): {}",
        a.convergence_threshold,
        convergence.map_or("not reached".into(), |c| format!("{c:.0}"))
    );
    for [g, e] in &empirical {
        println!(
            "  empirical E at Gb≈{g:.0}: {e:.4} (predicted {})",
            problem.effect(*g).map_or("-".into(), |p| format!("{p:.4}"))
        );
    }

    match &plan {
        Some(Ok((names, p))) => print_plan(names, p, target_loss),
        Some(Err(e)) => println!("  multi-stage plan: {e}"),
        None => {}
    }

    let out = json!({
        "plan": plan.as_ref().and_then(|p| p.as_ref().ok()).map(|p| &p.1),
        "plan_error": plan.as_ref().and_then(|p| p.as_ref().err()),
        "optimal_growth_step": optimum.as_ref().ok().map(|o| o.by_root),
        "optimal_growth_step_ci": gb_ci,
        "optimal_growth_step_by_flops": optimum.as_ref().ok().map(|o| o.by_flops),
        "flops_ratio": ratio,
        "convergence_step": convergence,
        "convergence_threshold": a.convergence_threshold,
        "predicted_speedup": optimum.as_ref().ok().map(|o| o.speedup),
        "target_loss": target_loss,
        "fit_until": a.fit_until,
        "error": optimum.as_ref().err().map(|e| e.to_string()),
        "note": optimum.as_ref().ok().and_then(|o| o.note.clone()),
        "fits": { "small": fit_json(&fs), "target": fit_json(&ft) },
        "effect_conversion_rate": e_curve,
        "empirical_effect_conversion_rate": empirical,
    });
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&out)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
        println!("  wrote {}", p.display());
    }
    if let Some(p) = &a.plot {
        plot(
            p,
            &small.curve,
            &target.curve,
            &fs,
            &ft,
            &e_curve,
            &empirical,
            ratio,
            horizon,
        )?;
        println!("  wrote {}", p.display());
    }
    Ok(())
}

/// The multi-stage plan small → `--via`… → target to `target_loss` (stage names and
/// the plan), with the small and target fits already made (and their FLOPs per step).
fn plan(a: &SolveArgs, ends: [(&Fit, Option<f64>); 2], target_loss: f64) -> Result<(Vec<String>, Plan)> {
    let flops = |path: &Path, per_step: Option<f64>| -> Result<f64> {
        per_step.with_context(|| {
            format!(
                "--via needs run directories, whose metrics carry FLOPs per step: {} has none",
                path.display()
            )
        })
    };
    let mut names = vec![a.small.display().to_string()];
    let mut stages = vec![PlanStage {
        curve: ends[0].0.clone(),
        flops_per_step: flops(&a.small, ends[0].1)?,
    }];
    for v in &a.via {
        let run = read_run(v, a.fit_until)?;
        let flops_per_step = flops(v, run.flops_per_step)?;
        let curve = fit_curve(&run.curve, &a.model).with_context(|| format!("--via {}", v.display()))?;
        names.push(v.display().to_string());
        stages.push(PlanStage { curve, flops_per_step });
    }
    names.push(a.target.display().to_string());
    stages.push(PlanStage {
        curve: ends[1].0.clone(),
        flops_per_step: flops(&a.target, ends[1].1)?,
    });
    Ok((names, plan_stages(&stages, target_loss)?))
}

fn print_plan(names: &[String], p: &Plan, target_loss: f64) {
    println!(
        "  multi-stage plan to loss {target_loss:.4} (beyond the paper; each stage continued at its equal-loss step):"
    );
    for (j, name) in names.iter().enumerate() {
        let leave = match (p.growth_losses.get(j), p.growth_steps.get(j)) {
            (Some(l), Some(g)) => format!("grow at loss {l:.4}, step {g:.0}"),
            _ => "to the target loss".into(),
        };
        println!("    {name}: {:.0} steps, {leave}", p.steps[j]);
    }
    println!(
        "    FLOPs {:.3e} against {:.3e} from scratch: ×{:.3}",
        p.total_flops, p.scratch_flops, p.speedup
    );
}

#[allow(clippy::too_many_arguments)]
fn plot(
    path: &Path,
    small: &Curve,
    target: &Curve,
    fs: &Fit,
    ft: &Fit,
    e: &[[f64; 2]],
    emp: &[[f64; 2]],
    ratio: f64,
    horizon: f64,
) -> Result<()> {
    let root = SVGBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let xmax = horizon.max(*target.steps.last().unwrap_or(&1.0));
    let all = small.losses.iter().chain(&target.losses);
    let ymin = all.clone().cloned().fold(f64::INFINITY, f64::min) * 0.95;
    let ymax = all.cloned().fold(f64::NEG_INFINITY, f64::max) * 1.02;
    let mut c = ChartBuilder::on(&left)
        .caption("validation loss", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..xmax, ymin..ymax)?;
    c.configure_mesh().x_desc("step").y_desc("loss").draw()?;
    for (curve, f, color, name) in [(small, fs, BLUE, "small"), (target, ft, RED, "target")] {
        c.draw_series(
            curve
                .steps
                .iter()
                .zip(&curve.losses)
                .map(|(x, y)| Circle::new((*x, *y), 2, color.filled())),
        )?
        .label(format!("{name} (data)"))
        .legend(move |(x, y)| Circle::new((x + 10, y), 3, color.filled()));
        c.draw_series(LineSeries::new(
            (0..=200).map(|i| xmax * i as f64 / 200.0).map(|x| (x, f.value(x))),
            color,
        ))?
        .label(format!("{name} fit ({:?})", f.model))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    let emax = e
        .iter()
        .chain(emp)
        .map(|p| p[1])
        .fold(ratio * 2.0, f64::max)
        .min(ratio * 20.0);
    let mut c = ChartBuilder::on(&right)
        .caption("effect conversion rate E(Gb) vs Fs/Ft", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..horizon, 0.0..emax)?;
    c.configure_mesh().x_desc("growth step Gb").y_desc("E").draw()?;
    c.draw_series(LineSeries::new(e.iter().map(|p| (p[0], p[1].min(emax))), BLUE))?
        .label("predicted E")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    c.draw_series(LineSeries::new([(0.0, ratio), (horizon, ratio)], BLACK.stroke_width(1)))?
        .label("Fs/Ft")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    c.draw_series(
        emp.iter()
            .map(|p| Cross::new((p[0], p[1].min(emax)), 5, RED.stroke_width(2))),
    )?
    .label("empirical E")
    .legend(|(x, y)| Cross::new((x + 10, y), 4, RED));
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
