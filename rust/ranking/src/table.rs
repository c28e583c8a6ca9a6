//! The node table: one column per dynamic node attribute (struct of arrays), indexed by node
//! id; the static facts live once per node class (see [`crate::class`]).

use std::collections::HashMap;

use crate::class::{ClassId, ClassRegistry, ClassView, NodeClass};
use crate::error::RankingError;
use crate::model::{NodeFacts, Resources};
use crate::rankers::random;

/// All candidate compute nodes, one row per node, stored column by column so that a ranking
/// pass reads only the columns its rankers need. Static facts are stored per class: each row
/// holds its class id.
///
/// Row order is an implementation detail (removal swaps the last row in); rankings never
/// depend on it.
#[derive(Debug, Default, Clone)]
pub struct NodeTable {
    index: HashMap<String, usize>,
    pub(crate) ids: Vec<String>,
    /// Stable hash of each node id (the random tie-breaker's per-node key).
    pub(crate) id_hash: Vec<u64>,
    /// Class of each row.
    pub(crate) class: Vec<ClassId>,
    pub(crate) max_capacity: Vec<Resources>,
    pub(crate) available: Vec<Resources>,
    pub(crate) queued: Vec<Resources>,
    pub(crate) classes: ClassRegistry,
}

fn lowered(names: Vec<String>) -> Vec<String> {
    let mut names: Vec<String> = names.into_iter().map(|n| n.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    names
}

impl NodeTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the table holds no node.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether a node with this id is in the table.
    pub fn contains(&self, node_id: &str) -> bool {
        self.index.contains_key(node_id)
    }

    /// Node ids in row order.
    pub fn node_ids(&self) -> &[String] {
        &self.ids
    }

    /// Number of distinct node classes (nodes with identical static facts share one).
    pub fn class_count(&self) -> usize {
        self.classes.live()
    }

    /// The static facts of the node in `row`.
    #[inline]
    pub(crate) fn class_of(&self, row: usize) -> ClassView<'_> {
        self.classes.view(self.class[row])
    }

    /// The row of a node id.
    pub(crate) fn row_of(&self, node_id: &str) -> Option<usize> {
        self.index.get(node_id).copied()
    }

    /// Inserts a node or replaces the row of the node with the same id.
    ///
    /// Type names are lower-cased; labels keep the last value given for a key.
    pub fn upsert(&mut self, node: NodeFacts) -> Result<(), RankingError> {
        if node.node_id.is_empty() {
            return Err(RankingError::EmptyNodeId);
        }
        node.max_job.validate("max_job")?;
        node.max_capacity.validate("max_capacity")?;
        node.available.validate("available")?;
        node.queued.validate("queued")?;

        let mut labels = node.labels;
        // Stable sort then keep the last duplicate, like inserting into a map in order.
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        let mut deduped: Vec<(String, String)> = Vec::with_capacity(labels.len());
        for (k, v) in labels {
            match deduped.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => deduped.push((k, v)),
            }
        }
        let class = self.classes.acquire(NodeClass {
            engines: lowered(node.engines),
            publishers: lowered(node.publishers),
            storages: lowered(node.storages),
            labels: deduped,
            max_job: node.max_job,
            version: node.version,
        });

        if let Some(&row) = self.index.get(&node.node_id) {
            // Acquired before the release, so a node staying in its class never frees it.
            let old = std::mem::replace(&mut self.class[row], class);
            self.classes.release(old);
            self.max_capacity[row] = node.max_capacity;
            self.available[row] = node.available;
            self.queued[row] = node.queued;
        } else {
            self.index.insert(node.node_id.clone(), self.ids.len());
            self.id_hash.push(random::id_hash(&node.node_id));
            self.ids.push(node.node_id);
            self.class.push(class);
            self.max_capacity.push(node.max_capacity);
            self.available.push(node.available);
            self.queued.push(node.queued);
        }
        Ok(())
    }

    /// Updates only the capacity figures of a known node (heartbeats); returns whether the
    /// node was present. Cheaper than [`upsert`](Self::upsert): the class is untouched.
    pub fn update_capacity(
        &mut self,
        node_id: &str,
        max_capacity: Resources,
        available: Resources,
        queued: Resources,
    ) -> Result<bool, RankingError> {
        max_capacity.validate("max_capacity")?;
        available.validate("available")?;
        queued.validate("queued")?;
        let Some(&row) = self.index.get(node_id) else {
            return Ok(false);
        };
        self.max_capacity[row] = max_capacity;
        self.available[row] = available;
        self.queued[row] = queued;
        Ok(true)
    }

    /// Removes a node; returns whether it was present.
    pub fn remove(&mut self, node_id: &str) -> bool {
        let Some(row) = self.index.remove(node_id) else {
            return false;
        };
        self.classes.release(self.class[row]);
        self.ids.swap_remove(row);
        self.id_hash.swap_remove(row);
        self.class.swap_remove(row);
        self.max_capacity.swap_remove(row);
        self.available.swap_remove(row);
        self.queued.swap_remove(row);
        if let Some(moved) = self.ids.get(row) {
            self.index.insert(moved.clone(), row);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> NodeFacts {
        NodeFacts {
            node_id: id.to_string(),
            engines: vec!["Docker".into(), "docker".into(), "WASM".into()],
            labels: vec![
                ("b".into(), "1".into()),
                ("a".into(), "x".into()),
                ("b".into(), "2".into()),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn upsert_normalizes_and_replaces() {
        let mut t = NodeTable::new();
        t.upsert(node("n-1")).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.class_of(0).engines, vec!["docker", "wasm"]);
        assert_eq!(
            t.class_of(0).labels,
            vec![
                ("a".to_string(), "x".to_string()),
                ("b".to_string(), "2".to_string())
            ]
        );
        let mut replacement = node("n-1");
        replacement.engines = vec!["wasm".into()];
        t.upsert(replacement).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.class_of(0).engines, vec!["wasm"]);
        assert_eq!(t.class_count(), 1, "the old class is freed");
    }

    #[test]
    fn remove_keeps_index_consistent() {
        let mut t = NodeTable::new();
        for id in ["n-1", "n-2", "n-3"] {
            t.upsert(node(id)).unwrap();
        }
        assert!(t.remove("n-1"));
        assert!(!t.remove("n-1"));
        assert_eq!(t.len(), 2);
        assert!(t.contains("n-3") && t.contains("n-2"));
        // n-3 moved into row 0: updating it must touch that row, not a stale one.
        let mut n3 = node("n-3");
        n3.engines = vec!["python".into()];
        t.upsert(n3).unwrap();
        let row = t.ids.iter().position(|i| i == "n-3").unwrap();
        assert_eq!(t.class_of(row).engines, vec!["python"]);
        assert_eq!(t.class_count(), 2);
        assert!(t.remove("n-3") && t.remove("n-2"));
        assert!(t.is_empty());
        assert_eq!(t.class_count(), 0);
    }

    #[test]
    fn identical_static_facts_share_a_class() {
        let mut t = NodeTable::new();
        for i in 0..100 {
            let mut n = node(&format!("n-{i}"));
            n.available.cpu = f64::from(i);
            if i % 10 == 0 {
                n.labels.push(("rack".into(), "r1".into()));
            }
            t.upsert(n).unwrap();
        }
        assert_eq!(t.len(), 100);
        assert_eq!(t.class_count(), 2);
        assert!(t
            .update_capacity(
                "n-1",
                Resources::new(1.0, 1.0, 1.0, 0.0),
                Resources::default(),
                Resources::default()
            )
            .unwrap());
        assert!(!t
            .update_capacity(
                "n-x",
                Resources::default(),
                Resources::default(),
                Resources::default()
            )
            .unwrap());
        assert_eq!(t.class_count(), 2);
    }

    #[test]
    fn upsert_validates() {
        let mut t = NodeTable::new();
        assert_eq!(t.upsert(node("")), Err(RankingError::EmptyNodeId));
        let mut bad = node("n-1");
        bad.available.memory = -1.0;
        assert!(matches!(
            t.upsert(bad),
            Err(RankingError::InvalidResource {
                field: "available",
                ..
            })
        ));
        assert!(t.is_empty());
    }
}
