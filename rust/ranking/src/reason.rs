//! Typed reasons for rejecting a node, one family per ranker.

use std::fmt;

use crate::model::{Dim, Version};
use crate::selector::Requirement;

/// Why a ranker found a node unsuitable. Borrows its strings from the table and the job, so
/// building one costs nothing; `to_string()` gives the message users see.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection<'a> {
    /// Engines ranker: the node lacks the task's engine.
    EngineNotSupported {
        /// The task's engine type.
        engine: &'a str,
        /// The node's engines (lower-cased).
        supported: &'a [String],
    },
    /// Publishers ranker: the node lacks the task's publisher.
    PublisherNotSupported {
        /// The task's publisher type.
        publisher: &'a str,
        /// The node's publishers.
        supported: &'a [String],
    },
    /// Storages ranker: the node lacks one of the input source types.
    StorageNotSupported {
        /// The first unsupported input source type.
        storage: &'a str,
        /// The node's storage types.
        supported: &'a [String],
    },
    /// Labels ranker: a hard constraint does not match the node's labels.
    LabelMismatch {
        /// The first failing constraint.
        requirement: Requirement<'a>,
    },
    /// MaxUsage ranker: the job is larger than the node accepts per job.
    ExceedsMaxJob {
        /// First dimension that does not fit.
        dim: Dim,
        /// What the job asks for.
        requested: f64,
        /// The node's per-job maximum.
        maximum: f64,
    },
    /// OverSubscription ranker: the node reported no capacity at all.
    NoCapacity,
    /// OverSubscription ranker: running + queued + this job exceed the over-subscription limit.
    NodeBusy {
        /// First dimension over the limit.
        dim: Dim,
        /// In use + queued + this job.
        needed: f64,
        /// Factor x capacity.
        limit: f64,
    },
    /// MinVersion ranker: the node runs an older release than the job needs.
    VersionTooOld {
        /// The node's version.
        node: Version,
        /// The minimum.
        minimum: Version,
    },
    /// PreviousExecutions ranker: the job already ran here more than once.
    RanBefore {
        /// Number of earlier executions.
        count: u32,
    },
    /// PreviousExecutions ranker: the job has a live execution here.
    LiveExecution,
    /// PreviousExecutions ranker: the node rejected a bid for this job.
    RejectedBid,
}

impl Rejection<'_> {
    /// True when the condition is transient (capacity-type rankers), so waiting may help.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Rejection::ExceedsMaxJob { .. } | Rejection::NoCapacity | Rejection::NodeBusy { .. }
        )
    }

    /// Name of the ranker that produced this rejection.
    pub fn ranker(&self) -> &'static str {
        match self {
            Rejection::EngineNotSupported { .. } => "Engines",
            Rejection::PublisherNotSupported { .. } => "Publishers",
            Rejection::StorageNotSupported { .. } => "Storages",
            Rejection::LabelMismatch { .. } => "Labels",
            Rejection::ExceedsMaxJob { .. } => "MaxUsage",
            Rejection::NoCapacity | Rejection::NodeBusy { .. } => "OverSubscription",
            Rejection::VersionTooOld { .. } => "MinVersion",
            Rejection::RanBefore { .. } | Rejection::LiveExecution | Rejection::RejectedBid => {
                "PreviousExecutions"
            }
        }
    }
}

/// What makes two rejections "the same reason" when nodes are counted: the rejection's
/// identity without the per-node figures of OverSubscription (those differ on every busy node,
/// so a group of busy nodes is counted per dimension). Built without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonKey<'a> {
    /// Engines.
    Engine(&'a str, &'a [String]),
    /// Publishers.
    Publisher(&'a str, &'a [String]),
    /// Storages.
    Storage(&'a str, &'a [String]),
    /// Labels: key, operator, values, soft.
    Label(&'a str, crate::selector::Operator, &'a [String]),
    /// MaxUsage: dimension and the figures' bits.
    MaxJob(Dim, u64, u64),
    /// OverSubscription without capacity.
    NoCapacity,
    /// OverSubscription: per dimension only.
    Busy(Dim),
    /// MinVersion.
    Version(Version, Version),
    /// PreviousExecutions.
    RanBefore(u32),
    /// PreviousExecutions.
    Live,
    /// PreviousExecutions.
    RejectedBid,
}

