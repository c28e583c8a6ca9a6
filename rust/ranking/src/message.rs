//! The user-facing "not enough nodes" explanation.

use std::fmt::Write;

/// Length of the node id prefix shown in messages (`n-1234abcd`).
pub const SHORT_ID_LEN: usize = 10;

/// One node's verdict as the message needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict<'a> {
    /// Node id.
    pub node_id: &'a str,
    /// Whether the node can run the job.
    pub suitable: bool,
    /// Why not (ignored for suitable nodes).
    pub reason: &'a str,
}

/// Every ed25519 libp2p peer id starts with this; its short form keeps 8 characters past it.
const LIBP2P_ED25519_PREFIX: &str = "12D3KooW";

fn short_id(id: &str) -> &str {
    let len = if id.starts_with(LIBP2P_ED25519_PREFIX) {
        LIBP2P_ED25519_PREFIX.len() + 8
    } else {
        SHORT_ID_LEN
    };
    match id.char_indices().nth(len) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// Builds "not enough nodes to run job. requested: R, available: A, suitable: S." followed by
/// one bullet per distinct reason of the unsuitable nodes: "• 2 of 3 nodes: <reason>" or, when
/// one node has that reason, "• Node n-1234abcd: <reason>". Bullets are ordered by count
/// descending, then reason, so the text is deterministic.
pub fn not_enough_nodes_message(requested: usize, verdicts: &[Verdict<'_>]) -> String {
    let available = verdicts.len();
    let suitable = verdicts.iter().filter(|v| v.suitable).count();
    // (reason, count, first node id)
    let mut groups: Vec<(&str, usize, &str)> = Vec::new();
    for v in verdicts.iter().filter(|v| !v.suitable) {
        match groups.iter_mut().find(|g| g.0 == v.reason) {
            Some(g) => {
                g.1 += 1;
                if v.node_id < g.2 {
                    g.2 = v.node_id;
                }
            }
            None => groups.push((v.reason, 1, v.node_id)),
        }
    }
    message_from_groups(requested, available, suitable, groups)
}

/// The same message from rejections already grouped by reason: `(reason, count, smallest
/// node id)`, one entry per distinct reason.
pub fn message_from_groups(
    requested: usize,
    available: usize,
    suitable: usize,
    mut groups: Vec<(&str, usize, &str)>,
) -> String {
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut out = format!(
        "not enough nodes to run job. requested: {requested}, available: {available}, suitable: {suitable}."
    );
    for (reason, count, node_id) in groups {
        // Writing into a String cannot fail.
        let _ = if count == 1 {
            write!(out, "\n• Node {}: {reason}", short_id(node_id))
        } else {
            write!(out, "\n• {count} of {available} nodes: {reason}")
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<'a>(node_id: &'a str, suitable: bool, reason: &'a str) -> Verdict<'a> {
        Verdict {
            node_id,
            suitable,
            reason,
        }
    }

    #[test]
    fn groups_reasons() {
        let verdicts = [
            v("n-aaaaaaaa-1111", false, "node busy"),
            v(
                "n-bbbbbbbb-2222",
                false,
                "does not support engine \"docker\", only: wasm",
            ),
            v("n-cccccccc-3333", false, "node busy"),
        ];
        assert_eq!(
            not_enough_nodes_message(1, &verdicts),
            "not enough nodes to run job. requested: 1, available: 3, suitable: 0.\n\
             • 2 of 3 nodes: node busy\n\
             • Node n-bbbbbbbb: does not support engine \"docker\", only: wasm"
        );
    }

    #[test]
    fn counts_suitable_nodes() {
        let verdicts = [v("n-1", true, ""), v("n-2", true, ""), v("n-3", false, "x")];
        assert_eq!(
            not_enough_nodes_message(5, &verdicts),
            "not enough nodes to run job. requested: 5, available: 3, suitable: 2.\n• Node n-3: x"
        );
    }

    #[test]
    fn no_nodes() {
        assert_eq!(
            not_enough_nodes_message(2, &[]),
            "not enough nodes to run job. requested: 2, available: 0, suitable: 0."
        );
    }

    #[test]
    fn deterministic_bullet_order() {
        let a = [
            v("n-1", false, "b"),
            v("n-2", false, "a"),
            v("n-3", false, "c"),
            v("n-4", false, "c"),
        ];
        let mut b = a;
        b.reverse();
        let m = not_enough_nodes_message(1, &a);
        assert_eq!(m, not_enough_nodes_message(1, &b));
        assert!(m.ends_with("• 2 of 4 nodes: c\n• Node n-2: a\n• Node n-1: b"));
    }

    #[test]
    fn short_ids_respect_char_boundaries() {
        assert_eq!(short_id("n-1234abcd-ffff"), "n-1234abcd");
        assert_eq!(short_id("n-1"), "n-1");
        assert_eq!(
            short_id("12D3KooWAyX2LDJ1hzLvDq4zDvoobBHVzA34XF6UedpuZC6xtixp"),
            "12D3KooWAyX2LDJ1"
        );
        assert_eq!(short_id("ééééééééééé"), "éééééééééé");
    }
}
