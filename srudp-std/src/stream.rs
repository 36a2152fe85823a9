//! [`Stream`]: one connection's reliable, ordered, encrypted byte stream,
//! with blocking reads and writes.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use srudp_proto::{
    CloseReason, ConnectionHandle, ConnectionStats, PathKind, PublicKey, ReadError, WriteError,
};

use crate::endpoint::EndpointInner;
use crate::error::Error;
use crate::state::{Conn, Shared, State};

/// A connection's byte stream, like a `TcpStream`.
///
/// * Writes ([`send`](Self::send), [`send_all`](Self::send_all),
///   [`Write`]) block while the send buffer is full (backpressure from the
///   peer's acknowledgments and flow control).
/// * Reads ([`recv`](Self::recv), [`Read`]) block until data arrives and
///   return it in order; they return 0 bytes (an empty `Vec` from `recv`)
///   once the peer finished its direction and everything was read.
/// * [`shutdown`](Self::shutdown) finishes our direction (the peer reads
///   end of stream); [`close`](Self::close) does that and waits until the
///   peer acknowledged every byte; [`abort`](Self::abort) ends the
///   connection at once with a code the peer receives.
///
/// Every method takes `&self`: a `Stream` can be shared between threads
/// (one reading, one writing), and `&Stream` implements `Read` and `Write`.
/// [`try_clone`](Self::try_clone) gives another handle on the same stream.
///
/// **Dropping** the last handle of a stream that was not closed finishes our
/// direction and lets the endpoint's driver deliver the data already
/// written in the background, then linger like after [`close`](Self::close),
/// for at most the close timeout in all
/// ([`set_close_timeout`](Self::set_close_timeout), 30 s by default). Data
/// still undelivered then is lost and the connection aborted. Use
/// [`close`](Self::close) to wait for delivery and learn whether it
/// succeeded.
pub struct Stream {
    inner: Arc<StreamInner>,
}

struct StreamInner {
    endpoint: Arc<EndpointInner>,
    handle: ConnectionHandle,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("handle", &self.inner.handle)
            .field("local_addr", &self.shared().local_addr)
            .finish_non_exhaustive()
    }
}

