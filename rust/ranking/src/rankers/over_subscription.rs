//! OverSubscription ranker: in use + queued + this job must stay within factor x capacity.

use super::{dims, Context, Outcome, POSSIBLE};
use crate::reason::Rejection;

/// 0 when the node can absorb the job, else a (retryable) rejection. A node that reported
/// no capacity at all is rejected too.
pub fn rank<'a>(ctx: &Context<'a>, row: usize) -> Outcome<'a> {
    let max = &ctx.table.max_capacity[row];
    if max.is_zero() {
        return Err(Rejection::NoCapacity);
    }
    let available = &ctx.table.available[row];
    let queued = &ctx.table.queued[row];
    let job = &ctx.job.resources;
    let factor = ctx.job.oversubscription_factor;
    for (_, dim) in dims() {
        let in_use = (max.get(dim) - available.get(dim)).max(0.0);
        let needed = in_use + queued.get(dim) + job.get(dim);
        let limit = factor * max.get(dim);
        if needed > limit {
            return Err(Rejection::NodeBusy { dim, needed, limit });
        }
    }
    Ok(POSSIBLE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;
    use crate::rankers::testutil::{job, node, run_one, table};

    #[test]
    fn idle_node_fits() {
        assert_eq!(run_one(rank, node("n-1"), &job()), Ok(0));
    }

    #[test]
    fn limit_is_factor_times_capacity() {
        // CPU capacity 4, fully used, 1.5 queued: 4 + 1.5 + 0.5 = 6 = 1.5 x 4 -> still fits.
        let mut n = node("n-1");
        n.available.cpu = 0.0;
        n.queued.cpu = 1.5;
        assert_eq!(run_one(rank, n.clone(), &job()), Ok(0));
        n.queued.cpu = 1.6;
        assert_eq!(
            run_one(rank, n.clone(), &job()),
            Err(
                "node busy: CPU in use and queued with this job (6.1) exceeds the limit (6)"
                    .to_string()
            )
        );
        let mut j = job();
        j.oversubscription_factor = 2.0;
        assert_eq!(run_one(rank, n, &j), Ok(0));
    }

    #[test]
    fn zero_capacity_is_rejected_and_retryable() {
        let mut n = node("n-1");
        n.max_capacity = Resources::default();
        let t = table(vec![n]);
        let j = job();
        let ctx = Context::new(&t, &j, 0).unwrap();
        let r = rank(&ctx, 0).unwrap_err();
        assert_eq!(r, Rejection::NoCapacity);
        assert!(r.retryable());
    }

    #[test]
    fn busy_is_retryable() {
        let mut n = node("n-1");
        n.available.memory = 0.0;
        n.queued.memory = 4e9;
        let t = table(vec![n]);
        let j = job();
        let ctx = Context::new(&t, &j, 0).unwrap();
        let r = rank(&ctx, 0).unwrap_err();
        assert!(matches!(
            r,
            Rejection::NodeBusy {
                dim: crate::model::Dim::Memory,
                ..
            }
        ));
        assert!(r.retryable());
    }
}
