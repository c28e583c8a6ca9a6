//! MinVersion ranker: the node must run at least the job's minimum Bacalhau version.

use super::{Context, Outcome, POSSIBLE, PREFERRED};
use crate::model::Version;
use crate::reason::Rejection;

/// 10 for new-enough nodes and dev builds (0.0.x), 0 when the version is unknown, else a
/// rejection.
pub fn rank<'a>(ctx: &Context<'a>, row: usize) -> Outcome<'a> {
    check(ctx, ctx.table.class_of(row).version)
}

/// The verdict for every node with this version (static check).
pub fn check<'a>(ctx: &Context<'a>, version: Option<Version>) -> Outcome<'a> {
    match version {
        None => Ok(POSSIBLE),
        Some(v) if v.is_dev_build() || v >= ctx.job.min_version => Ok(PREFERRED),
        Some(node) => Err(Rejection::VersionTooOld {
            node,
            minimum: ctx.job.min_version,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Version;
    use crate::rankers::testutil::{job, node, run_one};

    fn with_version(v: Option<Version>) -> Result<i64, String> {
        let mut n = node("n-1");
        n.version = v;
        run_one(rank, n, &job())
    }

    #[test]
    fn versions() {
        assert_eq!(with_version(Some(Version::new(1, 0, 4))), Ok(10));
        assert_eq!(with_version(Some(Version::new(2, 0, 0))), Ok(10));
        assert_eq!(
            with_version(Some(Version::new(0, 0, 1))),
            Ok(10),
            "dev build"
        );
        assert_eq!(with_version(None), Ok(0));
        assert_eq!(
            with_version(Some(Version::new(1, 0, 3))),
            Err("node version 1.0.3 is older than the minimum required 1.0.4".to_string())
        );
        assert!(with_version(Some(Version::new(0, 9, 0))).is_err());
    }
}
