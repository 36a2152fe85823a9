//! A rendezvous client's stream carrier (spec §12.5): when its server has
//! one ([`ClientConfig::stream_carrier`](srudp_proto::rendezvous::ClientConfig::stream_carrier))
//! and UDP goes unanswered, datagrams to the server's address also — then
//! only — travel framed on a TCP connection, and the connection's datagrams
//! go to the endpoint as coming from the server's address.
//!
//! The decisions are the protocol crate's [`CarrierFallback`]; this file is
//! the IO. The driver calls it under its lock each round (datagrams in,
//! routing out, events, timeouts); the TCP connection runs on two threads of
//! its own with blocking IO (connecting and reading on one, writing on the
//! other), which works under every runtime the driver runs on and costs
//! nothing unless the fallback is in use. Both sides meet in [`StreamIo`],
//! whose queues are bounded: a datagram that does not fit is dropped, like
//! a datagram a full socket buffer refuses.
//!
//! The connection may go through an HTTP proxy ([`crate::carrier_proxy`])
//! and carry TLS ([`crate::carrier_tls`]) as the configuration's
//! [`StreamTransport`] says (spec §12.6). With TLS, the two threads share
//! the rustls session under a lock: the reader decrypts what it read, the
//! writer encrypts and is the only one to write to the socket (so records
//! go out in order); what TLS itself owes the server (a key update) the
//! reader hands to the writer.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use srudp_proto::rendezvous::ClientEvent;
use srudp_proto::stream_carrier::{
    authority, encode_stream_frame, Carrier, CarrierFallback, FallbackConfig, ServerRoute,
    StreamFrameDecoder, StreamTransport,
};
use tracing::{debug, trace};

use crate::carrier_proxy::{connect_through, ProxyError};
use crate::carrier_tls;

/// How long connecting may take: TCP, the proxy's answer, the TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of frames waiting to be written.
const MAX_OUTGOING: usize = 256 * 1024;
/// Most datagrams read and not yet handed to the endpoint.
const MAX_INCOMING: usize = 1024;

/// The fallback of one client and its TCP connection, if one is open or
/// opening.
#[derive(Debug)]
pub(crate) struct ClientCarrier {
    fallback: CarrierFallback,
    server_addr: SocketAddr,
    target: Arc<Target>,
    io: Option<Arc<StreamIo>>,
    /// The latest datagram to the server before the link settled (its
    /// handshake, usually): replayed on the stream as soon as it opens, so
    /// the race does not wait for the next retransmission. A copy of a
    /// packet the server already handles as a duplicate (§6.5).
    last_to_server: Vec<u8>,
}

/// What the driver and the connection's threads share.
#[derive(Debug, Default)]
struct StreamIo {
    state: Mutex<IoState>,
    /// Wakes the writer thread: frames to write, TLS to flush, or closing.
    writable: Condvar,
}

#[derive(Debug, Default)]
struct IoState {
    /// The connection is up (set by the connecting thread).
    opened: bool,
    /// Set by either side: the connection is over.
    closed: bool,
    /// Told to the fallback already.
    reported_open: bool,
    outgoing: Vec<u8>,
    /// The TLS session owes the server records of its own.
    flush: bool,
    incoming: Vec<Vec<u8>>,
    /// A handle on the socket, to shut it down from the driver.
    socket: Option<TcpStream>,
    driver: Option<Waker>,
}

