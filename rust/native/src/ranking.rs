//! `NodeTable`, `Ranking` and `not_enough_nodes_message`: dicts in, tuples out.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use bacalhau_ranking::{
    Constraint, JobRequirements, NodeFacts, NodeRank, NodeTable as Table, PreviousRuns, RankTuple,
    Resources, Verdict, Version, DEFAULT_MIN_VERSION, DEFAULT_OVERSUBSCRIPTION,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::{fixed_items, Record};
use crate::RankingError;

const NODE_KEYS: [&str; 10] = [
    "node_id",
    "engines",
    "publishers",
    "storages",
    "labels",
    "max_job",
    "max_capacity",
    "available",
    "queued",
    "version",
];

const JOB_KEYS: [&str; 8] = [
    "engine",
    "publisher",
    "storages",
    "constraints",
    "resources",
    "previous",
    "min_version",
    "oversubscription_factor",
];

const RESOURCES: &str = "(cpu, memory, disk, gpu)";
const VERSION: &str = "(major, minor, patch)";

/// `(reason, node count, smallest node id, retryable)`.
type ReasonTuple = (String, usize, String, bool);

fn map_err(e: bacalhau_ranking::RankingError) -> PyErr {
    RankingError::new_err(e.to_string())
}

fn resources(r: &Record<'_>, key: &str) -> PyResult<Resources> {
    Ok(r.numbers::<4>(key, RESOURCES)?
        .map(|[c, m, d, g]| Resources::new(c, m, d, g))
        .unwrap_or_default())
}

fn version(r: &Record<'_>, key: &str) -> PyResult<Option<Version>> {
    let Some(v) = r.get::<Vec<u64>>(key, VERSION)? else {
        return Ok(None);
    };
    match v[..] {
        [major, minor, patch] => Ok(Some(Version::new(major, minor, patch))),
        _ => Err(r.value_error(
            key,
            &format!("must have 3 items {VERSION}, got {}", v.len()),
        )),
    }
}

fn node_facts(obj: &Bound<'_, PyAny>) -> PyResult<NodeFacts> {
    let r = Record::new(obj, "NodeFacts", &NODE_KEYS)?;
    let labels: HashMap<String, String> = r.get("labels", "dict[str, str]")?.unwrap_or_default();
    Ok(NodeFacts {
        node_id: r.require("node_id", "str")?,
        engines: r.get("engines", "list[str]")?.unwrap_or_default(),
        publishers: r.get("publishers", "list[str]")?.unwrap_or_default(),
        storages: r.get("storages", "list[str]")?.unwrap_or_default(),
        labels: labels.into_iter().collect(),
        max_job: resources(&r, "max_job")?,
        max_capacity: resources(&r, "max_capacity")?,
        available: resources(&r, "available")?,
        queued: resources(&r, "queued")?,
        version: version(&r, "version")?,
    })
}

fn constraints(r: &Record<'_>) -> PyResult<Vec<Constraint>> {
    const EXPECTED: &str = "list of (key, operator, [values])";
    let Some(value) = r.raw("constraints")? else {
        return Ok(Vec::new());
    };
    let items =
        fixed_items(&value, 3).ok_or_else(|| r.type_error("constraints", EXPECTED, &value))?;
    items
        .into_iter()
        .map(|parts| {
            let key = parts[0].extract::<String>();
            let operator = parts[1].extract::<String>();
            let values = parts[2].extract::<Vec<String>>();
            match (key, operator, values) {
                (Ok(key), Ok(operator), Ok(values)) => Ok(Constraint {
                    key,
                    operator,
                    values,
                }),
                _ => Err(r.type_error("constraints", EXPECTED, &value)),
            }
        })
        .collect()
}

