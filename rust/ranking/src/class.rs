//! Node classes: nodes whose static facts (engines, publishers, storages, labels, per-job
//! maximum, version) are identical share one class, so the static rankers run once per class
//! and job instead of once per node.
//!
//! Each facet (engine set, publisher set, storage set, label set) is interned on its own too:
//! a public network has far fewer distinct engine sets than classes, so the string checks run
//! once per distinct facet value and job, and a class verdict is a few array lookups.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::model::{Resources, Version};

/// Index of a class (or of a facet value) in its interner.
pub type ClassId = u32;

/// A small multiplicative hasher for the interners' and the ranking's keys (ids, short
/// strings): much cheaper than SipHash, and the keys are not attacker-chosen hash floods in a
/// way that matters here (a node operator controls only its own node's facts).
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Reference-counted interning of equal values; freed slots are reused.
#[derive(Debug, Clone)]
pub(crate) struct Interner<T> {
    /// Values by id; a freed slot holds `T::default()` until reused.
    pub(crate) values: Vec<T>,
    /// Users of each value; 0 = free slot.
    pub(crate) refs: Vec<u32>,
    lookup: FastMap<T, ClassId>,
    free: Vec<ClassId>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            refs: Vec::new(),
            lookup: FastMap::default(),
            free: Vec::new(),
        }
    }
}

impl<T: Hash + Eq + Clone + Default> Interner<T> {
    /// The id of `value` (created if needed) and whether it is new; counts one more user.
    pub(crate) fn acquire(&mut self, value: T) -> (ClassId, bool) {
        if let Some(&id) = self.lookup.get(&value) {
            self.refs[id as usize] += 1;
            return (id, false);
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.values[id as usize] = value.clone();
                self.refs[id as usize] = 1;
                id
            }
            None => {
                self.values.push(value.clone());
                self.refs.push(1);
                ClassId::try_from(self.values.len() - 1).expect("fewer than 2^32 values")
            }
        };
        self.lookup.insert(value, id);
        (id, true)
    }

    /// Counts one user less; frees the value (and returns it) when it was the last one.
    pub(crate) fn release(&mut self, id: ClassId) -> Option<T> {
        let refs = &mut self.refs[id as usize];
        *refs -= 1;
        if *refs > 0 {
            return None;
        }
        let value = std::mem::take(&mut self.values[id as usize]);
        self.lookup.remove(&value);
        self.free.push(id);
        Some(value)
    }

    /// Number of live values.
    pub(crate) fn live(&self) -> usize {
        self.lookup.len()
    }

    /// Number of slots (live and free): the size of per-id caches.
    pub(crate) fn slots(&self) -> usize {
        self.values.len()
    }
}

/// The static facts of a class as facet ids and plain figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct ClassKey {
    pub(crate) engines: ClassId,
    pub(crate) publishers: ClassId,
    pub(crate) storages: ClassId,
    pub(crate) labels: ClassId,
    /// `max_job` figures by bit pattern (validated finite on upsert).
    max_job: [u64; 4],
    pub(crate) version: Option<Version>,
}

impl ClassKey {
    /// The per-job maximum.
    pub(crate) fn max_job(&self) -> Resources {
        let [c, m, d, g] = self.max_job.map(f64::from_bits);
        Resources::new(c, m, d, g)
    }
}

/// The static facts of a node, normalized (type names lower-cased, sorted, deduplicated;
/// labels sorted by key, keys unique), so equal facts compare equal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeClass {
    /// Lower-cased engine types.
    pub engines: Vec<String>,
    /// Lower-cased publisher types.
    pub publishers: Vec<String>,
    /// Lower-cased storage types.
    pub storages: Vec<String>,
    /// Labels, sorted by key.
    pub labels: Vec<(String, String)>,
    /// Largest job accepted (`MaxJobRequirements`).
    pub max_job: Resources,
    /// Bacalhau version, `None` when unknown.
    pub version: Option<Version>,
}

