//! Engines ranker: the node must support the task's engine type (case-insensitive).

use super::{supports, Context, Outcome, PREFERRED};
use crate::reason::Rejection;

/// 10 when the node supports the engine, else a rejection.
pub fn rank<'a>(ctx: &Context<'a>, row: usize) -> Outcome<'a> {
    check(ctx, ctx.table.class_of(row).engines)
}

/// The verdict for every node with this engine set (static check, memoized per job).
pub fn check<'a>(ctx: &Context<'a>, supported: &'a [String]) -> Outcome<'a> {
    if supports(supported, &ctx.job.engine) {
        Ok(PREFERRED)
    } else {
        Err(Rejection::EngineNotSupported {
            engine: &ctx.job.engine,
            supported,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rankers::testutil::{job, node, run_one};

    #[test]
    fn matches_case_insensitively() {
        let mut j = job();
        j.engine = "Docker".into();
        assert_eq!(run_one(rank, node("n-1"), &j), Ok(10));
    }

    #[test]
    fn rejects_missing_engine() {
        let mut n = node("n-1");
        n.engines = vec!["wasm".into()];
        assert_eq!(
            run_one(rank, n, &job()),
            Err("does not support engine \"docker\", only: wasm".to_string())
        );
        let mut n = node("n-1");
        n.engines.clear();
        assert_eq!(
            run_one(rank, n, &job()),
            Err("does not support engine \"docker\", only: none".to_string())
        );
    }
}
