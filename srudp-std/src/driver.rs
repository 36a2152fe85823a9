//! The driver thread: one per endpoint. It owns the UDP socket and is the
//! only caller of srudp-proto's inputs (`handle_datagram`, `handle_timeout`)
//! and of `poll_transmit`.
//!
//! Each turn it reads the datagrams waiting on the (non-blocking) socket
//! without holding the lock, then takes the lock, feeds them and any expired
//! deadline to srudp-proto, sends every datagram srudp-proto has,
//! dispatches the events and computes the next deadline. Then it releases
//! the lock and sleeps in the OS poller (`mio`: epoll, kqueue, IOCP) until
//! the socket is readable, the deadline passes, or the application wakes it
//! after a command. There is no polling tick: an idle endpoint sleeps until
//! a keepalive or idle timer is due.
//!
//! The poller's timeout has millisecond precision, unlike a socket read
//! timeout (`SO_RCVTIMEO`), which Linux rounds up to whole scheduler ticks
//! (8 ms for a 1 ms request at `HZ=250`): srudp's loss, acknowledgment and
//! punching timers need the former.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use srudp_proto::wire::MAX_RELAYED_DATAGRAM_SIZE;
use tracing::{debug, trace};

use crate::socket::{canonical, Family};
use crate::state::{Lifecycle, Shared, State};

/// The socket's token in the poller.
const SOCKET: Token = Token(0);
/// The application's wake-ups.
pub(crate) const WAKER: Token = Token(1);

/// Room for one received datagram: larger than any srudp datagram, so an
/// oversized one arrives whole and is rejected by srudp-proto rather than
/// truncated into something else.
const RECV_SLOT: usize = 2048;

/// Datagrams read per turn before the lock is taken to process them.
const RECV_BATCH: usize = 32;

/// Consecutive unexpected receive errors after which the socket is declared
/// failed (transient ones, like an ICMP error reported on Windows, come alone).
const MAX_RECEIVE_ERRORS: u32 = 64;

/// The poller, registered with the socket, and a waker for the application.
/// Created before the thread so that `bind` reports a failure.
pub(crate) struct Poller {
    poll: Poll,
    socket: UdpSocket,
}

impl Poller {
    /// Registers `socket` (switched to non-blocking mode) with a new poller.
    pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<(Poller, mio::Waker)> {
        socket.set_nonblocking(true)?;
        let mut socket = UdpSocket::from_std(socket);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE | Interest::WRITABLE)?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        Ok((Poller { poll, socket }, waker))
    }
}

/// Starts the driver thread.
pub(crate) fn spawn(shared: Arc<Shared>, poller: Poller) -> io::Result<JoinHandle<()>> {
    let name = format!("srudp-driver {}", shared.local_addr);
    let driver = Driver {
        family: shared.family,
        shared,
        poll: poller.poll,
        socket: poller.socket,
        events: Events::with_capacity(8),
        received: Received::new(),
        send_buf: vec![0u8; MAX_RELAYED_DATAGRAM_SIZE].into_boxed_slice(),
        unsent: None,
    };
    std::thread::Builder::new()
        .name(name)
        .spawn(move || driver.run())
}

/// Datagrams read from the socket, waiting to be fed to srudp-proto.
struct Received {
    buf: Box<[u8]>,
    /// Length and source of each datagram; datagram `i` is at `i * RECV_SLOT`.
    meta: Vec<(usize, SocketAddr)>,
    /// The last read found the socket empty: wait for readiness.
    drained: bool,
}

impl Received {
    fn new() -> Received {
        Received {
            buf: vec![0u8; RECV_SLOT * RECV_BATCH].into_boxed_slice(),
            meta: Vec::with_capacity(RECV_BATCH),
            drained: true,
        }
    }

    fn datagram(&self, i: usize) -> &[u8] {
        &self.buf[i * RECV_SLOT..i * RECV_SLOT + self.meta[i].0]
    }
}

struct Driver {
    shared: Arc<Shared>,
    family: Family,
    poll: Poll,
    socket: UdpSocket,
    events: Events,
    received: Received,
    send_buf: Box<[u8]>,
    /// A datagram in `send_buf` that the socket refused (its buffer was
    /// full); sent first when the socket is writable again.
    unsent: Option<(usize, SocketAddr)>,
}

impl Driver {
    fn run(mut self) {
        let mut errors = 0u32;
        loop {
            let Some(deadline) = self.turn() else {
                return;
            };
            if self.received.drained {
                if let Err(e) = self.sleep_until(deadline) {
                    debug!("poll failed: {e}");
                    self.fail(format!("waiting for the socket failed: {e}"));
                    return;
                }
            }
            match self.receive() {
                Ok(()) => errors = 0,
                Err(e) => {
                    errors += 1;
                    debug!("receive error: {e}");
                    if errors >= MAX_RECEIVE_ERRORS {
                        self.fail(format!("receive failed repeatedly: {e}"));
                        return;
                    }
                }
            }
        }
    }

