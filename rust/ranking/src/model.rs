//! Plain input types: resources, versions, node facts and job requirements.

use std::collections::HashMap;
use std::fmt;

use crate::error::RankingError;

/// One dimension of [`Resources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    /// CPU cores (fractional).
    Cpu,
    /// Memory in bytes.
    Memory,
    /// Disk in bytes.
    Disk,
    /// Whole GPUs.
    Gpu,
}

impl Dim {
    /// All dimensions, in the order used everywhere (tuples, weights, messages).
    pub const ALL: [Dim; 4] = [Dim::Cpu, Dim::Memory, Dim::Disk, Dim::Gpu];

    /// The name users see in reasons.
    pub fn name(self) -> &'static str {
        match self {
            Dim::Cpu => "CPU",
            Dim::Memory => "Memory",
            Dim::Disk => "Disk",
            Dim::Gpu => "GPU",
        }
    }

    /// A value of this dimension formatted for users (`0.5`, `512 MB`, `1`).
    pub fn display(self, value: f64) -> ResourceValue {
        ResourceValue { dim: self, value }
    }
}

/// A resource figure that knows how to print itself (bytes get SI units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceValue {
    dim: Dim,
    value: f64,
}

impl fmt::Display for ResourceValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dim {
            Dim::Cpu | Dim::Gpu => write!(f, "{}", trim_number(self.value)),
            Dim::Memory | Dim::Disk => {
                const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
                let mut v = self.value;
                let mut unit = 0;
                while v >= 1000.0 && unit + 1 < UNITS.len() {
                    v /= 1000.0;
                    unit += 1;
                }
                write!(f, "{} {}", trim_number(v), UNITS[unit])
            }
        }
    }
}

/// Prints at most three decimals and no trailing zeros (`0.5`, `2`, `1.234`).
fn trim_number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// CPU cores, memory bytes, disk bytes and GPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Resources {
    /// CPU cores.
    pub cpu: f64,
    /// Memory in bytes.
    pub memory: f64,
    /// Disk in bytes.
    pub disk: f64,
    /// GPUs.
    pub gpu: f64,
}

impl Resources {
    /// Builds resources from the `(cpu, memory, disk, gpu)` order used on the Python side.
    pub const fn new(cpu: f64, memory: f64, disk: f64, gpu: f64) -> Self {
        Self {
            cpu,
            memory,
            disk,
            gpu,
        }
    }

    /// The figure of one dimension.
    #[inline]
    pub fn get(&self, dim: Dim) -> f64 {
        match dim {
            Dim::Cpu => self.cpu,
            Dim::Memory => self.memory,
            Dim::Disk => self.disk,
            Dim::Gpu => self.gpu,
        }
    }

    /// True when every dimension is zero.
    pub fn is_zero(&self) -> bool {
        Dim::ALL.iter().all(|&d| self.get(d) == 0.0)
    }

    /// Per-dimension maximum of two figures.
    pub fn max_per_dim(&self, other: &Resources) -> Resources {
        Resources::new(
            self.cpu.max(other.cpu),
            self.memory.max(other.memory),
            self.disk.max(other.disk),
            self.gpu.max(other.gpu),
        )
    }

