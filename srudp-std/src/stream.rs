//! [`Stream`]: one connection's reliable, ordered, encrypted byte stream,
//! with blocking reads and writes over srudp-async's stream.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use srudp_proto::{CloseReason, ConnectionStats, PathKind, PublicKey};

use crate::block::block_on;
use crate::error::{is_stream_closed, is_wait_timeout, Error};

/// How long [`Stream::close`] waits for the peer's acknowledgments unless
/// told otherwise.
const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

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
///   peer acknowledged every byte (the graceful end: futures-io's `close`,
///   tokio's `shutdown` in the async adapters); [`abort`](Self::abort) ends
///   the connection at once with a code the peer receives.
///
/// Every method takes `&self`: a `Stream` can be shared between threads
/// (one reading, one writing), and `&Stream` implements `Read` and `Write`.
/// [`try_clone`](Self::try_clone) gives another handle on the same stream.
///
/// Errors map as in every srudp adapter (see
/// [`srudp_async::stream_error`]); the blocking-only conditions are
/// [`Error`]'s.
///
/// **Dropping** the last handle of a stream that was not closed finishes our
/// direction and lets the endpoint's driver deliver the data already
/// written in the background, as every adapter does: it is closed abruptly
/// if the peer has not finished within the idle timeout. Use
/// [`close`](Self::close) to wait for delivery and learn whether it
/// succeeded.
pub struct Stream {
    inner: Arc<StreamInner>,
}

struct StreamInner {
    /// Taken by `close` through any handle: the stream is ours no more, and lingers in the background (srudp-async's policy for a
    /// dropped stream). Locked only for the moment of a poll.
    stream: Mutex<Option<srudp_async::Stream>>,
    local_addr: SocketAddr,
    timeouts: Mutex<Timeouts>,
}

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    read: Option<Duration>,
    write: Option<Duration>,
    close: Duration,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("stream", &*lock(&self.inner.stream))
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

impl Stream {
    pub(crate) fn new(stream: srudp_async::Stream, local_addr: SocketAddr) -> Stream {
        Stream {
            inner: Arc::new(StreamInner {
                stream: Mutex::new(Some(stream)),
                local_addr,
                timeouts: Mutex::new(Timeouts {
                    read: None,
                    write: None,
                    close: DEFAULT_CLOSE_TIMEOUT,
                }),
            }),
        }
    }

    /// Runs `f` on the stream, unless this side closed or aborted it.
    fn with_stream<T>(&self, f: impl FnOnce(&srudp_async::Stream) -> T) -> io::Result<T> {
        match &*lock(&self.inner.stream) {
            Some(stream) => Ok(f(stream)),
            None => Err(Error::StreamClosed.into()),
        }
    }

    /// Blocks on `poll` of the stream, at most `timeout`.
    fn block_on_stream<T>(
        &self,
        timeout: Option<Duration>,
        mut poll: impl FnMut(&srudp_async::Stream, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> io::Result<T> {
        block_on(
            timeout,
            poll_fn(|cx| match self.with_stream(|s| poll(s, cx)) {
                Ok(polled) => polled,
                Err(e) => Poll::Ready(Err(e)),
            }),
        )
    }

    /// Lets go of the stream for every handle: it lingers in the background.
    fn release(&self) -> Option<srudp_async::Stream> {
        lock(&self.inner.stream).take()
    }

    fn timeouts(&self) -> Timeouts {
        *lock(&self.inner.timeouts)
    }

    /// Writes some of `data`, blocking until at least one byte is taken (or
    /// `data` is empty); returns how many bytes were taken.
    pub fn send(&self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return self.with_stream(|_| 0);
        }
        self.block_on_stream(self.timeouts().write, |s, cx| s.poll_write(cx, data))
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
            return self.with_stream(|_| 0);
        }
        self.block_on_stream(self.timeouts().read, |s, cx| s.poll_read(cx, buf))
    }

    /// Finishes our direction of the stream: the peer reads end of stream
    /// after the bytes already written. Later writes fail with `BrokenPipe`;
    /// reading goes on. It does not wait for the peer's acknowledgment (see
    /// [`close`](Self::close)). Calling it again does nothing.
    pub fn shutdown(&self) -> io::Result<()> {
        // The first poll ends our direction; its outcome (acknowledged or
        // not yet) is not waited for here.
        let mut cx = Context::from_waker(Waker::noop());
        match self.with_stream(|s| s.poll_finish(&mut cx))? {
            Poll::Ready(Err(e)) => Err(e),
            Poll::Ready(Ok(())) | Poll::Pending => Ok(()),
        }
    }

