//! A frontier experiment's measures (docs/design.md §Evaluation protocol): per seed the
//! envelope of its sizes' runs, every arm run's iso-FLOP gap and ×frontier against it,
//! beside the Table 2 measure (×target), and each measure over the seeds with its 95%
//! interval.

use std::collections::BTreeMap;
use std::path::Path;

use growlm_train::RunDir;
use serde::Serialize;

use super::{Experiment, Job, RunResult};
use crate::frontier::{measure, Envelope, FrontierRow, FrontierRun};
use crate::stats::Interval;
use crate::LabError;

/// One seed's envelope.
#[derive(Debug, Clone, Serialize)]
pub struct SeedEnvelope {
    /// The seed.
    pub seed: u64,
    /// Its envelope.
    pub envelope: Envelope,
}

/// A size at one budget, over the seeds.
#[derive(Debug, Clone, Serialize)]
pub struct SizeRow {
    /// The size.
    pub size: String,
    /// Steps.
    pub steps: u64,
    /// Parameters.
    pub params: usize,
    /// Mean FLOPs.
    pub flops: f64,
    /// Training tokens per parameter.
    pub tokens_per_param: f64,
    /// Final validation loss over the seeds.
    pub final_val_loss: Interval,
    /// On how many seeds' envelopes it lies.
    pub on_envelope: usize,
}

/// An arm (at one budget) against the frontier, over the seeds.
#[derive(Debug, Clone, Serialize)]
pub struct FrontierArm {
    /// The arm's label (`NAME`, `NAME-STEPS` or `NAME-STEPS-atPERCENT`).
    pub arm: String,
    /// The arm's name.
    pub name: String,
    /// The budget (`train.max_steps`), when the arm has budgets.
    pub budget: Option<u64>,
    /// The growth point as a fraction of the budget, for an arm with `grow_frac`.
    pub grow_frac: Option<f64>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Mean FLOPs.
    pub flops: f64,
    /// Tokens per parameter of the final model.
    pub tokens_per_param: f64,
    /// Parameters after its growths over before.
    pub growth_factor: Option<f64>,
    /// Final validation loss.
    pub final_val_loss: Interval,
    /// Iso-FLOP gap over the seeds where it is inside the envelope.
    pub iso_flop_gap: Option<Interval>,
    /// ×frontier over the seeds where it is inside the envelope.
    pub x_frontier: Option<Interval>,
    /// ×target (the paper's Table 2 measure) over the seeds.
    pub x_target: Option<Interval>,
    /// Seeds where a measure fell outside the envelope (not extrapolated).
    pub outside: usize,
}

/// What a frontier experiment adds to `results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct FrontierResults {
    /// Per seed, the envelope.
    pub envelopes: Vec<SeedEnvelope>,
    /// The sizes at their budgets.
    pub sizes: Vec<SizeRow>,
    /// Every arm run against its seed's envelope.
    pub rows: Vec<FrontierRow>,
    /// The arms over the seeds.
    pub arms: Vec<FrontierArm>,
    /// What the sizes cost, per seed on average.
    pub cost: FrontierCost,
    /// The law `L(N, D)` over the sizes' runs and its predictions of the grown arms (none
    /// when it cannot be fitted yet: fewer than 2 sizes or budgets done).
    pub law: Option<super::law::LawCheck>,
    /// The experiment's pre-registered predictions (`prediction = FILE` or a list, one per
    /// budget), each against the measured arms of its budget.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preregistered: Vec<super::preregistered::Preregistered>,
}

/// What the frontier cost (the point of branching the cool-downs): the sizes' own wall
/// seconds against training the largest size's longest budget once, per seed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FrontierCost {
    /// Seeds whose every size run is done.
    pub seeds: usize,
    /// Mean wall seconds of all the sizes' runs of a seed (each branch counted from its
    /// branch point).
    pub sizes_s: f64,
    /// Mean wall seconds of the largest size's longest budget.
    pub largest_s: f64,
    /// `sizes_s / largest_s`.
    pub ratio: f64,
}

fn interval(v: &[f64]) -> Option<Interval> {
    (!v.is_empty()).then(|| Interval::of(v))
}