/// The live classes and their interned facets.
#[derive(Debug, Default, Clone)]
pub(crate) struct ClassRegistry {
    pub(crate) classes: Interner<ClassKey>,
    pub(crate) engines: Interner<Vec<String>>,
    pub(crate) publishers: Interner<Vec<String>>,
    pub(crate) storages: Interner<Vec<String>>,
    pub(crate) labels: Interner<Vec<(String, String)>>,
}

impl ClassRegistry {
    /// The id of the class with these facts, created if needed; counts one more node in it.
    pub(crate) fn acquire(&mut self, class: NodeClass) -> ClassId {
        let (engines, _) = self.engines.acquire(class.engines);
        let (publishers, _) = self.publishers.acquire(class.publishers);
        let (storages, _) = self.storages.acquire(class.storages);
        let (labels, _) = self.labels.acquire(class.labels);
        let m = class.max_job;
        let key = ClassKey {
            engines,
            publishers,
            storages,
            labels,
            max_job: [m.cpu, m.memory, m.disk, m.gpu].map(f64::to_bits),
            version: class.version,
        };
        let (id, new) = self.classes.acquire(key);
        if !new {
            // Facets are counted once per class, not per node.
            self.release_facets(&key);
        }
        id
    }

    /// Counts one node less in the class; frees the class (and its facets) with its last node.
    pub(crate) fn release(&mut self, id: ClassId) {
        if let Some(key) = self.classes.release(id) {
            self.release_facets(&key);
        }
    }

    fn release_facets(&mut self, key: &ClassKey) {
        self.engines.release(key.engines);
        self.publishers.release(key.publishers);
        self.storages.release(key.storages);
        self.labels.release(key.labels);
    }

    /// The facts of a class, borrowed.
    pub(crate) fn view(&self, id: ClassId) -> ClassView<'_> {
        let key = &self.classes.values[id as usize];
        ClassView {
            engines: &self.engines.values[key.engines as usize],
            publishers: &self.publishers.values[key.publishers as usize],
            storages: &self.storages.values[key.storages as usize],
            labels: &self.labels.values[key.labels as usize],
            max_job: key.max_job(),
            version: key.version,
        }
    }

    /// Number of live classes.
    pub(crate) fn live(&self) -> usize {
        self.classes.live()
    }
}

/// A class's facts, borrowed from the registry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ClassView<'a> {
    pub(crate) engines: &'a [String],
    pub(crate) publishers: &'a [String],
    pub(crate) storages: &'a [String],
    pub(crate) labels: &'a [(String, String)],
    pub(crate) max_job: Resources,
    pub(crate) version: Option<Version>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(engine: &str, region: &str) -> NodeClass {
        NodeClass {
            engines: vec![engine.to_string()],
            labels: vec![("region".to_string(), region.to_string())],
            ..Default::default()
        }
    }

    #[test]
    fn shares_and_frees_classes_and_facets() {
        let mut r = ClassRegistry::default();
        let a = r.acquire(class("docker", "eu"));
        assert_eq!(r.acquire(class("docker", "eu")), a);
        let b = r.acquire(class("wasm", "eu"));
        assert_ne!(a, b);
        assert_eq!(r.live(), 2);
        assert_eq!(r.labels.live(), 1, "one label set shared by both classes");
        assert_eq!(r.labels.refs[0], 2, "facets count classes, not nodes");
        r.release(a);
        assert_eq!(r.live(), 2, "one docker node left");
        r.release(a);
        assert_eq!(r.live(), 1);
        assert_eq!(r.engines.live(), 1);
        // The freed slot is reused for the next new class.
        assert_eq!(r.acquire(class("python", "us")), a);
        assert_eq!(r.view(a).engines, ["python".to_string()]);
        assert_eq!(r.labels.live(), 2);
        r.release(a);
        r.release(b);
        assert_eq!(
            (r.live(), r.engines.live(), r.labels.live()),
            (0, 0, 0),
            "nothing leaks"
        );
    }
}