    /// Closes the stream gracefully: finishes our direction, blocks until the
    /// peer acknowledged every byte we wrote (at most the close timeout,
    /// [`set_close_timeout`](Self::set_close_timeout)), and lets go of the
    /// stream. Calling it again does nothing; other handles of the stream
    /// can no longer be used. Once the last handle is gone, the connection
    /// lingers in the background until the peer finishes its direction too.
    ///
    /// Errors: the connection ended abnormally before everything was
    /// acknowledged (for example `ConnectionReset` with the peer's reason), or
    /// the close timeout passed (`TimedOut`; the connection is then aborted).
    pub fn close(&self) -> io::Result<()> {
        if lock(&self.inner.stream).is_none() {
            return Ok(());
        }
        let outcome = self.block_on_stream(Some(self.timeouts().close), |s, cx| s.poll_finish(cx));
        let released = self.release();
        match outcome {
            Err(e) if is_wait_timeout(&e) => {
                if let Some(stream) = released {
                    stream.abort(0, b"close timeout");
                }
                Err(Error::CloseTimeout.into())
            }
            // Another handle closed it meanwhile.
            Err(e) if released.is_none() && is_stream_closed(&e) => Ok(()),
            outcome => outcome,
        }
    }

    /// Ends the connection at once: the peer's reads and writes fail with
    /// `ConnectionReset`, carrying `code` and `reason` (at most 256 bytes).
    /// Data not yet delivered is discarded. Every later call through any
    /// handle fails with `ConnectionAborted` and
    /// [`CloseReason::LocalClose`] as its reason, as in every adapter.
    /// Calling it again does nothing.
    pub fn abort(&self, code: u32, reason: &[u8]) {
        // The stream stays ours, so that later calls report the abort the
        // way the async stream does.
        let _ = self.with_stream(|s| s.abort(code, reason));
    }

    /// Whether the connection is over (closed by either side, timed out, or
    /// closed/aborted through this stream).
    pub fn is_closed(&self) -> bool {
        self.with_stream(|s| s.close_reason().is_some())
            .unwrap_or(true)
    }

    /// Why the connection closed, once it has (`None` also once
    /// [`close`](Self::close) let go of the stream).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.with_stream(|s| s.close_reason()).ok().flatten()
    }

    /// Blocks reads for at most `timeout` (`None`: forever); past it they fail
    /// with `io::ErrorKind::WouldBlock` and the stream stays usable. Shared by
    /// every handle of the stream. A zero timeout is rejected, as by `std::net`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_timeout(timeout, |t, v| t.read = v)
    }

    /// Blocks writes for at most `timeout` (`None`: forever); past it they fail
    /// with `io::ErrorKind::WouldBlock`. A zero timeout is rejected.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_timeout(timeout, |t, v| t.write = v)
    }

    /// How long [`close`](Self::close) waits for the peer to acknowledge our
    /// data (30 s by default).
    pub fn set_close_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.set_timeout(Some(timeout), |t, v| t.close = v.unwrap_or_default())
    }

    fn set_timeout(
        &self,
        timeout: Option<Duration>,
        set: impl FnOnce(&mut Timeouts, Option<Duration>),
    ) -> io::Result<()> {
        self.with_stream(|_| ())?;
        if timeout == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a zero duration timeout",
            ));
        }
        set(&mut lock(&self.inner.timeouts), timeout);
        Ok(())
    }

    /// The read timeout (see [`set_read_timeout`](Self::set_read_timeout)).
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.with_stream(|_| self.timeouts().read)
    }

    /// The write timeout (see [`set_write_timeout`](Self::set_write_timeout)).
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.with_stream(|_| self.timeouts().write)
    }

    /// The peer's address on the path in use (it can change if the peer's
    /// NAT rebinds).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.with_stream(|s| s.peer_addr())
    }

    /// How the connection reaches its peer now: [`PathKind::Direct`] to the
    /// peer's address, or [`PathKind::Relayed`] through a rendezvous
    /// server's relay (only for connections made through a rendezvous, see
    /// [`Endpoint::connect_by_name`](crate::Endpoint::connect_by_name)). It
    /// changes when a relayed connection finds a direct path, or when a
    /// direct path dies and the relay takes over.
    ///
    /// Errors: this side closed or aborted the stream.
    pub fn path(&self) -> io::Result<PathKind> {
        self.with_stream(|s| s.path())
    }

    /// The local socket's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local_addr)
    }

    /// The peer's authenticated public key: always for connections we opened,
    /// for accepted ones only when the peer used the IK pattern.
    pub fn peer_public_key(&self) -> Option<PublicKey> {
        self.with_stream(|s| s.peer_public_key()).ok().flatten()
    }

    /// The connection's counters (RTT, congestion window, bytes, losses).
    pub fn stats(&self) -> Option<ConnectionStats> {
        self.with_stream(|s| s.stats()).ok().flatten()
    }

    /// Another handle on this stream (for a reader and a writer thread).
    /// Never fails; the `io::Result` matches `TcpStream::try_clone`.
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(Stream {
            inner: self.inner.clone(),
        })
    }
}

/// Locks `m`; a panic while it was held (a bug) does not make every later
/// call — drops included — panic too.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
