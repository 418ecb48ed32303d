//! Operator handles: a config's operator names resolve once, when it is read, to [`Width`]
//! and [`Depth`] handles on the registries' entries, and are written back by name.

use serde::{Deserialize, Serialize};

use crate::operator::{DepthOp, WidthOp};
use crate::registry::Registered;
use crate::{depth, width, OpsError};

/// Defines a handle type for one kind of operator: resolved from its name once, when the
/// config is read (an unknown name is refused there, naming the key), and written back by
/// name.
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $op:ident, $module:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $name(pub &'static Registered<dyn $op>);

        impl $name {
            /// The operator registered as `name`.
            pub fn named(name: &str) -> Result<Self, OpsError> {
                $module::find(name).map($name)
            }
            /// Its name in `[stages.growth]`.
            pub fn name(&self) -> &'static str {
                self.0.name
            }
        }

        impl std::ops::Deref for $name {
            type Target = dyn $op;
            fn deref(&self) -> &Self::Target {
                self.0.op
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.name == other.0.name
            }
        }

        impl Eq for $name {}

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0.name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0.name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.0.name)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = String::deserialize(d)?;
                Self::named(&name).map_err(serde::de::Error::custom)
            }
        }
    };
}

handle!(
    /// A width operator (`width = "pdg"`).
    Width,
    WidthOp,
    width
);
handle!(
    /// A depth operator (`depth = "redundant"`).
    Depth,
    DepthOp,
    depth
);
