//! AvailableCapacity ranker: 0..100, favouring free capacity (80) and short queues (20).
//!
//! Each dimension is normalized by the largest figure over the table and weighted by the
//! job's share of that dimension (CPU cores, Memory/1e6, Disk/1e9, GPUs), or by default
//! weights when the job requests nothing.

use super::{dims, Context, Outcome};
use crate::model::{Dim, Resources};

/// Weight of free capacity in the score.
pub const AVAILABLE_WEIGHT: f64 = 80.0;
/// Weight of an empty queue in the score.
pub const QUEUE_WEIGHT: f64 = 20.0;
/// Weights when the job requests no resources (CPU, Memory, Disk, GPU).
pub const DEFAULT_WEIGHTS: [f64; 4] = [0.4, 0.3, 0.2, 0.1];

/// Scale that makes the dimensions comparable: cores, MB, GB, GPUs.
fn unit(dim: Dim) -> f64 {
    match dim {
        Dim::Cpu | Dim::Gpu => 1.0,
        Dim::Memory => 1e6,
        Dim::Disk => 1e9,
    }
}

/// The job's normalized request shares, or [`DEFAULT_WEIGHTS`].
pub fn weights(job: &Resources) -> [f64; 4] {
    let mut w = [0.0; 4];
    for (i, dim) in dims() {
        w[i] = job.get(dim) / unit(dim);
    }
    let total: f64 = w.iter().sum();
    if total > 0.0 && total.is_finite() {
        w.iter_mut().for_each(|x| *x /= total);
        w
    } else {
        DEFAULT_WEIGHTS
    }
}

/// Weighted share of `value` relative to `max`, in 0..1 (dimensions with max 0 add nothing).
fn weighted_share(value: &Resources, max: &Resources, weights: &[f64; 4]) -> f64 {
    let mut score = 0.0;
    for (i, dim) in dims() {
        let m = max.get(dim);
        if m > 0.0 {
            score += weights[i] * (value.get(dim) / m);
        }
    }
    score.clamp(0.0, 1.0)
}

/// Never rejects.
pub fn rank<'a>(ctx: &Context<'a>, row: usize) -> Outcome<'a> {
    let available = weighted_share(&ctx.table.available[row], &ctx.max_available, &ctx.weights);
    let queued = weighted_share(&ctx.table.queued[row], &ctx.max_queued, &ctx.weights);
    let score = AVAILABLE_WEIGHT * available + QUEUE_WEIGHT * (1.0 - queued);
    // The epsilon keeps 55.99999999 (float noise) from truncating to 55.
    Ok((score + 1e-9).floor().clamp(0.0, 100.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rankers::testutil::{job, node, table};
    use crate::rankers::Context;

    #[test]
    fn weights_follow_the_request() {
        let w = weights(&Resources::new(1.0, 1e6, 0.0, 0.0));
        assert_eq!(w, [0.5, 0.5, 0.0, 0.0]);
        assert_eq!(weights(&Resources::default()), DEFAULT_WEIGHTS);
    }

    #[test]
    fn scores_relative_to_best_node() {
        let mut best = node("n-best");
        best.queued = Resources::default();
        let mut half = node("n-half");
        half.available = Resources::new(2.0, 4e9, 50e9, 0.5);
        half.queued = Resources::new(1.0, 1e9, 0.0, 0.0);
        let mut busy = node("n-busy");
        busy.available = Resources::default();
        busy.queued = Resources::new(2.0, 2e9, 10e9, 1.0);
        let t = table(vec![best, half, busy]);
        let mut j = job();
        j.resources = Resources::default();
        let ctx = Context::new(&t, &j, 0).unwrap();
        let score = |id: &str| {
            let row = t.ids.iter().position(|x| x == id).unwrap();
            rank(&ctx, row).unwrap()
        };
        assert_eq!(score("n-best"), 100);
        // available: 0.5 everywhere -> 40; queue: 0.4*0.5 + 0.3*0.5 = 0.35 -> 20*0.65 = 13.
        assert_eq!(score("n-half"), 53);
        assert_eq!(score("n-busy"), 0);
    }

    #[test]
    fn empty_table_maxima_do_not_divide_by_zero() {
        let mut n = node("n-1");
        n.available = Resources::default();
        let t = table(vec![n]);
        let j = job();
        let ctx = Context::new(&t, &j, 0).unwrap();
        assert_eq!(rank(&ctx, 0), Ok(20));
    }
}
