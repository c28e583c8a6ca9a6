//! Label constraints with Kubernetes label-selector semantics.
//!
//! Operators: `in`, `notin`, `exists`, `!` (does not exist), `=`, `==`, `!=`, `gt`, `lt`.
//! `notin` and `!=` also match nodes without the label, as in Kubernetes. Keys prefixed with
//! `favour_` are soft: the real key is the rest, and the constraint only adds to the rank.

use std::fmt;

use crate::error::RankingError;
use crate::model::Constraint;

/// Prefix that turns a constraint into a preference.
pub const SOFT_PREFIX: &str = "favour_";

/// A selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `in`: the label exists and its value is one of the values.
    In,
    /// `notin`: the label is absent or its value is none of the values.
    NotIn,
    /// `exists`: the label exists.
    Exists,
    /// `!`: the label does not exist.
    DoesNotExist,
    /// `=`: the label exists with this value.
    Equals,
    /// `==`: same as `=`.
    DoubleEquals,
    /// `!=`: the label is absent or has another value.
    NotEquals,
    /// `gt`: the label is an integer greater than the value.
    GreaterThan,
    /// `lt`: the label is an integer less than the value.
    LessThan,
}

impl Operator {
    /// Parses an operator name (case-insensitive).
    pub fn parse(s: &str) -> Option<Operator> {
        let op = match s.to_ascii_lowercase().as_str() {
            "in" => Operator::In,
            "notin" => Operator::NotIn,
            "exists" => Operator::Exists,
            "!" => Operator::DoesNotExist,
            "=" => Operator::Equals,
            "==" => Operator::DoubleEquals,
            "!=" => Operator::NotEquals,
            "gt" => Operator::GreaterThan,
            "lt" => Operator::LessThan,
            _ => return None,
        };
        Some(op)
    }
}

/// A validated constraint, borrowing its strings from the job.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement<'a> {
    /// Label key (without the `favour_` prefix).
    pub key: &'a str,
    /// Operator.
    pub op: Operator,
    /// Operand values.
    pub values: &'a [String],
    /// The operand of `gt`/`lt`, parsed once.
    number: i64,
    /// True for `favour_` constraints.
    pub soft: bool,
    /// Position among the job's constraints (a cheap identity for counting rejections).
    pub(crate) index: u32,
}

