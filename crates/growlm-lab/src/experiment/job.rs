//! What an experiment's run is, as a value (docs/design.md §Evaluation protocol): its role
//! (a model trained alone, or an arm that grows) and its seed. Its directory name is
//! written in one place, [`JobId::name`], and never parsed back.

/// What a run is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A model trained alone from scratch: `small`, `target`, a middle stage (`stage1`), or
    /// a frontier size by its name, at a budget in steps (frontier sizes only).
    Reference {
        /// `small`, `target`, `stageN` or the size's name.
        model: String,
        /// The budget, for a frontier size (one run per budget).
        budget: Option<u64>,
    },
    /// A run of an arm: it grows.
    Arm {
        /// The arm's label: its name, with the budget and growth point of a grid cell
        /// (`stack-at-2400-at38`).
        label: String,
    },
}

/// A run's identity: its role and seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobId {
    /// What the run is for.
    pub role: Role,
    /// Its seed.
    pub seed: u64,
}

impl JobId {
    /// A model trained alone (`budget` for a frontier size).
    pub fn reference(model: impl Into<String>, budget: Option<u64>, seed: u64) -> Self {
        let model = model.into();
        Self {
            role: Role::Reference { model, budget },
            seed,
        }
    }

    /// A run of the arm labelled `label`.
    pub fn arm(label: impl Into<String>, seed: u64) -> Self {
        Self {
            role: Role::Arm { label: label.into() },
            seed,
        }
    }

    /// Whether the run trains one model alone.
    pub fn is_reference(&self) -> bool {
        matches!(self.role, Role::Reference { .. })
    }

    /// What the run is, without its seed: the arm's label, the reference's model, or a
    /// frontier size with its budget (`L32x4-3741`). Runs of one label over seeds are
    /// one measurement.
    pub fn label(&self) -> String {
        match &self.role {
            Role::Reference { model, budget: Some(b) } => format!("{model}-{b}"),
            Role::Reference { model, budget: None } => model.clone(),
            Role::Arm { label } => label.clone(),
        }
    }

    /// The run's directory name: its label and seed (`stack-at-2400-at38-s0`).
    pub fn name(&self) -> String {
        format!("{}-s{}", self.label(), self.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_named_once_from_its_role_and_seed() {
        assert_eq!(JobId::reference("small", None, 3).name(), "small-s3");
        let size = JobId::reference("L32x4", Some(3741), 0);
        assert_eq!(
            (size.label().as_str(), size.name().as_str()),
            ("L32x4-3741", "L32x4-3741-s0")
        );
        let arm = JobId::arm("stack-at-2400-at38", 2);
        assert_eq!(arm.name(), "stack-at-2400-at38-s2");
        assert!(size.is_reference() && !arm.is_reference());
        // An arm whose label ends like a seed is still its own label, never parsed back.
        assert_eq!(JobId::arm("x-s1", 0).label(), "x-s1");
    }
}
