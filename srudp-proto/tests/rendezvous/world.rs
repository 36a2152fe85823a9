//! A deterministic world for rendezvous scenarios: one rendezvous server
//! (main socket, optional second socket) and any number of clients, some
//! behind NATs, on the simulated network, in virtual time.
//!
//! The loop is the one of `srudp_proto::sim::Simulation`, for rendezvous
//! clients and servers instead of bare endpoints: flush every node's
//! transmits into the network, collect events, otherwise jump the clock to
//! the next delivery or timer. Every datagram, relay envelopes included, is
//! checked against `MAX_DATAGRAM_SIZE` (1200 bytes), and optionally captured.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use srudp_proto::rendezvous::{
    ClientConfig, ClientEvent, RendezvousClient, RendezvousServer, ServerConfig, ServerEvent,
};
use srudp_proto::sim::{LinkConfig, NatConfig, NatId, Network};
use srudp_proto::MAX_DATAGRAM_SIZE;
use srudp_proto::{
    CloseReason, ConnectionHandle, Endpoint, EndpointConfig, Event, Keypair, PublicKey, ReadError,
    Rng, TransportConfig,
};

pub const SERVER: &str = "203.0.113.100:3478";
/// The server's second socket: same IP, another port.
pub const SERVER_ALT_PORT: &str = "203.0.113.100:3479";
/// The server's second socket on a second IP.
pub const SERVER_ALT_IP: &str = "203.0.113.101:3478";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Deterministic pseudo-random bytes.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Rng::from_seed(seed).fill(&mut v);
    v
}

/// An endpoint whose key and randomness are fixed by `seed`.
pub fn endpoint(seed: u64, transport: &TransportConfig) -> Endpoint {
    let mut rng = Rng::from_seed(seed);
    let mut config = EndpointConfig::new(Keypair::generate(&mut rng));
    config.rng_seed = Some(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    config.transport = Arc::new(transport.clone());
    Endpoint::new(config).unwrap()
}

/// A datagram as a node sent it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub payload: Vec<u8>,
}

pub struct ServerSlot {
    pub main: SocketAddr,
    pub alt: Option<SocketAddr>,
    pub server: RendezvousServer,
    pub events: Vec<ServerEvent>,
}

pub struct ClientSlot {
    pub addr: SocketAddr,
    pub client: RendezvousClient,
    /// Every event the client reported, in order.
    pub events: Vec<ClientEvent>,
}

/// A bare endpoint (to play a misbehaving client).
pub struct RawSlot {
    pub addr: SocketAddr,
    pub endpoint: Endpoint,
    pub events: Vec<(ConnectionHandle, srudp_proto::Event)>,
}

/// What happens to the datagrams an [`Impairment`] matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Lost,
    /// One byte flipped (the receiver's authentication drops it).
    Corrupted,
    Duplicated,
}

/// Datagrams from `from` to any port of `to_ip`, sent before `until`,
/// suffer `fault`.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    pub from: SocketAddr,
    pub to_ip: IpAddr,
    pub until: Instant,
    pub fault: Fault,
}

pub struct World {
    pub net: Network,
    pub impairments: Vec<Impairment>,
    pub seed: u64,
    start: Instant,
    now: Instant,
    pub server: Option<ServerSlot>,
    pub clients: Vec<ClientSlot>,
    pub raws: Vec<RawSlot>,
    /// NATs in creation order.
    pub nats: Vec<NatId>,
    server_keypair: Keypair,
    pub server_transport: TransportConfig,
    pub transport: TransportConfig,
    buf: Vec<u8>,
    pub captured: Option<Vec<Sent>>,
    pub largest_datagram: usize,
}

