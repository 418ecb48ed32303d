//! `solve --budget`: "whether" as well as "when". Fits the loss law `L(N, D)`
//! ([`growlm_solver::law`]) to from-scratch runs of several sizes (a frontier's runs) and
//! answers, for a budget, which option ends lowest: each size alone, or the config's small
//! model grown into its target at the best growth point.

use std::path::PathBuf;

use growlm_solver::{
    Anchored, BudgetAnswer, BudgetOption, GrownPoint, GrowthLaw, GrowthPair, LawFit, LawPoint, LossModel, ScalingLaw,
    SizeCost, Transfer, TransferFit,
};
use growlm_train::{Edit, RunConfig, RunDir};
use serde::Serialize;

use crate::error::Context;
use crate::frontier::FrontierRun;
use crate::LabError;

/// The budget a question is asked at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// Training FLOPs: every option spends them (iso-FLOP).
    Flops(f64),
    /// A staged run's steps (`train.max_steps`): growth at the best step within them
    /// against never growing, each size alone at the best growth's FLOPs.
    Steps(u64),
}

/// What to answer.
#[derive(Debug, Clone)]
pub struct BudgetInputs {
    /// From-scratch run directories of at least 2 sizes and 2 budgets (finished).
    pub runs: Vec<PathBuf>,
    /// The staged config whose first and last stages are the growth asked about.
    pub config: PathBuf,
    /// Edits of that config (e.g. `--set`).
    pub edits: Vec<Edit>,
    /// The budget.
    pub budget: Budget,
    /// Finished grown runs (each grew once) to calibrate the growth transfer on
    /// ([`growlm_solver::transfer`]); none: loss matching over the law alone.
    pub grown: Vec<PathBuf>,
    /// A transfer carried over as given (fitted at another scale, before any grown run of
    /// this one exists: a pre-registered prediction), with the law anchored at `runs`.
    /// Not with `grown`.
    pub carried: Option<Transfer>,
    /// With a budget in steps: growth steps to predict as well (each grid cell of an
    /// experiment's arms), beside the best one.
    pub grow_at: Vec<u64>,
}

/// The answer with the law it came from.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetReport {
    /// The law and its fit.
    pub fit: LawFit,
    /// The growth transfer fitted to the grown runs given (the law is then anchored at its
    /// runs); `None`: loss matching or a carried transfer.
    pub transfer: Option<TransferFit>,
    /// The transfer carried over as given ([`BudgetInputs::carried`]), the law anchored at
    /// its runs.
    pub carried: Option<Transfer>,
    /// The sizes considered (those of the runs, by parameters).
    pub sizes: Vec<SizeCost>,
    /// The growth asked about.
    pub pair: GrowthPair,
    /// The answer.
    pub answer: BudgetAnswer,
    /// The growth at each step of [`BudgetInputs::grow_at`], predicted by the same model.
    pub at: Vec<BudgetOption>,
    /// The `[policy]` table that lets the `solver` policy act on the law.
    pub policy: String,
}

/// A size's name from its model: the family's short name, then `D_MODELxN_LAYERS`
/// (`d64x4` for GPT-Neo, `L64x4` for Llama, `Q64x4` for Qwen2, as the shipped experiments
/// name their sizes).
pub fn size_name(cfg: &growlm_model::GptConfig) -> String {
    let family = cfg.describe().short;
    format!("{family}{}x{}", cfg.d_model, cfg.n_layers)
}

/// A model of `cfg`'s batch and sequence as the budget question costs it.
fn size_cost(model: &growlm_model::GptConfig, cfg: &RunConfig) -> SizeCost {
    SizeCost {
        name: size_name(model),
        params: model.num_params() as f64,
        flops_per_step: model.flops_per_step(cfg.train.batch_size, cfg.train.seq_len),
    }
}

/// The law's points and the sizes (one per distinct model, by parameters) of finished
/// from-scratch runs.
pub fn law_points(runs: &[(String, RunDir)]) -> Result<(Vec<LawPoint>, Vec<SizeCost>), LabError> {
    let mut points = Vec::new();
    let mut sizes: Vec<SizeCost> = Vec::new();
    for (name, dir) in runs {
        let cfg = dir.config()?;
        if cfg.stages.len() != 1 {
            return Err(LabError::Invalid(format!(
                "{}: a law point is a run of one model from scratch, this one has {} stages",
                dir.path().display(),
                cfg.stages.len()
            )));
        }
        let run = FrontierRun::read(name, dir)?;
        points.push(LawPoint {
            params: run.params as f64,
            tokens: run.tokens,
            loss: run.loss,
        });
        if !sizes.iter().any(|s| s.params == run.params as f64) {
            sizes.push(size_cost(&cfg.stages[0].model, &cfg));
        }
    }
    sizes.sort_by(|a, b| a.params.total_cmp(&b.params));
    Ok((points, sizes))
}

/// The growth of `cfg`: its first stage into its last.
pub fn growth_pair(cfg: &RunConfig) -> Result<GrowthPair, LabError> {
    let (Some(first), Some(last)) = (cfg.stages.first(), cfg.stages.last()) else {
        return Err(LabError::Invalid("the config has no stages".into()));
    };
    if cfg.stages.len() < 2 {
        return Err(LabError::Invalid(
            "the config has one stage; the budget question compares a growth with the sizes alone".into(),
        ));
    }
    Ok(GrowthPair {
        small: size_cost(&first.model, cfg),
        target: size_cost(&last.model, cfg),
        tokens_per_step: (cfg.train.batch_size * cfg.train.seq_len) as f64,
    })
}

