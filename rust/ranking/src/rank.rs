//! The ranking pass: static verdicts per class (from the [`Context`]), dynamic rankers per
//! node, the best `limit` suitable nodes kept in a bounded heap (no full sort), rejections
//! counted per reason without an allocation per rejected node.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::class::FastMap;
use crate::error::RankingError;
use crate::message::message_from_groups;
use crate::model::JobRequirements;
use crate::rankers::{
    available_capacity, over_subscription, previous_executions, random, ClassVerdict, Context,
    GroupKey, Ranker, UNSUITABLE,
};
use crate::reason::Rejection;
use crate::table::NodeTable;

/// The verdict on one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRank<'a> {
    /// Node id.
    pub node_id: &'a str,
    /// Sum of the rankers' scores, or -1 when unsuitable.
    pub rank: i64,
    /// The rejection that made the node unsuitable, if any.
    pub rejection: Option<Rejection<'a>>,
}

impl NodeRank<'_> {
    /// True when no ranker rejected the node.
    pub fn suitable(&self) -> bool {
        self.rejection.is_none()
    }

    /// True when the node was rejected for a transient (capacity) reason.
    pub fn retryable(&self) -> bool {
        self.rejection.as_ref().is_some_and(Rejection::retryable)
    }

    /// The rejection message, empty for suitable nodes.
    pub fn reason(&self) -> String {
        self.rejection
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// `(node id, rank, suitable, reason, retryable)`, owning its strings (what crosses
    /// into Python).
    pub fn to_tuple(&self) -> RankTuple {
        (
            self.node_id.to_string(),
            self.rank,
            self.suitable(),
            self.reason(),
            self.retryable(),
        )
    }
}

/// An owned [`NodeRank`]: `(node id, rank, suitable, reason, retryable)`.
pub type RankTuple = (String, i64, bool, String, bool);

/// How many nodes one reason kept out.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectionCount<'a> {
    /// The rejection of the first node counted (all share its [`Rejection::key`]).
    pub rejection: Rejection<'a>,
    /// Number of nodes.
    pub count: usize,
    /// The smallest node id among them (named in messages when `count` is 1).
    pub first_node: &'a str,
}

/// One distinct rejection message with its node count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonCount<'a> {
    /// The message users see.
    pub reason: String,
    /// Number of nodes rejected with this message.
    pub count: usize,
    /// The smallest node id among them.
    pub first_node: &'a str,
    /// Whether the condition is transient (capacity-like).
    pub retryable: bool,
}

/// The answer to [`NodeTable::rank`]: the best suitable nodes and what kept the others out.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking<'a> {
    /// The best suitable nodes (at most the requested limit): rank descending, node id
    /// ascending.
    pub top: Vec<NodeRank<'a>>,
    /// Nodes considered (the table's size).
    pub available: usize,
    /// Suitable nodes (including those beyond the limit).
    pub suitable: usize,
    /// Rejected nodes grouped by identical rejection, count descending then node id.
    pub rejections: Vec<RejectionCount<'a>>,
}

impl<'a> Ranking<'a> {
    /// True when some node was rejected for a transient (capacity) reason.
    pub fn retryable(&self) -> bool {
        self.rejections.iter().any(|r| r.rejection.retryable())
    }

    /// The rejections grouped by message (distinct rejections can print alike), count
    /// descending then message. Busy nodes are counted per dimension (see
    /// [`Rejection::summary`]).
    pub fn reasons(&self) -> Vec<ReasonCount<'a>> {
        let mut by_reason: HashMap<String, usize> = HashMap::new();
        let mut out: Vec<ReasonCount<'a>> = Vec::new();
        for r in &self.rejections {
            let reason = r.rejection.summary(r.count);
            match by_reason.get(&reason) {
                Some(&i) => {
                    let g = &mut out[i];
                    g.count += r.count;
                    g.first_node = g.first_node.min(r.first_node);
                }
                None => {
                    by_reason.insert(reason.clone(), out.len());
                    out.push(ReasonCount {
                        reason,
                        count: r.count,
                        first_node: r.first_node,
                        retryable: r.rejection.retryable(),
                    });
                }
            }
        }
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        out
    }

    /// "not enough nodes to run job. requested: R, available: A, suitable: S." with one
    /// bullet per distinct reason (see [`crate::not_enough_nodes_message`]).
    pub fn message(&self, requested: usize) -> String {
        let reasons = self.reasons();
        let groups = reasons
            .iter()
            .map(|r| (r.reason.as_str(), r.count, r.first_node))
            .collect();
        message_from_groups(requested, self.available, self.suitable, groups)
    }
}

