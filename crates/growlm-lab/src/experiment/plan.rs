//! The runs an experiment asks for: per seed the references, then the arms, each arm
//! branched from its small reference's snapshot where the schedules allow it.

use std::path::{Path, PathBuf};

use growlm_train::{check_branch, snapshot_path, Edit, RunConfig};

use super::job::JobId;
use super::{middle, Experiment};
use crate::error::Context;
use crate::LabError;

/// A run to train.
#[derive(Debug, Clone)]
pub struct Job {
    /// What the run is: its role and seed.
    pub id: JobId,
    /// Directory name inside the experiment's run directory: `id.name()`.
    pub name: String,
    /// Its config.
    pub cfg: RunConfig,
    /// The small reference's snapshot to branch from, and that job's index.
    pub branch: Option<(PathBuf, usize)>,
    /// Jobs that must be done first: the branch's source, or for a policy arm both
    /// references (a policy such as `solver` reads the target's curve).
    pub after: Vec<usize>,
    /// Snapshot steps (the small reference's branch points).
    pub keep_at: Vec<u64>,
}

impl Job {
    /// The run `id` with `cfg`, trained straight, nothing kept.
    pub fn new(id: JobId, cfg: RunConfig) -> Self {
        Self {
            name: id.name(),
            id,
            cfg,
            branch: None,
            after: vec![],
            keep_at: vec![],
        }
    }

    /// Whether the job trains one model alone (a reference).
    pub fn is_reference(&self) -> bool {
        self.id.is_reference()
    }
}

/// The `[policy]` table of `name` with `steps`, when given.
fn policy(name: &str, steps: &[u64]) -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("name".into(), toml::Value::String(name.into()));
    if !steps.is_empty() {
        let list = steps.iter().map(|&s| toml::Value::Integer(s as i64)).collect();
        t.insert("steps".into(), toml::Value::Array(list));
    }
    t
}

