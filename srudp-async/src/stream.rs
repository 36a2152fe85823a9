//! One connection's byte stream, with poll-based reads, writes and finish
//! on plain buffers: what every runtime's IO traits need.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use srudp_proto::{CloseReason, ConnectionHandle, ConnectionStats, PathKind, PublicKey};

use crate::shared::{Shared, State};
use crate::stream_error::StreamError;
use crate::stream_table::PeerInfo;

/// An encrypted, reliable, ordered byte stream to one peer.
///
/// It implements the IO traits of the runtimes the crate's features name:
/// tokio's `AsyncRead`/`AsyncWrite` (feature `tokio`) and futures-io's
/// (feature `futures-io`, on with `async-io`; the traits async-std and smol
/// use), so `tokio::io::copy`, `split`, `tokio_util::codec::Framed`,
/// `futures::io::copy` and the like work on it. Under them lie
/// [`poll_read`](Stream::poll_read), [`poll_write`](Stream::poll_write) and
/// [`poll_finish`](Stream::poll_finish), for any other runtime.
///
/// Reading: data arrives in order; `Ok(0)` means the peer finished its
/// direction and everything it sent has been read. Writing: a write takes
/// what fits in the send buffer and waits while it is full (backpressure).
/// **Finishing** — tokio's `shutdown()`, futures-io's `close()`,
/// [`poll_finish`](Stream::poll_finish) — is the graceful end: it ends our
/// direction and completes once the peer has acknowledged every byte;
/// reading still works after it. [`abort`](Stream::abort) is the abrupt
/// end. `flush()` has nothing to do: written bytes are already the
/// protocol's to deliver.
///
/// Errors are `std::io::Error`s: `TimedOut` when the peer stopped answering,
/// `ConnectionReset` when it closed abruptly, `ConnectionAborted` after
/// [`Stream::abort`] or `Endpoint::close`, `BrokenPipe` when writing after
/// finishing; the [`CloseReason`] is the error's source (see
/// [`stream_error`](crate::stream_error)).
///
/// **Cancellation safety.** `read`, `read_buf` and `write` (and `poll_read`,
/// `poll_write`) are cancellation safe: a read copies bytes out only when it
/// completes, and a write takes bytes only when it completes. Finishing is
/// cancellation safe too: it happens once, and calling it again just goes
/// on waiting for the acknowledgment. As for any stream, `read_exact`,
/// `read_to_end` and `write_all` are not.
///
/// Dropping a stream never blocks: it finishes gracefully in the background,
/// like a TCP socket after `close`. What we wrote is still delivered; what
/// the peer sends is thrown away, and once our data is delivered such data
/// aborts the connection, so the peer learns nobody reads it (a peer that
/// only finishes gets a graceful end). It is closed abruptly if the peer has
/// not finished within the idle timeout.
pub struct Stream {
    shared: Arc<Shared>,
    handle: ConnectionHandle,
    initial: PeerInfo,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("handle", &self.handle)
            .field("peer_addr", &self.peer_addr())
            .finish_non_exhaustive()
    }
}

impl Stream {
    pub(crate) fn new(shared: Arc<Shared>, handle: ConnectionHandle, info: PeerInfo) -> Stream {
        Stream {
            shared,
            handle,
            initial: info,
        }
    }

    fn info(&self) -> PeerInfo {
        self.shared
            .lock()
            .table
            .peer_info(self.handle)
            .unwrap_or(self.initial)
    }

    /// The peer's address on the path in use (it changes if the peer's NAT
    /// rebinds and the new path is validated).
    pub fn peer_addr(&self) -> SocketAddr {
        self.info().remote
    }

    /// The peer's authenticated public key: always for connections we
    /// opened; for accepted ones only when the peer used the IK pattern.
    pub fn peer_public_key(&self) -> Option<PublicKey> {
        self.info().peer
    }

    /// How the connection reaches its peer now (the last known path once
    /// the connection is gone).
    pub fn path(&self) -> PathKind {
        self.path_watcher().path()
    }

    /// Whether the path is relayed by the rendezvous server over this
    /// endpoint's stream carrier, a TCP connection to the server (spec §12):
    /// what `path: relayed via ADDR (tcp)` says.
    pub fn relayed_over_stream(&self) -> bool {
        self.path_watcher().relayed_over_stream()
    }

    /// Waits until the connection's path differs from `known` (see
    /// [`path`](Stream::path)) and returns the new one.
    ///
    /// Cancellation safe. Errors: the connection closed (as for reads).
    pub async fn path_changed(&self, known: PathKind) -> io::Result<PathKind> {
        self.path_watcher().changed(known).await
    }