impl Stream {
    pub(crate) fn new(endpoint: Arc<EndpointInner>, handle: ConnectionHandle) -> Stream {
        Stream {
            inner: Arc::new(StreamInner { endpoint, handle }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.inner.endpoint.shared
    }

    fn handle(&self) -> ConnectionHandle {
        self.inner.handle
    }

    /// Runs `attempt` under the lock until it gives a result, waiting for an
    /// event of this connection between attempts, for at most the timeout
    /// `timeout_of` picks from the connection's settings.
    fn wait_for<T>(
        &self,
        timeout_of: impl Fn(&Conn) -> Option<Duration>,
        mut attempt: impl FnMut(&Shared, &mut State) -> Option<Result<T, Error>>,
    ) -> io::Result<T> {
        let shared = self.shared();
        let mut state = shared.lock();
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            if let Some(e) = state.stopped_error() {
                return Err(e.into());
            }
            let Some(conn) = state.app_conn(self.handle()) else {
                return Err(Error::StreamClosed.into());
            };
            let signal = conn.signal.clone();
            let deadline =
                *deadline.get_or_insert_with(|| timeout_of(conn).map(|t| Instant::now() + t));
            if let Some(result) = attempt(shared, &mut state) {
                return result.map_err(io::Error::from);
            }
            let timed_out;
            (state, timed_out) = shared.wait(&signal, state, deadline);
            if timed_out {
                return Err(Error::WaitTimeout.into());
            }
        }
    }

    /// Blocks until the handshake completed (used by `connect`).
    pub(crate) fn wait_established(&self) -> io::Result<()> {
        let handle = self.handle();
        self.wait_for(
            |_| None,
            |_, state| {
                let conn = state.app_conn(handle)?;
                if conn.established {
                    Some(Ok(()))
                } else {
                    conn.closed.as_ref().map(|r| Err(Error::Closed(r.clone())))
                }
            },
        )
    }

    /// Writes some of `data`, blocking until at least one byte is taken (or
    /// `data` is empty); returns how many bytes were taken.
    pub fn send(&self, data: &[u8]) -> io::Result<usize> {
        let handle = self.handle();
        self.wait_for(
            |c| c.write_timeout,
            |shared, state| {
                let conn = state.app_conn(handle)?;
                if conn.write_shutdown {
                    return Some(Err(Error::WriteShutdown));
                }
                match state.proto.endpoint_mut().write(handle, data) {
                    Ok(n) => {
                        shared.wake_driver(state);
                        Some(Ok(n))
                    }
                    Err(WriteError::Blocked) => None,
                    Err(WriteError::Finished) => Some(Err(Error::WriteShutdown)),
                    Err(WriteError::Closed) => Some(Err(closed_error(state, handle))),
                    Err(WriteError::UnknownConnection) => Some(Err(Error::StreamClosed)),
                }
            },
        )
    }

    /// Writes all of `data`, blocking while the send buffer is full. Returns
    /// once every byte is buffered for sending (not yet acknowledged: see
    /// [`close`](Self::close)).
    pub fn send_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.send(data)?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Reads at most `max` bytes, blocking until some arrive. An empty `Vec`
    /// means the peer finished its direction and every byte was read.
    pub fn recv(&self, max: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; max];
        let n = self.recv_into(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Reads into `buf`, blocking until some bytes arrive; `Ok(0)` (with a
    /// non-empty `buf`) is the end of the peer's stream.
    pub fn recv_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let handle = self.handle();
        self.wait_for(
            |c| c.read_timeout,
            |shared, state| match state.proto.endpoint_mut().read(handle, buf) {
                Ok(n) => {
                    // Reading frees receive window the peer may be waiting for.
                    if n > 0 {
                        shared.wake_driver(state);
                    }
                    Some(Ok(n))
                }
                Err(ReadError::Blocked) => None,
                Err(ReadError::Closed) => Some(Err(closed_error(state, handle))),
                Err(ReadError::UnknownConnection) => Some(Err(Error::StreamClosed)),
            },
        )
    }

    /// Finishes our direction of the stream: the peer reads end of stream
    /// after the bytes already written. Later writes fail with `BrokenPipe`;
    /// reading goes on. Calling it again does nothing.
    pub fn shutdown(&self) -> io::Result<()> {
        let shared = self.shared();
        let mut state = shared.lock();
        if let Some(e) = state.stopped_error() {
            return Err(e.into());
        }
        finish(shared, &mut state, self.handle())
    }

    /// Closes the stream gracefully: finishes our direction, blocks until the
    /// peer acknowledged every byte we wrote, and lets go of the stream.
    /// Calling it again does nothing; other handles of the stream can no
    /// longer be used.
    ///
    /// Like a TCP socket after `close`, the connection then lingers in the
    /// background (at most the close timeout) until the peer finishes its
    /// direction too, so both sides see a graceful end; if the peer sends
    /// data meanwhile, nobody will read it, and the connection is aborted
    /// so the peer learns.
    ///
    /// Errors: the connection ended abnormally before everything was
    /// acknowledged (for example `ConnectionReset` with the peer's reason), or
    /// the close timeout passed (`TimedOut`; the connection is then aborted).
    pub fn close(&self) -> io::Result<()> {
        let handle = self.handle();
        let shared = self.shared();
        let mut state = shared.lock();
        if let Some(e) = state.stopped_error() {
            return Err(e.into());
        }
        let Some(conn) = state.app_conn(handle) else {
            return Ok(());
        };
        let timeout = conn.close_timeout;
        let deadline = Instant::now() + timeout;
        let signal = conn.signal.clone();
        if conn.closed.is_none() {
            // A finish refused because the connection just closed is judged below.
            let _ = finish(shared, &mut state, handle);
        }
        loop {
            if let Some(e) = state.stopped_error() {
                return Err(e.into());
            }
            let Some(conn) = state.app_conn(handle) else {
                return Ok(()); // another handle closed it meanwhile
            };
            let now = Instant::now();
            let delivered = conn.all_acked || conn.closed == Some(CloseReason::Finished);
            let outcome = match (&conn.closed, delivered) {
                (None, true) => {
                    state.linger(handle, now + timeout);
                    Some(Ok(()))
                }
                (Some(_), true) => Some(Ok(())),
                (Some(reason), false) => Some(Err(Error::Closed(reason.clone()))),
                (None, false) => None,
            };
            if let Some(outcome) = outcome {
                if state.app_conn(handle).is_some() {
                    state.release(now, handle);
                }
                shared.wake_driver(&mut state);
                return outcome.map_err(io::Error::from);
            }
            let timed_out;
            (state, timed_out) = shared.wait(&signal, state, Some(deadline));
            if timed_out {
                state.release(Instant::now(), handle);
                shared.wake_driver(&mut state);
                return Err(Error::CloseTimeout.into());
            }
        }
    }

    /// Ends the connection at once: the peer's reads and writes fail with
    /// `ConnectionReset`, carrying `code` and `reason` (at most 256 bytes).
    /// Data not yet delivered is discarded. Every handle on this stream can no
    /// longer be used.
    pub fn abort(&self, code: u32, reason: &str) {
        let handle = self.handle();
        let shared = self.shared();
        let mut state = shared.lock();
        if state.app_conn(handle).is_some() {
            let now = Instant::now();
            state
                .proto
                .endpoint_mut()
                .close(now, handle, code, reason.as_bytes());
            state.release(now, handle);
            shared.wake_driver(&mut state);
        }
    }

    /// Whether the connection is over (closed by either side, timed out, or
    /// closed/aborted through this stream).
    pub fn is_closed(&self) -> bool {
        let state = self.shared().lock();
        state.stopped_error().is_some()
            || state
                .app_conn(self.handle())
                .is_none_or(|c| c.closed.is_some())
    }

    /// Blocks reads for at most `timeout` (`None`: forever); past it they fail
    /// with `io::ErrorKind::WouldBlock` and the stream stays usable. Shared by
    /// every handle of the stream. A zero timeout is rejected, as by `std::net`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_timeout(timeout, |c, t| c.read_timeout = t)
    }

    /// Blocks writes for at most `timeout` (`None`: forever); past it they fail
    /// with `io::ErrorKind::WouldBlock`. A zero timeout is rejected.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_timeout(timeout, |c, t| c.write_timeout = t)
    }