fn previous(r: &Record<'_>) -> PyResult<HashMap<String, PreviousRuns>> {
    const EXPECTED: &str = "dict[str, (count, has_live, rejected_bid)]";
    let Some(value) = r.raw("previous")? else {
        return Ok(HashMap::new());
    };
    let map: HashMap<String, Bound<'_, PyAny>> = value
        .extract()
        .map_err(|_| r.type_error("previous", EXPECTED, &value))?;
    map.into_iter()
        .map(|(node, v)| {
            let parts: Vec<Bound<'_, PyAny>> = v
                .extract()
                .map_err(|_| r.type_error("previous", EXPECTED, &v))?;
            match &parts[..] {
                [count, live, rejected] => {
                    let runs = PreviousRuns {
                        count: count
                            .extract()
                            .map_err(|_| r.type_error("previous", EXPECTED, &v))?,
                        has_live: live
                            .extract()
                            .map_err(|_| r.type_error("previous", EXPECTED, &v))?,
                        rejected_bid: rejected
                            .extract()
                            .map_err(|_| r.type_error("previous", EXPECTED, &v))?,
                    };
                    Ok((node, runs))
                }
                _ => Err(r.type_error("previous", EXPECTED, &v)),
            }
        })
        .collect()
}

fn job_requirements(obj: &Bound<'_, PyAny>) -> PyResult<JobRequirements> {
    let r = Record::new(obj, "JobRequirements", &JOB_KEYS)?;
    Ok(JobRequirements {
        engine: r.get("engine", "str")?.unwrap_or_default(),
        publisher: r.get("publisher", "str")?.unwrap_or_default(),
        storages: r.get("storages", "list[str]")?.unwrap_or_default(),
        constraints: constraints(&r)?,
        resources: resources(&r, "resources")?,
        previous: previous(&r)?,
        min_version: version(&r, "min_version")?.unwrap_or(DEFAULT_MIN_VERSION),
        oversubscription_factor: r
            .get("oversubscription_factor", "float")?
            .unwrap_or(DEFAULT_OVERSUBSCRIPTION),
    })
}

/// The requester's view of the compute nodes, ranked per job.
///
/// Frozen with a lock inside, so a `rank` running without the GIL in one thread and an
/// `upsert` from another wait for each other instead of failing with "already borrowed".
#[pyclass(module = "bacalhau._native", name = "NodeTable", frozen)]
#[derive(Default)]
pub struct NodeTable {
    inner: RwLock<Table>,
}

#[pymethods]
impl NodeTable {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Inserts a node or replaces the node with the same id.
    fn upsert(&self, py: Python<'_>, node: &Bound<'_, PyAny>) -> PyResult<()> {
        let facts = node_facts(node)?;
        let lock = &self.inner;
        py.detach(|| {
            lock.write()
                .unwrap_or_else(PoisonError::into_inner)
                .upsert(facts)
        })
        .map_err(map_err)
    }

    /// Removes a node; unknown ids are ignored.
    fn remove(&self, py: Python<'_>, node_id: &str) {
        let lock = &self.inner;
        py.detach(|| {
            lock.write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(node_id);
        });
    }

