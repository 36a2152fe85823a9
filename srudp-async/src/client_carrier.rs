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

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use srudp_proto::rendezvous::ClientEvent;
use srudp_proto::stream_carrier::{
    encode_stream_frame, Carrier, CarrierFallback, FallbackConfig, ServerRoute, StreamFrameDecoder,
};
use tracing::{debug, trace};

/// How long connecting may take.
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
    tcp_addr: SocketAddr,
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
    /// Wakes the writer thread: frames to write, or closing.
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

impl ClientCarrier {
    pub(crate) fn new(
        now: Instant,
        server_addr: SocketAddr,
        tcp_addr: SocketAddr,
        config: FallbackConfig,
    ) -> ClientCarrier {
        ClientCarrier {
            fallback: CarrierFallback::new(now, config),
            server_addr,
            tcp_addr,
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
            debug!(tcp = %self.tcp_addr, "stream carrier to the server open");
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
            debug!(tcp = %self.tcp_addr, "stream carrier to the server closed");
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
                match spawn_connection(self.tcp_addr, io.clone()) {
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

/// Connects to `addr` and carries frames both ways, on two threads.
fn spawn_connection(addr: SocketAddr, io: Arc<StreamIo>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("srudp-tcp-read".into())
        .spawn(move || {
            let tcp = match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(tcp) => tcp,
                Err(e) => {
                    debug!(%addr, "stream carrier: cannot connect: {e}");
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
            let spawned = std::thread::Builder::new()
                .name("srudp-tcp-write".into())
                .spawn(move || write_frames(writer, &write_io));
            if spawned.is_err() {
                io.close();
                return;
            }
            read_frames(tcp, &io);
            io.close();
        })?;
    Ok(())
}

/// Reads frames until the connection ends or breaks the framing.
fn read_frames(mut tcp: TcpStream, io: &StreamIo) {
    let mut decoder = StreamFrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match tcp.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut rest = &buf[..n];
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

/// Writes queued frames until the connection is closed.
fn write_frames(mut tcp: TcpStream, io: &StreamIo) {
    let mut batch = Vec::new();
    loop {
        {
            let mut s = io.lock();
            while s.outgoing.is_empty() && !s.closed {
                s = io.writable.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
            if s.closed {
                return;
            }
            std::mem::swap(&mut batch, &mut s.outgoing);
        }
        if tcp.write_all(&batch).is_err() {
            io.close();
            return;
        }
        batch.clear();
    }
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
