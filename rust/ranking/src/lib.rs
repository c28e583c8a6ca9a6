//! Node ranking for the orchestrator: a node table kept as struct-of-arrays and the ranker
//! chain of the reference (§5.3). Pure: no I/O, no clock, no logging; randomness comes from
//! a caller-given seed. See README.md for the flow and vocabulary.

mod class;
mod error;
mod message;
mod model;
mod rank;
pub mod rankers;
mod reason;
mod selector;
mod table;

pub use class::{ClassId, NodeClass};
pub use error::RankingError;
pub use message::{message_from_groups, not_enough_nodes_message, Verdict, SHORT_ID_LEN};
pub use model::{
    Constraint, Dim, JobRequirements, NodeFacts, PreviousRuns, Resources, Version,
    DEFAULT_MIN_VERSION, DEFAULT_OVERSUBSCRIPTION,
};
pub use rank::{NodeRank, RankTuple, Ranking, ReasonCount, RejectionCount};
pub use reason::Rejection;
pub use selector::{Operator, Requirement, SOFT_PREFIX};
pub use table::NodeTable;
