//! The one task per endpoint that owns the UDP socket and drives the
//! protocol, on any runtime (see [`Runtime`]).
//!
//! It sleeps until the earliest of: a datagram arrives, the protocol's next
//! deadline passes (one timer, reset to each new deadline), or the
//! application acts (a stream or the endpoint wakes it). Each round it
//! receives what the socket has, up to one inbox, without holding the lock
//! ([`Driver::receive_batch`]), then under the lock feeds it to the
//! endpoint, handles expired timers, fills the outbox with datagrams to send
//! and hands the events to the stream table ([`Driver::process`]); then it
//! sends the outbox without the lock ([`Driver::send_outbox`]). No round
//! runs unless one of the three happened: no busy loop, no fixed tick.
//! Sending and receiving are batched (`srudp_net::batch`: GSO runs,
//! `recvmmsg`, GRO where the OS has them; one datagram per call where it
//! does not).
//!
//! It ends when nobody can use the endpoint anymore — no `Endpoint` handle,
//! no stream, no pending connect — and every connection has closed and
//! drained; or after `Endpoint::close` once every connection has drained.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use srudp_net::batch::{Inbox, Outbox, UdpBatch};
use srudp_net::socket::Family;
use tracing::{debug, trace, warn};

use crate::runtime::{AsyncTimer, AsyncUdpSocket, Runtime};
use crate::shared::{DriverEnd, Shared, State};
use crate::spare_sockets::SpareSockets;
use crate::stream_error::DriverStopped;

/// Receive buffers filled per round (each one datagram, or several from one
/// source with receive offload).
const RECV_BUFFERS: usize = 32;
/// Datagrams taken from the endpoint to send per round.
const OUTBOX: usize = 64;
/// Rounds per poll before yielding to other tasks.
const ROUNDS_PER_POLL: usize = 16;
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
/// `NotConnected` and [`DriverStopped::Dropped`] as its source
/// ([`Runtime::DRIVER_DROPPED`] is its text). If the UDP socket fails, the
/// driver ends and calls fail with [`DriverStopped::SocketFailed`].
#[must_use = "the endpoint does nothing unless its driver is spawned"]
pub struct Driver<R: Runtime> {
    shared: Arc<Shared>,
    socket: R::UdpSocket,
    timer: R::Timer,
    /// The deadline the timer is armed for; `None` when disarmed or fired.
    timer_deadline: Option<Instant>,
    /// The socket's batching state: every send and receive goes through it.
    batch: UdpBatch,
    /// Datagrams received, fed to the endpoint in the next `process`.
    inbox: Inbox,
    /// Datagrams taken from the endpoint; what the socket refused (its
    /// buffer was full) goes first when it is writable again.
    outbox: Outbox,
    /// The hard-NAT round's spare sockets (see `spare_sockets.rs`).
    spares: SpareSockets<R>,
    /// Readers and writers able to make progress, woken once a round has
    /// let go of the lock (woken under it, they would only wait for it).
    woken: Vec<Waker>,
    recv_errors: u32,
    ended: bool,
    /// A task waited in `wait_idle` at the last round: tell it once the
    /// outbox is empty.
    idle_waiting: bool,
}

impl<R: Runtime> std::fmt::Debug for Driver<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Driver<R> {
    /// `batch` was made for `socket`'s OS socket before the runtime
    /// wrapped it.
    pub(crate) fn new(
        shared: Arc<Shared>,
        socket: R::UdpSocket,
        batch: UdpBatch,
        timer: R::Timer,
    ) -> Driver<R> {
        Driver {
            spares: SpareSockets::new(shared.local_addr),
            shared,
            socket,
            timer,
            timer_deadline: None,
            inbox: Inbox::new(&batch, RECV_BUFFERS),
            outbox: Outbox::new(OUTBOX),
            batch,
            woken: Vec::new(),
            recv_errors: 0,
            ended: false,
            idle_waiting: false,
        }
    }

