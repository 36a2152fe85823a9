//! SIGINT, SIGTERM and SIGHUP: the first closes every connection of every
//! endpoint the commands track, with [`INTERRUPTED_CODE`] and the reason
//! "interrupted" (the peer prints "peer closed the connection:
//! interrupted"), waits briefly for the CLOSE to go out, and exits 130; a
//! second signal exits at once.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use srudp_tokio::Endpoint;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::exit_status::ExitStatus;

/// The application close code of a connection ended by a signal.
pub(crate) const INTERRUPTED_CODE: u32 = 130;
/// The close reason the peer prints.
pub(crate) const INTERRUPTED_REASON: &[u8] = b"interrupted";
/// How long the first signal waits for the peers to answer our CLOSE (one
/// round trip is enough; a peer gone silent must not keep us).
const CLOSE_WAIT: Duration = Duration::from_secs(1);

static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static TRACKED: Mutex<Option<HashMap<u64, Endpoint>>> = Mutex::new(None);

/// An endpoint whose peers are told when a signal stops us, until this is
/// dropped.
pub(crate) struct Tracked(u64);

/// Tracks `endpoint` until the returned guard is dropped.
pub(crate) fn track(endpoint: &Endpoint) -> Tracked {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut tracked = TRACKED.lock().unwrap_or_else(|e| e.into_inner());
    tracked
        .get_or_insert_with(HashMap::new)
        .insert(id, endpoint.clone());
    Tracked(id)
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut tracked = TRACKED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = tracked.as_mut() {
            map.remove(&self.0);
        }
    }
}

/// The three signals that stop a command.
pub(crate) struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl StopSignals {
    /// Installs the handlers (inside the runtime, before the command runs).
    pub(crate) fn install() -> io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Completes at the next of the three signals.
    pub(crate) async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }

    /// After the first signal: tells every tracked endpoint's peers, waits
    /// at most [`CLOSE_WAIT`] for their answers, or less if a second signal
    /// comes (then exits at once).
    pub(crate) async fn close_everything(mut self) {
        let endpoints: Vec<Endpoint> = TRACKED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for endpoint in &endpoints {
            endpoint.close_with(INTERRUPTED_CODE, INTERRUPTED_REASON);
        }
        let idle = async {
            for endpoint in &endpoints {
                endpoint.wait_idle().await;
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(CLOSE_WAIT, idle) => {}
            _ = self.next() => {
                eprintln!("srudp: interrupted again: exiting now");
                std::process::exit(i32::from(ExitStatus::Interrupted.code()));
            }
        }
    }
}
