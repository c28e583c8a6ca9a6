//! Publishers ranker: the node must support the task's publisher; no publisher fits anyone.

use super::{supports, Context, Outcome, PREFERRED};
use crate::reason::Rejection;

/// 10 when the publisher is empty or supported, else a rejection.
pub fn rank<'a>(ctx: &Context<'a>, row: usize) -> Outcome<'a> {
    check(ctx, ctx.table.class_of(row).publishers)
}

/// The verdict for every node with this publisher set (static check, memoized per job).
pub fn check<'a>(ctx: &Context<'a>, supported: &'a [String]) -> Outcome<'a> {
    let publisher = ctx.job.publisher.as_str();
    if publisher.is_empty() || supports(supported, publisher) {
        Ok(PREFERRED)
    } else {
        Err(Rejection::PublisherNotSupported {
            publisher,
            supported,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rankers::testutil::{job, node, run_one};

    #[test]
    fn empty_publisher_is_preferred_everywhere() {
        let mut j = job();
        j.publisher.clear();
        let mut n = node("n-1");
        n.publishers.clear();
        assert_eq!(run_one(rank, n, &j), Ok(10));
    }

    #[test]
    fn supported_and_unsupported() {
        let mut j = job();
        j.publisher = "S3".into();
        assert_eq!(run_one(rank, node("n-1"), &j), Ok(10));
        j.publisher = "ipfs".into();
        assert_eq!(
            run_one(rank, node("n-1"), &j),
            Err("does not support publisher \"ipfs\", only: local, s3".to_string())
        );
    }
}