impl World {
    /// A network with the rendezvous server's host (and a second host for
    /// `SERVER_ALT_IP`), each with a 10 ms access link.
    pub fn new(seed: u64) -> World {
        let mut net = Network::new(seed);
        let link = LinkConfig::default().with_latency(Duration::from_millis(10));
        net.add_host(addr(SERVER).ip(), link.clone()).unwrap();
        net.add_host(addr(SERVER_ALT_IP).ip(), link).unwrap();
        let server_keypair = Keypair::generate(&mut Rng::from_seed(seed ^ 0x5e5e));
        let start = Instant::now();
        World {
            net,
            impairments: Vec::new(),
            seed,
            start,
            now: start,
            server: None,
            clients: Vec::new(),
            raws: Vec::new(),
            nats: Vec::new(),
            server_keypair,
            server_transport: TransportConfig::default(),
            transport: TransportConfig::default(),
            buf: vec![0; MAX_DATAGRAM_SIZE],
            captured: None,
            largest_datagram: 0,
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn server_key(&self) -> PublicKey {
        self.server_keypair.public()
    }

    /// Starts (or restarts: same key, same addresses, fresh state) the server.
    pub fn start_server(&mut self, config: ServerConfig) {
        let mut ep_config = EndpointConfig::new(self.server_keypair.clone());
        ep_config.rng_seed = Some(self.seed ^ 0xabcd ^ self.elapsed().as_nanos() as u64);
        ep_config.transport = Arc::new(self.server_transport.clone());
        let endpoint = Endpoint::new(ep_config).unwrap();
        let config = ServerConfig {
            rng_seed: Some(self.seed ^ 0x1234),
            ..config
        };
        let alt = config.alt_address;
        let server = RendezvousServer::new(self.now, endpoint, config).unwrap();
        self.server = Some(ServerSlot {
            main: addr(SERVER),
            alt,
            server,
            events: Vec::new(),
        });
    }

    /// Stops the server: its state is gone, datagrams to it are lost.
    pub fn stop_server(&mut self) {
        self.server = None;
    }

    pub fn server(&mut self) -> &mut RendezvousServer {
        &mut self.server.as_mut().expect("server running").server
    }

    /// A NAT with a 10 ms uplink.
    pub fn add_nat(&mut self, public_ip: &str, nat: NatConfig) -> NatId {
        let link = LinkConfig::default().with_latency(Duration::from_millis(10));
        let id = self.net.add_nat(ip(public_ip), nat, link).unwrap();
        self.nats.push(id);
        id
    }

    /// A host behind `nat` (1 ms LAN link).
    pub fn add_host_behind(&mut self, nat: NatId, host: &str) {
        let link = LinkConfig::default().with_latency(Duration::from_millis(1));
        self.net.add_host_behind(nat, ip(host), link).unwrap();
    }

    /// A host on the open Internet (10 ms access link).
    pub fn add_public_host(&mut self, host: &str) {
        let link = LinkConfig::default().with_latency(Duration::from_millis(10));
        self.net.add_host(ip(host), link).unwrap();
    }

    /// The default client configuration for this world's server.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(self.server_key(), addr(SERVER))
    }

    /// A client whose endpoint (key from `key_seed`) is bound to `socket`.
    pub fn add_client(&mut self, socket: &str, key_seed: u64, config: ClientConfig) -> usize {
        let endpoint = endpoint(key_seed, &self.transport);
        self.add_client_with(socket, endpoint, config)
    }

    pub fn add_client_with(
        &mut self,
        socket: &str,
        endpoint: Endpoint,
        config: ClientConfig,
    ) -> usize {
        let config = ClientConfig {
            rng_seed: Some(self.seed ^ ((self.clients.len() as u64 + 1) * 7919)),
            ..config
        };
        let client = RendezvousClient::new(self.now, endpoint, config).unwrap();
        self.clients.push(ClientSlot {
            addr: addr(socket),
            client,
            events: Vec::new(),
        });
        self.clients.len() - 1
    }

    /// A bare endpoint bound to `socket`.
    pub fn add_raw(&mut self, socket: &str, key_seed: u64) -> usize {
        let endpoint = endpoint(key_seed, &self.transport);
        self.raws.push(RawSlot {
            addr: addr(socket),
            endpoint,
            events: Vec::new(),
        });
        self.raws.len() - 1
    }

    /// Raw endpoint `r` opens a connection to the rendezvous server with IK,
    /// as a client would (to speak the rendezvous protocol by hand).
    pub fn connect_raw_to_server(&mut self, r: usize) -> ConnectionHandle {
        let now = self.now();
        let options = srudp_proto::ConnectOptions {
            pattern: Some(srudp_proto::HandshakePattern::IK),
            ..srudp_proto::ConnectOptions::new(self.server_key(), vec![addr(SERVER)])
        };
        self.raws[r].endpoint.connect_with(now, options).unwrap()
    }

    pub fn client(&mut self, i: usize) -> &mut RendezvousClient {
        &mut self.clients[i].client
    }

    pub fn key(&self, i: usize) -> PublicKey {
        self.clients[i].client.endpoint().public_key()
    }

    pub fn events(&self, i: usize) -> &[ClientEvent] {
        &self.clients[i].events
    }

    /// Starts keeping a copy of every datagram sent.
    pub fn capture(&mut self) {
        self.captured = Some(Vec::new());
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, size: usize) {
        assert!(
            size <= MAX_DATAGRAM_SIZE,
            "{from} sent a {size}-byte datagram"
        );
        self.largest_datagram = self.largest_datagram.max(size);
        let now = self.now;
        let fault = self
            .impairments
            .iter()
            .find(|i| i.from == from && i.to_ip == to.ip() && now < i.until)
            .map(|i| i.fault);
        match fault {
            Some(Fault::Lost) => {}
            Some(Fault::Corrupted) => {
                let mut bad = self.buf[..size].to_vec();
                let at = bad.len() / 2;
                bad[at] ^= 0x40;
                self.net.send(now, from, to, &bad);
            }
            Some(Fault::Duplicated) => {
                self.net.send(now, from, to, &self.buf[..size]);
                self.net.send(now, from, to, &self.buf[..size]);
            }
            None => self.net.send(now, from, to, &self.buf[..size]),
        }
        if let Some(c) = &mut self.captured {
            c.push(Sent {
                from,
                to,
                payload: self.buf[..size].to_vec(),
            });
        }
    }

    /// Sends every pending datagram; returns whether any node reported events.
    fn flush(&mut self) -> bool {
        let now = self.now;
        let mut any_event = false;
        let mut buf = std::mem::take(&mut self.buf);
        let mut out = Vec::new();
        if let Some(s) = &mut self.server {
            while let Some(t) = s.server.poll_transmit(now, &mut buf) {
                out.push((s.main, t.destination, buf[..t.size].to_vec()));
            }
            if let Some(alt) = s.alt {
                // The filter socket: the second socket's IP, another port.
                let filter = SocketAddr::new(alt.ip(), alt.port() + 1);
                while let Some(t) = s.server.poll_filter_transmit(&mut buf) {
                    out.push((filter, t.destination, buf[..t.size].to_vec()));
                }
            }
            while let Some(e) = s.server.poll_event() {
                s.events.push(e);
            }
        }
        for c in &mut self.clients {
            while let Some(t) = c.client.poll_transmit(now, &mut buf) {
                out.push((c.addr, t.destination, buf[..t.size].to_vec()));
            }
            while let Some(e) = c.client.poll_event() {
                // As in `Simulation`: a connection closed by a protocol
                // error is a bug in the sender.
                if let ClientEvent::Connection {
                    event: Event::Closed { reason },
                    ..
                }
                | ClientEvent::Disconnected { reason } = &e
                {
                    assert!(
                        !matches!(
                            reason,
                            CloseReason::ProtocolViolation { .. } | CloseReason::PeerError { .. }
                        ),
                        "client at {}: closed by a protocol error: {reason}",
                        c.addr
                    );
                }
                c.events.push(e);
                any_event = true;
            }
        }
        for r in &mut self.raws {
            while let Some(t) = r.endpoint.poll_transmit(now, &mut buf) {
                out.push((r.addr, t.destination, buf[..t.size].to_vec()));
            }
            while let Some(e) = r.endpoint.poll_event() {
                r.events.push(e);
                any_event = true;
            }
        }
        self.buf = buf;
        for (from, to, payload) in out {
            self.buf[..payload.len()].copy_from_slice(&payload);
            self.send(from, to, payload.len());
        }
        any_event
    }

    fn next_timer(&self) -> Option<Instant> {
        let server = self.server.as_ref().and_then(|s| s.server.poll_timeout());
        let clients = self
            .clients
            .iter()
            .filter_map(|c| c.client.poll_timeout())
            .min();
        let raws = self
            .raws
            .iter()
            .filter_map(|r| r.endpoint.poll_timeout())
            .min();
        [server, clients, raws, self.net.next_delivery_time()]
            .into_iter()
            .flatten()
            .min()
    }

    /// One step: flush; if nothing was reported, jump to the next event and
    /// process it. Returns `false` when nothing can happen any more.
    pub fn step(&mut self) -> bool {
        if self.flush() {
            return true;
        }
        let Some(next) = self.next_timer() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        // Simulated time on every log line (`SRUDP_SWEEP_SEED` with `RUST_LOG`).
        let _time = tracing::debug_span!("sim", t = ?self.elapsed()).entered();
        while let Some(d) = self.net.poll_delivery(now) {
            if let Some(s) = &mut self.server {
                if d.to == s.main {
                    s.server.handle_datagram(now, d.from, &d.payload);
                    continue;
                }
                if Some(d.to) == s.alt {
                    s.server.handle_alt_datagram(now, d.from, &d.payload);
                    continue;
                }
            }
            if let Some(c) = self.clients.iter_mut().find(|c| c.addr == d.to) {
                let _at = tracing::debug_span!("at", host = %c.addr).entered();
                c.client.handle_datagram(now, d.from, &d.payload);
            } else if let Some(r) = self.raws.iter_mut().find(|r| r.addr == d.to) {
                r.endpoint.handle_datagram(now, d.from, &d.payload);
            }
        }
        if let Some(s) = &mut self.server {
            if s.server.poll_timeout().is_some_and(|t| t <= now) {
                s.server.handle_timeout(now);
            }
        }
        for c in &mut self.clients {
            if c.client.poll_timeout().is_some_and(|t| t <= now) {
                let _at = tracing::debug_span!("at", host = %c.addr).entered();
                c.client.handle_timeout(now);
            }
        }
        for r in &mut self.raws {
            if r.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                r.endpoint.handle_timeout(now);
            }
        }
        self.flush();
        true
    }

