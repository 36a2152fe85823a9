//! The one task per endpoint that owns the UDP socket and drives the
//! protocol, on any runtime (see [`Runtime`]).
//!
//! It sleeps until the earliest of: a datagram arrives, the protocol's next
//! deadline passes (one timer, reset to each new deadline), or the
//! application acts (a stream or the endpoint wakes it). Each round it
//! receives a batch of datagrams without holding the lock
//! ([`Driver::receive_batch`]), then under the lock feeds them to the
//! endpoint, handles expired timers, takes a batch of datagrams to send and
//! hands the events to the stream table ([`Driver::process`]); then it sends
//! the batch without the lock ([`Driver::send_outbox`]). No round runs
//! unless one of the three happened: no busy loop, no fixed tick.
//!
//! It ends when nobody can use the endpoint anymore — no `Endpoint` handle,
//! no stream, no pending connect — and every connection has closed and
//! drained; or after `Endpoint::close` once every connection has drained.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use srudp_net::socket::{canonical, Family};
use srudp_proto::wire::MAX_RELAYED_DATAGRAM_SIZE;
use tracing::{debug, trace, warn};

use crate::runtime::{AsyncTimer, AsyncUdpSocket, Runtime};
use crate::shared::{Shared, State};

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

/// The future that drives one endpoint: made by
/// [`Endpoint::bind`](crate::Endpoint::bind), spawned by the adapter (or
/// its user) on the runtime `R`.
///
/// It completes once the endpoint has shut down. Dropping it before that
/// stops the endpoint: every parked task wakes and every call fails with
/// `NotConnected` ([`Runtime::DRIVER_DROPPED`] says why).
#[must_use = "the endpoint does nothing unless its driver is spawned"]
pub struct Driver<R: Runtime> {
    shared: Arc<Shared>,
    socket: R::UdpSocket,
    timer: R::Timer,
    /// The deadline the timer is armed for; `None` when disarmed or fired.
    timer_deadline: Option<Instant>,
    inbox: Box<[u8]>,
    inbox_meta: Vec<(SocketAddr, usize)>,
    outbox: Outbox,
    recv_errors: u32,
    ended: bool,
}

impl<R: Runtime> std::fmt::Debug for Driver<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Driver<R> {
    pub(crate) fn new(shared: Arc<Shared>, socket: R::UdpSocket, timer: R::Timer) -> Driver<R> {
        Driver {
            shared,
            socket,
            timer,
            timer_deadline: None,
            inbox: vec![0u8; BATCH * RECV_SLOT].into_boxed_slice(),
            inbox_meta: Vec::with_capacity(BATCH),
            outbox: Outbox {
                buf: vec![0u8; BATCH * SEND_SLOT].into_boxed_slice(),
                meta: Vec::with_capacity(BATCH),
                sent: 0,
            },
            recv_errors: 0,
            ended: false,
        }
    }

    /// The address of the endpoint's socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Receives up to a batch of datagrams into the inbox, without the lock.
    /// `Ok(true)`: go round again (the batch filled up, or readiness kept
    /// being spurious). An error: the socket is broken.
    fn receive_batch(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        self.inbox_meta.clear();
        let mut spurious = 0;
        while self.inbox_meta.len() < BATCH {
            let i = self.inbox_meta.len();
            let slot = &mut self.inbox[i * RECV_SLOT..(i + 1) * RECV_SLOT];
            match self.socket.try_recv_from(slot) {
                Ok((len, from)) => {
                    self.recv_errors = 0;
                    self.inbox_meta.push((canonical(from), len));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Register for readability; Ready means an event came
                    // since we last looked, so try again.
                    match self.socket.poll_recv_ready(cx) {
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

    /// Sends what is left of the outbox, without the lock. `true`: a full
    /// batch went out, the endpoint may have more.
    fn send_outbox(&mut self, cx: &mut Context<'_>) -> bool {
        let mut spurious = 0;
        let outbox = &mut self.outbox;
        while outbox.sent < outbox.meta.len() {
            let i = outbox.sent;
            let (to, len) = outbox.meta[i];
            let datagram = &outbox.buf[i * SEND_SLOT..][..len];
            match self.socket.try_send_to(datagram, to) {
                Ok(_) => outbox.sent += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match self.socket.poll_send_ready(cx) {
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
                    outbox.sent += 1;
                }
            }
        }
        outbox.meta.len() == BATCH
    }

    /// Arms the timer for `deadline`; `true` when it has already passed.
    fn poll_timer(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = deadline else {
            if self.timer_deadline.take().is_some() {
                self.timer.disarm();
            }
            return false;
        };
        if self.timer_deadline != Some(deadline) {
            self.timer.reset(deadline);
            self.timer_deadline = Some(deadline);
        }
        if self.timer.poll_expired(cx).is_ready() {
            // Some timers stay silent after firing until set again.
            self.timer_deadline = None;
            return true;
        }
        false
    }

    /// One round under the lock: the inbox in, timers, the outbox filled,
    /// events out. `fired`: the deadline whose timer fired, if one did.
    /// Returns the next deadline and whether the driver is done.
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
        self.outbox.fill(state, self.shared.family, now);
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

/// Datagrams taken from the endpoint, to send: `meta[i]` (destination,
/// length) describes slot `i` of `buf`; `sent` of them went out.
struct Outbox {
    buf: Box<[u8]>,
    meta: Vec<(SocketAddr, usize)>,
    sent: usize,
}

impl Outbox {
    fn is_drained(&self) -> bool {
        self.sent == self.meta.len()
    }

    /// Under the lock: takes up to a batch of datagrams from the endpoint,
    /// once the previous batch has gone out.
    fn fill(&mut self, state: &mut State, family: Family, now: Instant) {
        if !self.is_drained() {
            return;
        }
        self.meta.clear();
        self.sent = 0;
        while self.meta.len() < BATCH {
            let i = self.meta.len();
            let slot = &mut self.buf[i * SEND_SLOT..(i + 1) * SEND_SLOT];
            let Some(t) = state.machine.poll_transmit(now, slot) else {
                break;
            };
            match family.destination(t.destination) {
                Some(to) => self.meta.push((to, t.size)),
                None => trace!(to = %t.destination, "dropping datagram: unreachable family"),
            }
        }
    }
}

impl<R: Runtime> Future for Driver<R> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(());
        }
        let mut fired = None;
        for _ in 0..ROUNDS_PER_POLL {
            let more_to_receive = match this.receive_batch(cx) {
                Ok(more) => more,
                Err(e) => {
                    warn!("UDP socket failed, shutting the endpoint down: {e}");
                    this.end(e.kind(), &format!("the endpoint's UDP socket failed: {e}"));
                    return Poll::Ready(());
                }
            };
            let (deadline, done) = this.process(cx, fired);
            let more_to_send = this.send_outbox(cx);
            if done && this.outbox.is_drained() {
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

impl<R: Runtime> Drop for Driver<R> {
    fn drop(&mut self) {
        if !self.ended {
            // Dropped before it finished: nothing will move anymore, so tell
            // every parked task instead of leaving it hanging.
            self.shared
                .lock()
                .set_gone(io::ErrorKind::NotConnected, R::DRIVER_DROPPED);
        }
    }
}
