//! Random ranker: a 0..4 tie-breaker drawn from (seed, node id), so a node's draw does not
//! depend on where it sits in the table.
//!
//! The draw is two rounds of the SplitMix64 finalizer over the seed and a FNV-1a hash of the
//! node id (kept in the table, computed once per node): a few multiplications per node, and
//! simple enough to reproduce bit for bit in any language (bench/ranking_baseline.py does).

use super::{Context, Outcome};

/// Number of distinct tie-breaker values (0..=4).
pub const RANDOMNESS_RANGE: i64 = 5;

/// FNV-1a, a stable hash that does not change between Rust releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The SplitMix64 output function: a bijective 64-bit mixer.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The per-node key of the draw (the table keeps it beside the node id).
pub fn id_hash(node_id: &str) -> u64 {
    fnv1a(node_id.as_bytes())
}

/// The draw of a node with id hash `id_hash` for one seed.
#[inline]
pub fn draw_hashed(seed: u64, id_hash: u64) -> i64 {
    (mix(seed ^ mix(id_hash)) % RANDOMNESS_RANGE as u64) as i64
}

/// The draw of one node for one seed.
pub fn draw(seed: u64, node_id: &str) -> i64 {
    draw_hashed(seed, id_hash(node_id))
}

/// Never rejects.
pub fn rank<'a>(ctx: &Context<'a>, row: usize) -> Outcome<'a> {
    Ok(draw_hashed(ctx.seed, ctx.table.id_hash[row]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_in_range() {
        for seed in 0..50 {
            let d = draw(seed, "n-1234");
            assert!((0..RANDOMNESS_RANGE).contains(&d));
            assert_eq!(d, draw(seed, "n-1234"));
        }
    }

    #[test]
    fn known_values() {
        // Pinned so the Python baseline in bench/ can check it computes the same draws.
        assert_eq!(id_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(mix(0), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn varies_with_seed_and_node() {
        let by_seed: std::collections::HashSet<i64> = (0..100).map(|s| draw(s, "n-1")).collect();
        assert_eq!(by_seed.len(), RANDOMNESS_RANGE as usize);
        let by_node: std::collections::HashSet<i64> =
            (0..100).map(|i| draw(1, &format!("n-{i}"))).collect();
        assert_eq!(by_node.len(), RANDOMNESS_RANGE as usize);
    }
}
