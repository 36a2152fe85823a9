//! The driver thread: one per endpoint. It owns the UDP socket and is the
//! only caller of srudp-proto's inputs (`handle_datagram`, `handle_timeout`)
//! and of `poll_transmit`.
//!
//! Each turn it reads the datagrams waiting on the (non-blocking) socket
//! without holding the lock, then takes the lock, feeds them and any expired
//! deadline to srudp-proto, sends every datagram srudp-proto has (both
//! batched by `srudp_net::batch`: GSO runs, `recvmmsg`, GRO where the OS
//! has them, one datagram per call where it does not),
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
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use srudp_net::batch::{Inbox, Outbox, UdpBatch};
use tracing::{debug, trace};

use crate::socket::Family;
use crate::state::{Lifecycle, Shared, State};

/// The socket's token in the poller.
const SOCKET: Token = Token(0);
/// The application's wake-ups.
pub(crate) const WAKER: Token = Token(1);

/// Receive buffers filled per turn before the lock is taken to process them
/// (each one datagram, or several from one source with receive offload).
const RECV_BUFFERS: usize = 32;

/// Datagrams taken from srudp-proto per send call (one segmented send
/// carries a run of them).
const OUTBOX: usize = 64;

/// Consecutive unexpected receive errors after which the socket is declared
/// failed (transient ones, like an ICMP error reported on Windows, come alone).
const MAX_RECEIVE_ERRORS: u32 = 64;

/// The poller, registered with the socket, and a waker for the application.
/// Created before the thread so that `bind` reports a failure.
pub(crate) struct Poller {
    poll: Poll,
    socket: UdpSocket,
    batch: UdpBatch,
}

impl Poller {
    /// Registers `socket` (switched to non-blocking mode, prepared for
    /// batched IO) with a new poller.
    pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<(Poller, mio::Waker)> {
        socket.set_nonblocking(true)?;
        let batch = UdpBatch::new(&socket)?;
        let mut socket = UdpSocket::from_std(socket);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE | Interest::WRITABLE)?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        Ok((
            Poller {
                poll,
                socket,
                batch,
            },
            waker,
        ))
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
        inbox: Inbox::new(&poller.batch, RECV_BUFFERS),
        drained: true,
        outbox: Outbox::new(OUTBOX),
        batch: poller.batch,
    };
    std::thread::Builder::new()
        .name(name)
        .spawn(move || driver.run())
}

struct Driver {
    shared: Arc<Shared>,
    family: Family,
    poll: Poll,
    socket: UdpSocket,
    events: Events,
    batch: UdpBatch,
    /// Datagrams read from the socket, waiting to be fed to srudp-proto.
    inbox: Inbox,
    /// The last read found the socket empty: wait for readiness.
    drained: bool,
    /// Datagrams taken from srudp-proto; what the socket refused (its
    /// buffer was full) goes first when it is writable again.
    outbox: Outbox,
}

impl Driver {
    fn run(mut self) {
        let mut errors = 0u32;
        loop {
            let Some(deadline) = self.turn() else {
                return;
            };
            if self.drained {
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
        // The inbox's buffers are ours until the next receive: data
        // packets are opened where they landed (one copy less each).
        for (from, datagram) in self.inbox.datagrams_mut() {
            state.proto.handle_datagram_in_place(now, from, datagram);
        }
        self.inbox.clear();
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
        state.driver_sleeping = self.drained;
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
        loop {
            while let Some(slot) = self.outbox.free_slot() {
                let Some(t) = state.proto.poll_transmit(now, slot) else {
                    break;
                };
                self.outbox
                    .push(self.family.wire_address(t.destination), t.size);
            }
            if self.outbox.is_empty() {
                return;
            }
            // Unreachable network, no route: those datagrams are lost
            // inside `send`, which srudp recovers from (or times out on) like
            // any loss. The only error is a full socket buffer.
            if self.batch.send(&self.socket, &mut self.outbox).is_err() {
                return;
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
            self.drained = false;
        }
        Ok(())
    }

    /// Reads up to a full inbox without blocking.
    fn receive(&mut self) -> io::Result<()> {
        if self.drained {
            return Ok(());
        }
        while !self.inbox.is_full() {
            match self.batch.receive(&self.socket, &mut self.inbox) {
                Ok(_) => {}
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => {
                        self.drained = true;
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
