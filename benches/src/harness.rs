//! Scenario drivers shared by the benchmark binaries: endpoints with fixed
//! seeds on a simulated network, a one-way bulk transfer, and the
//! bookkeeping of bytes delivered over time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use srudp_proto::sim::{LinkConfig, Network, NodeId, SimEvent, Simulation};
use srudp_proto::{
    ConnectionHandle, ConnectionStats, Endpoint, EndpointConfig, Event, Keypair, ReadError, Rng,
    TransportConfig,
};

/// The address of the sending host (behind the impaired or bottleneck link).
pub const SENDER: &str = "192.0.2.1:4433";
/// The address of the receiving host.
pub const RECEIVER: &str = "198.51.100.1:4433";

/// Parses one of the constant addresses above.
pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a constant address")
}

/// An endpoint whose key and randomness are fixed by `seed`.
pub fn endpoint(seed: u64, transport: TransportConfig) -> Endpoint {
    let mut rng = Rng::from_seed(seed);
    let mut config = EndpointConfig::new(Keypair::generate(&mut rng));
    config.rng_seed = Some(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed);
    config.transport = Arc::new(transport);
    Endpoint::new(config).expect("valid configuration")
}

/// Two public hosts: the sender behind `sender_link`, the receiver behind
/// `receiver_link`. A datagram crosses each link once per direction, so an
/// impairment configured on one of them applies once per path direction.
pub fn two_hosts(
    seed: u64,
    sender_link: LinkConfig,
    receiver_link: LinkConfig,
    transport: TransportConfig,
) -> (Simulation, NodeId, NodeId) {
    let mut net = Network::new(seed);
    net.add_host(addr(SENDER).ip(), sender_link)
        .expect("unique address");
    net.add_host(addr(RECEIVER).ip(), receiver_link)
        .expect("unique address");
    let mut sim = Simulation::new(net, Instant::now());
    let a = sim.add_endpoint(addr(SENDER), endpoint(seed * 2 + 1, transport.clone()));
    let b = sim.add_endpoint(addr(RECEIVER), endpoint(seed * 2 + 2, transport));
    (sim, a, b)
}

/// What a one-way bulk transfer measured.
#[derive(Debug, Clone)]
pub struct BulkResult {
    /// Whether every byte arrived before the time limit.
    pub complete: bool,
    /// Bytes the receiving application read.
    pub delivered: u64,
    /// From `connect` to the receiving application reading the last byte.
    pub elapsed: Duration,
    /// The sender's connection counters at the end.
    pub sender: ConnectionStats,
    /// The receiver's connection counters at the end.
    pub receiver: ConnectionStats,
}

/// Sends `bytes` from `a` to `b` over `sim` (nothing back but
/// acknowledgments) and measures how long the receiving application takes
/// to read them all. With `trace`, prints the sender's state every
/// `trace_every` of virtual time to stderr, one JSON object per line.
pub fn bulk_transfer(
    sim: &mut Simulation,
    a: NodeId,
    b: NodeId,
    bytes: u64,
    limit: Duration,
    trace: Option<Duration>,
) -> BulkResult {
    let start = sim.now();
    let b_key = sim.endpoint(b).public_key();
    let b_addr = sim.addr(b);
    let ha = sim
        .endpoint(a)
        .connect(start, b_key, &[b_addr])
        .expect("connect");
    let mut hb: Option<ConnectionHandle> = None;
    let pattern: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut written = 0u64;
    let mut finished = false;
    let mut delivered = 0u64;
    let mut done_at = None;
    let mut next_trace = start;
    let mut buf = vec![0u8; 64 * 1024];
    sim.run_until(limit, |sim, events| {
        for SimEvent { node, handle, event } in events {
            if *node == b && hb.is_none() && matches!(event, Event::Connected { .. }) {
                hb = Some(*handle);
            }
        }
        let ep = sim.endpoint(a);
        while written < bytes {
            let chunk = (bytes - written).min(pattern.len() as u64) as usize;
            match ep.write(ha, &pattern[..chunk]) {
                Ok(n) if n > 0 => written += n as u64,
                _ => break,
            }
        }
        if written == bytes && !finished {
            finished = ep.finish(ha).is_ok();
        }
        if let Some(h) = hb {
            let ep = sim.endpoint(b);
            loop {
                match ep.read(h, &mut buf) {
                    Ok(0) | Err(ReadError::Blocked | ReadError::Closed | ReadError::UnknownConnection) => {
                        break
                    }
                    Ok(n) => delivered += n as u64,
                }
            }
        }
        if let Some(every) = trace {
            while sim.now() >= next_trace {
                if let Some(s) = sim.endpoint(a).stats(ha) {
                    eprintln!(
                        "{}",
                        serde_json::json!({
                            "t": (next_trace - start).as_secs_f64(),
                            "cwnd": s.cwnd,
                            "ssthresh": if s.ssthresh == u64::MAX { None } else { Some(s.ssthresh) },
                            "in_flight": s.bytes_in_flight,
                            "srtt_ms": s.srtt.as_secs_f64() * 1e3,
                            "lost": s.packets_lost,
                            "spurious": s.packets_spuriously_lost,
                            "acked": s.stream_bytes_acked,
                        })
                    );
                }
                next_trace += every;
            }
        }
        if delivered >= bytes && done_at.is_none() {
            done_at = Some(sim.now());
        }
        done_at.is_some()
    });
    let end = done_at.unwrap_or(sim.now());
    BulkResult {
        complete: done_at.is_some(),
        delivered,
        elapsed: end - start,
        sender: sim.endpoint(a).stats(ha).unwrap_or_default(),
        receiver: hb
            .and_then(|h| sim.endpoint(b).stats(h))
            .unwrap_or_default(),
    }
}

