//! What the core needs from an async runtime: a UDP socket it can poll for
//! readiness and try batched IO on without blocking, and a timer it can set
//! to a deadline.
//!
//! Two runtimes come with the crate, each behind its feature: [`Tokio`]
//! (feature `tokio`) and [`AsyncIo`] (feature `async-io`, the reactor
//! async-std and smol run on). [`Endpoint::bind`](crate::Endpoint::bind)
//! picks one by itself; implement [`Runtime`] to run the driver on another
//! ([`Endpoint::bind_with_runtime`](crate::Endpoint::bind_with_runtime)).

use std::io;
use std::task::{Context, Poll};
use std::time::Instant;

use srudp_net::batch::{Inbox, Outbox, UdpBatch};

#[cfg(feature = "async-io")]
mod async_io;
#[cfg(feature = "thread")]
pub(crate) mod thread;
#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "async-io")]
pub use self::async_io::AsyncIo;
#[cfg(feature = "tokio")]
pub use self::tokio::Tokio;

/// One async runtime's socket and timer types, named for the
/// [`Driver`](crate::Driver). Implemented by a marker type in each adapter.
pub trait Runtime: 'static {
    /// The runtime's UDP socket.
    type UdpSocket: AsyncUdpSocket;
    /// The runtime's timer.
    type Timer: AsyncTimer;

    /// Registers a bound, non-blocking std socket with the runtime. The
    /// socket is already prepared for batched IO (a [`UdpBatch`] exists
    /// for it): keep its options as they are.
    ///
    /// Called from [`Endpoint::bind`](crate::Endpoint::bind); a runtime
    /// that is missing or lacks IO is an error here, never a panic.
    fn wrap_udp_socket(socket: std::net::UdpSocket) -> io::Result<Self::UdpSocket>;

    /// A timer that does not fire until it is [reset](AsyncTimer::reset).
    /// A runtime without timers is an error here, never a panic.
    fn new_timer() -> io::Result<Self::Timer>;

    /// Why streams fail with `NotConnected` once the driver was dropped
    /// before the endpoint shut down (its task was cancelled, its runtime
    /// went away): what that means for this runtime's users.
    const DRIVER_DROPPED: &'static str;

    /// Whether the driver may open spare sockets for the hard-NAT round
    /// ([`srudp_proto::Transmit::spare_sockets`]): each is registered
    /// with [`wrap_udp_socket`](Runtime::wrap_udp_socket) and must wake the
    /// driver's task when readable. A runtime whose driver waits on its one
    /// socket only says `false`, and such datagrams leave once from the
    /// endpoint's socket.
    const SPARE_SOCKETS: bool = true;
}

/// A UDP socket that says when it may be ready and is then tried without
/// blocking, like `tokio::net::UdpSocket` or `async_io::Async<UdpSocket>`.
///
/// Sending and receiving are batched: the driver hands over srudp-net's
/// [`UdpBatch`] with an [`Inbox`] to fill or an [`Outbox`] to empty, and the
/// socket runs [`UdpBatch::receive`] or [`UdpBatch::send`] on its OS socket
/// (the std socket it wrapped: tokio and async-io both lend it), under its
/// runtime's readiness rules.
///
/// Contract the driver relies on:
/// * `try_receive` and `try_send` never block; they fail with `WouldBlock`
///   when the socket is not ready (keeping any progress made: datagrams
///   received stay in the inbox, datagrams not sent stay in the outbox).
/// * After a `WouldBlock`, `poll_recv_ready` (`poll_send_ready`) returns
///   `Pending` and wakes the task once the socket may have become ready
///   (tokio: run the batch call inside `UdpSocket::try_io`, which clears
///   its readiness on `WouldBlock`). `Ready` may be spurious: the driver
///   tries again a bounded number of times, then yields.
/// * Every receive on the socket goes through [`UdpBatch::receive`]: the
///   [`UdpBatch`] turned receive offload on (UDP GRO), and a plain
///   `recv_from` would cut coalesced datagrams short.
pub trait AsyncUdpSocket: Send + Sync + Unpin + 'static {
    /// Readiness to receive; see the trait docs.
    fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Readiness to send; see the trait docs.
    fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Receives what is waiting into `inbox`'s free buffers with
    /// [`UdpBatch::receive`]; returns the number of buffers filled.
    fn try_receive(&self, batch: &UdpBatch, inbox: &mut Inbox) -> io::Result<usize>;

    /// Sends what is queued in `outbox` with [`UdpBatch::send`]; after
    /// `Ok` the outbox is empty. Its only error is `WouldBlock`.
    fn try_send(&self, batch: &UdpBatch, outbox: &mut Outbox) -> io::Result<()>;

    /// Sends what is queued in `outbox` straight through the OS socket,
    /// without asking the runtime about readiness: called once, from the
    /// driver's `Drop`, when its runtime may already be shutting down, to
    /// tell peers that the endpoint is gone. Never blocks; what the socket
    /// refuses is lost. The default is [`try_send`](AsyncUdpSocket::try_send),
    /// right for a runtime whose sockets keep working while it shuts down.
    fn send_on_drop(&self, batch: &UdpBatch, outbox: &mut Outbox) -> io::Result<()> {
        self.try_send(batch, outbox)
    }
}

/// A timer the driver sets to the protocol's next deadline.
///
/// Contract: after [`reset`](AsyncTimer::reset), [`poll_expired`](AsyncTimer::poll_expired)
/// returns `Pending` (and wakes the task at the deadline) until the deadline
/// has passed, then `Ready`. What it returns after firing does not matter:
/// the driver resets it before polling it again.
pub trait AsyncTimer: Send + Unpin + 'static {
    /// Arms the timer for `deadline`, replacing the previous one.
    fn reset(&mut self, deadline: Instant);

    /// No deadline anymore. A timer that cannot be disarmed may still wake
    /// the task once at its old deadline; that costs one idle round.
    fn disarm(&mut self);

    /// Whether the deadline has passed; registers the task's waker if not.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}
