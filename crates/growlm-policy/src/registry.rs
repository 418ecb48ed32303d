//! Policies by name (docs/design.md §Policies): the `[policy]` table's `name` picks a builder
//! registered here, which reads the rest of the table.

use crate::{Policy, PolicyError};

/// Builds a policy from its parameter table.
pub type Builder = fn(&toml::Table) -> Result<Box<dyn Policy>, PolicyError>;

/// One registered policy.
#[derive(Clone)]
pub struct Entry {
    /// Name used in configs and on the command line.
    pub name: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Constructor.
    pub build: Builder,
}

/// Policies known by name.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a policy.
    pub fn register(&mut self, name: &'static str, summary: &'static str, build: Builder) {
        self.entries.retain(|e| e.name != name);
        self.entries.push(Entry { name, summary, build });
    }

    /// The registered policies in registration order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Builds the policy named by `table["name"]` (or `name` when given) from `table`.
    pub fn build(&self, name: &str, table: &toml::Table) -> Result<Box<dyn Policy>, PolicyError> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| PolicyError::Unknown {
                name: name.to_string(),
                known: self.entries.iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
            })?;
        (entry.build)(table)
    }
}
