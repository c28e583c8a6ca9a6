//! The one tokio runtime of a process, shared by every node it starts.
//!
//! Each node is a task on this runtime (its swarm loop), not a thread of its own: a process
//! holding a thousand simulated compute nodes runs a handful of network threads, not a
//! thousand. The runtime is made on first use and lives as long as the process. Its threads
//! do not survive `fork`, so the runtime remembers the process that made it; a forked child
//! gets a runtime of its own on first use (the parent's is left alone, never dropped from a
//! process where its threads do not exist).

use std::sync::Mutex;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::TransportError;
use crate::node::lock;

/// Most worker threads of the shared runtime (fewer on smaller machines).
const MAX_WORKERS: usize = 4;

struct Shared {
    pid: u32,
    runtime: Runtime,
}

static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

/// A handle on this process's network runtime, creating it on first use.
pub(crate) fn handle() -> Result<Handle, TransportError> {
    let mut shared = lock(&SHARED);
    let pid = std::process::id();
    if let Some(current) = shared.as_ref() {
        if current.pid == pid {
            return Ok(current.runtime.handle().clone());
        }
    }
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_WORKERS);
    let runtime = Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("bacalhau-net")
        .enable_all()
        .build()
        .map_err(|e| TransportError::Start(format!("tokio runtime: {e}")))?;
    let handle = runtime.handle().clone();
    if let Some(stale) = shared.replace(Shared { pid, runtime }) {
        // Made by the parent of a fork: its threads are not in this process, and dropping
        // it would wait for them. Leak it.
        std::mem::forget(stale);
    }
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_caller_gets_the_same_runtime() {
        let a = handle().unwrap();
        let b = handle().unwrap();
        assert_eq!(a.id(), b.id());
        let (tx, rx) = std::sync::mpsc::channel();
        a.spawn(async move {
            let _ = tx.send(std::thread::current().name().map(str::to_string));
        });
        let name = rx.recv().unwrap();
        assert_eq!(name.as_deref(), Some("bacalhau-net"));
    }
}