    /// Refuses negative, NaN and infinite figures; `field` names the input in the error.
    pub fn validate(&self, field: &'static str) -> Result<(), RankingError> {
        for dim in Dim::ALL {
            let value = self.get(dim);
            if !value.is_finite() || value < 0.0 {
                return Err(RankingError::InvalidResource {
                    field,
                    dimension: dim.name(),
                    value,
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        for (i, dim) in Dim::ALL.into_iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{}: {}", dim.name(), dim.display(self.get(dim)))?;
        }
        write!(f, "}}")
    }
}

/// A semantic version `major.minor.patch`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Patch number.
    pub patch: u64,
}

impl Version {
    /// Builds a version.
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Development builds report `0.0.x` and pass every minimum-version check.
    pub fn is_dev_build(&self) -> bool {
        self.major == 0 && self.minor == 0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What the orchestrator knows about one compute node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFacts {
    /// Node id (`n-<uuid>`).
    pub node_id: String,
    /// Execution engine types (`docker`, `wasm`); compared case-insensitively.
    pub engines: Vec<String>,
    /// Publisher types; compared case-insensitively.
    pub publishers: Vec<String>,
    /// Input source types; compared case-insensitively.
    pub storages: Vec<String>,
    /// Node labels.
    pub labels: Vec<(String, String)>,
    /// Largest job the node accepts (`MaxJobRequirements`).
    pub max_job: Resources,
    /// Total capacity (`MaxCapacity`).
    pub max_capacity: Resources,
    /// Currently free capacity (`AvailableCapacity`).
    pub available: Resources,
    /// Capacity used by queued executions (`QueueCapacity`).
    pub queued: Resources,
    /// Bacalhau version of the node, `None` when unknown.
    pub version: Option<Version>,
}

/// One label constraint as the job states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// Label key; a `favour_` prefix makes the constraint soft.
    pub key: String,
    /// One of `in notin exists ! = == != gt lt` (case-insensitive).
    pub operator: String,
    /// Operand values.
    pub values: Vec<String>,
}

impl Constraint {
    /// Builds a constraint from string slices (handy in tests and examples).
    pub fn new(key: &str, operator: &str, values: &[&str]) -> Self {
        Self {
            key: key.to_string(),
            operator: operator.to_string(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }
}

/// Earlier executions of the job (same version) on one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PreviousRuns {
    /// How many executions the node has had.
    pub count: u32,
    /// Whether one of them is still live (not discarded).
    pub has_live: bool,
    /// Whether the node rejected a bid for the job.
    pub rejected_bid: bool,
}

/// Default minimum node version (reference §5.3).
pub const DEFAULT_MIN_VERSION: Version = Version::new(1, 0, 4);
/// Default over-subscription factor (reference §5.3).
pub const DEFAULT_OVERSUBSCRIPTION: f64 = 1.5;

/// What one task of a job needs from a node.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRequirements {
    /// Engine type.
    pub engine: String,
    /// Publisher type; empty means "any node".
    pub publisher: String,
    /// Input source types.
    pub storages: Vec<String>,
    /// Label constraints.
    pub constraints: Vec<Constraint>,
    /// Requested resources.
    pub resources: Resources,
    /// Earlier executions by node id.
    pub previous: HashMap<String, PreviousRuns>,
    /// Oldest node version accepted.
    pub min_version: Version,
    /// How far a node may be over-committed (queue included) relative to its capacity.
    pub oversubscription_factor: f64,
}

impl Default for JobRequirements {
    fn default() -> Self {
        Self {
            engine: String::new(),
            publisher: String::new(),
            storages: Vec::new(),
            constraints: Vec::new(),
            resources: Resources::default(),
            previous: HashMap::new(),
            min_version: DEFAULT_MIN_VERSION,
            oversubscription_factor: DEFAULT_OVERSUBSCRIPTION,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_resources() {
        let r = Resources::new(0.5, 512e6, 1.5e9, 1.0);
        assert_eq!(
            r.to_string(),
            "{CPU: 0.5, Memory: 512 MB, Disk: 1.5 GB, GPU: 1}"
        );
        assert_eq!(Dim::Memory.display(999.0).to_string(), "999 B");
        assert_eq!(Dim::Cpu.display(0.0).to_string(), "0");
    }

    #[test]
    fn validates_resources() {
        assert!(Resources::new(1.0, 0.0, 0.0, 0.0).validate("x").is_ok());
        let err = Resources::new(-1.0, 0.0, 0.0, 0.0).validate("max_job");
        assert!(matches!(
            err,
            Err(RankingError::InvalidResource {
                field: "max_job",
                dimension: "CPU",
                ..
            })
        ));
        assert!(Resources::new(0.0, f64::NAN, 0.0, 0.0)
            .validate("x")
            .is_err());
    }

    #[test]
    fn orders_versions() {
        assert!(Version::new(1, 0, 4) > Version::new(1, 0, 3));
        assert!(Version::new(1, 1, 0) > Version::new(1, 0, 9));
        assert!(Version::new(0, 0, 7).is_dev_build());
        assert!(!Version::new(0, 1, 0).is_dev_build());
    }
}