/// An event of one endpoint of a [`Net`].
#[derive(Debug, Clone)]
pub struct NetEvent {
    /// Index of the endpoint in the [`Net`].
    pub node: usize,
    /// Which of its connections.
    pub handle: ConnectionHandle,
    /// What happened.
    pub event: Event,
}

/// Endpoints on a simulated [`Network`], driven by hand so that the
/// application can act at chosen instants (a message every 20 ms, a flow
/// that starts at 10 s), which [`Simulation`] cannot express: it only wakes
/// on deliveries and protocol timers.
#[derive(Debug)]
pub struct Net {
    /// The network.
    pub network: Network,
    now: Instant,
    start: Instant,
    nodes: Vec<(SocketAddr, Endpoint)>,
    buf: Vec<u8>,
}

impl Net {
    /// Endpoints will join `network`; the clock starts now.
    pub fn new(network: Network) -> Net {
        let now = Instant::now();
        Net {
            network,
            now,
            start: now,
            nodes: Vec::new(),
            buf: vec![0; srudp_proto::MAX_UDP_PAYLOAD_SIZE],
        }
    }

    /// Binds `endpoint` to `addr` (a host of the network); returns its index.
    pub fn add(&mut self, addr: SocketAddr, endpoint: Endpoint) -> usize {
        self.nodes.push((addr, endpoint));
        self.nodes.len() - 1
    }

    /// The endpoint at `node`.
    pub fn endpoint(&mut self, node: usize) -> &mut Endpoint {
        &mut self.nodes[node].1
    }

    /// The address of `node`.
    pub fn addr(&self, node: usize) -> SocketAddr {
        self.nodes[node].0
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Sends every pending datagram; returns how many, and the events produced.
    fn flush(&mut self) -> (usize, Vec<NetEvent>) {
        let mut sent = 0;
        let mut events = Vec::new();
        for (i, (addr, ep)) in self.nodes.iter_mut().enumerate() {
            while let Some(t) = ep.poll_transmit(self.now, &mut self.buf) {
                self.network
                    .send(self.now, *addr, t.destination, &self.buf[..t.size]);
                sent += 1;
            }
            while let Some((handle, event)) = ep.poll_event() {
                events.push(NetEvent {
                    node: i,
                    handle,
                    event,
                });
            }
        }
        (sent, events)
    }

    /// Runs everything due up to `until`, calling `app` after every batch of
    /// inputs (with the events, possibly none) so it can read and write; then
    /// sets the clock to `until`.
    pub fn run_to(&mut self, until: Instant, app: &mut dyn FnMut(&mut Net, &[NetEvent])) {
        loop {
            // Let the application react until nothing more happens at this instant.
            loop {
                let (sent, events) = self.flush();
                app(self, &events);
                if sent == 0 && events.is_empty() {
                    break;
                }
            }
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|(_, ep)| ep.poll_timeout())
                .min();
            let Some(next) = [self.network.next_delivery_time(), next_timer]
                .into_iter()
                .flatten()
                .min()
                .filter(|t| *t <= until)
            else {
                self.now = self.now.max(until);
                return;
            };
            self.now = self.now.max(next);
            let now = self.now;
            while let Some(d) = self.network.poll_delivery(now) {
                if let Some((_, ep)) = self.nodes.iter_mut().find(|(a, _)| *a == d.to) {
                    ep.handle_datagram(now, d.from, &d.payload);
                }
            }
            for (_, ep) in &mut self.nodes {
                if ep.poll_timeout().is_some_and(|t| t <= now) {
                    ep.handle_timeout(now);
                }
            }
        }
    }
}

/// Reads everything available on `handle` of `ep` into `out`; returns
/// whether the peer's stream ended.
pub fn read_all(ep: &mut Endpoint, handle: ConnectionHandle, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match ep.read(handle, &mut buf) {
            Ok(0) => return true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return false,
        }
    }
}

/// Reads and discards everything available on `handle` of `ep`; returns how
/// many bytes that was.
pub fn read_discard(ep: &mut Endpoint, handle: ConnectionHandle) -> u64 {
    let mut buf = [0u8; 64 * 1024];
    let mut total = 0;
    while let Ok(n) = ep.read(handle, &mut buf) {
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    total
}

/// Writes as much of an endless stream as the send buffer takes.
pub fn write_endless(ep: &mut Endpoint, handle: ConnectionHandle) {
    const CHUNK: [u8; 16 * 1024] = [0x5a; 16 * 1024];
    while let Ok(n) = ep.write(handle, &CHUNK) {
        if n == 0 {
            break;
        }
    }
}
