//! The one error type of the ranking crate.

use thiserror::Error;

/// Why a node table update or a ranking request was refused.
///
/// Rejections of individual nodes are not errors (see [`crate::Rejection`]); these are
/// malformed inputs that make the whole request meaningless.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RankingError {
    /// A node was given without an id.
    #[error("node id must not be empty")]
    EmptyNodeId,
    /// A resource figure is negative, NaN or infinite.
    #[error("{field}: resource {dimension} must be a finite number >= 0, got {value}")]
    InvalidResource {
        /// Which input the figure came from (`max_job`, `resources`, ...).
        field: &'static str,
        /// CPU, Memory, Disk or GPU.
        dimension: &'static str,
        /// The offending value.
        value: f64,
    },
    /// The over-subscription factor is not a finite number > 0.
    #[error("oversubscription factor must be a finite number > 0, got {0}")]
    InvalidOversubscription(f64),
    /// A label constraint cannot be evaluated.
    #[error("invalid constraint on label {key:?}: {reason}")]
    InvalidConstraint {
        /// The constraint's key as given (with any `favour_` prefix).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}
