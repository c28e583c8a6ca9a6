//! The ranker chain of reference §5.3, one file per ranker.
//!
//! A ranker looks at one row of the table and returns a score, or a [`Rejection`] that makes
//! the node unsuitable. [`CHAIN`] fixes the order; the first rejection wins.

use crate::error::RankingError;
use crate::model::{Dim, JobRequirements, Resources};
use crate::reason::Rejection;
use crate::selector::Requirement;
use crate::table::NodeTable;

pub mod available_capacity;
pub mod engines;
pub mod labels;
pub mod max_usage;
pub mod min_version;
pub mod over_subscription;
pub mod previous_executions;
pub mod publishers;
pub mod random;
pub mod storages;

/// Score of a node that can take the job but gains nothing from this ranker.
pub const POSSIBLE: i64 = 0;
/// Score of a node that this ranker prefers.
pub const PREFERRED: i64 = 10;
/// Rank given to unsuitable nodes in the output.
pub const UNSUITABLE: i64 = -1;

/// One ranker's verdict on one node.
pub type Outcome<'a> = Result<i64, Rejection<'a>>;

/// A ranker: scores row `row` of the table for the job in the context.
pub type Ranker = for<'a> fn(&Context<'a>, usize) -> Outcome<'a>;

/// The chain, in reference order.
pub const CHAIN: [Ranker; 10] = [
    engines::rank,
    publishers::rank,
    storages::rank,
    labels::rank,
    max_usage::rank,
    over_subscription::rank,
    min_version::rank,
    previous_executions::rank,
    available_capacity::rank,
    random::rank,
];

/// Everything a ranker needs, prepared once per ranking request.
pub struct Context<'a> {
    /// The node table.
    pub table: &'a NodeTable,
    /// The job.
    pub job: &'a JobRequirements,
    /// Parsed label constraints.
    pub requirements: Vec<Requirement<'a>>,
    /// AvailableCapacity weights per dimension (sum 1).
    pub weights: [f64; 4],
    /// Per-dimension maximum of `available` over the table.
    pub max_available: Resources,
    /// Per-dimension maximum of `queued` over the table.
    pub max_queued: Resources,
    /// Seed of the random tie-breaker.
    pub seed: u64,
}

impl<'a> Context<'a> {
    /// Validates the job and computes the per-request constants.
    pub fn new(
        table: &'a NodeTable,
        job: &'a JobRequirements,
        seed: u64,
    ) -> Result<Context<'a>, RankingError> {
        job.resources.validate("resources")?;
        let factor = job.oversubscription_factor;
        if !factor.is_finite() || factor <= 0.0 {
            return Err(RankingError::InvalidOversubscription(factor));
        }
        let requirements = job
            .constraints
            .iter()
            .map(Requirement::parse)
            .collect::<Result<Vec<_>, _>>()?;
        // Column reductions: the AvailableCapacity ranker normalizes by the best node.
        let max_available = table
            .available
            .iter()
            .fold(Resources::default(), |m, r| m.max_per_dim(r));
        let max_queued = table
            .queued
            .iter()
            .fold(Resources::default(), |m, r| m.max_per_dim(r));
        Ok(Context {
            table,
            job,
            requirements,
            weights: available_capacity::weights(&job.resources),
            max_available,
            max_queued,
            seed,
        })
    }
}

/// Case-insensitive membership in a lower-cased type list.
pub(crate) fn supports(list: &[String], name: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(name))
}

/// Iterates the dimensions with their index into weight arrays.
pub(crate) fn dims() -> impl Iterator<Item = (usize, Dim)> {
    Dim::ALL.into_iter().enumerate()
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Builders for ranker tests.
    use crate::model::{JobRequirements, NodeFacts, Resources, Version};
    use crate::table::NodeTable;

    /// A node that passes every ranker for [`job`].
    pub fn node(id: &str) -> NodeFacts {
        NodeFacts {
            node_id: id.to_string(),
            engines: vec!["docker".into(), "wasm".into()],
            publishers: vec!["local".into(), "s3".into()],
            storages: vec!["s3".into(), "urldownload".into()],
            labels: vec![("region".into(), "eu".into())],
            max_job: Resources::new(4.0, 8e9, 100e9, 1.0),
            max_capacity: Resources::new(4.0, 8e9, 100e9, 1.0),
            available: Resources::new(4.0, 8e9, 100e9, 1.0),
            queued: Resources::default(),
            version: Some(Version::new(1, 5, 0)),
        }
    }

    /// A small docker job.
    pub fn job() -> JobRequirements {
        JobRequirements {
            engine: "docker".into(),
            publisher: "local".into(),
            resources: Resources::new(0.5, 512e6, 0.0, 0.0),
            ..Default::default()
        }
    }

    /// A table of the given nodes.
    pub fn table(nodes: Vec<NodeFacts>) -> NodeTable {
        let mut t = NodeTable::new();
        for n in nodes {
            t.upsert(n).unwrap();
        }
        t
    }

    /// Runs one ranker on the first row of a one-node table.
    pub fn run_one(
        ranker: super::Ranker,
        n: NodeFacts,
        j: &JobRequirements,
    ) -> Result<i64, String> {
        let t = table(vec![n]);
        let ctx = super::Context::new(&t, j, 7).unwrap();
        ranker(&ctx, 0).map_err(|r| r.to_string())
    }
}
