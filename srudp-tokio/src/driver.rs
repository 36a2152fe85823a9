//! The one task per endpoint that owns the UDP socket and drives the
//! protocol.
//!
//! It sleeps until the earliest of: a datagram arrives, the protocol's next
//! deadline passes (one `Sleep`, reset to each new deadline), or the
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
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use srudp_proto::wire::MAX_RELAYED_DATAGRAM_SIZE;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::time::Sleep;
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

pub(crate) struct Driver {
    shared: Arc<Shared>,
    socket: UdpSocket,
    timer: Pin<Box<Sleep>>,
    timer_deadline: Option<Instant>,
    inbox: Box<[u8]>,
    inbox_meta: Vec<(SocketAddr, usize)>,
    outbox: Box<[u8]>,
    outbox_meta: Vec<(SocketAddr, usize)>,
    outbox_sent: usize,
    recv_errors: u32,
    ended: bool,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>, socket: UdpSocket) -> Driver {
        Driver {
            shared,
            socket,
            timer: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
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

    /// Receives up to a batch of datagrams. `Ok(true)`: the batch filled up,
    /// more may be waiting.
    fn receive(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        self.inbox_meta.clear();
        while self.inbox_meta.len() < BATCH {
            let i = self.inbox_meta.len();
            let mut buf = ReadBuf::new(&mut self.inbox[i * RECV_SLOT..(i + 1) * RECV_SLOT]);
            match self.socket.poll_recv_from(cx, &mut buf) {
                Poll::Ready(Ok(from)) => {
                    self.recv_errors = 0;
                    let len = buf.filled().len();
                    self.inbox_meta.push((canonical(from), len));
                }
                Poll::Ready(Err(e)) => {
                    // Some systems report an ICMP error for an earlier send
                    // here; that is not fatal. A socket that only errors is.
                    self.recv_errors += 1;
                    trace!("receive error: {e}");
                    if self.recv_errors >= MAX_RECV_ERRORS {
                        return Err(e);
                    }
                }
                Poll::Pending => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Sends what is left of the outgoing batch. `true`: a full batch went
    /// out, the endpoint may have more.
    fn send(&mut self, cx: &mut Context<'_>) -> bool {
        while self.outbox_sent < self.outbox_meta.len() {
            let i = self.outbox_sent;
            let (to, len) = self.outbox_meta[i];
            let datagram = &self.outbox[i * SEND_SLOT..][..len];
            match self.socket.poll_send_to(cx, datagram, to) {
                Poll::Ready(Ok(_)) => self.outbox_sent += 1,
                Poll::Ready(Err(e)) => {
                    // Unreachable networks and the like: the datagram is
                    // lost, which the protocol handles like any other loss.
                    trace!(%to, "send error: {e}");
                    self.outbox_sent += 1;
                }
                Poll::Pending => return false,
            }
        }
        self.outbox_meta.len() == BATCH
    }

    /// Arms the timer for `deadline`; `true` when it has already passed.
    fn poll_timer(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = deadline else {
            self.timer_deadline = None;
            return false;
        };
        if self.timer_deadline != Some(deadline) {
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::from_std(deadline));
            self.timer_deadline = Some(deadline);
        }
        self.timer.as_mut().poll(cx).is_ready()
    }

    /// One round under the lock. Returns the next deadline and whether the
    /// driver is done.
    fn process(&mut self, cx: &mut Context<'_>, timer_fired: bool) -> (Option<Instant>, bool) {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        state.set_driver_waker(cx.waker());
        if timer_fired {
            if let Some(d) = self.timer_deadline {
                state.advance_to(d);
            }
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

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(());
        }
        let mut timer_fired = false;
        for _ in 0..ROUNDS_PER_POLL {
            let more_to_receive = match this.receive(cx) {
                Ok(more) => more,
                Err(e) => {
                    warn!("UDP socket failed, shutting the endpoint down: {e}");
                    this.end(e.kind(), &format!("the endpoint's UDP socket failed: {e}"));
                    return Poll::Ready(());
                }
            };
            let (deadline, done) = this.process(cx, timer_fired);
            let more_to_send = this.send(cx);
            if done && this.outbox_sent == this.outbox_meta.len() {
                debug!(local = %this.shared.local_addr, "endpoint driver finished");
                this.end(io::ErrorKind::NotConnected, "the endpoint is closed");
                return Poll::Ready(());
            }
            timer_fired = this.poll_timer(deadline, cx);
            if !(more_to_receive || more_to_send || timer_fired) {
                return Poll::Pending;
            }
        }
        // Plenty to do: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.ended {
            // The runtime dropped the task (it shut down): nothing will move
            // anymore, so tell every parked task instead of leaving it hanging.
            self.shared.lock().set_gone(
                io::ErrorKind::NotConnected,
                "the endpoint's driver stopped (its runtime shut down)",
            );
        }
    }
}
