//! The node identity: an ed25519 key kept in a file of the node's data dir, so the peer id
//! survives restarts. The file holds the libp2p protobuf encoding of the keypair (the same bytes
//! Kubo keeps base64-encoded in its config), is created on first start with mode 0600 and is
//! never rewritten.

use std::fs;
use std::io::Write;
use std::path::Path;

use libp2p::identity::Keypair;

use crate::error::TransportError;

/// Loads the keypair from `path`, or creates a new ed25519 keypair there if the file is absent.
pub fn load_or_create_keypair(path: &Path) -> Result<Keypair, TransportError> {
    match fs::read(path) {
        Ok(bytes) => decode(path, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(TransportError::io("read identity key", path)(e)),
    }
}

fn decode(path: &Path, bytes: &[u8]) -> Result<Keypair, TransportError> {
    let keypair = Keypair::from_protobuf_encoding(bytes).map_err(|e| TransportError::Identity {
        path: path.to_path_buf(),
        reason: format!("not a libp2p private key ({e})"),
    })?;
    if keypair.key_type() != libp2p::identity::KeyType::Ed25519 {
        return Err(TransportError::Identity {
            path: path.to_path_buf(),
            reason: format!("expected an ed25519 key, found {:?}", keypair.key_type()),
        });
    }
    Ok(keypair)
}

fn create(path: &Path) -> Result<Keypair, TransportError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(TransportError::io("create directory", dir))?;
    }
    let keypair = Keypair::generate_ed25519();
    let bytes = keypair
        .to_protobuf_encoding()
        .map_err(|e| TransportError::Identity {
            path: path.to_path_buf(),
            reason: format!("cannot encode the new key ({e})"),
        })?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(&bytes)
                .and_then(|()| file.sync_all())
                .map_err(TransportError::io("write identity key", path))?;
            Ok(keypair)
        }
        // Another process created it first: use theirs, so both agree on the peer id.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes = fs::read(path).map_err(TransportError::io("read identity key", path))?;
            decode(path, &bytes)
        }
        Err(e) => Err(TransportError::io("create identity key", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/peer.key");
        let first = load_or_create_keypair(&path).unwrap();
        let second = load_or_create_keypair(&path).unwrap();
        assert_eq!(first.public().to_peer_id(), second.public().to_peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.key");
        fs::write(&path, b"not a key").unwrap();
        let err = load_or_create_keypair(&path).unwrap_err().to_string();
        assert!(err.contains("not a libp2p private key"), "{err}");
    }
}