impl<'a> Rejection<'a> {
    /// The counting identity of this rejection (see [`ReasonKey`]).
    pub fn key(&self) -> ReasonKey<'a> {
        match *self {
            Rejection::EngineNotSupported { engine, supported } => {
                ReasonKey::Engine(engine, supported)
            }
            Rejection::PublisherNotSupported {
                publisher,
                supported,
            } => ReasonKey::Publisher(publisher, supported),
            Rejection::StorageNotSupported { storage, supported } => {
                ReasonKey::Storage(storage, supported)
            }
            Rejection::LabelMismatch { ref requirement } => {
                ReasonKey::Label(requirement.key, requirement.op, requirement.values)
            }
            Rejection::ExceedsMaxJob {
                dim,
                requested,
                maximum,
            } => ReasonKey::MaxJob(dim, requested.to_bits(), maximum.to_bits()),
            Rejection::NoCapacity => ReasonKey::NoCapacity,
            Rejection::NodeBusy { dim, .. } => ReasonKey::Busy(dim),
            Rejection::VersionTooOld { node, minimum } => ReasonKey::Version(node, minimum),
            Rejection::RanBefore { count } => ReasonKey::RanBefore(count),
            Rejection::LiveExecution => ReasonKey::Live,
            Rejection::RejectedBid => ReasonKey::RejectedBid,
        }
    }

    /// The message for a group of `count` nodes with this rejection's key: the full message
    /// for one node; for several busy nodes, the message without their (different) figures.
    pub fn summary(&self, count: usize) -> String {
        match self {
            Rejection::NodeBusy { dim, .. } if count > 1 => format!(
                "node busy: {} in use and queued with this job exceeds the limit",
                dim.name()
            ),
            _ => self.to_string(),
        }
    }
}

struct Supported<'a>(&'a [String]);

impl fmt::Display for Supported<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", self.0.join(", "))
        }
    }
}

impl fmt::Display for Rejection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::EngineNotSupported { engine, supported } => write!(
                f,
                "does not support engine {engine:?}, only: {}",
                Supported(supported)
            ),
            Rejection::PublisherNotSupported {
                publisher,
                supported,
            } => write!(
                f,
                "does not support publisher {publisher:?}, only: {}",
                Supported(supported)
            ),
            Rejection::StorageNotSupported { storage, supported } => write!(
                f,
                "does not support input source {storage:?}, only: {}",
                Supported(supported)
            ),
            Rejection::LabelMismatch { requirement } => {
                write!(f, "does not match label constraint {requirement}")
            }
            Rejection::ExceedsMaxJob {
                dim,
                requested,
                maximum,
            } => write!(
                f,
                "job requires more {} ({}) than the maximum available ({})",
                dim.name(),
                dim.display(*requested),
                dim.display(*maximum)
            ),
            Rejection::NoCapacity => write!(f, "node busy: it reported no capacity"),
            Rejection::NodeBusy { dim, needed, limit } => write!(
                f,
                "node busy: {} in use and queued with this job ({}) exceeds the limit ({})",
                dim.name(),
                dim.display(*needed),
                dim.display(*limit)
            ),
            Rejection::VersionTooOld { node, minimum } => write!(
                f,
                "node version {node} is older than the minimum required {minimum}"
            ),
            Rejection::RanBefore { count } => {
                write!(f, "job already ran on this node {count} times")
            }
            Rejection::LiveExecution => write!(f, "job already has a live execution on this node"),
            Rejection::RejectedBid => write!(f, "node rejected a bid for this job"),
        }
    }
}
