//! The rendezvous server's stream carrier (spec §12): TCP connections, each
//! a path to one client. Every datagram a connection's frames carry goes to
//! the server's state machine as if it had come over UDP from the
//! connection's remote address, and every datagram the state machine sends
//! to that address goes back on the connection. No protocol logic lives
//! here: only IO, framing ([`srudp_proto::stream_carrier`]) and the limits
//! that keep a TCP connection as cheap as a UDP source (spec §12.4).
//!
//! Limits:
//! * at most [`StreamCarrierConfig::max_connections`] connections, at most
//!   [`max_connections_per_source`](StreamCarrierConfig::max_connections_per_source)
//!   from one source (an IPv4 address or an IPv6 /64); others are closed
//!   at once;
//! * a connection whose address carries no client connection of the
//!   server for [`auth_timeout`](StreamCarrierConfig::auth_timeout) — one
//!   that never completes a handshake (slowloris), or whose client left —
//!   is closed;
//! * at most [`max_queued_datagrams`](StreamCarrierConfig::max_queued_datagrams)
//!   wait for one connection beyond its socket buffer: more are dropped, as
//!   a full UDP socket buffer would drop them, which the srudp connections
//!   inside see as loss and slow down for; a connection whose writes make
//!   no progress for [`stall_timeout`](StreamCarrierConfig::stall_timeout)
//!   (a client that does not read) is closed rather than buffered for.
//!
//! With [`StreamCarrierConfig::tls`], each connection is a TLS session
//! first (spec §12.6); its handshake counts against the authentication
//! deadline, and a connection that does not speak TLS is closed at once.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use srudp_proto::rendezvous::SourcePrefix;
use srudp_proto::stream_carrier::{encode_stream_frame, StreamFrameDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tracing::{debug, trace};

use srudp_net::socket::canonical;

use crate::carrier_tls::CarrierTls;
use crate::rendezvous_server::ServerShared;

/// Bytes read from a connection at a time.
const READ_BUF: usize = 16 * 1024;
/// Bytes of queued frames written to a connection at a time.
const WRITE_BATCH: usize = 64 * 1024;

/// The rendezvous server's TCP listener for the stream carrier (spec §12)
/// and its limits. Every field has a default ([`StreamCarrierConfig::new`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StreamCarrierConfig {
    /// The TCP port, on the IP address of the server's UDP socket (0: any
    /// free port).
    pub port: u16,
    /// Most TCP connections at once (default 4096).
    pub max_connections: usize,
    /// Most TCP connections at once from one source, an IPv4 address or an
    /// IPv6 /64 (default 32: a network that blocks UDP often puts many
    /// users behind one address).
    pub max_connections_per_source: usize,
    /// How long a connection may go without carrying a client connection
    /// of the server, from its opening or since it last did (default 10 s).
    pub auth_timeout: Duration,
    /// Most datagrams queued for one connection beyond its socket buffer;
    /// more are dropped (default 256, about 300 KiB).
    pub max_queued_datagrams: usize,
    /// How long a connection's writes may make no progress before it is
    /// closed (default 10 s).
    pub stall_timeout: Duration,
    /// Wrap every connection in TLS with this identity (spec §12.6);
    /// clients learn it from the address's `/tls:` (default: none, plain
    /// TCP).
    pub tls: Option<CarrierTls>,
}

impl StreamCarrierConfig {
    /// The defaults, on TCP port `port`.
    pub fn new(port: u16) -> StreamCarrierConfig {
        StreamCarrierConfig {
            port,
            max_connections: 4096,
            max_connections_per_source: 32,
            auth_timeout: Duration::from_secs(10),
            max_queued_datagrams: 256,
            stall_timeout: Duration::from_secs(10),
            tls: None,
        }
    }

    fn validate(&self) -> io::Result<()> {
        if self.max_connections == 0
            || self.max_connections_per_source == 0
            || self.max_queued_datagrams == 0
            || self.auth_timeout.is_zero()
            || self.stall_timeout.is_zero()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "stream carrier: every limit must be at least 1 and every timeout above 0",
            ));
        }
        Ok(())
    }
}

/// What the stream carrier did, for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamCarrierStats {
    /// Connections open now.
    pub open: usize,
    /// Connections closed as soon as they arrived: over the total or the
    /// per-source quota.
    pub refused: u64,
    /// Connections closed because they carried no client connection for
    /// the authentication deadline.
    pub unauthenticated: u64,
}