    /// A handle that follows this connection's path on its own, for a task
    /// that reports path changes while others read and write the stream
    /// (for example after `tokio::io::split` or `futures::io::split`).
    pub fn path_watcher(&self) -> PathWatcher {
        PathWatcher {
            shared: self.shared.clone(),
            handle: self.handle,
            initial: self.initial,
        }
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.lock().table.close_reason(self.handle).cloned()
    }

    /// Counters of the connection (RTT, congestion window, bytes and packets).
    pub fn stats(&self) -> Option<ConnectionStats> {
        self.shared.lock().machine.endpoint().stats(self.handle)
    }

    /// Closes the connection at once with an application `code` and a
    /// `reason` (at most 256 bytes) that the peer receives; unsent and
    /// unacknowledged data is discarded. For a graceful end, finish the
    /// stream (tokio's `shutdown`, futures-io's `close`).
    pub fn abort(&self, code: u32, reason: &[u8]) {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        let now = state.now();
        state
            .table
            .close_stream(state.machine.endpoint_mut(), now, self.handle, code, reason);
        state.wake_driver();
    }
}

/// The IO the adapters' `AsyncRead` / `AsyncWrite` impls forward to.
impl Stream {
    /// Copies received bytes into `buf`; `Ok(0)` once the peer finished and
    /// everything was read (or `buf` is empty). Cancellation safe: bytes
    /// leave the stream only when this returns `Ready`.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        match state
            .table
            .poll_read(state.machine.endpoint_mut(), self.handle, cx.waker(), buf)
        {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    // Reading frees receive window the peer may be waiting for.
                    state.wake_driver();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(state.stream_error(e))),
            Poll::Pending => match state.check_driver() {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    /// Takes as much of `data` as fits in the send buffer; `Pending` while
    /// it is full (backpressure).
    pub fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        match state
            .table
            .poll_write(state.machine.endpoint_mut(), self.handle, cx.waker(), data)
        {
            Poll::Ready(Err(e)) => Poll::Ready(Err(state.stream_error(e))),
            // Without a driver, written bytes would never leave.
            _ if state.gone.is_some() => Poll::Ready(state.check_driver().map(|()| 0)),
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    state.wake_driver();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The graceful finish: ends our direction (once) and completes when
    /// the peer has acknowledged every byte. Calling it again goes on
    /// waiting.
    pub fn poll_finish(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        let result = state
            .table
            .poll_finish(state.machine.endpoint_mut(), self.handle, cx.waker());
        match result {
            Poll::Ready(r) => Poll::Ready(r.map_err(|e| state.stream_error(e))),
            Poll::Pending => {
                // The FIN may be new: let the driver send it.
                state.wake_driver();
                match state.check_driver() {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                }
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        let now = state.now();
        state
            .table
            .drop_stream(state.machine.endpoint_mut(), now, self.handle);
        state.wake_driver();
    }
}

/// Follows one connection's path (see [`Stream::path`]); made by
/// [`Stream::path_watcher`]. It does not keep the connection open.
#[derive(Debug, Clone)]
pub struct PathWatcher {
    shared: Arc<Shared>,
    handle: ConnectionHandle,
    initial: PeerInfo,
}

impl PathWatcher {
    /// How the connection reaches its peer now (the last known path once
    /// the connection is gone).
    pub fn path(&self) -> PathKind {
        self.path_in(&self.shared.lock())
    }

    /// See [`Stream::relayed_over_stream`].
    pub fn relayed_over_stream(&self) -> bool {
        let state = self.shared.lock();
        match (self.path_in(&state), &state.carrier) {
            (PathKind::Relayed { via }, Some(carrier)) => {
                via == carrier.server_addr() && carrier.on_stream()
            }
            _ => false,
        }
    }

    fn path_in(&self, state: &State) -> PathKind {
        state
            .machine
            .endpoint()
            .path_kind(self.handle)
            .unwrap_or_else(|| {
                PathKind::Direct(
                    state
                        .table
                        .peer_info(self.handle)
                        .unwrap_or(self.initial)
                        .remote,
                )
            })
    }

    /// Waits until the path differs from `known` and returns the new one.
    ///
    /// Cancellation safe. Errors: the connection closed or is gone.
    pub async fn changed(&self, known: PathKind) -> io::Result<PathKind> {
        std::future::poll_fn(|cx| {
            let mut state = self.shared.lock();
            let current = self.path_in(&state);
            if current != known {
                return Poll::Ready(Ok(current));
            }
            if let Some(reason) = state.table.close_reason(self.handle) {
                return Poll::Ready(Err(StreamError::Closed(reason.clone()).into()));
            }
            if state.table.peer_info(self.handle).is_none() {
                return Poll::Ready(Err(StreamError::UnknownStream.into()));
            }
            state.check_driver()?;
            state.park_path_waiter(cx.waker());
            Poll::Pending
        })
        .await
    }
}