impl StreamIo {
    fn lock(&self) -> MutexGuard<'_, IoState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the connection over, unblocks both threads, wakes the driver.
    fn close(&self) {
        let waker = {
            let mut s = self.lock();
            s.closed = true;
            if let Some(socket) = &s.socket {
                let _ = socket.shutdown(Shutdown::Both);
            }
            s.driver.clone()
        };
        self.writable.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn wake_driver(&self) {
        let waker = self.lock().driver.clone();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Where and how the stream connects.
#[derive(Debug)]
struct Target {
    /// The server's TCP address.
    addr: SocketAddr,
    transport: StreamTransport,
}

impl Target {
    /// What a proxy is asked to connect to: the host name when there is
    /// one (the proxy resolves it), else the address.
    fn authority(&self) -> String {
        match &self.transport.host_name {
            Some(name) => authority(name, self.addr.port()),
            None => self.addr.to_string(),
        }
    }
}

/// Why the stream could not be opened. One line each.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// The TCP connection (to the server, or to the proxy) failed.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, io::Error),
    /// The proxy did not open the tunnel.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The TLS handshake failed: the port does not speak TLS, or not in time.
    #[error("TLS handshake: {0}")]
    Tls(io::Error),
}

impl ClientCarrier {
    pub(crate) fn new(
        now: Instant,
        server_addr: SocketAddr,
        tcp_addr: SocketAddr,
        transport: StreamTransport,
        config: FallbackConfig,
    ) -> ClientCarrier {
        ClientCarrier {
            fallback: CarrierFallback::new(now, config),
            server_addr,
            target: Arc::new(Target {
                addr: tcp_addr,
                transport,
            }),
            io: None,
            last_to_server: Vec::new(),
        }
    }

    /// Start of a round: notes the connection opening or closing, and
    /// takes the datagrams it carried (to hand to the endpoint as coming
    /// from the server's address).
    pub(crate) fn take_incoming(&mut self, now: Instant, driver: &Waker) -> Vec<Vec<u8>> {
        let Some(io) = &self.io else {
            return Vec::new();
        };
        let (opened, closed, incoming) = {
            let mut s = io.lock();
            if !s.driver.as_ref().is_some_and(|w| w.will_wake(driver)) {
                s.driver = Some(driver.clone());
            }
            let opened = s.opened && !s.reported_open;
            s.reported_open |= s.opened;
            (opened, s.closed, std::mem::take(&mut s.incoming))
        };
        if opened {
            debug!(tcp = %self.target.addr, "stream carrier to the server open");
            self.fallback.handle_stream_opened();
            if !self.last_to_server.is_empty() {
                let mut s = io.lock();
                let _ = encode_stream_frame(&self.last_to_server, &mut s.outgoing);
                drop(s);
                io.writable.notify_one();
            }
        }
        for _ in &incoming {
            self.fallback.handle_server_datagram(Carrier::Stream);
        }
        if closed {
            debug!(tcp = %self.target.addr, "stream carrier to the server closed");
            self.io = None;
            self.fallback.handle_stream_closed(now);
        }
        incoming
    }

    /// Whether the server link settled on the stream.
    pub(crate) fn on_stream(&self) -> bool {
        self.fallback.carrier() == Some(Carrier::Stream)
    }

    /// The server's address, as the endpoint knows it.
    pub(crate) fn server_addr(&self) -> SocketAddr {
        self.server_addr
    }

    /// A UDP datagram arrived from `from`.
    pub(crate) fn note_udp_from(&mut self, from: SocketAddr) {
        if from == self.server_addr {
            self.fallback.handle_server_datagram(Carrier::Udp);
        }
    }

    /// Routes a datagram the endpoint sends to `to`: queues a frame on the
    /// stream when the fallback says so; `true` when it goes over UDP too.
    pub(crate) fn route(&mut self, to: SocketAddr, datagram: &[u8]) -> bool {
        if to != self.server_addr {
            return true;
        }
        if self.fallback.carrier().is_none() {
            self.last_to_server.clear();
            self.last_to_server.extend_from_slice(datagram);
        }
        let (stream, udp) = match self.fallback.route() {
            ServerRoute::Udp => (false, true),
            ServerRoute::Both => (true, true),
            ServerRoute::Stream => (true, false),
        };
        if stream {
            if let Some(io) = &self.io {
                let mut s = io.lock();
                if s.outgoing.len() + datagram.len() + 2 <= MAX_OUTGOING {
                    let _ = encode_stream_frame(datagram, &mut s.outgoing);
                    drop(s);
                    io.writable.notify_one();
                } else {
                    trace!("stream carrier queue full: datagram dropped");
                }
            }
        }
        udp
    }

    /// A rendezvous event: the link came up or went down.
    pub(crate) fn handle_event(&mut self, now: Instant, event: &ClientEvent) {
        match event {
            ClientEvent::Registered { .. } => {
                self.fallback.handle_link_up();
                debug!(carrier = ?self.fallback.carrier(), "server link up");
            }
            ClientEvent::Disconnected { .. } => self.fallback.handle_link_lost(now),
            _ => {}
        }
    }

    /// Timers, then the connection the fallback wants: opened (its threads
    /// wake `driver`), or closed.
    pub(crate) fn handle_timeout(&mut self, now: Instant, driver: &Waker) {
        self.fallback.handle_timeout(now);
        match (self.fallback.wants_stream(), &self.io) {
            (true, None) => {
                let io = Arc::new(StreamIo::default());
                io.lock().driver = Some(driver.clone());
                match spawn_connection(self.target.clone(), io.clone()) {
                    Ok(()) => self.io = Some(io),
                    Err(e) => {
                        debug!("cannot start the stream carrier: {e}");
                        self.fallback.handle_stream_closed(now);
                    }
                }
            }
            (false, Some(_)) => {
                if let Some(io) = self.io.take() {
                    io.close();
                }
            }
            _ => {}
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.fallback.poll_timeout()
    }
}

impl Drop for ClientCarrier {
    fn drop(&mut self) {
        if let Some(io) = self.io.take() {
            io.close();
        }
    }
}

/// A TLS session shared by the reader and the writer thread.
type Tls = Option<Arc<Mutex<rustls::ClientConnection>>>;

fn lock_tls(tls: &Mutex<rustls::ClientConnection>) -> MutexGuard<'_, rustls::ClientConnection> {
    tls.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens the stream as `target` says — through the proxy, TLS — then
/// carries frames both ways, on two threads.
fn spawn_connection(target: Arc<Target>, io: Arc<StreamIo>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("srudp-tcp-read".into())
        .spawn(move || {
            let (tcp, tls) = match open(&target) {
                Ok(opened) => opened,
                Err(e) => {
                    debug!(addr = %target.addr, "stream carrier: {e}");
                    io.close();
                    return;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (Ok(writer), Ok(handle)) = (tcp.try_clone(), tcp.try_clone()) else {
                io.close();
                return;
            };
            {
                let mut s = io.lock();
                if s.closed {
                    let _ = tcp.shutdown(Shutdown::Both);
                    return;
                }
                s.socket = Some(handle);
                s.opened = true;
            }
            io.wake_driver();
            let write_io = io.clone();
            let write_tls = tls.clone();
            let spawned = std::thread::Builder::new()
                .name("srudp-tcp-write".into())
                .spawn(move || write_frames(writer, write_tls, &write_io));
            if spawned.is_err() {
                io.close();
                return;
            }
            read_frames(tcp, tls, &io);
            io.close();
        })?;
    Ok(())
}

/// Connects (through the proxy, if any) and runs the TLS handshake (if
/// TLS), all within [`CONNECT_TIMEOUT`].
fn open(target: &Target) -> Result<(TcpStream, Tls), OpenError> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut tcp = match &target.transport.proxy {
        None => TcpStream::connect_timeout(&target.addr, CONNECT_TIMEOUT)
            .map_err(|e| OpenError::Connect(target.addr.to_string(), e))?,
        Some(proxy) => {
            let at = proxy.authority();
            let addr = at
                .to_socket_addrs()
                .and_then(|mut a| {
                    a.next()
                        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
                })
                .map_err(|e| OpenError::Connect(format!("HTTP proxy {proxy}"), e))?;
            let mut tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
                .map_err(|e| OpenError::Connect(format!("HTTP proxy {proxy}"), e))?;
            connect_through(&mut tcp, proxy, &target.authority(), deadline)?;
            tcp
        }
    };
    if !target.transport.tls {
        return Ok((tcp, None));
    }
    let name = carrier_tls::server_name(target.transport.host_name.as_deref());
    let mut tls = rustls::ClientConnection::new(carrier_tls::client_config(), name)
        .map_err(|e| OpenError::Tls(io::Error::other(e)))?;
    // The outgoing queue is bounded before TLS (MAX_OUTGOING).
    tls.set_buffer_limit(None);
    while tls.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(OpenError::Tls(io::ErrorKind::TimedOut.into()));
        }
        tcp.set_read_timeout(Some(left)).map_err(OpenError::Tls)?;
        match tls.complete_io(&mut tcp) {
            Ok((0, 0)) if tls.is_handshaking() => {
                return Err(OpenError::Tls(io::ErrorKind::UnexpectedEof.into()))
            }
            Ok(_) => {}
            Err(e) => return Err(OpenError::Tls(e)),
        }
    }
    tcp.set_read_timeout(None).map_err(OpenError::Tls)?;
    Ok((tcp, Some(Arc::new(Mutex::new(tls)))))
}

/// Reads frames until the connection ends or breaks the framing (or TLS).
fn read_frames(mut tcp: TcpStream, tls: Tls, io: &StreamIo) {
    let mut decoder = StreamFrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut plain = Vec::new();
    loop {
        let n = match tcp.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut rest = &buf[..n];
        if let Some(tls) = &tls {
            plain.clear();
            match decrypt(&mut lock_tls(tls), rest, &mut plain) {
                Ok(Decrypted { flush, ended }) => {
                    if flush {
                        io.lock().flush = true;
                        io.writable.notify_one();
                    }
                    if ended {
                        return;
                    }
                }
                Err(e) => {
                    debug!("stream carrier: TLS: {e}");
                    return;
                }
            }
            rest = &plain[..];
        }
        {
            let mut s = io.lock();
            loop {
                match decoder.decode(&mut rest) {
                    Ok(Some(datagram)) => {
                        if s.incoming.len() < MAX_INCOMING {
                            s.incoming.push(datagram.to_vec());
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        debug!("stream carrier: {e}");
                        return;
                    }
                }
            }
        }
        io.wake_driver();
    }
}

/// What [`decrypt`] found besides the plaintext.
struct Decrypted {
    /// The session owes the server records (the writer sends them).
    flush: bool,
    /// The server ended the session (close_notify).
    ended: bool,
}

/// Feeds `records` to the session and appends the plaintext to `plain`.
fn decrypt(
    tls: &mut rustls::ClientConnection,
    mut records: &[u8],
    plain: &mut Vec<u8>,
) -> io::Result<Decrypted> {
    let mut ended = false;
    while !records.is_empty() {
        tls.read_tls(&mut records)?;
        tls.process_new_packets().map_err(io::Error::other)?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match tls.reader().read(&mut chunk) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(k) => plain.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(Decrypted {
        flush: tls.wants_write(),
        ended,
    })
}

/// Writes queued frames (encrypted, with TLS) until the connection is closed.
fn write_frames(mut tcp: TcpStream, tls: Tls, io: &StreamIo) {
    let mut batch = Vec::new();
    let mut records = Vec::new();
    loop {
        {
            let mut s = io.lock();
            while s.outgoing.is_empty() && !s.flush && !s.closed {
                s = io.writable.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
            if s.closed {
                return;
            }
            s.flush = false;
            std::mem::swap(&mut batch, &mut s.outgoing);
        }
        let wire = match &tls {
            None => &batch,
            Some(tls) => {
                records.clear();
                if encrypt(&mut lock_tls(tls), &batch, &mut records).is_err() {
                    io.close();
                    return;
                }
                &records
            }
        };
        if tcp.write_all(wire).is_err() {
            io.close();
            return;
        }
        batch.clear();
    }
}

/// The records that carry `plain`, and whatever else the session owes.
fn encrypt(
    tls: &mut rustls::ClientConnection,
    plain: &[u8],
    records: &mut Vec<u8>,
) -> io::Result<()> {
    tls.writer().write_all(plain)?;
    while tls.wants_write() {
        tls.write_tls(records)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps `carrier` until `done` holds (the threads need a moment);
    /// bounded. `done` also sees the datagrams each step took.
    fn step_until(
        carrier: &mut ClientCarrier,
        mut done: impl FnMut(&mut ClientCarrier, Vec<Vec<u8>>) -> bool,
    ) {
        for _ in 0..500 {
            let now = Instant::now();
            let incoming = carrier.take_incoming(now, Waker::noop());
            carrier.handle_timeout(now, Waker::noop());
            if done(carrier, incoming) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("not within 5 s");
    }

    /// A loopback listener whose one connection gets `answer` once the
    /// client's first bytes arrive, then is closed.
    fn answering(answer: &'static [u8]) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut tcp, _) = listener.accept().unwrap();
            let mut buf = [0u8; 2048];
            let _ = tcp.read(&mut buf);
            let _ = tcp.write_all(answer);
        });
        addr
    }

    fn target(addr: SocketAddr, tls: bool, proxy: Option<&str>) -> Target {
        let mut transport = StreamTransport::default();
        transport.tls = tls;
        transport.proxy = proxy.map(|p| p.parse().unwrap());
        Target { addr, transport }
    }

    #[test]
    fn a_tls_client_at_a_plain_port_and_a_refusing_proxy_fail_with_one_line_each() {
        // A plain server closes at the ClientHello (a frame length over
        // 1200): the handshake ends at once, in an error.
        let plain = answering(b"");
        let err = open(&target(plain, true, None)).unwrap_err();
        assert!(matches!(err, OpenError::Tls(_)), "{err:?}");
        let line = err.to_string();
        assert!(
            line.starts_with("TLS handshake: ") && !line.contains('\n'),
            "{line}"
        );
        // Something that answers, but not TLS.
        let garbage = answering(b"SSH-2.0-OpenSSH_9.2\r\n");
        assert!(matches!(
            open(&target(garbage, true, None)),
            Err(OpenError::Tls(_))
        ));
        let proxy = answering(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
        let err = open(&target(
            "192.0.2.1:443".parse().unwrap(),
            false,
            Some(&format!("http://{proxy}")),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "HTTP proxy refused CONNECT: HTTP/1.1 407 Proxy Authentication Required"
        );
    }

    #[test]
    fn the_stream_opens_after_the_delay_replays_the_latest_datagram_and_carries_the_rest() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server: SocketAddr = "192.0.2.1:4433".parse().unwrap();
        let mut config = FallbackConfig::default();
        config.delay = Duration::from_millis(50);
        let mut carrier = ClientCarrier::new(
            Instant::now(),
            server,
            listener.local_addr().unwrap(),
            StreamTransport::default(),
            config,
        );
        // Before the delay: UDP only, nothing kept for others.
        assert!(carrier.route(server, b"init-1"));
        assert!(carrier.route(server, b"init-2"));
        assert!(carrier.route("192.0.2.9:1".parse().unwrap(), b"to a peer"));
        step_until(&mut carrier, |c, _| c.fallback.route() == ServerRoute::Both);
        assert!(carrier.route(server, b"racing"), "UDP too while racing");
        let (mut tcp, _) = listener.accept().unwrap();
        let mut decoder = StreamFrameDecoder::new();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while got.len() < 2 {
            let n = tcp.read(&mut buf).unwrap();
            assert!(n > 0);
            let mut rest = &buf[..n];
            while let Some(d) = decoder.decode(&mut rest).unwrap() {
                got.push(d.to_vec());
            }
        }
        assert_eq!(got, [b"init-2".to_vec(), b"racing".to_vec()]);
        // The server answers on the stream: handed over, and the link
        // coming up then settles on the stream.
        let mut frame = Vec::new();
        encode_stream_frame(b"response", &mut frame).unwrap();
        tcp.write_all(&frame).unwrap();
        let mut incoming = Vec::new();
        step_until(&mut carrier, |_, taken| {
            incoming.extend(taken);
            !incoming.is_empty()
        });
        assert_eq!(incoming, [b"response".to_vec()]);
        carrier.handle_event(
            Instant::now(),
            &ClientEvent::Registered {
                observed: "192.0.2.2:1".parse().unwrap(),
            },
        );
        assert!(!carrier.route(server, b"settled"), "the stream alone");
        // The server closes the stream: UDP alone again.
        drop(tcp);
        step_until(&mut carrier, |c, _| c.io.is_none());
        assert!(carrier.route(server, b"after"));
    }
}
