//! The ranker chain of reference §5.3, one file per ranker.
//!
//! A ranker looks at one row of the table and returns a score, or a [`Rejection`] that makes
//! the node unsuitable. [`CHAIN`] fixes the order; the first rejection wins.
//!
//! The static rankers (engines, publishers, storages, labels, max usage, min version) depend
//! only on a node's class, so [`Context::new`] runs the string checks once per distinct facet
//! value (engine set, label set, ...), combines them once per class into [`ClassVerdict`]s, and
//! the ranking pass then runs only the dynamic rankers per node.

use crate::class::Interner;
use crate::error::RankingError;
use crate::model::{Dim, JobRequirements, PreviousRuns, Resources, Version};
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

/// What the static rankers say about every node of a class, for one job.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassVerdict<'a> {
    /// No static ranker rejects: the sum of their scores.
    Pass(i64),
    /// A static ranker before OverSubscription rejects: final for every node of the class.
    Reject(Rejection<'a>, GroupKey),
    /// MinVersion (after OverSubscription) rejects: a node that OverSubscription rejects
    /// reports that rejection instead, as the chain would.
    RejectAfterCapacity(Rejection<'a>, GroupKey),
}

/// The identity under which rejected nodes are counted: rejections with equal keys print the
/// same message (busy nodes per dimension, see [`Rejection::summary`]). Small and `Copy`, so
/// counting costs a hash of a few words, never a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKey {
    /// Engines: the node's interned engine set.
    Engines(u32),
    /// Publishers: the node's interned publisher set.
    Publishers(u32),
    /// Storages: the node's interned storage set.
    Storages(u32),
    /// Labels: the index of the first failing constraint.
    Labels(u32),
    /// MaxUsage: dimension and figures (bit patterns).
    MaxJob(Dim, u64, u64),
    /// OverSubscription without capacity.
    NoCapacity,
    /// OverSubscription, per dimension.
    Busy(Dim),
    /// MinVersion: the node's version.
    Version(Version),
    /// PreviousExecutions.
    RanBefore(u32),
    /// PreviousExecutions.
    Live,
    /// PreviousExecutions.
    RejectedBid,
}

impl GroupKey {
    /// The key of a dynamic rejection (static ones get theirs from their facet).
    pub(crate) fn of_dynamic(r: &Rejection<'_>) -> GroupKey {
        match *r {
            Rejection::NoCapacity => GroupKey::NoCapacity,
            Rejection::NodeBusy { dim, .. } => GroupKey::Busy(dim),
            Rejection::RanBefore { count } => GroupKey::RanBefore(count),
            Rejection::LiveExecution => GroupKey::Live,
            _ => GroupKey::RejectedBid,
        }
    }
}

/// A per-job cache of one static check over the values of a facet interner, filled on first
/// use: a facet value only classes rejected earlier in the chain never reach is never checked.
struct FacetCache<'a, T> {
    interner: &'a Interner<T>,
    outcomes: Vec<Option<Outcome<'a>>>,
}

impl<'a, T> FacetCache<'a, T> {
    fn new(interner: &'a Interner<T>) -> Self {
        Self {
            interner,
            outcomes: vec![None; interner.values.len()],
        }
    }

    fn get(&mut self, id: u32, check: impl FnOnce(&'a T) -> Outcome<'a>) -> &Outcome<'a> {
        let interner = self.interner;
        self.outcomes[id as usize].get_or_insert_with(|| check(&interner.values[id as usize]))
    }
}

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
    /// The job's earlier executions on nodes of the table, by row, sorted by row.
    previous: Vec<(usize, PreviousRuns)>,
    /// The per-job cache of static verdicts, by class id (free class slots hold `Pass(0)`).
    pub verdicts: Vec<ClassVerdict<'a>>,
}

