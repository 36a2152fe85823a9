//! One connection's byte stream, as `futures_io::AsyncRead` + `AsyncWrite`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use srudp_proto::{CloseReason, ConnectionStats, PathKind, PublicKey};

/// An encrypted, reliable, ordered byte stream to one peer.
///
/// It implements the `futures-io` traits that async-std and smol use. Read
/// with [`AsyncRead`] (`AsyncReadExt::read` …): data arrives in order; `Ok(0)`
/// means the peer finished its direction and everything it sent has been
/// read. Write with [`AsyncWrite`]: a write takes what fits in the send
/// buffer and waits while it is full (backpressure). `close()` (the graceful
/// finish) ends our direction and completes once the peer has acknowledged
/// every byte; reading still works after it. `flush()` has nothing to do:
/// written bytes are already the protocol's to deliver.
///
/// Errors are `std::io::Error`s: `TimedOut` when the peer stopped answering,
/// `ConnectionReset` when it closed abruptly, `ConnectionAborted` after
/// [`Stream::abort`] or `Endpoint::close`, `BrokenPipe` when writing after
/// `close()`; the [`CloseReason`] is the error's source (see
/// [`srudp_proto::stream_error`]).
///
/// **Cancellation safety.** `read` and `write` (and `poll_read`,
/// `poll_write`) are cancellation safe: a read copies bytes out only when it
/// completes, and a write takes bytes only when it completes. `close` is
/// cancellation safe too: finishing happens once, and calling it again just
/// goes on waiting for the acknowledgment. As for any stream, `read_exact`,
/// `read_to_end` and `write_all` are not.
///
/// Dropping a stream never blocks: it finishes gracefully in the background
/// (unread incoming data is discarded) and is closed abruptly if the peer
/// has not finished within the idle timeout.
pub struct Stream {
    inner: srudp_async::Stream,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Stream {
    pub(crate) fn new(inner: srudp_async::Stream) -> Stream {
        Stream { inner }
    }

    /// How the connection reaches its peer now: [`PathKind::Direct`] to the
    /// peer's address, or [`PathKind::Relayed`] through a rendezvous
    /// server's relay (only for connections made through a rendezvous, see
    /// [`Endpoint::connect_by_name`](crate::Endpoint::connect_by_name)). It
    /// changes when a relayed connection finds a direct path, or when a
    /// direct path dies and the relay takes over;
    /// [`path_changed`](Stream::path_changed) waits for that. Once the
    /// connection is gone, the last known path.
    pub fn path(&self) -> PathKind {
        self.inner.path()
    }

    /// Waits until the connection's path differs from `known` (see
    /// [`path`](Stream::path)) and returns the new one.
    ///
    /// Cancellation safe. Errors: the connection closed or is gone.
    pub async fn path_changed(&self, known: PathKind) -> io::Result<PathKind> {
        self.inner.path_changed(known).await
    }

    /// The peer's address on the path in use (it changes if the peer's NAT
    /// rebinds and the new path is validated).
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer_addr()
    }

    /// The peer's authenticated public key: always for connections we
    /// opened; for accepted ones only when the peer used the IK pattern.
    pub fn peer_public_key(&self) -> Option<PublicKey> {
        self.inner.peer_public_key()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.inner.close_reason()
    }

    /// Counters of the connection (RTT, congestion window, bytes and packets).
    pub fn stats(&self) -> Option<ConnectionStats> {
        self.inner.stats()
    }

    /// Closes the connection at once with an application `code` and a
    /// `reason` (at most 256 bytes) that the peer receives; unsent and
    /// unacknowledged data is discarded. For a graceful end, use
    /// `AsyncWriteExt::close` (named so by the `futures-io` traits).
    pub fn abort(&self, code: u32, reason: &[u8]) {
        self.inner.abort(code, reason);
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_finish(cx)
    }
}