/// The `[policy]` table of the `solver` policy acting on `law` for `pair`, with the
/// transfer and the anchors of `calibrated` when given.
pub fn policy_table(law: &ScalingLaw, pair: &GrowthPair, calibrated: Option<&GrowthLaw>) -> String {
    let mut t = format!(
        "[policy]\nname = \"solver\"\nlaw = {{ e = {:e}, a = {:e}, alpha = {:e}, b = {:e}, beta = {:e} }}\nparams = [{}, {}]\n",
        law.e, law.a, law.alpha, law.b, law.beta, pair.small.params, pair.target.params
    );
    if let Some(c) = calibrated {
        let rows: Vec<String> = c
            .law
            .rows()
            .iter()
            .map(|[n, d, r]| format!("[{n}, {d:e}, {r:e}]"))
            .collect();
        t += &format!(
            "transfer = {{ gain = {:e}, recovery = {:e} }}\nanchors = [{}]\n",
            c.transfer.gain,
            c.transfer.recovery,
            rows.join(", ")
        );
    }
    t
}

/// Finished run directories, named by their last path component.
fn finished(paths: &[PathBuf]) -> Result<Vec<(String, RunDir)>, LabError> {
    paths
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map_or(p.display().to_string(), |n| n.to_string_lossy().into());
            let dir = RunDir::new(p);
            if !dir.is_done() {
                return Err(LabError::Invalid(format!(
                    "{}: not a finished run (no summary.json); train it or leave it out",
                    p.display()
                )));
            }
            Ok((name, dir))
        })
        .collect()
}

/// A finished run that grew once, as a transfer's fit sees it: its first stage grown into
/// its last at its growth step.
pub fn grown_point(dir: &RunDir) -> Result<GrownPoint, LabError> {
    let s = dir.summary()?;
    let &[g] = s.growth_steps.as_slice() else {
        return Err(LabError::Invalid(format!(
            "{}: grew {} times; give runs that grew once to calibrate the growth",
            dir.path().display(),
            s.growth_steps.len()
        )));
    };
    let pair = growth_pair(&dir.config()?).context_with(|| dir.path().display().to_string())?;
    Ok(pair.measured(g, s.steps, s.final_val_loss))
}

/// Fits the law to `inputs.runs` (and the transfer to `inputs.grown`, if any) and answers
/// at `inputs.budget`.
pub fn answer(inputs: &BudgetInputs) -> Result<BudgetReport, LabError> {
    let runs = finished(&inputs.runs)?;
    let (points, sizes) = law_points(&runs)?;
    let fit = ScalingLaw::fit(&points).context_with(|| format!("the law L(N, D) over {} runs", points.len()))?;
    let grown: Vec<GrownPoint> = finished(&inputs.grown)?
        .iter()
        .map(|(_, d)| grown_point(d))
        .collect::<Result<_, _>>()?;
    if inputs.carried.is_some() && !grown.is_empty() {
        return Err(LabError::Invalid(
            "a carried transfer and grown runs to fit one: give one of the two".into(),
        ));
    }
    let calibrated = if let Some(transfer) = inputs.carried {
        let law = GrowthLaw {
            law: Anchored::new(fit.law, &points),
            transfer,
        };
        Some((law, None))
    } else if grown.is_empty() {
        None
    } else {
        let anchored = Anchored::new(fit.law, &points);
        let t = Transfer::fit(&anchored, &grown)
            .context_with(|| format!("the growth transfer over {} grown runs", grown.len()))?;
        Some((
            GrowthLaw {
                law: anchored,
                transfer: t.transfer,
            },
            Some(t),
        ))
    };
    let model: &dyn LossModel = match &calibrated {
        Some((m, _)) => m,
        None => &fit.law,
    };
    let cfg = RunConfig::load_edited(&inputs.config, &inputs.edits)?;
    let pair = growth_pair(&cfg).context_with(|| inputs.config.display().to_string())?;
    let answer = match inputs.budget {
        Budget::Flops(f) if f > 0.0 && f.is_finite() => pair.answer(model, &sizes, f),
        Budget::Steps(n) if n >= 2 => pair.answer_steps(model, &sizes, n),
        b => {
            return Err(LabError::Invalid(format!(
                "budget {b:?}: give positive FLOPs, or at least 2 steps"
            )))
        }
    };
    let at = match inputs.budget {
        Budget::Steps(n) => inputs
            .grow_at
            .iter()
            .map(|&g| {
                if g == 0 || g >= n {
                    Err(LabError::Invalid(format!(
                        "growth step {g}: give a step between 1 and {} (the run has {n})",
                        n - 1
                    )))
                } else {
                    let mut o = pair.grown(model, g, n);
                    pair.set_x_frontier(model, &sizes, &mut o);
                    Ok(o)
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        Budget::Flops(_) if !inputs.grow_at.is_empty() => {
            return Err(LabError::Invalid(
                "growth steps to predict need a budget in steps (--budget-steps)".into(),
            ))
        }
        Budget::Flops(_) => Vec::new(),
    };
    Ok(BudgetReport {
        at,
        policy: policy_table(&fit.law, &pair, calibrated.as_ref().map(|(m, _)| m)),
        transfer: calibrated.and_then(|(_, t)| t),
        carried: inputs.carried,
        fit,
        sizes,
        pair,
        answer,
    })
}

#[cfg(test)]
mod tests {
    use super::size_name;
    use growlm_model::{Family, GptConfig};

    #[test]
    fn sizes_are_named_by_family_width_and_depth() {
        let neo = GptConfig::new(256, 64, 32, 4, 4);
        assert_eq!(size_name(&neo), "d32x4");
        let llama = GptConfig {
            family: Family::Llama,
            ..GptConfig::new(256, 64, 48, 2, 6)
        };
        assert_eq!(size_name(&llama), "L48x2");
    }
}
