//! The one task per endpoint that owns the UDP socket (`async_io::Async`)
//! and drives the protocol.
//!
//! It sleeps until the earliest of: a datagram arrives, the protocol's next
//! deadline passes (one `async_io::Timer`, set to each new deadline), or the
//! application acts (a stream or the endpoint wakes it). Each round it
//! receives a batch of datagrams without holding the lock, then under the
//! lock feeds them to the endpoint, handles expired timers, takes a batch of
//! datagrams to send and hands the events to the stream table; then it sends
//! the batch without the lock. No round runs unless one of the three
//! happened: no busy loop, no fixed tick.
//!
//! It ends when nobody can use the endpoint anymore — no `Endpoint` handle,
//! no stream, no pending connect — and every connection has closed and
//! drained; or after `Endpoint::close` once every connection has drained.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::{Async, Timer};
use srudp_proto::wire::MAX_RELAYED_DATAGRAM_SIZE;
use tracing::{debug, trace, warn};

use crate::shared::Shared;
use crate::socket::canonical;

/// Datagrams received, or taken from the endpoint to send, per round.
const BATCH: usize = 32;
/// Rounds per poll before yielding to other tasks.
const ROUNDS_PER_POLL: usize = 16;
/// Send slot size: relayed datagrams carry a 10-byte envelope beyond the
/// largest srudp datagram.
const SEND_SLOT: usize = MAX_RELAYED_DATAGRAM_SIZE;
/// Receive slot size: srudp datagrams are at most 1200 bytes; anything longer
/// is not ours and arrives truncated, to be dropped by the parser.
const RECV_SLOT: usize = 2048;
/// Consecutive receive errors after which the socket is considered broken.
const MAX_RECV_ERRORS: u32 = 64;
/// Readiness reports in a row that turn out spurious before we yield.
const MAX_SPURIOUS_READY: u32 = 8;

/// The future that drives one endpoint. [`Endpoint::bind`](crate::Endpoint::bind)
/// runs it on a thread of its own; [`Endpoint::bind_with_driver`](crate::Endpoint::bind_with_driver)
/// hands it to you to spawn on your executor (`smol::spawn(driver).detach()`,
/// `async_std::task::spawn(driver)`).
///
/// It completes once the endpoint has shut down (see the crate docs).
/// Dropping it before that stops the endpoint: every stream then fails with
/// `NotConnected`. Until it is polled, nothing is sent or received.
#[must_use = "the endpoint does nothing unless its driver is spawned"]
pub struct EndpointDriver {
    shared: Arc<Shared>,
    socket: Async<UdpSocket>,
    timer: Timer,
    timer_deadline: Option<Instant>,
    inbox: Box<[u8]>,
    inbox_meta: Vec<(SocketAddr, usize)>,
    outbox: Box<[u8]>,
    outbox_meta: Vec<(SocketAddr, usize)>,
    outbox_sent: usize,
    recv_errors: u32,
    ended: bool,
}

