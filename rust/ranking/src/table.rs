//! The node table: one column per node attribute (struct of arrays), indexed by node id.

use std::collections::HashMap;

use crate::error::RankingError;
use crate::model::{NodeFacts, Resources, Version};

/// All candidate compute nodes, one row per node, stored column by column so that a ranking
/// pass reads only the columns its rankers need.
///
/// Row order is an implementation detail (removal swaps the last row in); rankings never
/// depend on it.
#[derive(Debug, Default, Clone)]
pub struct NodeTable {
    index: HashMap<String, usize>,
    pub(crate) ids: Vec<String>,
    /// Lower-cased engine types per node.
    pub(crate) engines: Vec<Vec<String>>,
    /// Lower-cased publisher types per node.
    pub(crate) publishers: Vec<Vec<String>>,
    /// Lower-cased storage types per node.
    pub(crate) storages: Vec<Vec<String>>,
    /// Labels per node, sorted by key (keys unique).
    pub(crate) labels: Vec<Vec<(String, String)>>,
    pub(crate) max_job: Vec<Resources>,
    pub(crate) max_capacity: Vec<Resources>,
    pub(crate) available: Vec<Resources>,
    pub(crate) queued: Vec<Resources>,
    pub(crate) version: Vec<Option<Version>>,
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
        let engines = lowered(node.engines);
        let publishers = lowered(node.publishers);
        let storages = lowered(node.storages);

        if let Some(&row) = self.index.get(&node.node_id) {
            self.engines[row] = engines;
            self.publishers[row] = publishers;
            self.storages[row] = storages;
            self.labels[row] = deduped;
            self.max_job[row] = node.max_job;
            self.max_capacity[row] = node.max_capacity;
            self.available[row] = node.available;
            self.queued[row] = node.queued;
            self.version[row] = node.version;
        } else {
            self.index.insert(node.node_id.clone(), self.ids.len());
            self.ids.push(node.node_id);
            self.engines.push(engines);
            self.publishers.push(publishers);
            self.storages.push(storages);
            self.labels.push(deduped);
            self.max_job.push(node.max_job);
            self.max_capacity.push(node.max_capacity);
            self.available.push(node.available);
            self.queued.push(node.queued);
            self.version.push(node.version);
        }
        Ok(())
    }

    /// Removes a node; returns whether it was present.
    pub fn remove(&mut self, node_id: &str) -> bool {
        let Some(row) = self.index.remove(node_id) else {
            return false;
        };
        self.ids.swap_remove(row);
        self.engines.swap_remove(row);
        self.publishers.swap_remove(row);
        self.storages.swap_remove(row);
        self.labels.swap_remove(row);
        self.max_job.swap_remove(row);
        self.max_capacity.swap_remove(row);
        self.available.swap_remove(row);
        self.queued.swap_remove(row);
        self.version.swap_remove(row);
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
        assert_eq!(t.engines[0], vec!["docker", "wasm"]);
        assert_eq!(
            t.labels[0],
            vec![
                ("a".to_string(), "x".to_string()),
                ("b".to_string(), "2".to_string())
            ]
        );
        let mut replacement = node("n-1");
        replacement.engines = vec!["wasm".into()];
        t.upsert(replacement).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.engines[0], vec!["wasm"]);
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
        assert_eq!(t.engines[row], vec!["python"]);
        assert!(t.remove("n-3") && t.remove("n-2"));
        assert!(t.is_empty());
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
