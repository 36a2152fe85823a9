//! What the core needs from an async runtime: a UDP socket it can poll for
//! readiness and try without blocking, and a timer it can set to a deadline.
//!
//! Spawning is not here: the adapters decide where the [`Driver`](crate::Driver)
//! runs (srudp-tokio spawns it on the current runtime, srudp-async-std on a
//! thread of its own or hands it to the caller).

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;

/// One async runtime's socket and timer types, named for the
/// [`Driver`](crate::Driver). Implemented by a marker type in each adapter.
pub trait Runtime: 'static {
    /// The runtime's UDP socket.
    type UdpSocket: AsyncUdpSocket;
    /// The runtime's timer.
    type Timer: AsyncTimer;

    /// Registers a bound, non-blocking std socket with the runtime.
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
}

/// A UDP socket that says when it may be ready and is then tried without
/// blocking, like `tokio::net::UdpSocket` or `async_io::Async<UdpSocket>`.
///
/// Contract the driver relies on:
/// * `try_recv_from` and `try_send_to` never block; they fail with
///   `WouldBlock` when the socket is not ready.
/// * After a `WouldBlock`, `poll_recv_ready` (`poll_send_ready`) returns
///   `Pending` and wakes the task once the socket may have become ready.
///   `Ready` may be spurious: the driver tries again a bounded number of
///   times, then yields.
/// * A datagram longer than the buffer arrives truncated (it is not ours:
///   the parser drops it).
///
/// Batched IO (`recvmmsg`/`sendmmsg`, GSO) belongs here as two more methods
/// running on the socket's file descriptor under the same readiness rules
/// (tokio: inside `UdpSocket::try_io`; async-io: on `Async::get_ref`).
pub trait AsyncUdpSocket: Send + Sync + Unpin + 'static {
    /// Readiness to receive; see the trait docs.
    fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Readiness to send; see the trait docs.
    fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Receives one datagram into `buf` if one is waiting.
    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;

    /// Sends one datagram if the socket can take it now.
    fn try_send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<usize>;
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