impl std::fmt::Debug for EndpointDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointDriver")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl EndpointDriver {
    pub(crate) fn new(shared: Arc<Shared>, socket: Async<UdpSocket>) -> EndpointDriver {
        EndpointDriver {
            shared,
            socket,
            timer: Timer::never(),
            timer_deadline: None,
            inbox: vec![0u8; BATCH * RECV_SLOT].into_boxed_slice(),
            inbox_meta: Vec::with_capacity(BATCH),
            outbox: vec![0u8; BATCH * SEND_SLOT].into_boxed_slice(),
            outbox_meta: Vec::with_capacity(BATCH),
            outbox_sent: 0,
            recv_errors: 0,
            ended: false,
        }
    }

    /// Receives up to a batch of datagrams. `Ok(true)`: go round again (the
    /// batch filled up, or readiness kept being spurious).
    fn receive(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        self.inbox_meta.clear();
        let mut spurious = 0;
        while self.inbox_meta.len() < BATCH {
            let i = self.inbox_meta.len();
            let slot = &mut self.inbox[i * RECV_SLOT..(i + 1) * RECV_SLOT];
            match self.socket.get_ref().recv_from(slot) {
                Ok((len, from)) => {
                    self.recv_errors = 0;
                    self.inbox_meta.push((canonical(from), len));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Register for readability; Ready means an event came
                    // since we last looked, so try again.
                    match self.socket.poll_readable(cx) {
                        Poll::Pending => return Ok(false),
                        Poll::Ready(Ok(())) => {
                            spurious += 1;
                            if spurious >= MAX_SPURIOUS_READY {
                                return Ok(true);
                            }
                        }
                        Poll::Ready(Err(e)) => return Err(e),
                    }
                }
                Err(e) => {
                    // Some systems report an ICMP error for an earlier send
                    // here; that is not fatal. A socket that only errors is.
                    self.recv_errors += 1;
                    trace!("receive error: {e}");
                    if self.recv_errors >= MAX_RECV_ERRORS {
                        return Err(e);
                    }
                }
            }
        }
        Ok(true)
    }

    /// Sends what is left of the outgoing batch. `true`: a full batch went
    /// out, the endpoint may have more.
    fn send(&mut self, cx: &mut Context<'_>) -> bool {
        let mut spurious = 0;
        while self.outbox_sent < self.outbox_meta.len() {
            let i = self.outbox_sent;
            let (to, len) = self.outbox_meta[i];
            let datagram = &self.outbox[i * SEND_SLOT..][..len];
            match self.socket.get_ref().send_to(datagram, to) {
                Ok(_) => self.outbox_sent += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match self.socket.poll_writable(cx) {
                        Poll::Pending => return false,
                        Poll::Ready(_) => {
                            spurious += 1;
                            if spurious >= MAX_SPURIOUS_READY {
                                // Come back later rather than spin here.
                                cx.waker().wake_by_ref();
                                return false;
                            }
                        }
                    }
                }
                Err(e) => {
                    // Unreachable networks and the like: the datagram is
                    // lost, which the protocol handles like any other loss.
                    trace!(%to, "send error: {e}");
                    self.outbox_sent += 1;
                }
            }
        }
        self.outbox_meta.len() == BATCH
    }

    /// Arms the timer for `deadline`; `true` when it has already passed.
    fn poll_timer(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = deadline else {
            if self.timer_deadline.take().is_some() {
                self.timer = Timer::never();
            }
            return false;
        };
        if self.timer_deadline != Some(deadline) {
            self.timer.set_at(deadline);
            self.timer_deadline = Some(deadline);
        }
        if Pin::new(&mut self.timer).poll(cx).is_ready() {
            // A fired timer stays silent until set again.
            self.timer_deadline = None;
            return true;
        }
        false
    }

    /// One round under the lock. Returns the next deadline and whether the
    /// driver is done.
    fn process(&mut self, cx: &mut Context<'_>, fired: Option<Instant>) -> (Option<Instant>, bool) {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        state.set_driver_waker(cx.waker());
        if let Some(deadline) = fired {
            state.advance_to(deadline);
        }
        let now = state.now();
        for (i, &(from, len)) in self.inbox_meta.iter().enumerate() {
            let datagram = &self.inbox[i * RECV_SLOT..][..len];
            state.machine.handle_datagram(now, from, datagram);
        }
        self.inbox_meta.clear();
        let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        if due(state.machine.poll_timeout()) {
            state.machine.handle_timeout(now);
        }
        if due(state.table.poll_timeout()) {
            state
                .table
                .handle_timeout(state.machine.endpoint_mut(), now);
        }
        if self.outbox_sent == self.outbox_meta.len() {
            self.outbox_meta.clear();
            self.outbox_sent = 0;
            while self.outbox_meta.len() < BATCH {
                let i = self.outbox_meta.len();
                let slot = &mut self.outbox[i * SEND_SLOT..(i + 1) * SEND_SLOT];
                let Some(t) = state.machine.poll_transmit(now, slot) else {
                    break;
                };
                match self.shared.family.destination(t.destination) {
                    Some(to) => self.outbox_meta.push((to, t.size)),
                    None => trace!(to = %t.destination, "dropping datagram: unreachable family"),
                }
            }
        }
        crate::rendezvous_client::drain_events(state, now);
        if state.endpoint_handles == 0 && state.table.is_empty() {
            // Nobody can use the endpoint anymore: leave the rendezvous.
            state.machine.stop_rendezvous(now);
        }
        if state.is_idle() {
            state.wake_idle_waiters();
        }
        // Nobody can use the endpoint and every connection is gone; or it
        // was closed and every connection has drained (held streams then
        // report the close from the table).
        let unused = state.endpoint_handles == 0
            && state.table.is_empty()
            && state.machine.application_connection_count() == 0;
        let done = unused || (state.closed && state.is_idle());
        let deadline = [state.machine.poll_timeout(), state.table.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        (deadline, done)
    }

    fn end(&mut self, kind: io::ErrorKind, message: &str) {
        self.ended = true;
        self.shared.lock().set_gone(kind, message);
    }
}

impl Future for EndpointDriver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(());
        }
        let mut fired = None;
        for _ in 0..ROUNDS_PER_POLL {
            let more_to_receive = match this.receive(cx) {
                Ok(more) => more,
                Err(e) => {
                    warn!("UDP socket failed, shutting the endpoint down: {e}");
                    this.end(e.kind(), &format!("the endpoint's UDP socket failed: {e}"));
                    return Poll::Ready(());
                }
            };
            let (deadline, done) = this.process(cx, fired);
            let more_to_send = this.send(cx);
            if done && this.outbox_sent == this.outbox_meta.len() {
                debug!(local = %this.shared.local_addr, "endpoint driver finished");
                this.end(io::ErrorKind::NotConnected, "the endpoint is closed");
                return Poll::Ready(());
            }
            fired = if this.poll_timer(deadline, cx) {
                deadline
            } else {
                None
            };
            if !(more_to_receive || more_to_send || fired.is_some()) {
                return Poll::Pending;
            }
        }
        // Plenty to do: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for EndpointDriver {
    fn drop(&mut self) {
        if !self.ended {
            // Dropped before it finished (its task was cancelled or its
            // executor went away): nothing will move anymore, so tell every
            // parked task instead of leaving it hanging.
            self.shared.lock().set_gone(
                io::ErrorKind::NotConnected,
                "the endpoint's driver stopped before the endpoint shut down",
            );
        }
    }
}