impl Experiment {
    /// Every run of the experiment, with the run directories in `dir` and the base config
    /// at `base`: per seed the references, then that seed's arms.
    pub fn jobs(&self, dir: &Path, base: &Path) -> Result<Vec<Job>, LabError> {
        let load = |edits: Vec<Edit>| -> Result<RunConfig, LabError> {
            let all: Vec<Edit> = self.sets.iter().cloned().map(Edit::Set).chain(edits).collect();
            Ok(RunConfig::load_edited_beside(base, &all, &[&self.dir])?)
        };
        let base_cfg = load(vec![])?;
        if base_cfg.stages.len() < 2 {
            return Err(LabError::Invalid(format!(
                "{}: the base config has one stage; an experiment grows",
                base.display()
            )));
        }
        let seeds = if self.seeds.is_empty() {
            vec![base_cfg.seed]
        } else {
            self.seeds.clone()
        };
        let runs = dir.display().to_string();
        let mut arms: Vec<Arm4> = Vec::new();
        for arm in &self.arms {
            // The arm's policy first, so that its own `policy.KEY=…` sets apply to it.
            let steps = arm.grow_at.as_ref().map_or(vec![], |s| s.to_vec());
            let mut edits = Vec::new();
            if !steps.is_empty() {
                edits.push(Edit::Policy(policy("fixed", &steps)));
            }
            if let Some(p) = &arm.policy {
                // As `--policy NAME`: the base's parameters stay when it names the same policy.
                edits.push(Edit::PolicyName(p.clone()));
            }
            edits.extend(arm.sets.iter().map(|s| Edit::Set(s.replace("{runs}", &runs))));
            if let (Some(after), Some(last)) = (arm.steps_after, steps.last()) {
                edits.push(Edit::MaxSteps(last + after));
            }
            if steps.first() == Some(&0) {
                return Err(LabError::Invalid(format!(
                    "arm `{}`: a growth step must be at least 1",
                    arm.name
                )));
            }
            for cell in arm.cells() {
                let mut edits = edits.clone();
                let grow = cell.grow_step();
                if let Some(g) = grow {
                    if g >= cell.budget.unwrap_or(0) || base_cfg.stages.len() != 2 {
                        return Err(LabError::Invalid(format!(
                            "arm `{}`: `grow_frac` grows once, within the budget, from a base of two stages",
                            cell.label
                        )));
                    }
                    edits.insert(0, Edit::Policy(policy("fixed", &[g])));
                }
                edits.extend(cell.budget.map(Edit::MaxSteps));
                let label = cell.label;
                let cfg = load(edits).context_with(|| format!("arm `{label}`"))?;
                for s in arm.seeds.clone().unwrap_or_else(|| seeds.clone()) {
                    arms.push((label.clone(), s, cfg.clone(), grow.or(steps.first().copied())));
                }
            }
        }
        if let Some(only) = &self.only {
            let all: std::collections::BTreeSet<u64> = arms.iter().map(|a| a.1).collect();
            if let Some(s) = only.iter().find(|s| !all.contains(s)) {
                return Err(LabError::Invalid(format!(
                    "--seeds {s}: the experiment runs no such seed (its seeds: {:?})",
                    all.iter().collect::<Vec<_>>()
                )));
            }
            arms.retain(|a| only.contains(&a.1));
        }
        if !self.sizes.is_empty() {
            if self.solve || self.reference_steps.is_some() || !self.branch_points.is_empty() {
                return Err(LabError::Invalid(
                    "`solve`, `reference_steps` and `branch_points` need the small and target references, \
                     which an experiment with sizes does not train; drop them"
                        .into(),
                ));
            }
            return unique(self.frontier_jobs(dir, &base_cfg, &arms)?);
        }
        let longest = self
            .reference_steps
            .unwrap_or_else(|| arms.iter().map(|a| a.2.train.max_steps).max().unwrap_or(0));
        let mut jobs = Vec::new();
        let mut ref_seeds: Vec<u64> = arms.iter().map(|a| a.1).collect();
        ref_seeds.sort_unstable();
        ref_seeds.dedup();
        let n = base_cfg.stages.len();
        // Per seed: the references, then that seed's arms (so the first seed's results come
        // first).
        for &seed in &ref_seeds {
            let only = |stage: usize, steps: u64| -> Result<RunConfig, LabError> {
                let mut cfg = base_cfg.only_stage(stage)?;
                cfg.seed = seed;
                cfg.train.max_steps = steps.max(base_cfg.train.max_steps);
                Ok(cfg)
            };
            let small_cfg = only(0, self.reference_steps.unwrap_or(0))?;
            let mut keep_at: Vec<u64> = arms
                .iter()
                .filter(|a| a.1 == seed)
                .filter_map(|a| a.3)
                .chain(self.branch_points.iter().copied())
                .map(|g| g.saturating_sub(1))
                .filter(|&s| s > 0 && s <= small_cfg.train.max_steps)
                .collect();
            keep_at.sort_unstable();
            keep_at.dedup();
            let small = jobs.len();
            let reference = |model: String, cfg: RunConfig| Job::new(JobId::reference(model, None, seed), cfg);
            jobs.push(Job {
                keep_at,
                ..reference("small".into(), small_cfg)
            });
            jobs.push(reference("target".into(), only(n - 1, longest)?));
            // A base with more than two stages: the middle stages' from-scratch curves too,
            // which the multi-stage planner needs.
            for j in 1..n - 1 {
                jobs.push(reference(middle(j), only(j, longest)?));
            }
            for (name, _, cfg, first) in arms.iter().filter(|a| a.1 == seed) {
                let (mut cfg, first) = (cfg.clone(), *first);
                cfg.seed = seed;
                let branch = first.filter(|&g| g > 1).and_then(|g| {
                    let at = snapshot_path(&dir.join(&jobs[small].name), g - 1);
                    // The snapshot's stage 0 is the small reference's; check now that the arm may
                    // branch from it (the LR of every trained step agrees), else train straight.
                    check_branch(&jobs[small].cfg, &cfg, g - 1, 0, &at)
                        .ok()
                        .map(|_| (at, small))
                });
                let after = match &branch {
                    Some(b) => vec![b.1],
                    None if first.is_none() => vec![small, small + 1],
                    None => vec![],
                };
                jobs.push(Job {
                    branch,
                    after,
                    ..Job::new(JobId::arm(name, seed), cfg)
                });
            }
        }
        unique(jobs)
    }

