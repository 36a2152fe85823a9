//! Shared scaffolding for the scenario tests: endpoints with fixed seeds,
//! topologies on the simulator, and a bidirectional transfer driver.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use srudp_proto::sim::{LinkConfig, Network, NodeId, SimEvent, Simulation};
use srudp_proto::{
    CloseReason, ConnectionHandle, ConnectionStats, Endpoint, EndpointConfig, Event, Keypair,
    PublicKey, ReadError, Rng, TransportConfig,
};

pub const A_ADDR: &str = "192.0.2.1:4433";
pub const B_ADDR: &str = "198.51.100.1:4433";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An endpoint whose key is fixed by `seed` and whose randomness is `seed`
/// itself, with its configuration edited by `edit` first.
pub fn endpoint_configured(seed: u64, edit: impl FnOnce(&mut EndpointConfig)) -> Endpoint {
    let mut config = EndpointConfig::new(Keypair::generate(&mut Rng::from_seed(seed)));
    config.rng_seed = Some(seed);
    edit(&mut config);
    Endpoint::new(config).unwrap()
}

/// An endpoint whose key and randomness are fixed by `seed`.
pub fn endpoint(seed: u64, transport: TransportConfig) -> Endpoint {
    let mut rng = Rng::from_seed(seed);
    let mut config = EndpointConfig::new(Keypair::generate(&mut rng));
    config.rng_seed = Some(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    config.transport = Arc::new(transport);
    Endpoint::new(config).unwrap()
}

/// Deterministic pseudo-random bytes.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Rng::from_seed(seed).fill(&mut v);
    v
}

pub struct Pair {
    pub sim: Simulation,
    pub a: NodeId,
    pub b: NodeId,
}

impl Pair {
    /// Two hosts on the open Internet, both with access link `link` (so a
    /// path crosses it twice: its latency counts twice, its loss about twice).
    pub fn public(seed: u64, link: LinkConfig, transport: TransportConfig) -> Pair {
        Pair::public_with(seed, link.clone(), link, transport)
    }

    /// Two hosts on the open Internet with their own access links.
    pub fn public_with(
        seed: u64,
        link_a: LinkConfig,
        link_b: LinkConfig,
        transport: TransportConfig,
    ) -> Pair {
        let mut net = Network::new(seed);
        net.add_host(addr(A_ADDR).ip(), link_a).unwrap();
        net.add_host(addr(B_ADDR).ip(), link_b).unwrap();
        let mut sim = Simulation::new(net, Instant::now());
        let a = sim.add_endpoint(addr(A_ADDR), endpoint(seed * 2 + 1, transport.clone()));
        let b = sim.add_endpoint(addr(B_ADDR), endpoint(seed * 2 + 2, transport));
        Pair { sim, a, b }
    }

    pub fn key(&mut self, node: NodeId) -> PublicKey {
        self.sim.endpoint(node).public_key()
    }

    /// `a` starts a connection to `b` (by `b`'s key, at `B_ADDR`) now.
    pub fn connect_a_to_b(&mut self) -> ConnectionHandle {
        let kb = self.key(self.b);
        let now = self.sim.now();
        self.sim
            .endpoint(self.a)
            .connect(now, kb, &[addr(B_ADDR)])
            .unwrap()
    }

    /// [`transfer`]: `a` connects to `b` at `B_ADDR`, each sends its data
    /// and finishes, until both closed or `limit` virtual time passed.
    pub fn transfer(&mut self, a_data: &[u8], b_data: &[u8], limit: Duration) -> Transfer {
        transfer(
            &mut self.sim,
            self.a,
            self.b,
            &[addr(B_ADDR)],
            a_data,
            b_data,
            limit,
        )
    }
}