    /// Steps until `f` says stop (returns `true`) or `limit` passed (`false`).
    pub fn run_until(&mut self, limit: Duration, mut f: impl FnMut(&mut World) -> bool) -> bool {
        let deadline = self.now + limit;
        while self.now <= deadline {
            if f(self) {
                return true;
            }
            if !self.step() {
                return f(self);
            }
        }
        false
    }

    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    /// Runs until client `i` reported an event matching `pred` (after the
    /// events it already had); returns it.
    pub fn wait_for(
        &mut self,
        i: usize,
        limit: Duration,
        mut pred: impl FnMut(&ClientEvent) -> bool,
    ) -> Option<ClientEvent> {
        let seen = self.clients[i].events.len();
        let mut found = None;
        self.run_until(limit, |w| {
            found = w.clients[i].events[seen..]
                .iter()
                .find(|e| pred(e))
                .cloned();
            found.is_some()
        });
        found
    }

    /// Runs until every client listed is registered.
    pub fn wait_registered(&mut self, clients: &[usize], limit: Duration) {
        let ok = self.run_until(limit, |w| {
            clients.iter().all(|&i| w.clients[i].client.is_registered())
        });
        assert!(
            ok,
            "seed {}: clients {clients:?} did not register",
            self.seed
        );
    }