    /// One turn under the lock. Returns the next deadline (`Some(None)`:
    /// none), or `None` when the driver must stop.
    fn turn(&mut self) -> Option<Option<Instant>> {
        let shared = self.shared.clone();
        let mut state = shared.lock();
        state.driver_sleeping = false;
        state.wake_sent = false;
        let now = Instant::now();
        for i in 0..self.received.meta.len() {
            let from = canonical(self.received.meta[i].1);
            state
                .proto
                .handle_datagram(now, from, self.received.datagram(i));
        }
        self.received.meta.clear();
        if state.proto.poll_timeout().is_some_and(|t| t <= now) {
            state.proto.handle_timeout(now);
        }
        state.reap_lingering(now);
        let mut stop = matches!(state.lifecycle, Lifecycle::Closed | Lifecycle::Failed(_));
        if stop {
            release_all(&mut state, now);
        }
        self.settle(&mut state, now);
        if state.lifecycle == Lifecycle::Draining {
            // Nobody holds a handle: stop accepting, and stop once every
            // dropped stream delivered its data (or gave up). Checked after
            // the events, which may have completed the last one.
            state.accepting = false;
            if state.lingering.is_empty() {
                release_all(&mut state, now);
                self.settle(&mut state, now);
                stop = true;
            }
        }
        if stop {
            state.wake_all(&shared.signals);
            trace!("driver stops");
            return None;
        }
        let deadline = state.next_deadline();
        // Only a driver about to wait needs waking; one still reading the
        // socket takes the lock again right away.
        state.driver_sleeping = self.received.drained;
        Some(deadline)
    }

    /// Sends what srudp-proto has and dispatches its events, until handling
    /// the events (which may release connections) produces nothing new to send.
    fn settle(&mut self, state: &mut State, now: Instant) {
        self.flush(state, now);
        // Bounded: each further round released at least one connection.
        while state.dispatch_events(now, &self.shared.signals) {
            self.flush(state, now);
        }
    }

    /// Sends every datagram srudp-proto has for now, unless the socket's
    /// buffer is full: then the rest waits for the socket to be writable.
    fn flush(&mut self, state: &mut State, now: Instant) {
        if let Some((size, to)) = self.unsent {
            if !self.send(size, to) {
                return;
            }
            self.unsent = None;
        }
        while let Some(t) = state.proto.poll_transmit(now, &mut self.send_buf) {
            let to = self.family.wire_address(t.destination);
            if !self.send(t.size, to) {
                self.unsent = Some((t.size, to));
                return;
            }
        }
    }

    /// Sends `send_buf[..size]`; `false` if the socket's buffer is full.
    fn send(&mut self, size: usize, to: SocketAddr) -> bool {
        match self.socket.send_to(&self.send_buf[..size], to) {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                // Unreachable network, no route: the datagram is lost, which
                // srudp recovers from (or times out on) like any loss.
                trace!(%to, "send failed: {e}");
                true
            }
        }
    }

    /// Waits until the socket is ready, the application wakes us, or
    /// `deadline` passes.
    fn sleep_until(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let timeout = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(d) if !d.is_zero() => Some(d),
                _ => return Ok(()),
            },
        };
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        // Readiness is edge-triggered: once the socket reports data, read
        // until it says it is empty.
        if self
            .events
            .iter()
            .any(|e| e.token() == SOCKET && (e.is_readable() || e.is_error()))
        {
            self.received.drained = false;
        }
        Ok(())
    }

    /// Reads up to a batch of datagrams without blocking.
    fn receive(&mut self) -> io::Result<()> {
        if self.received.drained {
            return Ok(());
        }
        while self.received.meta.len() < RECV_BATCH {
            let i = self.received.meta.len();
            let slot = &mut self.received.buf[i * RECV_SLOT..(i + 1) * RECV_SLOT];
            match self.socket.recv_from(slot) {
                Ok((n, from)) => self.received.meta.push((n, from)),
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => {
                        self.received.drained = true;
                        return Ok(());
                    }
                    io::ErrorKind::Interrupted
                    // Windows reports an ICMP port-unreachable for an earlier
                    // send on a later receive: not this socket's failure.
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionRefused => {}
                    _ => return Err(e),
                },
            }
        }
        Ok(())
    }

    /// The socket or poller is unusable: close everything and tell every waiter.
    fn fail(&mut self, why: String) {
        let shared = self.shared.clone();
        let mut state = shared.lock();
        state.lifecycle = Lifecycle::Failed(why);
        let now = Instant::now();
        release_all(&mut state, now);
        self.settle(&mut state, now);
        state.wake_all(&shared.signals);
    }
}

/// Closes and forgets every connection the adapter tracks; srudp-proto
/// queues a CLOSE for each open one, which the final flush sends.
fn release_all(state: &mut State, now: Instant) {
    // Leave the rendezvous too (its link is not one of ours).
    state.proto.stop_rendezvous(now);
    let handles: Vec<_> = state.conns.keys().copied().collect();
    for handle in handles {
        state
            .proto
            .endpoint_mut()
            .close(now, handle, 0, b"endpoint closed");
        state.release(now, handle);
    }
}