    /// The jobs of a frontier experiment: per seed the arms, each trained straight, then
    /// every size at every budget (the shorter wsd budgets branched from the longest's
    /// snapshots).
    fn frontier_jobs(&self, dir: &Path, base: &RunConfig, arms: &[Arm4]) -> Result<Vec<Job>, LabError> {
        let mut ref_seeds: Vec<u64> = arms.iter().map(|a| a.1).collect();
        ref_seeds.sort_unstable();
        ref_seeds.dedup();
        let mut jobs = Vec::new();
        for &seed in &ref_seeds {
            // The arms first: they need no size, and a partial experiment then measures them
            // against what of the frontier is done.
            for (label, _, cfg, _) in arms.iter().filter(|a| a.1 == seed) {
                let mut cfg = cfg.clone();
                cfg.seed = seed;
                jobs.push(Job::new(JobId::arm(label, seed), cfg));
            }
            for size in &self.sizes {
                let mut cfg = match (size.stage, &size.model) {
                    (Some(n), _) => base.only_stage(n)?,
                    (None, Some(model)) => {
                        let mut table = base.only_stage(0)?.to_table();
                        let stage = toml::Table::from_iter([("model".to_string(), toml::Value::Table(model.clone()))]);
                        table.insert("stages".into(), toml::Value::Array(vec![toml::Value::Table(stage)]));
                        RunConfig::from_table(table).context_with(|| format!("size `{}`", size.name))?
                    }
                    (None, None) => {
                        return Err(LabError::Invalid(format!(
                            "size `{}` needs `stage` or `model`",
                            size.name
                        )))
                    }
                };
                cfg.seed = seed;
                let per_step = cfg.stages[0]
                    .model
                    .flops_per_step(cfg.train.batch_size, cfg.train.seq_len);
                let mut budgets: Vec<u64> = size
                    .budgets
                    .iter()
                    .copied()
                    .chain(size.flops.iter().map(|f| ((f / per_step).round() as u64).max(1)))
                    .collect();
                budgets.sort_unstable();
                budgets.dedup();
                let at = |b: u64| -> Result<RunConfig, LabError> {
                    cfg.with_max_steps(b)
                        .context_with(|| format!("size `{}` at {b} steps", size.name))
                };
                let Some(&longest) = budgets.last() else {
                    return Err(LabError::Invalid(format!("size `{}` has no budgets", size.name)));
                };
                let long_cfg = at(longest)?;
                let id = |b: u64| JobId::reference(&size.name, Some(b), seed);
                let name = |b: u64| id(b).name();
                // Where each shorter budget's decay begins: its branch point.
                let mut shorter = Vec::new();
                for &b in &budgets[..budgets.len() - 1] {
                    let c = at(b)?;
                    let start = b - c.train.decay_len();
                    let snapshot = snapshot_path(&dir.join(name(longest)), start);
                    let ok = c.train.schedule == growlm_train::Schedule::Wsd
                        && start > 0
                        && start < b
                        && check_branch(&long_cfg, &c, start, 0, &snapshot).is_ok();
                    shorter.push((b, c, ok.then_some((snapshot, start))));
                }
                let long = jobs.len();
                jobs.push(Job {
                    keep_at: shorter.iter().filter_map(|s| s.2.as_ref().map(|b| b.1)).collect(),
                    ..Job::new(id(longest), long_cfg)
                });
                for (b, c, branch) in shorter {
                    jobs.push(Job {
                        after: if branch.is_some() { vec![long] } else { vec![] },
                        branch: branch.map(|(at, _)| (at, long)),
                        ..Job::new(id(b), c)
                    });
                }
            }
        }
        Ok(jobs)
    }

    /// The run directory of the target reference of `seed`: `target-sSEED`, or in a
    /// frontier experiment the longest budget of the size that is the base's last stage.
    pub fn target_reference(&self, jobs: &[Job], seed: u64, last_stage: usize) -> Option<String> {
        if self.sizes.is_empty() {
            return Some(JobId::reference("target", None, seed).name());
        }
        let size = self.sizes.iter().find(|s| s.stage == Some(last_stage))?;
        let of_size = |j: &&Job| match &j.id.role {
            super::job::Role::Reference { model, budget: Some(_) } => *model == size.name,
            _ => false,
        };
        jobs.iter()
            .filter(|j| j.id.seed == seed)
            .filter(of_size)
            .max_by_key(|j| j.cfg.train.max_steps)
            .map(|j| j.name.clone())
    }
}

/// Refuses two jobs of one directory name (an arm `a-100` and a size `a` at 100 steps).
fn unique(jobs: Vec<Job>) -> Result<Vec<Job>, LabError> {
    let mut seen = std::collections::BTreeSet::new();
    match jobs.iter().find(|j| !seen.insert(j.name.as_str())) {
        Some(j) => Err(LabError::Invalid(format!(
            "two runs would share the directory `{}`; rename an arm or a size",
            j.name
        ))),
        None => Ok(jobs),
    }
}

/// An arm run to plan: its label, seed, config and first fixed growth step.
type Arm4 = (String, u64, RunConfig, Option<u64>);