    /// Moves `a_data` from client `a` to `b` and `b_data` back over the
    /// given connections, reading everything; returns what each received.
    pub fn exchange(
        &mut self,
        (a, ha): (usize, ConnectionHandle),
        (b, hb): (usize, ConnectionHandle),
        a_data: &[u8],
        b_data: &[u8],
        limit: Duration,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut written = [0usize; 2];
        let mut received = [Vec::new(), Vec::new()];
        self.run_until(limit, |w| {
            for (k, (i, h, out)) in [(a, ha, a_data), (b, hb, b_data)].into_iter().enumerate() {
                let ep = w.clients[i].client.endpoint_mut();
                while written[k] < out.len() {
                    match ep.write(h, &out[written[k]..]) {
                        Ok(n) if n > 0 => written[k] += n,
                        _ => break,
                    }
                }
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match ep.read(h, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => received[k].extend_from_slice(&buf[..n]),
                        Err(
                            ReadError::Blocked | ReadError::Closed | ReadError::UnknownConnection,
                        ) => break,
                    }
                }
            }
            received[0].len() >= b_data.len() && received[1].len() >= a_data.len()
        });
        let [ra, rb] = received;
        (ra, rb)
    }
}

/// The handle and path of the first `PeerConnected` in `events`.
pub fn peer_connected(events: &[ClientEvent]) -> Option<(ConnectionHandle, srudp_proto::PathKind)> {
    events.iter().find_map(|e| match e {
        ClientEvent::PeerConnected { handle, path, .. } => Some((*handle, *path)),
        _ => None,
    })
}

/// Client `a` asks for client `b` by key; returns both sides' handle and
/// path once both report the connection.
pub fn introduce(
    w: &mut World,
    a: usize,
    b: usize,
    limit: Duration,
) -> (
    (ConnectionHandle, srudp_proto::PathKind),
    (ConnectionHandle, srudp_proto::PathKind),
) {
    let now = w.now();
    let key_b = w.key(b);
    let request = w.client(a).connect_by_key(now, key_b).unwrap();
    let (ea, eb) = (w.events(a).len(), w.events(b).len());
    let mut sides = (None, None);
    let ok = w.run_until(limit, |w| {
        sides.0 = w.events(a)[ea..].iter().find_map(|e| match e {
            ClientEvent::PeerConnected {
                handle,
                path,
                request: Some(r),
                ..
            } if *r == request => Some((*handle, *path)),
            _ => None,
        });
        sides.1 = w.events(b)[eb..].iter().find_map(|e| match e {
            ClientEvent::PeerConnected {
                handle,
                path,
                request: None,
                ..
            } => Some((*handle, *path)),
            _ => None,
        });
        sides.0.is_some() && sides.1.is_some()
    });
    assert!(
        ok,
        "seed {}: no connection\n a: {:?}\n b: {:?}",
        w.seed,
        w.events(a),
        w.events(b)
    );
    (sides.0.unwrap(), sides.1.unwrap())
}