/// Measures the arm runs of `jobs` (done ones, in `dir`) against their seed's envelope.
pub(crate) fn frontier_results(
    exp: &Experiment,
    dir: &Path,
    jobs: &[Job],
    runs: &[RunResult],
) -> Result<Option<FrontierResults>, LabError> {
    if exp.sizes.is_empty() {
        return Ok(None);
    }
    let done: Vec<&Job> = jobs
        .iter()
        .filter(|j| RunDir::new(dir.join(&j.name)).is_done())
        .collect();
    let read = |j: &Job| FrontierRun::read(&j.name, &RunDir::new(dir.join(&j.name)));
    let mut seeds: Vec<u64> = done.iter().map(|j| j.cfg.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let (mut envelopes, mut rows) = (Vec::new(), Vec::new());
    let mut sizes: BTreeMap<(String, u64), Vec<FrontierRun>> = BTreeMap::new();
    let mut arms: BTreeMap<String, Vec<(u64, FrontierRow)>> = BTreeMap::new();
    for &seed in &seeds {
        let mine: Vec<&&Job> = done.iter().filter(|j| j.cfg.seed == seed).collect();
        let points: Vec<FrontierRun> = mine
            .iter()
            .filter(|j| j.is_reference())
            .map(|j| read(j))
            .collect::<Result<_, _>>()?;
        for (j, p) in mine.iter().filter(|j| j.is_reference()).zip(&points) {
            let size = match &j.id.role {
                super::Role::Reference { model, .. } => model.clone(),
                super::Role::Arm { label } => label.clone(),
            };
            sizes.entry((size, j.cfg.train.max_steps)).or_default().push(p.clone());
        }
        let Ok(envelope) = Envelope::new(&points) else { continue };
        for j in mine.iter().filter(|j| !j.is_reference()) {
            let row = measure(&envelope, &read(j)?);
            arms.entry(j.id.label()).or_default().push((seed, row.clone()));
            rows.push(row);
        }
        envelopes.push(SeedEnvelope { seed, envelope });
    }
    let on_envelope = |run: &str| {
        envelopes
            .iter()
            .filter(|e| e.envelope.points.iter().any(|p| p.run == run))
            .count()
    };
    let mut size_rows: Vec<SizeRow> = sizes
        .into_iter()
        .map(|((size, steps), runs)| {
            let n = runs.len() as f64;
            SizeRow {
                size,
                steps,
                params: runs[0].params,
                flops: runs.iter().map(|r| r.flops).sum::<f64>() / n,
                tokens_per_param: runs[0].tokens / runs[0].params.max(1) as f64,
                final_val_loss: Interval::of(&runs.iter().map(|r| r.loss).collect::<Vec<_>>()),
                on_envelope: runs.iter().map(|r| on_envelope(&r.run)).sum(),
            }
        })
        .collect();
    size_rows.sort_by(|a, b| a.params.cmp(&b.params).then(a.steps.cmp(&b.steps)));
    let order: Vec<(&str, super::Cell)> = exp
        .arms
        .iter()
        .flat_map(|a| a.cells().into_iter().map(|c| (a.name.as_str(), c)))
        .collect();
    let arm_rows: Vec<FrontierArm> = order
        .iter()
        .filter_map(|(name, cell)| {
            let label = &cell.label;
            let mine = arms.get(label)?;
            let col = |f: &dyn Fn(&FrontierRow) -> Option<f64>| -> Vec<f64> {
                mine.iter().filter_map(|(_, r)| f(r)).collect()
            };
            let first = &mine[0].1;
            let x_target: Vec<f64> = runs
                .iter()
                .filter(|r| &r.arm == label)
                .map(|r| r.row.speedup_flops)
                .collect();
            Some(FrontierArm {
                arm: label.clone(),
                name: name.to_string(),
                budget: cell.budget,
                grow_frac: cell.grow_frac,
                seeds: mine.iter().map(|(s, _)| *s).collect(),
                flops: col(&|r| Some(r.flops)).iter().sum::<f64>() / mine.len() as f64,
                tokens_per_param: first.tokens_per_param,
                growth_factor: first.growth_factor,
                final_val_loss: Interval::of(&col(&|r| Some(r.final_val_loss))),
                iso_flop_gap: interval(&col(&|r| r.iso_flop_gap)),
                x_frontier: interval(&col(&|r| r.x_frontier)),
                x_target: interval(&x_target),
                outside: mine.iter().filter(|(_, r)| r.outside.is_some()).count(),
            })
        })
        .collect();
    // The cost, over the seeds whose every size run is done.
    let (mut sizes_s, mut largest_s, mut n) = (0.0, 0.0, 0);
    for &seed in &seeds {
        let refs: Vec<&Job> = jobs.iter().filter(|j| j.cfg.seed == seed && j.is_reference()).collect();
        if refs.iter().any(|j| !RunDir::new(dir.join(&j.name)).is_done()) {
            continue;
        }
        let own = |j: &Job| RunDir::new(dir.join(&j.name)).own_wall_s();
        let total: f64 = refs.iter().map(|j| own(j)).sum::<Result<f64, _>>()?;
        let largest = refs
            .iter()
            .max_by(|a, b| {
                let key = |j: &Job| (j.cfg.stages[0].model.num_params(), j.cfg.train.max_steps);
                key(a).cmp(&key(b))
            })
            .map_or(Ok(0.0), |j| own(j))?;
        sizes_s += total;
        largest_s += largest;
        n += 1;
    }
    let per = |x: f64| if n > 0 { x / n as f64 } else { f64::NAN };
    let law = super::law::check(dir, jobs, &arm_rows)?;
    Ok(Some(FrontierResults {
        law,
        preregistered: Vec::new(),
        envelopes,
        sizes: size_rows,
        rows,
        arms: arm_rows,
        cost: FrontierCost {
            seeds: n,
            sizes_s: per(sizes_s),
            largest_s: per(largest_s),
            ratio: sizes_s / largest_s,
        },
    }))
}

impl FrontierResults {
    /// The arms with a grid of growth points (`grow_frac`), in the experiment's order.
    pub fn grid_arms(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for a in self.arms.iter().filter(|a| a.grow_frac.is_some()) {
            if !names.contains(&a.name.as_str()) {
                names.push(&a.name);
            }
        }
        names
    }

    /// The heat map cells of grid arm `name`: ×frontier over (budget, growth point), where
    /// it is inside the envelope.
    pub fn heat_cells(&self, name: &str) -> Vec<crate::plot::HeatCell> {
        self.arms
            .iter()
            .filter(|a| a.name == name)
            .filter_map(|a| {
                Some(crate::plot::HeatCell {
                    budget: a.budget?,
                    grow_frac: a.grow_frac?,
                    value: a.x_frontier?,
                })
            })
            .collect()
    }

    /// The target's tokens per parameter at each budget of the arms (the final model's).
    pub fn tokens_per_param_at(&self, budget: u64) -> Option<f64> {
        self.arms
            .iter()
            .find(|a| a.budget == Some(budget))
            .map(|a| a.tokens_per_param)
    }
}
