//! Kubo's deterministic test inputs (test/cli/testutils/random_deterministic.go), rebuilt here.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::Path;

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use sha2::{Digest, Sha256};

/// Characters of generated names; "0" appears twice, as in Kubo's generator.
pub const ALPHA: &[u8; 39] = b"abcdefghijklmnopqrstuvwxyz01234567890-_";

/// The ChaCha20 keystream of `R(n, seed)`: key = SHA-256(seed), zero nonce, counter 0.
pub struct Keystream(ChaCha20);

impl Keystream {
    pub fn new(seed: &str) -> Self {
        let key: [u8; 32] = Sha256::digest(seed.as_bytes()).into();
        Keystream(ChaCha20::new(&key.into(), &[0u8; 12].into()))
    }

    /// The next `buf.len()` bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        buf.fill(0);
        self.0.apply_keystream(buf);
    }
}

/// `R(n, seed)` in memory.
pub fn r(n: usize, seed: &str) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    Keystream::new(seed).fill(&mut buf);
    buf
}

/// Writes `R(n, seed)` to `path` 8 MiB at a time (the 1 GiB inputs never sit in memory).
pub fn write_r(path: &Path, n: u64, seed: &str) {
    let mut stream = Keystream::new(seed);
    let mut out = fs::File::create(path).expect("create input file");
    let mut buf = vec![0u8; 8 << 20];
    let mut left = n;
    while left > 0 {
        let take = left.min(buf.len() as u64) as usize;
        stream.fill(&mut buf[..take]);
        out.write_all(&buf[..take]).expect("write input file");
        left -= take as u64;
    }
}

/// File names drawn from `R(1 MiB, seed)`, one character per byte, with the given lengths.
pub fn names(seed: &str, lengths: impl IntoIterator<Item = usize>) -> Vec<String> {
    let pool = r(1 << 20, seed);
    let mut at = 0;
    lengths
        .into_iter()
        .map(|len| {
            let name: String = pool[at..at + len]
                .iter()
                .map(|&b| char::from(ALPHA[usize::from(b) % ALPHA.len()]))
                .collect();
            at += len;
            name
        })
        .collect()
}
