//! Random ranker: a 0..4 tie-breaker drawn from ChaCha seeded by (seed, node id), so a
//! node's draw does not depend on where it sits in the table.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

/// The draw of one node for one seed.
pub fn draw(seed: u64, node_id: &str) -> i64 {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&fnv1a(node_id.as_bytes()).to_le_bytes());
    key[16..24].copy_from_slice(&(node_id.len() as u64).to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.random_range(0..RANDOMNESS_RANGE)
}

/// Never rejects.
pub fn rank<'a>(ctx: &Context<'a>, row: usize) -> Outcome<'a> {
    Ok(draw(ctx.seed, &ctx.table.ids[row]))
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
    fn varies_with_seed_and_node() {
        let by_seed: std::collections::HashSet<i64> = (0..100).map(|s| draw(s, "n-1")).collect();
        assert_eq!(by_seed.len(), RANDOMNESS_RANGE as usize);
        let by_node: std::collections::HashSet<i64> =
            (0..100).map(|i| draw(1, &format!("n-{i}"))).collect();
        assert_eq!(by_node.len(), RANDOMNESS_RANGE as usize);
    }
}
