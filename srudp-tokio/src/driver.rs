//! The one task per endpoint that owns the UDP socket and drives the
//! protocol.
//!
//! It sleeps until the earliest of: a datagram arrives, the protocol's next
//! deadline passes (one `Sleep`, reset to each new deadline), or the
//! application acts (a stream or the endpoint wakes it). Each round it
//! receives what the socket has (up to one inbox) without holding the lock,
//! then under the lock feeds it to the endpoint, handles expired timers,
//! fills the outbox with datagrams to send and hands the events to the
//! stream table; then it sends the outbox without the lock. No round runs
//! unless one of the three happened: no busy loop, no fixed tick. Sending
//! and receiving are batched (`srudp_net::batch`: GSO runs, `recvmmsg`,
//! GRO where the OS has them; one datagram per call where it does not).
//!
//! It ends when nobody can use the endpoint anymore — no `Endpoint` handle,
//! no stream, no pending connect — and every connection has closed and
//! drained; or after `Endpoint::close` once every connection has drained.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use srudp_net::batch::{Inbox, Outbox, UdpBatch};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::time::Sleep;
use tracing::{debug, trace, warn};

use crate::shared::Shared;

/// Receive buffers filled per round (each one datagram, or several from one
/// source with receive offload).
const RECV_BUFFERS: usize = 32;
/// Datagrams taken from the endpoint to send per round.
const OUTBOX: usize = 64;
/// Rounds per poll before yielding to other tasks.
const ROUNDS_PER_POLL: usize = 16;
/// Consecutive receive errors after which the socket is considered broken.
const MAX_RECV_ERRORS: u32 = 64;

pub(crate) struct Driver {
    shared: Arc<Shared>,
    socket: UdpSocket,
    timer: Pin<Box<Sleep>>,
    timer_deadline: Option<Instant>,
    batch: UdpBatch,
    inbox: Inbox,
    outbox: Outbox,
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
    pub(crate) fn new(shared: Arc<Shared>, socket: UdpSocket) -> io::Result<Driver> {
        let batch = UdpBatch::new(&socket)?;
        Ok(Driver {
            shared,
            timer: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            timer_deadline: None,
            inbox: Inbox::new(&batch, RECV_BUFFERS),
            outbox: Outbox::new(OUTBOX),
            batch,
            socket,
            recv_errors: 0,
            ended: false,
        })
    }

    /// Receives what the socket has, up to a full inbox. `Ok(true)`: the
    /// inbox filled up, more may be waiting.
    fn receive(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        // Bounded: each pass fills buffers, or finds the socket empty (then
        // readiness is cleared and the next poll parks), or counts an error.
        while !self.inbox.is_full() {
            match self.socket.poll_recv_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(false),
            }
            let (batch, socket, inbox) = (&self.batch, &self.socket, &mut self.inbox);
            match socket.try_io(Interest::READABLE, || batch.receive(socket, inbox)) {
                Ok(_) => self.recv_errors = 0,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
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

    /// Sends what is left in the outbox. `true`: a full outbox went out,
    /// the endpoint may have more.
    fn send(&mut self, cx: &mut Context<'_>) -> bool {
        let was_full = self.outbox.is_full();
        // Bounded: each pass sends datagrams or finds the socket full.
        while !self.outbox.is_empty() {
            match self.socket.poll_send_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    // The runtime's IO driver is gone: these are lost, and
                    // the driver ends with its runtime.
                    trace!("send readiness failed: {e}");
                    self.outbox.clear();
                    return false;
                }
                Poll::Pending => return false,
            }
            // Unreachable destinations lose their datagrams inside `send`
            // (the protocol handles that like any loss); the only error is
            // a full socket buffer, which clears the readiness.
            let (batch, socket, outbox) = (&self.batch, &self.socket, &mut self.outbox);
            let _ = socket.try_io(Interest::WRITABLE, || batch.send(socket, outbox));
        }
        was_full
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
        for (from, datagram) in self.inbox.datagrams() {
            state.machine.handle_datagram(now, from, datagram);
        }
        self.inbox.clear();
        let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        if due(state.machine.poll_timeout()) {
            state.machine.handle_timeout(now);
        }
        if due(state.table.poll_timeout()) {
            state
                .table
                .handle_timeout(state.machine.endpoint_mut(), now);
        }
        while let Some(slot) = self.outbox.free_slot() {
            let Some(t) = state.machine.poll_transmit(now, slot) else {
                break;
            };
            match self.shared.family.destination(t.destination) {
                Some(to) => self.outbox.push(to, t.size),
                None => trace!(to = %t.destination, "dropping datagram: unreachable family"),
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
            if done && this.outbox.is_empty() {
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