/// What the pass found for one row.
enum RowVerdict<'a> {
    /// Suitable with this rank.
    Suitable(i64),
    /// Rejected by its class's static verdict.
    ClassRejected,
    /// Rejected by a dynamic ranker.
    Rejected(Rejection<'a>),
}

/// The dynamic rankers after OverSubscription, in chain order.
const DYNAMIC_AFTER: [Ranker; 3] = [
    previous_executions::rank,
    available_capacity::rank,
    random::rank,
];

impl<'a> Context<'a> {
    /// The chain's verdict on one row, from the class verdict and the dynamic rankers.
    #[inline]
    fn judge(&self, row: usize) -> RowVerdict<'a> {
        let mut rank = match self.verdict(row) {
            ClassVerdict::Pass(score) => *score,
            ClassVerdict::Reject(..) => return RowVerdict::ClassRejected,
            ClassVerdict::RejectAfterCapacity(..) => {
                return match over_subscription::rank(self, row) {
                    Err(r) => RowVerdict::Rejected(r),
                    Ok(_) => RowVerdict::ClassRejected,
                };
            }
        };
        match over_subscription::rank(self, row) {
            Ok(score) => rank += score,
            Err(r) => return RowVerdict::Rejected(r),
        }
        for ranker in DYNAMIC_AFTER {
            match ranker(self, row) {
                Ok(score) => rank += score,
                Err(r) => return RowVerdict::Rejected(r),
            }
        }
        RowVerdict::Suitable(rank)
    }

    /// The class's rejection of a [`RowVerdict::ClassRejected`] row.
    fn class_rejection(&self, row: usize) -> &Rejection<'a> {
        match self.verdict(row) {
            ClassVerdict::Reject(r, _) | ClassVerdict::RejectAfterCapacity(r, _) => r,
            ClassVerdict::Pass(_) => unreachable!("a passing class rejects nothing"),
        }
    }
}

/// A suitable node in the top-k heap; `Less` means better (rank desc, then node id asc), so
/// the max-heap's top is the worst node kept.
#[derive(Debug, PartialEq, Eq)]
struct Candidate<'a> {
    rank: i64,
    node_id: &'a str,
}

impl Ord for Candidate<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .rank
            .cmp(&self.rank)
            .then_with(|| self.node_id.cmp(other.node_id))
    }
}

