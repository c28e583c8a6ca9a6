//! Dict-to-struct helpers: every failure names the dict and the key.

use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A Python dict being read as a named record with a fixed set of keys.
pub struct Record<'py> {
    dict: Bound<'py, PyDict>,
    name: &'static str,
}

impl<'py> Record<'py> {
    /// Casts `obj` to a dict and refuses keys outside `allowed`.
    pub fn new(
        obj: &Bound<'py, PyAny>,
        name: &'static str,
        allowed: &[&str],
    ) -> PyResult<Record<'py>> {
        let dict = obj
            .cast::<PyDict>()
            .map_err(|_| {
                PyTypeError::new_err(format!("{name} must be a dict, got {}", type_name(obj)))
            })?
            .clone();
        for key in dict.keys() {
            let key: String = key
                .extract()
                .map_err(|_| PyTypeError::new_err(format!("{name} keys must be str")))?;
            if !allowed.contains(&key.as_str()) {
                return Err(PyValueError::new_err(format!(
                    "{name} has unknown key {key:?} (known: {})",
                    allowed.join(", ")
                )));
            }
        }
        Ok(Record { dict, name })
    }

    /// The raw value of `key`, `None` when absent or None.
    pub fn raw(&self, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        Ok(self.dict.get_item(key)?.filter(|v| !v.is_none()))
    }

    /// Extracts `key` as `T`; `expected` describes `T` in the error.
    pub fn get<T: FromPyObjectOwned<'py>>(&self, key: &str, expected: &str) -> PyResult<Option<T>> {
        match self.raw(key)? {
            None => Ok(None),
            Some(v) => v
                .extract::<T>()
                .map(Some)
                .map_err(|_| self.type_error(key, expected, &v)),
        }
    }

    /// Like [`Record::get`] but the key must be present.
    pub fn require<T: FromPyObjectOwned<'py>>(&self, key: &str, expected: &str) -> PyResult<T> {
        self.get(key, expected)?
            .ok_or_else(|| PyValueError::new_err(format!("{} is missing key {key:?}", self.name)))
    }

    /// A fixed-length numeric tuple (or list), e.g. resources `(cpu, mem, disk, gpu)`.
    pub fn numbers<const N: usize>(&self, key: &str, expected: &str) -> PyResult<Option<[f64; N]>> {
        let Some(values) = self.get::<Vec<f64>>(key, expected)? else {
            return Ok(None);
        };
        <[f64; N]>::try_from(values).map(Some).map_err(|v| {
            PyValueError::new_err(format!(
                "{}[{key:?}] must have {N} items ({expected}), got {}",
                self.name,
                v.len()
            ))
        })
    }

    /// A TypeError naming the record, the key and the expected type.
    pub fn type_error(&self, key: &str, expected: &str, got: &Bound<'py, PyAny>) -> PyErr {
        PyTypeError::new_err(format!(
            "{}[{key:?}] must be {expected}, got {}",
            self.name,
            type_name(got)
        ))
    }

    /// A ValueError naming the record and the key.
    pub fn value_error(&self, key: &str, problem: &str) -> PyErr {
        PyValueError::new_err(format!("{}[{key:?}] {problem}", self.name))
    }
}

/// The Python type name of `obj`, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_string())
}

/// Items of a list/tuple value, each as a list of `N` objects (tuples or lists both accepted).
pub fn fixed_items<'py>(
    value: &Bound<'py, PyAny>,
    n: usize,
) -> Option<Vec<Vec<Bound<'py, PyAny>>>> {
    let items: Vec<Bound<'py, PyAny>> = value.extract().ok()?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if item.is_instance_of::<pyo3::types::PyString>() {
            return None;
        }
        let parts: Vec<Bound<'py, PyAny>> = item.extract().ok()?;
        if parts.len() != n {
            return None;
        }
        out.push(parts);
    }
    Some(out)
}
