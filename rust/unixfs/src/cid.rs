//! Content identifiers: the binary form used inside dag-pb links and the text form users see.

use std::fmt;

use sha2::{Digest, Sha256};

/// Multihash code of sha2-256.
pub const SHA2_256: u8 = 0x12;
/// Length of a sha2-256 digest.
pub const DIGEST_LEN: usize = 32;

/// CID version: v0 is a bare sha2-256 multihash of a dag-pb block; v1 names its codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CidVersion {
    /// `Qm...`: base58btc of `12 20 <digest>`; dag-pb only.
    V0,
    /// `b...`: base32 of `01 <codec> 12 20 <digest>`.
    V1,
}

/// The multicodec of the block a CID names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// dag-pb (0x70): UnixFS files, directories, shards, symlinks.
    DagPb,
    /// raw (0x55): a file chunk stored as its bare bytes (raw leaves).
    Raw,
}

impl Codec {
    /// The multicodec code.
    pub fn code(self) -> u8 {
        match self {
            Codec::DagPb => 0x70,
            Codec::Raw => 0x55,
        }
    }
}

/// A sha2-256 CID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cid {
    version: CidVersion,
    codec: Codec,
    digest: [u8; DIGEST_LEN],
}

impl Cid {
    /// Builds a CID from a digest. A v0 CID is always dag-pb, so `codec` is ignored for v0.
    pub fn new(version: CidVersion, codec: Codec, digest: [u8; DIGEST_LEN]) -> Self {
        let codec = match version {
            CidVersion::V0 => Codec::DagPb,
            CidVersion::V1 => codec,
        };
        Cid {
            version,
            codec,
            digest,
        }
    }

    /// Hashes a whole block with sha2-256 and names it.
    pub fn of_block(version: CidVersion, codec: Codec, block: &[u8]) -> Self {
        Cid::new(version, codec, Sha256::digest(block).into())
    }

    /// The version.
    pub fn version(&self) -> CidVersion {
        self.version
    }

    /// The codec (always dag-pb for v0).
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The sha2-256 digest of the block.
    pub fn digest(&self) -> &[u8; DIGEST_LEN] {
        &self.digest
    }

    /// Length of [`Cid::to_bytes`]: 34 for v0, 36 for v1.
    pub fn byte_len(&self) -> usize {
        match self.version {
            CidVersion::V0 => 2 + DIGEST_LEN,
            CidVersion::V1 => 4 + DIGEST_LEN,
        }
    }

    /// Appends the binary CID (the form stored in a PBLink's `Hash`).
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        if self.version == CidVersion::V1 {
            out.push(0x01);
            out.push(self.codec.code());
        }
        out.push(SHA2_256);
        out.push(DIGEST_LEN as u8);
        out.extend_from_slice(&self.digest);
    }

    /// The binary CID.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.byte_len());
        self.write_bytes(&mut out);
        out
    }
}

impl fmt::Display for Cid {
    /// v0: base58btc without prefix; v1: multibase `b` + base32 lower without padding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            CidVersion::V0 => f.write_str(&base58btc(&self.to_bytes())),
            CidVersion::V1 => {
                f.write_str("b")?;
                f.write_str(&base32_lower(&self.to_bytes()))
            }
        }
    }
}

const BASE58_ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BASE32_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Bitcoin-alphabet base58: repeated division of the big-endian number by 58.
pub(crate) fn base58btc(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    // Little-endian base-58 digits of the number.
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &byte in &bytes[zeros..] {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.push_str(&"1".repeat(zeros));
    out.extend(
        digits
            .iter()
            .rev()
            .map(|&d| char::from(BASE58_ALPHABET[usize::from(d)])),
    );
    out
}

/// RFC 4648 base32, lower case, no padding.
pub(crate) fn base32_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32_ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((acc << (5 - bits)) & 31) as usize],
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_known_values() {
        assert_eq!(base58btc(b""), "");
        assert_eq!(base58btc(&[0, 0, 1]), "112");
        assert_eq!(base58btc(b"hello world"), "StV1DL6CwTryKyV");
    }

    #[test]
    fn base32_rfc4648_vectors() {
        // RFC 4648 §10, lower-cased, padding removed.
        for (input, want) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_lower(input.as_bytes()), want, "{input:?}");
        }
    }

    #[test]
    fn v0_ignores_codec_and_v1_keeps_it() {
        let d = [7u8; 32];
        assert_eq!(
            Cid::new(CidVersion::V0, Codec::Raw, d).codec(),
            Codec::DagPb
        );
        let v1 = Cid::new(CidVersion::V1, Codec::Raw, d);
        assert_eq!(&v1.to_bytes()[..4], &[0x01, 0x55, 0x12, 0x20]);
        assert_eq!(v1.byte_len(), 36);
        assert_eq!(Cid::new(CidVersion::V0, Codec::DagPb, d).byte_len(), 34);
    }
}
