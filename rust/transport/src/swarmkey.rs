//! Kubo's private-network key file (`swarm.key`): parse, format and generate.
//!
//! The format is three lines: the protocol (`/key/swarm/psk/1.0.0/`), the encoding (`/base16/`)
//! and the 32-byte key as 64 hex digits. Kubo also knows `/base64/` and `/bin/`; only base16 is
//! written by `ipfs-swarm-key-gen` and by us, so only base16 is accepted here, with a clear error.

use rand::RngCore;

use crate::error::TransportError;

/// The first line of a swarm key file.
pub const SWARM_KEY_HEADER: &str = "/key/swarm/psk/1.0.0/";
/// The only encoding line accepted.
pub const SWARM_KEY_ENCODING: &str = "/base16/";

/// A fresh random swarm key in Kubo format (with a trailing newline).
pub fn generate_swarm_key() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format_swarm_key(&key)
}

/// The Kubo-format text of `key`.
pub fn format_swarm_key(key: &[u8; 32]) -> String {
    let mut hex = String::with_capacity(64);
    for byte in key {
        hex.push_str(&format!("{byte:02x}"));
    }
    format!("{SWARM_KEY_HEADER}\n{SWARM_KEY_ENCODING}\n{hex}\n")
}

/// Parses the text of a swarm key file into the 32-byte pre-shared key.
///
/// Tolerates `\r\n` line ends and surrounding blank space; rejects anything else with a message
/// that names the offending line.
pub fn parse_swarm_key(text: &str) -> Result<[u8; 32], TransportError> {
    let bad = |msg: String| TransportError::SwarmKey(msg);
    let mut lines = text.trim().lines().map(str::trim);
    match lines.next() {
        Some(SWARM_KEY_HEADER) => {}
        Some(other) => {
            return Err(bad(format!(
                "line 1 must be {SWARM_KEY_HEADER:?}, found {:?}",
                truncate(other)
            )))
        }
        None => return Err(bad("the key is empty".into())),
    }
    match lines.next() {
        Some(SWARM_KEY_ENCODING) => {}
        Some(enc @ ("/base64/" | "/bin/")) => {
            return Err(bad(format!(
                "encoding {enc} is not supported; use {SWARM_KEY_ENCODING}"
            )))
        }
        Some(other) => {
            return Err(bad(format!(
                "line 2 must be {SWARM_KEY_ENCODING:?}, found {:?}",
                truncate(other)
            )))
        }
        None => return Err(bad("line 2 (the encoding) is missing".into())),
    }
    let hex = lines
        .next()
        .ok_or_else(|| bad("line 3 (the key) is missing".into()))?;
    if lines.any(|l| !l.is_empty()) {
        return Err(bad("unexpected text after the key line".into()));
    }
    if hex.len() != 64 {
        return Err(bad(format!(
            "line 3 must be 64 hex digits, found {} characters",
            hex.len()
        )));
    }
    let mut key = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let hi = hex_digit(pair[0]);
        let lo = hex_digit(pair[1]);
        match (hi, lo) {
            (Some(hi), Some(lo)) => key[i] = (hi << 4) | lo,
            _ => {
                return Err(bad(format!(
                    "line 3 has a non-hex character near position {}",
                    i * 2 + 1
                )))
            }
        }
    }
    Ok(key)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = generate_swarm_key();
        let key = parse_swarm_key(&text).unwrap();
        assert_eq!(format_swarm_key(&key), text);
        assert_ne!(key, [0u8; 32]);
    }

    #[test]
    fn accepts_crlf_and_upper_case() {
        let text = format!(
            "{SWARM_KEY_HEADER}\r\n{SWARM_KEY_ENCODING}\r\n{}\r\n",
            "AB".repeat(32)
        );
        assert_eq!(parse_swarm_key(&text).unwrap(), [0xab; 32]);
    }

    #[test]
    fn agrees_with_libp2p_pnet() {
        let text = generate_swarm_key();
        let ours = parse_swarm_key(&text).unwrap();
        let theirs: libp2p::pnet::PreSharedKey = text.parse().unwrap();
        assert_eq!(
            libp2p::pnet::PreSharedKey::new(ours)
                .fingerprint()
                .to_string(),
            theirs.fingerprint().to_string()
        );
    }

    #[test]
    fn rejects_malformed() {
        let cases = [
            ("", "empty"),
            ("/key/swarm/psk/2.0.0/\n/base16/\n00", "line 1"),
            ("/key/swarm/psk/1.0.0/\n/base64/\nAAAA", "not supported"),
            ("/key/swarm/psk/1.0.0/\n/base16/", "line 3"),
            ("/key/swarm/psk/1.0.0/\n/base16/\nabcd", "64 hex digits"),
            (
                "/key/swarm/psk/1.0.0/\n/base16/\nzz00000000000000000000000000000000000000000000000000000000000000",
                "non-hex",
            ),
        ];
        for (text, needle) in cases {
            let err = parse_swarm_key(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
