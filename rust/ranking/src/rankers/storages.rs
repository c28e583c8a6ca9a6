//! Storages ranker: the node must support every input source type of the task.

use super::{supports, Context, Outcome, PREFERRED};
use crate::reason::Rejection;

/// 10 when all input types are supported (or there are none), else a rejection naming the
/// first unsupported type.
pub fn rank<'a>(ctx: &Context<'a>, row: usize) -> Outcome<'a> {
    check(ctx, ctx.table.class_of(row).storages)
}

/// The verdict for every node with this storage set (static check, memoized per job).
pub fn check<'a>(ctx: &Context<'a>, supported: &'a [String]) -> Outcome<'a> {
    match ctx.job.storages.iter().find(|s| !supports(supported, s)) {
        None => Ok(PREFERRED),
        Some(storage) => Err(Rejection::StorageNotSupported { storage, supported }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rankers::testutil::{job, node, run_one};

    #[test]
    fn no_inputs_is_preferred() {
        assert_eq!(run_one(rank, node("n-1"), &job()), Ok(10));
    }

    #[test]
    fn all_inputs_must_be_supported() {
        let mut j = job();
        j.storages = vec!["S3".into(), "urlDownload".into()];
        assert_eq!(run_one(rank, node("n-1"), &j), Ok(10));
        j.storages.push("ipfs".into());
        assert_eq!(
            run_one(rank, node("n-1"), &j),
            Err("does not support input source \"ipfs\", only: s3, urldownload".to_string())
        );
    }
}
