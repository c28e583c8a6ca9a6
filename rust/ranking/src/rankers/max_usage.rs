//! MaxUsage ranker: the job must fit within the node's per-job maximum in every dimension.

use super::{dims, Context, Outcome, POSSIBLE, PREFERRED};
use crate::model::Resources;
use crate::reason::Rejection;

/// 0 for a job without resources, 10 when it fits, else a rejection naming the first
/// dimension that does not fit.
pub fn rank<'a>(ctx: &Context<'a>, row: usize) -> Outcome<'a> {
    check(ctx, &ctx.table.class_of(row).max_job)
}

/// The verdict for every node with this per-job maximum (static check).
pub fn check<'a>(ctx: &Context<'a>, max: &Resources) -> Outcome<'a> {
    let job = &ctx.job.resources;
    if job.is_zero() {
        return Ok(POSSIBLE);
    }
    for (_, dim) in dims() {
        let (requested, maximum) = (job.get(dim), max.get(dim));
        if requested > maximum {
            return Err(Rejection::ExceedsMaxJob {
                dim,
                requested,
                maximum,
            });
        }
    }
    Ok(PREFERRED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;
    use crate::rankers::testutil::{job, node, run_one};

    #[test]
    fn zero_resources_is_possible() {
        let mut j = job();
        j.resources = Resources::default();
        assert_eq!(run_one(rank, node("n-1"), &j), Ok(0));
    }

    #[test]
    fn fits_exactly() {
        let mut j = job();
        j.resources = Resources::new(4.0, 8e9, 100e9, 1.0);
        assert_eq!(run_one(rank, node("n-1"), &j), Ok(10));
    }

    #[test]
    fn names_first_dimension_over() {
        let mut n = node("n-1");
        n.max_job = Resources::new(0.2, 256e6, 100e9, 0.0);
        assert_eq!(
            run_one(rank, n.clone(), &job()),
            Err("job requires more CPU (0.5) than the maximum available (0.2)".to_string())
        );
        n.max_job.cpu = 1.0;
        assert_eq!(
            run_one(rank, n, &job()),
            Err(
                "job requires more Memory (512 MB) than the maximum available (256 MB)".to_string()
            )
        );
    }

    #[test]
    fn is_retryable() {
        let mut n = node("n-1");
        n.max_job.gpu = 0.0;
        let mut j = job();
        j.resources.gpu = 1.0;
        let t = crate::rankers::testutil::table(vec![n]);
        let ctx = Context::new(&t, &j, 0).unwrap();
        let rejection = rank(&ctx, 0).unwrap_err();
        assert!(rejection.retryable());
        assert_eq!(rejection.ranker(), "MaxUsage");
    }
}
