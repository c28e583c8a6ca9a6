//! Runs the ranker chain over the whole table and orders the result.

use crate::error::RankingError;
use crate::model::JobRequirements;
use crate::rankers::{Context, CHAIN, UNSUITABLE};
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
}

impl NodeTable {
    /// Ranks every node for the job: suitable nodes first, then rank descending, then node id
    /// ascending. The result depends only on the table's contents, the job and the seed.
    ///
    /// Fails only when the job itself is malformed (bad constraint, negative resources).
    pub fn rank<'a>(
        &'a self,
        job: &'a JobRequirements,
        seed: u64,
    ) -> Result<Vec<NodeRank<'a>>, RankingError> {
        let ctx = Context::new(self, job, seed)?;
        let mut out = Vec::with_capacity(self.len());
        for (row, node_id) in self.ids.iter().enumerate() {
            let mut rank = 0;
            let mut rejection = None;
            for ranker in CHAIN {
                match ranker(&ctx, row) {
                    Ok(score) => rank += score,
                    Err(r) => {
                        rejection = Some(r);
                        rank = UNSUITABLE;
                        break;
                    }
                }
            }
            out.push(NodeRank {
                node_id,
                rank,
                rejection,
            });
        }
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
mod tests {
    use super::*;
    use crate::model::{Constraint, NodeFacts, PreviousRuns, Resources};
    use crate::rankers::random::draw;
    use crate::rankers::testutil::{job, node, table};

    #[test]
    fn sums_the_chain() {
        let t = table(vec![node("n-1")]);
        let j = job();
        let ranks = t.rank(&j, 3).unwrap();
        // engines 10 + publishers 10 + storages 10 + labels 0 + max usage 10 + over-sub 0
        // + version 10 + previous 30 + capacity 100 + random.
        assert_eq!(ranks.len(), 1);
        assert_eq!(ranks[0].rank, 180 + draw(3, "n-1"));
        assert!(ranks[0].suitable());
        assert!(!ranks[0].retryable());
        assert_eq!(ranks[0].reason(), "");
    }

    #[test]
    fn first_rejection_wins() {
        let mut n = node("n-1");
        n.engines.clear();
        n.version = Some(crate::model::Version::new(0, 1, 0));
        let t = table(vec![n]);
        let j = job();
        let r = &t.rank(&j, 0).unwrap()[0];
        assert_eq!(r.rank, -1);
        assert!(!r.suitable());
        assert_eq!(r.rejection.as_ref().unwrap().ranker(), "Engines");
    }

    fn mixed_nodes() -> Vec<NodeFacts> {
        let mut nodes = Vec::new();
        for i in 0..20 {
            let mut n = node(&format!("n-{i:02}"));
            match i % 4 {
                0 => n.engines = vec!["wasm".into()],
                1 => n.available = Resources::new(i as f64 / 10.0, 1e9, 1e9, 0.0),
                2 => {
                    n.available = Resources::new(0.0, 0.0, 0.0, 0.0);
                    n.queued = Resources::new(10.0, 0.0, 0.0, 0.0);
                }
                _ => {}
            }
            nodes.push(n);
        }
        nodes
    }

    fn owned(ranks: &[NodeRank<'_>]) -> Vec<(String, i64, bool, String, bool)> {
        ranks
            .iter()
            .map(|r| {
                (
                    r.node_id.to_string(),
                    r.rank,
                    r.suitable(),
                    r.reason(),
                    r.retryable(),
                )
            })
            .collect()
    }

    #[test]
    fn order_is_suitable_then_rank_then_id() {
        let t = table(mixed_nodes());
        let j = job();
        let ranks = owned(&t.rank(&j, 11).unwrap());
        assert_eq!(ranks.len(), 20);
        let first_unsuitable = ranks.iter().position(|r| !r.2).unwrap();
        assert!(ranks[first_unsuitable..].iter().all(|r| !r.2 && r.1 == -1));
        for w in ranks.windows(2) {
            if w[0].2 == w[1].2 {
                assert!(
                    w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0),
                    "{w:?}"
                );
            }
        }
        let busy = ranks.iter().find(|r| r.0 == "n-02").unwrap();
        assert!(busy.3.starts_with("node busy"));
        assert!(busy.4, "busy is retryable");
        let wrong_engine = ranks.iter().find(|r| r.0 == "n-00").unwrap();
        assert!(!wrong_engine.4);
    }

    #[test]
    fn deterministic_regardless_of_table_order() {
        let nodes = mixed_nodes();
        let forward = table(nodes.clone());
        let mut rev = nodes.clone();
        rev.reverse();
        let backward = table(rev);
        // Removal and re-insertion reshuffles rows too.
        let mut shuffled = table(nodes.clone());
        for n in nodes.iter().step_by(3) {
            shuffled.remove(&n.node_id);
        }
        for n in nodes.iter().step_by(3) {
            shuffled.upsert(n.clone()).unwrap();
        }
        let j = job();
        for seed in [0, 1, 42, u64::MAX] {
            let a = owned(&forward.rank(&j, seed).unwrap());
            assert_eq!(a, owned(&backward.rank(&j, seed).unwrap()));
            assert_eq!(a, owned(&shuffled.rank(&j, seed).unwrap()));
            assert_eq!(a, owned(&forward.rank(&j, seed).unwrap()));
        }
    }

    #[test]
    fn seed_changes_only_the_tie_breaker() {
        let t = table((0..10).map(|i| node(&format!("n-{i}"))).collect());
        let j = job();
        let a = t.rank(&j, 1).unwrap();
        let b = t.rank(&j, 2).unwrap();
        for r in a.iter().chain(b.iter()) {
            assert!((180..185).contains(&r.rank));
        }
    }

    #[test]
    fn previous_executions_exclude_nodes() {
        let t = table(vec![node("n-1"), node("n-2")]);
        let mut j = job();
        j.previous.insert(
            "n-1".into(),
            PreviousRuns {
                count: 1,
                has_live: true,
                rejected_bid: false,
            },
        );
        let ranks = t.rank(&j, 0).unwrap();
        assert_eq!(ranks[0].node_id, "n-2");
        assert_eq!(ranks[1].node_id, "n-1");
        assert!(!ranks[1].suitable());
    }

    #[test]
    fn malformed_job_is_an_error() {
        let t = table(vec![node("n-1")]);
        let mut j = job();
        j.constraints = vec![Constraint::new("x", "~", &[])];
        assert!(matches!(
            t.rank(&j, 0),
            Err(RankingError::InvalidConstraint { .. })
        ));
        let mut j = job();
        j.resources.cpu = f64::NAN;
        assert!(matches!(
            t.rank(&j, 0),
            Err(RankingError::InvalidResource { .. })
        ));
        let mut j = job();
        j.oversubscription_factor = 0.0;
        assert!(matches!(
            t.rank(&j, 0),
            Err(RankingError::InvalidOversubscription(_))
        ));
    }

    #[test]
    fn empty_table_ranks_nothing() {
        let t = NodeTable::new();
        assert!(t.rank(&job(), 0).unwrap().is_empty());
    }
}