impl<'a> Requirement<'a> {
    /// Validates a constraint: known operator, value count fitting the operator, integer
    /// operand for `gt`/`lt`, non-empty key.
    pub fn parse(c: &'a Constraint) -> Result<Requirement<'a>, RankingError> {
        let invalid = |reason: String| RankingError::InvalidConstraint {
            key: c.key.clone(),
            reason,
        };
        let (key, soft) = match c.key.strip_prefix(SOFT_PREFIX) {
            Some(rest) => (rest, true),
            None => (c.key.as_str(), false),
        };
        if key.is_empty() {
            return Err(invalid("empty label key".to_string()));
        }
        let op = Operator::parse(&c.operator)
            .ok_or_else(|| invalid(format!("unknown operator {:?}", c.operator)))?;
        let n = c.values.len();
        let mut number = 0;
        match op {
            Operator::In | Operator::NotIn if n == 0 => {
                return Err(invalid(format!(
                    "operator {} needs at least one value",
                    c.operator
                )))
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if n != 1 => {
                return Err(invalid(format!(
                    "operator {} needs exactly one value",
                    c.operator
                )))
            }
            Operator::Exists | Operator::DoesNotExist if n != 0 => {
                return Err(invalid(format!("operator {} takes no values", c.operator)))
            }
            Operator::GreaterThan | Operator::LessThan => {
                if n != 1 {
                    return Err(invalid(format!(
                        "operator {} needs exactly one value",
                        c.operator
                    )));
                }
                number = c.values[0].trim().parse::<i64>().map_err(|_| {
                    invalid(format!(
                        "operator {} needs an integer value, got {:?}",
                        c.operator, c.values[0]
                    ))
                })?;
            }
            _ => {}
        }
        Ok(Requirement {
            key,
            op,
            values: &c.values,
            number,
            soft,
            index: 0,
        })
    }

    /// Whether a node's labels (sorted by key) satisfy this requirement.
    pub fn matches(&self, labels: &[(String, String)]) -> bool {
        let value = labels
            .binary_search_by(|(k, _)| k.as_str().cmp(self.key))
            .ok()
            .map(|i| labels[i].1.as_str());
        let contains = |v: &str| self.values.iter().any(|x| x == v);
        match self.op {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(contains),
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(contains),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan => value
                .and_then(|v| v.trim().parse::<i64>().ok())
                .is_some_and(|v| v > self.number),
            Operator::LessThan => value
                .and_then(|v| v.trim().parse::<i64>().ok())
                .is_some_and(|v| v < self.number),
        }
    }
}

impl fmt::Display for Requirement<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.first().map(String::as_str).unwrap_or("");
        match self.op {
            Operator::In | Operator::NotIn => {
                let word = if self.op == Operator::In {
                    "in"
                } else {
                    "notin"
                };
                write!(f, "{} {} ({})", self.key, word, self.values.join(","))
            }
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::Equals => write!(f, "{}={}", self.key, first),
            Operator::DoubleEquals => write!(f, "{}=={}", self.key, first),
            Operator::NotEquals => write!(f, "{}!={}", self.key, first),
            Operator::GreaterThan => write!(f, "{}>{}", self.key, first),
            Operator::LessThan => write!(f, "{}<{}", self.key, first),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    fn check(key: &str, op: &str, values: &[&str], node: &[(&str, &str)]) -> bool {
        let c = Constraint::new(key, op, values);
        Requirement::parse(&c).unwrap().matches(&labels(node))
    }

    #[test]
    fn in_and_notin() {
        let node = [("region", "eu"), ("tier", "gold")];
        assert!(check("region", "in", &["us", "eu"], &node));
        assert!(!check("region", "in", &["us"], &node));
        assert!(!check("zone", "in", &["a"], &node));
        assert!(check("region", "notin", &["us"], &node));
        assert!(!check("region", "notin", &["eu", "us"], &node));
        assert!(
            check("zone", "notin", &["a"], &node),
            "absent label matches notin"
        );
    }

    #[test]
    fn equality() {
        let node = [("region", "eu")];
        assert!(check("region", "=", &["eu"], &node));
        assert!(check("region", "==", &["eu"], &node));
        assert!(!check("region", "=", &["us"], &node));
        assert!(!check("zone", "=", &["eu"], &node));
        assert!(check("region", "!=", &["us"], &node));
        assert!(!check("region", "!=", &["eu"], &node));
        assert!(
            check("zone", "!=", &["eu"], &node),
            "absent label matches !="
        );
    }

    #[test]
    fn existence() {
        let node = [("gpu", "")];
        assert!(check("gpu", "exists", &[], &node));
        assert!(!check("ssd", "exists", &[], &node));
        assert!(check("ssd", "!", &[], &node));
        assert!(!check("gpu", "!", &[], &node));
    }

    #[test]
    fn numeric_comparisons() {
        let node = [("cores", "8"), ("name", "abc")];
        assert!(check("cores", "gt", &["4"], &node));
        assert!(!check("cores", "gt", &["8"], &node));
        assert!(check("cores", "lt", &["16"], &node));
        assert!(!check("cores", "lt", &["8"], &node));
        assert!(
            !check("name", "gt", &["1"], &node),
            "non-integer label never matches"
        );
        assert!(!check("missing", "lt", &["1"], &node));
        assert!(
            check("cores", "GT", &["-3"], &node),
            "operators are case-insensitive"
        );
    }

    #[test]
    fn soft_prefix() {
        let c = Constraint::new("favour_region", "=", &["eu"]);
        let r = Requirement::parse(&c).unwrap();
        assert!(r.soft);
        assert_eq!(r.key, "region");
        assert!(r.matches(&labels(&[("region", "eu")])));
    }

    #[test]
    fn rejects_bad_constraints() {
        let bad = [
            Constraint::new("a", "like", &["x"]),
            Constraint::new("a", "in", &[]),
            Constraint::new("a", "=", &["x", "y"]),
            Constraint::new("a", "exists", &["x"]),
            Constraint::new("a", "gt", &["x"]),
            Constraint::new("a", "lt", &[]),
            Constraint::new("", "exists", &[]),
            Constraint::new("favour_", "exists", &[]),
        ];
        for c in &bad {
            assert!(
                matches!(
                    Requirement::parse(c),
                    Err(RankingError::InvalidConstraint { .. })
                ),
                "{c:?} should be refused"
            );
        }
    }

    #[test]
    fn displays_like_kubernetes() {
        let shown = |k: &str, op: &str, v: &[&str]| {
            let c = Constraint::new(k, op, v);
            Requirement::parse(&c).unwrap().to_string()
        };
        assert_eq!(shown("r", "in", &["a", "b"]), "r in (a,b)");
        assert_eq!(shown("r", "notin", &["a"]), "r notin (a)");
        assert_eq!(shown("r", "exists", &[]), "r");
        assert_eq!(shown("r", "!", &[]), "!r");
        assert_eq!(shown("r", "=", &["a"]), "r=a");
        assert_eq!(shown("r", "==", &["a"]), "r==a");
        assert_eq!(shown("r", "!=", &["a"]), "r!=a");
        assert_eq!(shown("r", "gt", &["1"]), "r>1");
        assert_eq!(shown("favour_r", "lt", &["1"]), "r<1");
    }
}
