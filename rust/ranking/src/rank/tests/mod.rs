//! Tests of the ranking pipeline (`super`): scores summed over the chain, the first
//! rejection winning, order and determinism, a memoized pass and top-k against a naive chain,
//! rejections counted per reason.

use super::*;
use crate::model::{Constraint, NodeFacts, PreviousRuns, Resources, Version};
use crate::rankers::random::draw;
use crate::rankers::testutil::{job, node, table};
use crate::reason::ReasonKey;

#[test]
fn sums_the_chain() {
    let t = table(vec![node("n-1")]);
    let j = job();
    let ranks = t.rank_all(&j, 3).unwrap();
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
    let r = &t.rank_all(&j, 0).unwrap()[0];
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

fn owned(ranks: &[NodeRank<'_>]) -> Vec<RankTuple> {
    ranks.iter().map(NodeRank::to_tuple).collect()
}

#[test]
fn order_is_suitable_then_rank_then_id() {
    let t = table(mixed_nodes());
    let j = job();
    let ranks = owned(&t.rank_all(&j, 11).unwrap());
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
        let a = owned(&forward.rank_all(&j, seed).unwrap());
        assert_eq!(a, owned(&backward.rank_all(&j, seed).unwrap()));
        assert_eq!(a, owned(&shuffled.rank_all(&j, seed).unwrap()));
        assert_eq!(a, owned(&forward.rank_all(&j, seed).unwrap()));
    }
}

#[test]
fn seed_changes_only_the_tie_breaker() {
    let t = table((0..10).map(|i| node(&format!("n-{i}"))).collect());
    let j = job();
    let a = t.rank_all(&j, 1).unwrap();
    let b = t.rank_all(&j, 2).unwrap();
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
    let ranks = t.rank_all(&j, 0).unwrap();
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
        t.rank_all(&j, 0),
        Err(RankingError::InvalidConstraint { .. })
    ));
    let mut j = job();
    j.resources.cpu = f64::NAN;
    assert!(matches!(
        t.rank_all(&j, 0),
        Err(RankingError::InvalidResource { .. })
    ));
    let mut j = job();
    j.oversubscription_factor = 0.0;
    assert!(matches!(
        t.rank_all(&j, 0),
        Err(RankingError::InvalidOversubscription(_))
    ));
}

#[test]
fn empty_table_ranks_nothing() {
    let t = NodeTable::new();
    assert!(t.rank_all(&job(), 0).unwrap().is_empty());
}

/// The chain applied node by node, as the reference states it: the oracle for the
/// memoized pass.
fn naive(t: &NodeTable, j: &JobRequirements, seed: u64) -> Vec<(String, i64, String)> {
    let ctx = Context::new(t, j, seed).unwrap();
    let mut out: Vec<(String, i64, String)> = (0..t.len())
        .map(|row| {
            let mut rank = 0;
            for ranker in crate::rankers::CHAIN {
                match ranker(&ctx, row) {
                    Ok(s) => rank += s,
                    Err(r) => return (t.ids[row].clone(), UNSUITABLE, r.to_string()),
                }
            }
            (t.ids[row].clone(), rank, String::new())
        })
        .collect();
    out.sort_by(|a, b| {
        a.2.is_empty()
            .cmp(&b.2.is_empty())
            .reverse()
            .then(b.1.cmp(&a.1))
            .then(a.0.cmp(&b.0))
    });
    out
}

/// xorshift64*: a tiny deterministic generator for test tables.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_table(g: &mut Gen, n: usize) -> NodeTable {
    let mut t = NodeTable::new();
    for i in 0..n {
        let mut facts = node(&format!("n-{:04}", g.below(10_000) * 10_000 + i as u64));
        if g.below(8) == 0 {
            facts.engines = vec!["wasm".into()];
        }
        if g.below(10) == 0 {
            facts.publishers = vec!["s3".into()];
        }
        facts.labels = vec![(
            "region".into(),
            ["eu", "us", "ap"][g.below(3) as usize].into(),
        )];
        if g.below(6) == 0 {
            facts.version = Some(Version::new(1, 0, g.below(6)));
        }
        if g.below(12) == 0 {
            facts.max_job.cpu = 0.25;
        }
        let cpu = g.below(5) as f64;
        facts.available = Resources::new(cpu, 8e9 * g.below(3) as f64 / 2.0, 1e11, 1.0);
        facts.queued = Resources::new(g.below(4) as f64, 0.0, 0.0, 0.0);
        if g.below(20) == 0 {
            facts.max_capacity = Resources::default();
        }
        t.upsert(facts).unwrap();
    }
    t
}

fn random_job(g: &mut Gen, t: &NodeTable) -> JobRequirements {
    let mut j = job();
    match g.below(3) {
        0 => j.constraints = vec![Constraint::new("region", "in", &["eu", "us"])],
        1 => j.constraints = vec![Constraint::new("favour_region", "=", &["ap"])],
        _ => {}
    }
    for id in t.node_ids().iter().step_by(7) {
        let runs = PreviousRuns {
            count: g.below(3) as u32,
            has_live: g.below(4) == 0,
            rejected_bid: g.below(6) == 0,
        };
        j.previous.insert(id.clone(), runs);
    }
    j
}