    fn __len__(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Updates only the capacity figures of a known node; False when the node is unknown.
    fn update_capacity(
        &self,
        py: Python<'_>,
        node_id: &str,
        max_capacity: [f64; 4],
        available: [f64; 4],
        queued: [f64; 4],
    ) -> PyResult<bool> {
        let res = |[c, m, d, g]: [f64; 4]| Resources::new(c, m, d, g);
        let lock = &self.inner;
        py.detach(|| {
            lock.write()
                .unwrap_or_else(PoisonError::into_inner)
                .update_capacity(node_id, res(max_capacity), res(available), res(queued))
        })
        .map_err(map_err)
    }

    /// Number of distinct node classes (nodes with identical static facts share one).
    fn class_count(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .class_count()
    }

    /// Without `limit`: every node ranked (a list of `NodeRank` tuples). With `limit` (an
    /// int, or None for all suitable nodes): a `Ranking` holding the best `limit` suitable
    /// nodes and the rejected ones counted per reason.
    #[pyo3(signature = (job, seed, *limit))]
    fn rank<'py>(
        &self,
        py: Python<'py>,
        job: &Bound<'py, PyAny>,
        seed: &Bound<'py, PyAny>,
        limit: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let job = job_requirements(job)?;
        // Any Python int is accepted; negative seeds wrap (Python's hash() can be negative).
        let seed = match seed.extract::<u64>() {
            Ok(s) => s,
            Err(_) => seed.extract::<i64>()? as u64,
        };
        let lock = &self.inner;
        match limit.len() {
            0 => {
                let ranks: Vec<RankTuple> = py
                    .detach(|| {
                        // The guard lives inside the closure: released before the GIL returns.
                        let table = lock.read().unwrap_or_else(PoisonError::into_inner);
                        table
                            .rank_all(&job, seed)
                            .map(|ranks| ranks.iter().map(NodeRank::to_tuple).collect())
                    })
                    .map_err(map_err)?;
                ranks.into_pyobject(py)
            }
            1 => {
                let limit: Option<usize> = limit.get_item(0)?.extract().map_err(|_| {
                    PyTypeError::new_err("rank(): limit must be an int >= 0 or None")
                })?;
                let ranking = py
                    .detach(|| {
                        let table = lock.read().unwrap_or_else(PoisonError::into_inner);
                        table.rank(&job, seed, limit).map(|r| Ranking {
                            top: r
                                .top
                                .iter()
                                .map(|n| {
                                    (n.node_id.to_string(), n.rank, true, String::new(), false)
                                })
                                .collect(),
                            available: r.available,
                            suitable: r.suitable,
                            retryable: r.retryable(),
                            reasons: r
                                .reasons()
                                .into_iter()
                                .map(|g| (g.reason, g.count, g.first_node.to_string(), g.retryable))
                                .collect(),
                        })
                    })
                    .map_err(map_err)?;
                Ok(Bound::new(py, ranking)?.into_any())
            }
            n => Err(PyTypeError::new_err(format!(
                "rank() takes at most 3 arguments (job, seed, limit), {} given",
                n + 2
            ))),
        }
    }
}

/// The best suitable nodes of one ranking and what kept the other nodes out.
#[pyclass(module = "bacalhau._native", name = "Ranking", frozen, get_all)]
pub struct Ranking {
    /// Best suitable nodes, best first, as `NodeRank` tuples.
    top: Vec<RankTuple>,
    /// Nodes considered.
    available: usize,
    /// Suitable nodes (also those beyond the limit).
    suitable: usize,
    /// Whether some rejection was capacity-like.
    retryable: bool,
    /// `(reason, count, smallest node id, retryable)`, count descending then reason.
    reasons: Vec<ReasonTuple>,
}

#[pymethods]
impl Ranking {
    /// The "not enough nodes to run job ..." text.
    fn message(&self, requested: usize) -> String {
        let groups = self
            .reasons
            .iter()
            .map(|(reason, count, node, _)| (reason.as_str(), *count, node.as_str()))
            .collect();
        bacalhau_ranking::message_from_groups(requested, self.available, self.suitable, groups)
    }

    fn __repr__(&self) -> String {
        format!(
            "Ranking(top={}, available={}, suitable={}, reasons={})",
            self.top.len(),
            self.available,
            self.suitable,
            self.reasons.len()
        )
    }
}

/// The "not enough nodes to run job ..." text from ranking tuples.
#[pyfunction]
pub fn not_enough_nodes_message(requested: usize, ranks: Vec<RankTuple>) -> String {
    let verdicts: Vec<Verdict<'_>> = ranks
        .iter()
        .map(|(node_id, _, suitable, reason, _)| Verdict {
            node_id,
            suitable: *suitable,
            reason,
        })
        .collect();
    bacalhau_ranking::not_enough_nodes_message(requested, &verdicts)
}