/// One open connection, as the server's task sees it.
#[derive(Debug)]
struct Path {
    /// Tells this path from a later one at the same address.
    id: u64,
    source: SourcePrefix,
    frames: mpsc::Sender<Vec<u8>>,
    /// Closes the connection (the sweep found no client on it).
    close: Arc<Notify>,
    /// When it last carried a client connection (or opened).
    authenticated_at: Instant,
}

/// The open connections, by remote address, and their count by source.
#[derive(Debug, Default)]
struct PathTable {
    paths: HashMap<SocketAddr, Path>,
    per_source: HashMap<SourcePrefix, usize>,
    next_id: u64,
    /// Counters (`open` unused: it is `paths.len()`).
    stats: StreamCarrierStats,
}

impl PathTable {
    fn remove(&mut self, addr: SocketAddr, id: u64) {
        if self.paths.get(&addr).is_some_and(|p| p.id == id) {
            let path = self.paths.remove(&addr).expect("present");
            if let Some(n) = self.per_source.get_mut(&path.source) {
                *n -= 1;
                if *n == 0 {
                    self.per_source.remove(&path.source);
                }
            }
        }
    }
}

/// What the connections' tasks share with the server's task.
#[derive(Debug, Default)]
struct Shared {
    table: Mutex<PathTable>,
    /// Woken when connections fed the state machine: it owes answers.
    inbound: Notify,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, PathTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What happened to a datagram for a stream path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routed {
    /// Queued on the connection.
    Queued,
    /// The connection's queue is full: dropped, like a full socket buffer.
    Dropped,
    /// No connection at that address: the datagram is for UDP.
    NotStream,
}

/// The stream carrier of one rendezvous server: its listener, its
/// connections and their tasks.
#[derive(Debug)]
pub(crate) struct StreamPaths {
    listener: TcpListener,
    local_addr: SocketAddr,
    config: StreamCarrierConfig,
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
    next_sweep: Option<Instant>,
}

impl StreamPaths {
    /// Listens on `ip` and the configured port.
    pub(crate) fn bind(
        ip: std::net::IpAddr,
        config: StreamCarrierConfig,
    ) -> io::Result<StreamPaths> {
        config.validate()?;
        let std_listener = std::net::TcpListener::bind(SocketAddr::new(ip, config.port))?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let local_addr = listener.local_addr()?;
        Ok(StreamPaths {
            listener,
            local_addr,
            config,
            shared: Arc::default(),
            tasks: JoinSet::new(),
            next_sweep: None,
        })
    }

    /// The listener's address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What the server's handle reads: the address, the connections.
    pub(crate) fn handle(&self) -> StreamPathsHandle {
        StreamPathsHandle {
            shared: self.shared.clone(),
            local_addr: self.local_addr,
        }
    }

    /// Queues `datagram` for the connection at `to`, if there is one.
    pub(crate) fn route(&self, to: SocketAddr, datagram: &[u8]) -> Routed {
        let table = self.shared.table();
        let Some(path) = table.paths.get(&to) else {
            return Routed::NotStream;
        };
        let mut frame = Vec::with_capacity(datagram.len() + 2);
        if encode_stream_frame(datagram, &mut frame).is_err() {
            return Routed::Dropped;
        }
        match path.frames.try_send(frame) {
            Ok(()) => Routed::Queued,
            Err(_) => {
                trace!(%to, "stream path queue full: datagram dropped");
                Routed::Dropped
            }
        }
    }