impl PartialOrd for Candidate<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl NodeTable {
    /// Ranks the table for the job and keeps the best `limit` suitable nodes (`None` = all
    /// of them), with every rejected node counted under its rejection. One pass over the
    /// table; static checks run once per node class; no full sort, no allocation per
    /// rejected node. The result depends only on the table's contents, the job and the seed.
    ///
    /// Fails only when the job itself is malformed (bad constraint, negative resources).
    pub fn rank<'a>(
        &'a self,
        job: &'a JobRequirements,
        seed: u64,
        limit: Option<usize>,
    ) -> Result<Ranking<'a>, RankingError> {
        let ctx = Context::new(self, job, seed)?;
        // Per class: (nodes rejected, row of the smallest node id).
        let mut by_class: Vec<(usize, usize)> = vec![(0, 0); ctx.verdicts.len()];
        let mut groups: FastMap<GroupKey, RejectionCount<'a>> = FastMap::default();
        let mut heap: BinaryHeap<Candidate<'a>> = BinaryHeap::new();
        let mut all: Vec<Candidate<'a>> = Vec::new();
        let mut suitable = 0;
        for row in 0..self.len() {
            match ctx.judge(row) {
                RowVerdict::Suitable(rank) => {
                    suitable += 1;
                    let c = Candidate {
                        rank,
                        node_id: &self.ids[row],
                    };
                    match limit {
                        None => all.push(c),
                        Some(k) if heap.len() < k => heap.push(c),
                        Some(_) => {
                            if let Some(mut worst) = heap.peek_mut() {
                                if c < *worst {
                                    *worst = c;
                                }
                            }
                        }
                    }
                }
                RowVerdict::ClassRejected => {
                    let slot = &mut by_class[self.class[row] as usize];
                    if slot.0 == 0 || self.ids[row] < self.ids[slot.1] {
                        slot.1 = row;
                    }
                    slot.0 += 1;
                }
                RowVerdict::Rejected(rejection) => {
                    let node_id = self.ids[row].as_str();
                    groups
                        .entry(GroupKey::of_dynamic(&rejection))
                        .and_modify(|g| {
                            g.count += 1;
                            g.first_node = g.first_node.min(node_id);
                        })
                        .or_insert(RejectionCount {
                            rejection,
                            count: 1,
                            first_node: node_id,
                        });
                }
            }
        }
        let top_sorted = if limit.is_some() {
            heap.into_sorted_vec()
        } else {
            all.sort_unstable();
            all
        };
        let top = top_sorted
            .into_iter()
            .map(|c| NodeRank {
                node_id: c.node_id,
                rank: c.rank,
                rejection: None,
            })
            .collect();
        // Per class, then merged by reason key: proportional to classes, not nodes.
        for (class, &(count, row)) in by_class.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let (rejection, key) = match &ctx.verdicts[class] {
                ClassVerdict::Reject(r, k) | ClassVerdict::RejectAfterCapacity(r, k) => (r, *k),
                ClassVerdict::Pass(_) => continue,
            };
            let node_id = self.ids[row].as_str();
            groups
                .entry(key)
                .and_modify(|g| {
                    g.count += count;
                    g.first_node = g.first_node.min(node_id);
                })
                .or_insert_with(|| RejectionCount {
                    rejection: rejection.clone(),
                    count,
                    first_node: node_id,
                });
        }
        let mut rejections: Vec<RejectionCount<'a>> = groups.into_values().collect();
        rejections.sort_unstable_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.first_node.cmp(b.first_node))
        });
        Ok(Ranking {
            top,
            available: self.len(),
            suitable,
            rejections,
        })
    }

    /// Every node with its verdict: suitable nodes first, then rank descending, then node id
    /// ascending (the full ordered list, for callers that want all ranks).
    pub fn rank_all<'a>(
        &'a self,
        job: &'a JobRequirements,
        seed: u64,
    ) -> Result<Vec<NodeRank<'a>>, RankingError> {
        let ctx = Context::new(self, job, seed)?;
        let mut out: Vec<NodeRank<'a>> = (0..self.len())
            .map(|row| {
                let node_id = self.ids[row].as_str();
                let (rank, rejection) = match ctx.judge(row) {
                    RowVerdict::Suitable(rank) => (rank, None),
                    RowVerdict::ClassRejected => {
                        (UNSUITABLE, Some(ctx.class_rejection(row).clone()))
                    }
                    RowVerdict::Rejected(r) => (UNSUITABLE, Some(r)),
                };
                NodeRank {
                    node_id,
                    rank,
                    rejection,
                }
            })
            .collect();
        // Node ids are unique, so the unstable sort is still a total, deterministic order.
        out.sort_unstable_by(|a, b| {
            b.suitable()
                .cmp(&a.suitable())
                .then(b.rank.cmp(&a.rank))
                .then(a.node_id.cmp(b.node_id))
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