    /// How long [`close`](Self::close) — and a dropped stream in the
    /// background — waits for the peer to acknowledge our data (30 s by default).
    pub fn set_close_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.set_timeout(Some(timeout), |c, t| {
            c.close_timeout = t.unwrap_or_default();
        })
    }

    fn set_timeout(
        &self,
        timeout: Option<Duration>,
        set: impl FnOnce(&mut Conn, Option<Duration>),
    ) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a zero duration timeout",
            ));
        }
        let mut state = self.shared().lock();
        let conn = state
            .app_conn_mut(self.handle())
            .ok_or(Error::StreamClosed)?;
        set(conn, timeout);
        Ok(())
    }

    /// The read timeout (see [`set_read_timeout`](Self::set_read_timeout)).
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.with_conn(|c| c.read_timeout)
    }

    /// The write timeout (see [`set_write_timeout`](Self::set_write_timeout)).
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.with_conn(|c| c.write_timeout)
    }

    /// The peer's address on the path in use (it can change if the peer's
    /// NAT rebinds).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.with_conn(|c| c.remote)
    }

    /// How the connection reaches its peer now: [`PathKind::Direct`] to the
    /// peer's address, or [`PathKind::Relayed`] through a rendezvous
    /// server's relay (only for connections made through a rendezvous, see
    /// [`Endpoint::connect_by_name`](crate::Endpoint::connect_by_name)). It
    /// changes when a relayed connection finds a direct path, or when a
    /// direct path dies and the relay takes over.
    ///
    /// Errors: the stream was closed or the connection is gone.
    pub fn path(&self) -> io::Result<PathKind> {
        let state = self.shared().lock();
        let conn = state.app_conn(self.handle()).ok_or(Error::StreamClosed)?;
        Ok(state
            .proto
            .endpoint()
            .path_kind(self.handle())
            .unwrap_or(PathKind::Direct(conn.remote)))
    }

    /// The local socket's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.shared().local_addr)
    }

    /// The peer's authenticated public key: always for connections we opened,
    /// for accepted ones only when the peer used the IK pattern.
    pub fn peer_identity(&self) -> Option<PublicKey> {
        self.with_conn(|c| c.peer).ok().flatten()
    }

    /// The connection's counters (RTT, congestion window, bytes, losses).
    pub fn stats(&self) -> Option<ConnectionStats> {
        self.shared().lock().proto.endpoint().stats(self.handle())
    }

    /// Another handle on this stream (for a reader and a writer thread).
    /// Never fails; the `io::Result` matches `TcpStream::try_clone`.
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(Stream {
            inner: self.inner.clone(),
        })
    }

    fn with_conn<T>(&self, f: impl FnOnce(&Conn) -> T) -> io::Result<T> {
        let state = self.shared().lock();
        let conn = state.app_conn(self.handle()).ok_or(Error::StreamClosed)?;
        Ok(f(conn))
    }
}