#[test]
fn memoized_pass_matches_the_chain() {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for round in 0..30 {
        let t = random_table(&mut g, 50 + round * 7);
        assert!(t.class_count() < t.len());
        let j = random_job(&mut g, &t);
        let seed = g.next();
        let fast: Vec<(String, i64, String)> = t
            .rank_all(&j, seed)
            .unwrap()
            .iter()
            .map(|r| (r.node_id.to_string(), r.rank, r.reason()))
            .collect();
        assert_eq!(fast, naive(&t, &j, seed), "round {round}");
    }
}

#[test]
fn top_k_and_counts_match_the_full_list() {
    let mut g = Gen(42);
    for round in 0..20 {
        let t = random_table(&mut g, 200);
        let j = random_job(&mut g, &t);
        let seed = g.next();
        let full = t.rank_all(&j, seed).unwrap();
        let suitable: Vec<&NodeRank<'_>> = full.iter().filter(|r| r.suitable()).collect();
        for limit in [0, 1, 3, 50, 1000] {
            let r = t.rank(&j, seed, Some(limit)).unwrap();
            let want: Vec<&NodeRank<'_>> = suitable.iter().take(limit).copied().collect();
            assert_eq!(r.top.iter().collect::<Vec<_>>(), want, "round {round}");
            assert_eq!(r.suitable, suitable.len());
            assert_eq!(r.available, t.len());
            let rejected: usize = r.rejections.iter().map(|g| g.count).sum();
            assert_eq!(rejected, full.len() - suitable.len());
            assert_eq!(r.retryable(), full.iter().any(NodeRank::retryable));
            // The same counts, grouped from the full per-node list.
            let mut by_key: HashMap<ReasonKey<'_>, (usize, &str, &Rejection<'_>)> = HashMap::new();
            for n in full.iter().filter(|n| !n.suitable()) {
                let rej = n.rejection.as_ref().unwrap();
                let e = by_key.entry(rej.key()).or_insert((0, n.node_id, rej));
                e.0 += 1;
                e.1 = e.1.min(n.node_id);
            }
            let mut got: Vec<(ReasonKey<'_>, usize, &str)> = r
                .rejections
                .iter()
                .map(|g| (g.rejection.key(), g.count, g.first_node))
                .collect();
            let mut want: Vec<(ReasonKey<'_>, usize, &str)> =
                by_key.iter().map(|(k, v)| (*k, v.0, v.1)).collect();
            let order =
                |a: &(ReasonKey<'_>, usize, &str), b: &(ReasonKey<'_>, usize, &str)| a.2.cmp(b.2);
            got.sort_by(order);
            want.sort_by(order);
            assert_eq!(got, want);
            // And the message merges equal texts like the per-node message does.
            let texts: Vec<(String, usize, &str)> = by_key
                .values()
                .map(|(count, first, rej)| (rej.summary(*count), *count, *first))
                .collect();
            let mut merged: Vec<(&str, usize, &str)> = Vec::new();
            for (text, count, first) in &texts {
                match merged.iter_mut().find(|m| m.0 == text.as_str()) {
                    Some(m) => {
                        m.1 += count;
                        m.2 = m.2.min(first);
                    }
                    None => merged.push((text.as_str(), *count, first)),
                }
            }
            assert_eq!(
                r.message(2),
                crate::message::message_from_groups(2, t.len(), suitable.len(), merged)
            );
        }
        let all = t.rank(&j, seed, None).unwrap();
        assert_eq!(all.top.iter().collect::<Vec<_>>(), suitable);
    }
}

#[test]
fn busy_beats_old_version_as_in_the_chain() {
    let mut old_busy = node("n-1");
    old_busy.version = Some(crate::model::Version::new(1, 0, 0));
    old_busy.available = Resources::default();
    old_busy.queued = Resources::new(10.0, 0.0, 0.0, 0.0);
    let mut old_idle = node("n-2");
    old_idle.version = Some(crate::model::Version::new(1, 0, 0));
    let t = table(vec![old_busy, old_idle]);
    let j = job();
    let r = t.rank(&j, 0, Some(1)).unwrap();
    assert_eq!(t.class_count(), 1);
    let rankers: Vec<&str> = r.rejections.iter().map(|g| g.rejection.ranker()).collect();
    assert_eq!(rankers.len(), 2);
    assert!(rankers.contains(&"OverSubscription") && rankers.contains(&"MinVersion"));
    assert!(r.retryable());
}

#[test]
fn rejections_are_counted_per_reason() {
    let mut nodes = Vec::new();
    for i in 0..1000 {
        let mut n = node(&format!("n-{i:04}"));
        if i % 2 == 0 {
            n.engines = vec!["wasm".into()];
        }
        nodes.push(n);
    }
    let t = table(nodes);
    let j = job();
    let r = t.rank(&j, 9, Some(2)).unwrap();
    assert_eq!((r.top.len(), r.suitable, r.available), (2, 500, 1000));
    assert_eq!(r.rejections.len(), 1);
    assert_eq!(r.rejections[0].count, 500);
    assert_eq!(r.rejections[0].first_node, "n-0000");
    assert_eq!(
        r.message(600),
        "not enough nodes to run job. requested: 600, available: 1000, suitable: 500.\n\
         • 500 of 1000 nodes: does not support engine \"docker\", only: wasm"
    );
}
