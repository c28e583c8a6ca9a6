//! PreviousExecutions ranker: prefer nodes that never ran the job; exclude repeat offenders.

use super::{Context, Outcome, POSSIBLE};
use crate::reason::Rejection;

/// Score of a node that never ran this job version.
pub const NEVER_RAN: i64 = 30;

/// 30 when the node never ran the job, 0 after one discarded run; rejected when the node
/// rejected the bid, has a live execution, or ran the job more than once.
pub fn rank<'a>(ctx: &Context<'a>, row: usize) -> Outcome<'a> {
    let Some(prev) = ctx.previous_of(row) else {
        return Ok(NEVER_RAN);
    };
    if prev.rejected_bid {
        Err(Rejection::RejectedBid)
    } else if prev.has_live {
        Err(Rejection::LiveExecution)
    } else if prev.count > 1 {
        Err(Rejection::RanBefore { count: prev.count })
    } else if prev.count == 1 {
        Ok(POSSIBLE)
    } else {
        Ok(NEVER_RAN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PreviousRuns;
    use crate::rankers::testutil::{job, node, run_one};

    fn with(prev: Option<PreviousRuns>) -> Result<i64, String> {
        let mut j = job();
        if let Some(p) = prev {
            j.previous.insert("n-1".into(), p);
        }
        j.previous.insert(
            "n-other".into(),
            PreviousRuns {
                count: 5,
                has_live: true,
                rejected_bid: true,
            },
        );
        run_one(rank, node("n-1"), &j)
    }

    #[test]
    fn previous_runs() {
        assert_eq!(with(None), Ok(30));
        assert_eq!(with(Some(PreviousRuns::default())), Ok(30));
        assert_eq!(
            with(Some(PreviousRuns {
                count: 1,
                ..Default::default()
            })),
            Ok(0)
        );
        assert_eq!(
            with(Some(PreviousRuns {
                count: 2,
                ..Default::default()
            })),
            Err("job already ran on this node 2 times".to_string())
        );
        assert_eq!(
            with(Some(PreviousRuns {
                count: 1,
                has_live: true,
                rejected_bid: false
            })),
            Err("job already has a live execution on this node".to_string())
        );
        assert_eq!(
            with(Some(PreviousRuns {
                count: 1,
                has_live: false,
                rejected_bid: true
            })),
            Err("node rejected a bid for this job".to_string())
        );
    }
}