/// Finishes our direction; idempotent.
fn finish(shared: &Shared, state: &mut State, handle: ConnectionHandle) -> io::Result<()> {
    let Some(conn) = state.app_conn(handle) else {
        return Err(Error::StreamClosed.into());
    };
    if conn.write_shutdown {
        return Ok(());
    }
    let result = match state.proto.endpoint_mut().finish(handle) {
        Ok(()) | Err(WriteError::Finished) => Ok(()),
        Err(WriteError::Closed) => Err(closed_error(state, handle)),
        Err(WriteError::Blocked | WriteError::UnknownConnection) => Err(Error::StreamClosed),
    };
    if result.is_ok() {
        if let Some(conn) = state.conns.get_mut(&handle) {
            conn.write_shutdown = true;
        }
        shared.wake_driver(state);
    }
    result.map_err(io::Error::from)
}

/// The error after srudp-proto reported the connection closed. The driver
/// may not have drained the `Closed` event yet if a command closed it.
fn closed_error(state: &State, handle: ConnectionHandle) -> Error {
    state
        .conns
        .get(&handle)
        .map_or(Error::StreamClosed, Conn::closed_error)
}

impl Drop for StreamInner {
    /// Finishes the stream and lets it deliver in the background; see
    /// [`Stream`]'s docs. Never blocks on the network and never panics.
    fn drop(&mut self) {
        let shared = &self.endpoint.shared;
        let mut state = shared.lock();
        let now = Instant::now();
        let handle = self.handle;
        let Some(conn) = state.app_conn(handle) else {
            return; // closed or aborted through this stream already
        };
        if conn.closed.is_some() || state.stopped_error().is_some() {
            state.release(now, handle);
        } else {
            let deadline = now + conn.close_timeout;
            let _ = finish(shared, &mut state, handle);
            state.linger(handle, deadline);
        }
        shared.wake_driver(&mut state);
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_into(buf)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_into(buf)
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)
    }

    /// Nothing to do: written bytes are already handed to the driver. To
    /// wait until the peer has them, use [`Stream::close`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