impl<'a> Context<'a> {
    /// Validates the job and computes the per-request constants and class verdicts.
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
        let mut requirements = job
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
        // Proportional to the job's executions, not to the table.
        let mut previous: Vec<(usize, PreviousRuns)> = job
            .previous
            .iter()
            .filter_map(|(id, runs)| table.row_of(id).map(|row| (row, *runs)))
            .collect();
        previous.sort_unstable_by_key(|p| p.0);
        for (i, r) in requirements.iter_mut().enumerate() {
            r.index = u32::try_from(i).unwrap_or(u32::MAX);
        }
        let mut ctx = Context {
            table,
            job,
            requirements,
            weights: available_capacity::weights(&job.resources),
            max_available,
            max_queued,
            seed,
            previous,
            verdicts: Vec::new(),
        };
        // Proportional to the distinct facet values, then to the classes: never to nodes.
        let reg = &table.classes;
        let mut engines = FacetCache::new(&reg.engines);
        let mut publishers = FacetCache::new(&reg.publishers);
        let mut storages = FacetCache::new(&reg.storages);
        let mut labels = FacetCache::new(&reg.labels);
        let mut verdicts = Vec::with_capacity(reg.classes.slots());
        for (key, &refs) in reg.classes.values.iter().zip(&reg.classes.refs) {
            if refs == 0 {
                verdicts.push(ClassVerdict::Pass(0));
                continue;
            }
            let mut score = 0;
            let mut rejected = None;
            let sets = [
                (&mut engines, key.engines, GroupKey::Engines(key.engines), 0),
                (
                    &mut publishers,
                    key.publishers,
                    GroupKey::Publishers(key.publishers),
                    1,
                ),
                (
                    &mut storages,
                    key.storages,
                    GroupKey::Storages(key.storages),
                    2,
                ),
            ];
            for (cache, id, group, which) in sets {
                let outcome = cache.get(id, |v| match which {
                    0 => engines::check(&ctx, v),
                    1 => publishers::check(&ctx, v),
                    _ => storages::check(&ctx, v),
                });
                match outcome {
                    Ok(s) => score += s,
                    Err(r) => {
                        rejected = Some((r.clone(), group));
                        break;
                    }
                }
            }
            if rejected.is_none() {
                match labels.get(key.labels, |v| labels::check(&ctx, v)) {
                    Ok(s) => score += s,
                    Err(r) => {
                        let index = match r {
                            Rejection::LabelMismatch { requirement } => requirement.index,
                            _ => u32::MAX,
                        };
                        rejected = Some((r.clone(), GroupKey::Labels(index)));
                    }
                }
            }
            if rejected.is_none() {
                match max_usage::check(&ctx, &key.max_job()) {
                    Ok(s) => score += s,
                    Err(r) => {
                        let group = match r {
                            Rejection::ExceedsMaxJob {
                                dim,
                                requested,
                                maximum,
                            } => GroupKey::MaxJob(dim, requested.to_bits(), maximum.to_bits()),
                            _ => GroupKey::NoCapacity,
                        };
                        rejected = Some((r, group));
                    }
                }
            }
            verdicts.push(match rejected {
                Some((r, group)) => ClassVerdict::Reject(r, group),
                None => match min_version::check(&ctx, key.version) {
                    Ok(s) => ClassVerdict::Pass(score + s),
                    Err(r) => ClassVerdict::RejectAfterCapacity(
                        r,
                        GroupKey::Version(key.version.unwrap_or_default()),
                    ),
                },
            });
        }
        ctx.verdicts = verdicts;
        Ok(ctx)
    }

    /// The cached static verdict of the node in `row`.
    #[inline]
    pub fn verdict(&self, row: usize) -> &ClassVerdict<'a> {
        &self.verdicts[self.table.class[row] as usize]
    }

    /// The job's earlier executions on the node in `row`.
    #[inline]
    pub fn previous_of(&self, row: usize) -> Option<&PreviousRuns> {
        if self.previous.is_empty() {
            return None;
        }
        self.previous
            .binary_search_by_key(&row, |p| p.0)
            .ok()
            .map(|i| &self.previous[i].1)
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