    /// The address of the endpoint's socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Receives what the socket has, up to a full inbox, without the lock.
    /// `Ok(true)`: go round again (the inbox filled up, or readiness kept
    /// being spurious). An error: the socket is broken.
    fn receive_batch(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut spurious = 0;
        // Bounded: each pass fills buffers, or finds the socket empty (then
        // it parks or counts a spurious readiness), or counts an error.
        while !self.inbox.is_full() {
            match self.socket.try_receive(&self.batch, &mut self.inbox) {
                Ok(buffers) if buffers > 0 => self.recv_errors = 0,
                Ok(_) => {
                    // Nothing received, yet no `WouldBlock`: treat it as a
                    // spurious readiness so that it cannot loop forever.
                    spurious += 1;
                    if spurious >= MAX_SPURIOUS_READY {
                        return Ok(true);
                    }
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

    /// Sends what is left in the outbox, without the lock. `true`: a full
    /// outbox went out, the endpoint may have more.
    fn send_outbox(&mut self, cx: &mut Context<'_>) -> bool {
        let was_full = self.outbox.is_full();
        let mut spurious = 0;
        // Bounded: each pass empties the outbox, or finds the socket full
        // (then it parks or counts a spurious readiness).
        while !self.outbox.is_empty() {
            // Unreachable destinations lose their datagrams inside the send
            // (the protocol handles that like any loss); the only error is
            // a full socket buffer, which keeps the rest queued.
            match self.socket.try_send(&self.batch, &mut self.outbox) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match self.socket.poll_send_ready(cx) {
                        Poll::Pending => return false,
                        Poll::Ready(Ok(())) => {
                            spurious += 1;
                            if spurious >= MAX_SPURIOUS_READY {
                                // Come back later rather than spin here.
                                cx.waker().wake_by_ref();
                                return false;
                            }
                        }
                        Poll::Ready(Err(e)) => {
                            // The runtime's IO is gone: these are lost,
                            // and the driver ends with its runtime.
                            trace!("send readiness failed: {e}");
                            self.outbox.clear();
                            return false;
                        }
                    }
                }
                Err(e) => {
                    // Not srudp-net's (it only reports a full buffer): the
                    // runtime's own failure. Lose these, like any loss.
                    trace!("send failed: {e}");
                    self.outbox.clear();
                }
            }
        }
        was_full
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
        // The inbox's buffers are ours until the next receive: data
        // packets are opened where they landed (one copy less each).
        for (from, datagram) in self.inbox.datagrams_mut() {
            if let Some(carrier) = &mut state.carrier {
                carrier.note_udp_from(from);
            }
            state.machine.handle_datagram_in_place(now, from, datagram);
        }
        self.inbox.clear();
        self.spares.receive(cx, now, |from, datagram| {
            state.machine.handle_datagram_in_place(now, from, datagram);
        });
        self.spares.expire(now);
        // What the stream carrier brought, as from the server (spec §12.3).
        if let Some(carrier) = &mut state.carrier {
            let server = carrier.server_addr();
            for mut datagram in carrier.take_incoming(now, cx.waker()) {
                state
                    .machine
                    .handle_datagram_in_place(now, server, &mut datagram);
            }
        }
        let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        if due(state.machine.poll_timeout()) {
            state.machine.handle_timeout(now);
        }
        if due(state.table.poll_timeout()) {
            state
                .table
                .handle_timeout(state.machine.endpoint_mut(), now);
        }
        fill(
            &mut self.outbox,
            &mut self.spares,
            state,
            self.shared.family,
            now,
        );
        crate::rendezvous_client::drain_events(state, now);
        state.table.take_woken(&mut self.woken);
        if let Some(carrier) = &mut state.carrier {
            // Opens or closes the stream as the fallback now wants.
            carrier.handle_timeout(now, cx.waker());
        }
        if state.endpoint_handles == 0 && state.table.is_empty() {
            // Nobody can use the endpoint anymore: leave the rendezvous.
            state.machine.stop_rendezvous(now);
        }
        // `wait_idle` returns only once what the endpoint wanted sent has
        // left through the socket (the last CLOSE above all): the program
        // may exit right after. `poll` wakes the waiters once the outbox
        // is empty.
        state.unsent = !self.outbox.is_empty();
        self.idle_waiting = state.has_idle_waiters();
        // Nobody can use the endpoint and every connection is gone; or it
        // was closed and every connection has drained (held streams then
        // report the close from the table).
        let unused = state.endpoint_handles == 0
            && state.table.is_empty()
            && state.machine.application_connection_count() == 0;
        let done = unused || (state.closed && state.is_idle());
        let deadline = [
            state.machine.poll_timeout(),
            state.table.poll_timeout(),
            state.carrier.as_ref().and_then(|c| c.poll_timeout()),
            self.spares.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min();
        (deadline, done)
    }

    /// The socket and the timer, for a runtime whose thread waits on them
    /// itself.
    #[cfg(feature = "thread")]
    pub(crate) fn io_mut(&mut self) -> (&mut R::UdpSocket, &R::Timer) {
        (&mut self.socket, &self.timer)
    }

    /// The socket failed: the endpoint shuts down, every call fails with
    /// [`DriverStopped::SocketFailed`].
    pub(crate) fn fail(&mut self, e: &io::Error) {
        self.end(DriverEnd::Stopped(DriverStopped::socket_failed(e)));
    }

    fn end(&mut self, how: DriverEnd) {
        self.ended = true;
        self.shared.lock().set_gone(how);
    }
}

/// Under the lock: takes datagrams from the endpoint until it has no more
/// or the outbox is full (what the socket refused last round stays first).
/// Datagrams for spare sockets leave through them at once.
fn fill<R: Runtime>(
    outbox: &mut Outbox,
    spares: &mut SpareSockets<R>,
    state: &mut State,
    family: Family,
    now: Instant,
) {
    while let Some(slot) = outbox.free_slot() {
        let Some(t) = state.machine.poll_transmit(now, slot) else {
            break;
        };
        if let Some(carrier) = &mut state.carrier {
            // To the server, on the stream carrier too, or only (§12.5).
            if !carrier.route(t.destination, &slot[..t.size]) {
                continue;
            }
        }
        if spares.send(
            now,
            t.destination,
            &slot[..t.size],
            t.hop_limit,
            t.spare_sockets,
        ) {
            continue;
        }
        match family.destination(t.destination) {
            Some(to) => outbox.push_with_hop_limit(to, t.size, t.hop_limit),
            None => trace!(to = %t.destination, "dropping datagram: unreachable family"),
        }
    }
}

#[cfg(feature = "async-io")]
impl Driver<crate::runtime::AsyncIo> {
    /// Runs the driver on async-io's reactor on a thread of its own, named
    /// `srudp-driver`, which ends with the driver: the endpoint then needs no
    /// executor at all (what [`Endpoint::bind`](crate::Endpoint::bind) does
    /// outside a tokio runtime; srudp-std's threads wait in a poller of their
    /// own instead, see [`Endpoint::bind_on_thread`](crate::Endpoint::bind_on_thread)).
    ///
    /// When the process exits (`main` returns, `std::process::exit`) with
    /// the driver still running, the driver is dropped first, on Unix: it
    /// tells every peer at once, as when a runtime drops its driver task.
    pub fn spawn_thread(self) -> io::Result<()> {
        std::thread::Builder::new()
            .name("srudp-driver".into())
            .spawn(move || {
                crate::exit_hook::run_until_exit(self, |driver, exiting| {
                    async_io::block_on(std::future::poll_fn(|cx| {
                        if exiting(cx).is_ready() {
                            return Poll::Ready(());
                        }
                        Pin::new(&mut *driver).poll(cx)
                    }))
                })
            })?;
        Ok(())
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
                    this.fail(&e);
                    return Poll::Ready(());
                }
            };
            let (deadline, done) = this.process(cx, fired);
            for w in this.woken.drain(..) {
                w.wake();
            }
            let more_to_send = this.send_outbox(cx);
            if this.idle_waiting && this.outbox.is_empty() {
                this.idle_waiting = false;
                let mut state = this.shared.lock();
                state.unsent = false;
                if state.application_idle() {
                    state.wake_idle_waiters();
                }
            }
            if done && this.outbox.is_empty() {
                debug!(local = %this.shared.local_addr, "endpoint driver finished");
                this.end(DriverEnd::Finished);
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

/// Rounds of sending when the driver is dropped: up to this many outboxes
/// (64 datagrams each) go out, the rest is lost.
const DROP_SEND_ROUNDS: usize = 16;

impl<R: Runtime> Driver<R> {
    /// Sends what the endpoint has to send now, straight through the
    /// socket, for at most [`DROP_SEND_ROUNDS`] outboxes. `false` once the
    /// socket refused (its buffer is full): the rest is lost.
    fn send_on_drop(&mut self, state: &mut State, now: Instant) -> bool {
        for _ in 0..DROP_SEND_ROUNDS {
            fill(
                &mut self.outbox,
                &mut self.spares,
                state,
                self.shared.family,
                now,
            );
            if self.outbox.is_empty() {
                return true;
            }
            if self
                .socket
                .send_on_drop(&self.batch, &mut self.outbox)
                .is_err()
            {
                return false;
            }
        }
        true
    }
}

impl<R: Runtime> Drop for Driver<R> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // Dropped before it finished (its task was cancelled, its runtime
        // went away, the program returned from `main`): nothing will move
        // anymore. Tell every peer at once, best effort, rather than leave
        // it waiting for its idle timeout. First what is queued — the data
        // and the end of the streams the application finished or dropped,
        // so a peer that gets it all reads to end-of-stream — then a CLOSE
        // for every connection; then wake every parked task.
        let shared = self.shared.clone();
        let mut guard = shared.lock();
        let state = &mut *guard;
        let now = state.now();
        state.machine.stop_rendezvous(now);
        let sent = self.send_on_drop(state, now);
        if sent {
            state
                .table
                .close_on_the_wire(state.machine.endpoint_mut(), now, 0, b"endpoint closed");
            self.send_on_drop(state, now);
        }
        state.set_gone(DriverEnd::Stopped(DriverStopped::Dropped(
            R::DRIVER_DROPPED,
        )));
    }
}
