//! Labels ranker: hard constraints filter, `favour_` constraints add preference.

use super::{Context, Outcome, POSSIBLE, PREFERRED};
use crate::reason::Rejection;

/// Bonus per matched soft (`favour_`) constraint.
pub const SOFT_MATCH_BONUS: i64 = 10;

/// Hard constraints: none -> 0, all match -> 10, any mismatch -> rejection.
/// Each matching soft constraint adds 10; soft constraints never reject.
pub fn rank<'a>(ctx: &Context<'a>, row: usize) -> Outcome<'a> {
    check(ctx, ctx.table.class_of(row).labels)
}

/// The verdict for every node with this label set (static check, memoized per job).
pub fn check<'a>(ctx: &Context<'a>, labels: &'a [(String, String)]) -> Outcome<'a> {
    let mut has_hard = false;
    let mut bonus = 0;
    for req in &ctx.requirements {
        let matched = req.matches(labels);
        if req.soft {
            if matched {
                bonus += SOFT_MATCH_BONUS;
            }
        } else if matched {
            has_hard = true;
        } else {
            return Err(Rejection::LabelMismatch {
                requirement: req.clone(),
            });
        }
    }
    Ok(if has_hard { PREFERRED } else { POSSIBLE } + bonus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Constraint;
    use crate::rankers::testutil::{job, node, run_one};

    fn with(constraints: Vec<Constraint>) -> crate::model::JobRequirements {
        let mut j = job();
        j.constraints = constraints;
        j
    }

    #[test]
    fn no_constraints_is_possible() {
        assert_eq!(run_one(rank, node("n-1"), &job()), Ok(0));
    }

    #[test]
    fn hard_constraints() {
        let j = with(vec![
            Constraint::new("region", "in", &["eu", "us"]),
            Constraint::new("gpu", "!", &[]),
        ]);
        assert_eq!(run_one(rank, node("n-1"), &j), Ok(10));
        let j = with(vec![
            Constraint::new("region", "=", &["eu"]),
            Constraint::new("region", "notin", &["eu"]),
        ]);
        assert_eq!(
            run_one(rank, node("n-1"), &j),
            Err("does not match label constraint region notin (eu)".to_string())
        );
    }

    #[test]
    fn soft_constraints_only_add() {
        let j = with(vec![
            Constraint::new("favour_region", "=", &["eu"]),
            Constraint::new("favour_tier", "=", &["gold"]),
        ]);
        assert_eq!(
            run_one(rank, node("n-1"), &j),
            Ok(10),
            "one soft match, no hard"
        );
        let j = with(vec![
            Constraint::new("region", "exists", &[]),
            Constraint::new("favour_region", "=", &["eu"]),
        ]);
        assert_eq!(run_one(rank, node("n-1"), &j), Ok(20));
        let j = with(vec![Constraint::new("favour_region", "=", &["us"])]);
        assert_eq!(
            run_one(rank, node("n-1"), &j),
            Ok(0),
            "soft mismatch never rejects"
        );
    }
}
