//! The driver thread: one per endpoint. It owns the receiving side of the
//! UDP socket and is the only caller of srudp-proto's inputs
//! (`handle_datagram`, `handle_timeout`) and of `poll_transmit`.
//!
//! Each turn it takes the lock, feeds what woke it (a datagram, a deadline,
//! or an application command signalled by a wake-up datagram), sends every
//! datagram srudp-proto has, dispatches the events, and computes the next
//! deadline. Then it releases the lock and blocks in `recv_from` with a read
//! timeout that ends at that deadline — or without one when no timer is
//! armed. There is no polling tick: an idle endpoint sleeps until a keepalive
//! or idle timer is due.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use srudp_proto::wire::MAX_DATAGRAM_SIZE;
use tracing::{debug, trace};

use crate::socket::{canonical, EarlyDatagram};
use crate::state::{Lifecycle, Shared, State};

/// Receive buffer: larger than any srudp datagram, so an oversized one
/// arrives whole and is rejected by srudp-proto rather than truncated.
const RECV_BUF: usize = 2048;

/// Consecutive unexpected receive errors after which the socket is declared
/// failed (transient ones, like an ICMP error reported on Windows, come alone).
const MAX_RECEIVE_ERRORS: u32 = 64;

/// Starts the driver thread.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    socket: UdpSocket,
    early: Vec<EarlyDatagram>,
) -> io::Result<JoinHandle<()>> {
    let name = format!("srudp-driver {}", shared.local_addr);
    let driver = Driver {
        shared,
        socket,
        recv_buf: vec![0u8; RECV_BUF].into_boxed_slice(),
        send_buf: vec![0u8; MAX_DATAGRAM_SIZE].into_boxed_slice(),
        read_timeout: None,
    };
    std::thread::Builder::new()
        .name(name)
        .spawn(move || driver.run(early))
}

struct Driver {
    shared: Arc<Shared>,
    socket: UdpSocket,
    recv_buf: Box<[u8]>,
    send_buf: Box<[u8]>,
    /// The read timeout currently set on the socket.
    read_timeout: Option<Duration>,
}

/// What woke the driver.
enum Input {
    Datagram(usize, SocketAddr),
    Nothing,
}

impl Driver {
    fn run(mut self, early: Vec<EarlyDatagram>) {
        {
            let mut state = self.shared.lock();
            let now = Instant::now();
            for (bytes, from) in early {
                state.proto.handle_datagram(now, canonical(from), &bytes);
            }
        }
        let mut input = Input::Nothing;
        let mut errors = 0u32;
        loop {
            let Some(deadline) = self.turn(input) else {
                return;
            };
            input = match self.sleep_until(deadline) {
                Ok(input) => {
                    errors = 0;
                    input
                }
                Err(e) => {
                    errors += 1;
                    debug!("receive error: {e}");
                    if errors >= MAX_RECEIVE_ERRORS {
                        self.fail(format!("receive failed repeatedly: {e}"));
                        return;
                    }
                    Input::Nothing
                }
            };
        }
    }

    /// One turn under the lock. Returns the next deadline (`Some(None)`:
    /// none), or `None` when the driver must stop.
    fn turn(&mut self, input: Input) -> Option<Option<Instant>> {
        let shared = self.shared.clone();
        let mut state = shared.lock();
        state.driver_sleeping = false;
        state.wake_sent = false;
        let now = Instant::now();
        if let Input::Datagram(n, from) = input {
            // Empty datagrams are our own wake-ups (srudp never sends one).
            if n > 0 {
                state
                    .proto
                    .handle_datagram(now, canonical(from), &self.recv_buf[..n]);
            }
        }
        if state.proto.poll_timeout().is_some_and(|t| t <= now) {
            state.proto.handle_timeout(now);
        }
        state.reap_lingering(now);
        let stop = match state.lifecycle {
            Lifecycle::Running => false,
            Lifecycle::Draining => {
                // Nobody holds a handle: stop accepting, and stop once every
                // dropped stream delivered its data (or gave up).
                state.accepting = false;
                if state.lingering.is_empty() {
                    release_all(&mut state, now);
                    true
                } else {
                    false
                }
            }
            Lifecycle::Closed | Lifecycle::Failed(_) => {
                release_all(&mut state, now);
                true
            }
        };
        self.flush(&mut state, now);
        state.dispatch_events(now, &shared.accept_ready);
        if stop {
            state.wake_all(&shared.accept_ready);
            trace!("driver stops");
            return None;
        }
        let deadline = state.next_deadline();
        state.driver_sleeping = true;
        Some(deadline)
    }

    /// Sends every datagram srudp-proto has for now.
    fn flush(&mut self, state: &mut State, now: Instant) {
        let family = self.shared.family;
        while let Some(t) = state.proto.poll_transmit(now, &mut self.send_buf) {
            let to = family.wire_address(t.destination);
            if let Err(e) = self.socket.send_to(&self.send_buf[..t.size], to) {
                // Unreachable networks, full buffers: the datagram is lost,
                // which srudp recovers from like any loss.
                trace!(%to, "send failed: {e}");
            }
        }
    }

    /// Blocks in `recv_from` until a datagram arrives or `deadline` passes.
    fn sleep_until(&mut self, deadline: Option<Instant>) -> io::Result<Input> {
        let timeout = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(d) if !d.is_zero() => Some(d),
                _ => return Ok(Input::Nothing),
            },
        };
        if timeout.is_some() || self.read_timeout.is_some() {
            self.socket.set_read_timeout(timeout)?;
            self.read_timeout = timeout;
        }
        match self.socket.recv_from(&mut self.recv_buf) {
            Ok((n, from)) => Ok(Input::Datagram(n, from)),
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted
                // Windows reports an ICMP port-unreachable for an earlier
                // send on the next receive: not this socket's failure.
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionRefused => Ok(Input::Nothing),
                _ => Err(e),
            },
        }
    }

    /// The socket is unusable: close everything and tell every waiter.
    fn fail(&mut self, why: String) {
        let shared = self.shared.clone();
        let mut state = shared.lock();
        state.lifecycle = Lifecycle::Failed(why);
        let now = Instant::now();
        release_all(&mut state, now);
        self.flush(&mut state, now);
        state.wake_all(&shared.accept_ready);
    }
}

/// Closes and forgets every connection the adapter tracks; srudp-proto
/// queues a CLOSE for each open one, which the final flush sends.
fn release_all(state: &mut State, now: Instant) {
    let handles: Vec<_> = state.conns.keys().copied().collect();
    for handle in handles {
        state.proto.close(now, handle, 0, b"endpoint closed");
        state.release(now, handle);
    }
}