/// What one side of a transfer saw.
#[derive(Debug, Default)]
pub struct Side {
    pub handle: Option<ConnectionHandle>,
    pub received: Vec<u8>,
    pub written: usize,
    pub finished: bool,
    pub connected: u32,
    pub peer_finished: bool,
    pub all_acked: bool,
    /// This side's connection counters when the peer acknowledged all its data.
    pub stats_all_acked: Option<ConnectionStats>,
    pub closed: Option<CloseReason>,
}

#[derive(Debug)]
pub struct Transfer {
    pub a: Side,
    pub b: Side,
    pub elapsed: Duration,
}

/// Node `a` connects to node `b` at `b_candidates`; each sends its data and
/// finishes; runs until both connections closed or `limit` virtual time passed.
pub fn transfer(
    sim: &mut Simulation,
    a: NodeId,
    b: NodeId,
    b_candidates: &[SocketAddr],
    a_data: &[u8],
    b_data: &[u8],
    limit: Duration,
) -> Transfer {
    let start = sim.now();
    let b_key = sim.endpoint(b).public_key();
    let ha = sim.endpoint(a).connect(start, b_key, b_candidates).unwrap();
    let mut sides = [
        Side {
            handle: Some(ha),
            ..Side::default()
        },
        Side::default(),
    ];
    let nodes = [a, b];
    let datas = [a_data, b_data];
    sim.run_until(limit, |sim, events| {
        for SimEvent {
            node,
            handle,
            event,
        } in events
        {
            let i = if *node == a {
                0
            } else if *node == b {
                1
            } else {
                continue;
            };
            if sides[i].handle.is_none() {
                sides[i].handle = Some(*handle);
            }
            if sides[i].handle != Some(*handle) {
                continue;
            }
            match event {
                Event::Connected { .. } => sides[i].connected += 1,
                Event::PeerFinished => sides[i].peer_finished = true,
                Event::AllDataAcked => {
                    sides[i].all_acked = true;
                    sides[i].stats_all_acked = sim.endpoint(nodes[i]).stats(*handle);
                }
                Event::Closed { reason } => sides[i].closed = Some(reason.clone()),
                _ => {}
            }
        }
        for i in 0..2 {
            pump(sim, nodes[i], &mut sides[i], datas[i]);
        }
        sides.iter().all(|s| s.closed.is_some())
    });
    let [sa, sb] = sides;
    Transfer {
        a: sa,
        b: sb,
        elapsed: sim.now() - start,
    }
}

/// Writes what fits, finishes when all is written, reads what arrived.
pub fn pump(sim: &mut Simulation, node: NodeId, side: &mut Side, data: &[u8]) {
    let Some(h) = side.handle else { return };
    let ep = sim.endpoint(node);
    while side.written < data.len() {
        match ep.write(h, &data[side.written..]) {
            Ok(n) if n > 0 => side.written += n,
            _ => break,
        }
    }
    if side.written == data.len() && !side.finished && ep.finish(h).is_ok() {
        side.finished = true;
    }
    let mut buf = [0u8; 16 * 1024];
    loop {
        match ep.read(h, &mut buf) {
            Ok(0) => break,
            Ok(n) => side.received.extend_from_slice(&buf[..n]),
            Err(ReadError::Blocked)
            | Err(ReadError::Closed)
            | Err(ReadError::UnknownConnection) => break,
        }
    }
}

/// Drains events for `limit` of virtual time, returning them all.
pub fn run_for(sim: &mut Simulation, limit: Duration) -> Vec<SimEvent> {
    let mut all = Vec::new();
    sim.run_until(limit, |_, events| {
        all.extend_from_slice(events);
        false
    });
    all
}

/// The first event matching `pred`, running at most `limit`.
pub fn wait_for(
    sim: &mut Simulation,
    limit: Duration,
    mut pred: impl FnMut(&SimEvent) -> bool,
) -> Option<SimEvent> {
    let mut found = None;
    sim.run_until(limit, |_, events| {
        found = events.iter().find(|e| pred(e)).cloned();
        found.is_some()
    });
    found
}