    /// When [`sweep`](Self::sweep) is due, if any connection is open.
    pub(crate) fn next_sweep(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// Closes the connections that carried no client connection for
    /// `auth_timeout`; `clients` are the state machine's client addresses.
    pub(crate) fn sweep(&mut self, now: Instant, clients: impl Iterator<Item = SocketAddr>) {
        let clients: HashSet<SocketAddr> = clients.collect();
        let mut table = self.shared.table();
        let mut closing = 0;
        for (addr, path) in table.paths.iter_mut() {
            if clients.contains(addr) {
                path.authenticated_at = now;
            } else if now.saturating_duration_since(path.authenticated_at)
                >= self.config.auth_timeout
            {
                debug!(%addr, "stream path carries no client: closing");
                path.close.notify_one();
                closing += 1;
            }
        }
        table.stats.unauthenticated += closing;
        self.next_sweep = (!table.paths.is_empty()).then(|| now + self.sweep_interval());
    }

    /// A quarter of the authentication deadline, at most a second: the
    /// deadline is kept to within that.
    fn sweep_interval(&self) -> Duration {
        (self.config.auth_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Waits until a connection arrives (and admits or refuses it), a
    /// connection fed the state machine, or a connection's task ended.
    pub(crate) async fn next(&mut self, server: &Arc<ServerShared>) {
        tokio::select! {
            accepted = self.listener.accept() => match accepted {
                Ok((tcp, from)) => self.admit(tcp, canonical(from), server),
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    debug!("stream carrier accept error: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = self.shared.inbound.notified() => {}
            Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
        }
    }

    /// Opens a path for a new connection, within the limits.
    fn admit(&mut self, tcp: TcpStream, from: SocketAddr, server: &Arc<ServerShared>) {
        let source = SourcePrefix::of(from.ip());
        let now = Instant::now();
        let mut table = self.shared.table();
        let from_source = table.per_source.get(&source).copied().unwrap_or(0);
        if table.paths.len() >= self.config.max_connections
            || from_source >= self.config.max_connections_per_source
            || table.paths.contains_key(&from)
        {
            debug!(%from, from_source, "stream carrier: connection over quota, closed");
            table.stats.refused += 1;
            return;
        }
        let _ = tcp.set_nodelay(true);
        let id = table.next_id;
        table.next_id += 1;
        let (frames, queued) = mpsc::channel(self.config.max_queued_datagrams);
        let close = Arc::new(Notify::new());
        table.paths.insert(
            from,
            Path {
                id,
                source,
                frames,
                close: close.clone(),
                authenticated_at: now,
            },
        );
        *table.per_source.entry(source).or_insert(0) += 1;
        drop(table);
        self.next_sweep.get_or_insert(now + self.sweep_interval());
        debug!(%from, "stream carrier: connection opened");
        let guard = PathGuard {
            shared: self.shared.clone(),
            addr: from,
            id,
        };
        let server = server.clone();
        let stall = self.config.stall_timeout;
        let tls = self
            .config
            .tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(t.config.clone()));
        self.tasks.spawn(async move {
            let _guard = guard;
            let shared = _guard.shared.clone();
            let feed = |datagram: &[u8]| {
                let now = Instant::now();
                server.lock().handle_datagram(now, from, datagram);
            };
            let fed = || shared.inbound.notify_one();
            let end = match tls {
                None => {
                    let (read, write) = tcp.into_split();
                    tokio::select! {
                        r = read_frames(read, feed, fed) => r,
                        r = write_frames(write, queued, stall) => r,
                        _ = close.notified() => Ok(()),
                    }
                }
                Some(acceptor) => {
                    // The handshake counts against the authentication
                    // deadline: the sweep's close ends a slow one too.
                    let accepted = tokio::select! {
                        r = acceptor.accept(tcp) => r,
                        _ = close.notified() => Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no TLS handshake before the authentication deadline",
                        )),
                    };
                    match accepted {
                        Ok(session) => {
                            let (read, write) = tokio::io::split(session);
                            tokio::select! {
                                r = read_frames(read, feed, fed) => r,
                                r = write_frames(write, queued, stall) => r,
                                _ = close.notified() => Ok(()),
                            }
                        }
                        Err(e) => Err(io::Error::new(e.kind(), format!("TLS: {e}"))),
                    }
                }
            };
            match end {
                Ok(()) => debug!(%from, "stream carrier: connection closed"),
                Err(e) => debug!(%from, "stream carrier: connection dropped: {e}"),
            }
        });
    }

    /// Closes every connection and waits for their tasks.
    pub(crate) async fn shutdown(&mut self) {
        self.tasks.shutdown().await;
    }
}

/// The stream carrier as the server's handle sees it.
#[derive(Debug, Clone)]
pub(crate) struct StreamPathsHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

impl StreamPathsHandle {
    /// The listener's address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The counters, and the connections open now.
    pub(crate) fn stats(&self) -> StreamCarrierStats {
        let table = self.shared.table();
        StreamCarrierStats {
            open: table.paths.len(),
            ..table.stats
        }
    }
}

/// Removes a connection's path when its task ends, however it ends.
#[derive(Debug)]
struct PathGuard {
    shared: Arc<Shared>,
    addr: SocketAddr,
    id: u64,
}

impl Drop for PathGuard {
    fn drop(&mut self) {
        self.shared.table().remove(self.addr, self.id);
    }
}

/// Reads frames until the stream ends or breaks the framing (spec §12.2),
/// handing each datagram to `feed`, and calling `fed` after each read that
/// carried any.
pub(crate) async fn read_frames<R: AsyncRead + Unpin>(
    mut read: R,
    mut feed: impl FnMut(&[u8]),
    mut fed: impl FnMut(),
) -> io::Result<()> {
    let mut decoder = StreamFrameDecoder::new();
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = read.read(&mut buf).await?;
        if n == 0 {
            return if decoder.at_frame_boundary() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream ended inside a frame",
                ))
            };
        }
        let mut rest = &buf[..n];
        let mut any = false;
        loop {
            match decoder.decode(&mut rest) {
                Ok(Some(datagram)) => {
                    feed(datagram);
                    any = true;
                }
                Ok(None) => break,
                Err(e) => {
                    if any {
                        fed();
                    }
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
        }
        if any {
            fed();
        }
    }
}

/// Writes queued frames until the queue closes; an error if a write makes
/// no progress for `stall` (the peer does not read).
pub(crate) async fn write_frames<W: AsyncWrite + Unpin>(
    mut write: W,
    mut queued: mpsc::Receiver<Vec<u8>>,
    stall: Duration,
) -> io::Result<()> {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while let Some(frame) = queued.recv().await {
        batch.clear();
        batch.extend_from_slice(&frame);
        while batch.len() < WRITE_BATCH {
            match queued.try_recv() {
                Ok(frame) => batch.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        let mut rest = &batch[..];
        while !rest.is_empty() {
            match tokio::time::timeout(stall, write.write(rest)).await {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => rest = &rest[n..],
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(stalled()),
            }
        }
        // TLS holds records until flushed (a no-op on plain TCP).
        match tokio::time::timeout(stall, write.flush()).await {
            Ok(r) => r?,
            Err(_) => return Err(stalled()),
        }
    }
    Ok(())
}

fn stalled() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the peer reads nothing: writes stalled",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_peer_that_reads_nothing_stalls_the_writer_which_gives_up() {
        // A 4 KiB pipe whose far end never reads.
        let (near, _far) = tokio::io::duplex(4096);
        let (frames, queued) = mpsc::channel(8);
        let writer = tokio::spawn(write_frames(near, queued, Duration::from_millis(200)));
        let mut dropped = 0;
        for _ in 0..100 {
            let mut frame = Vec::new();
            encode_stream_frame(&[7; 1200], &mut frame).unwrap();
            if frames.try_send(frame).is_err() {
                dropped += 1;
            }
            tokio::task::yield_now().await;
        }
        assert!(
            dropped > 80,
            "the queue is bounded: {dropped} of 100 dropped"
        );
        let err = writer.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_reading_peer_gets_every_queued_frame_in_order() {
        let (near, mut far) = tokio::io::duplex(4096);
        let (frames, queued) = mpsc::channel(64);
        let writer = tokio::spawn(write_frames(near, queued, Duration::from_secs(10)));
        for i in 1..=40u8 {
            let mut frame = Vec::new();
            encode_stream_frame(&vec![i; usize::from(i) * 30], &mut frame).unwrap();
            frames.try_send(frame).unwrap();
        }
        drop(frames);
        let mut got = Vec::new();
        read_frames(&mut far, |d| got.push(d.to_vec()), || {})
            .await
            .unwrap();
        writer.await.unwrap().unwrap();
        let expected: Vec<Vec<u8>> = (1..=40u8).map(|i| vec![i; usize::from(i) * 30]).collect();
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn a_malformed_length_ends_the_reader_with_invalid_data() {
        // 0x05c1 = 1473: one byte over the largest datagram.
        let stream: &[u8] = &[0, 2, 1, 1, 0x05, 0xc1, 0, 0, 0];
        let mut got = Vec::new();
        let err = read_frames(stream, |d| got.push(d.to_vec()), || {})
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(got, [vec![1, 1]], "what came before is delivered");
        let cut: &[u8] = &[0, 5, 1, 2];
        let err = read_frames(cut, |_| {}, || {}).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
