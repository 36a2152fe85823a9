//! Handshake floods (spec §4.8): under a flood of valid-looking initiations
//! from spoofed addresses at 10× the responder's handshake capacity, the
//! responder answers with stateless cookies, keeps no state for the spoofed
//! sources, and genuine clients — some behind NATs — still connect.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use srudp_proto::sim::{LinkConfig, NatConfig, Network, NodeId, Simulation};
use srudp_proto::{
    ConnectionHandle, CookieMode, Endpoint, EndpointConfig, Event, Keypair, Rng, TransportConfig,
};

/// The responder's handshake capacity, initiations per second.
const CAPACITY: u32 = 60;
/// Spoofed initiations per second: ten times the capacity.
const FLOOD_RATE: u64 = 10 * CAPACITY as u64;
/// Genuine clients, starting one every 25 ms (40/s, two thirds of capacity).
const CLIENTS: usize = 150;
const CLIENT_SPACING: Duration = Duration::from_millis(25);
/// A genuine client gives up after this; the flood outlasts every attempt.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(4);
const FLOOD_DURATION: Duration = Duration::from_millis(8_500);

const SERVER: &str = "198.51.100.10:4433";

/// What one run of the scenario measured.
#[derive(Debug)]
struct Outcome {
    connected: usize,
    spoofed_sent: u64,
    most_connections_held: usize,
    cookie_replies: u64,
    handshakes_answered: u64,
}

/// A stream of distinct, valid HandshakeInits for `server` (the attacker
/// knows its public key), each from a fresh random address.
struct Attacker {
    endpoint: Endpoint,
    rng: Rng,
    server_key: srudp_proto::PublicKey,
}

impl Attacker {
    fn next(&mut self, now: Instant) -> (SocketAddr, Vec<u8>) {
        let server: SocketAddr = SERVER.parse().unwrap();
        let h = self
            .endpoint
            .connect(now, self.server_key, &[server])
            .unwrap();
        let mut buf = [0u8; 1200];
        let t = self.endpoint.poll_transmit(now, &mut buf).unwrap();
        self.endpoint.release(now, h);
        // Spoofed sources in 198.18.0.0/15, which no host of the network has.
        let r = self.rng.next_u64();
        let ip = Ipv4Addr::new(198, 18 + (r & 1) as u8, (r >> 8) as u8, (r >> 16) as u8);
        let port = 1024 + (r >> 32) as u16 % 60_000;
        (
            SocketAddr::new(IpAddr::V4(ip), port),
            buf[..t.size].to_vec(),
        )
    }
}

fn flood_scenario(seed: u64, cookie_mode: CookieMode) -> Outcome {
    let mut net = Network::new(seed);
    let link = LinkConfig::default()
        .with_latency(Duration::from_millis(15))
        .with_bandwidth_bps(100_000_000)
        .with_queue_bytes(1_000_000);
    let server: SocketAddr = SERVER.parse().unwrap();
    net.add_host(server.ip(), link.clone()).unwrap();
    // Two thirds of the clients on public addresses, the rest behind three
    // home NATs: their cookies are bound to the NATs' mappings.
    let mut client_addrs = Vec::new();
    let nats: Vec<_> = (0..3)
        .map(|i| {
            let ip: IpAddr = format!("203.0.113.{}", 200 + i).parse().unwrap();
            net.add_nat(ip, NatConfig::port_restricted_cone(), link.clone())
                .unwrap()
        })
        .collect();
    for i in 0..CLIENTS {
        let ip: IpAddr = if i % 3 == 2 {
            let ip: IpAddr = format!("192.168.{}.{}", i % 9, 10 + i / 9).parse().unwrap();
            net.add_host_behind(nats[i % nats.len()], ip, LinkConfig::lan())
                .unwrap();
            ip
        } else {
            let ip: IpAddr = format!("100.{}.{}.1", 64 + i / 200, i % 200)
                .parse()
                .unwrap();
            net.add_host(ip, link.clone()).unwrap();
            ip
        };
        client_addrs.push(SocketAddr::new(ip, 5000));
    }

    let mut sim = Simulation::new(net, Instant::now());
    let mut rng = Rng::from_seed(seed);
    let mut config = EndpointConfig::new(Keypair::generate(&mut rng));
    config.rng_seed = Some(seed);
    config.handshake_rate = CAPACITY;
    config.cookie_mode = cookie_mode;
    let server_node = sim.add_endpoint(server, Endpoint::new(config).unwrap());
    let server_key = sim.endpoint(server_node).public_key();

    let client_transport = Arc::new(TransportConfig {
        handshake_timeout: CLIENT_TIMEOUT,
        ..TransportConfig::default()
    });
    let clients: Vec<NodeId> = client_addrs
        .iter()
        .enumerate()
        .map(|(i, &addr)| {
            let mut c = EndpointConfig::new(Keypair::generate(&mut rng));
            c.rng_seed = Some(seed * 1000 + i as u64);
            c.transport = client_transport.clone();
            sim.add_endpoint(addr, Endpoint::new(c).unwrap())
        })
        .collect();

    let mut attacker = Attacker {
        endpoint: Endpoint::new({
            let mut c = EndpointConfig::new(Keypair::generate(&mut rng));
            c.rng_seed = Some(seed + 7);
            c
        })
        .unwrap(),
        rng: Rng::from_seed(seed + 8),
        server_key,
    };

    let start = sim.now();
    let mut started: HashMap<NodeId, ConnectionHandle> = HashMap::new();
    let mut connected: HashSet<NodeId> = HashSet::new();
    let mut spoofed_sent = 0u64;
    let mut most_connections_held = 0;
    let client_set: HashSet<NodeId> = clients.iter().copied().collect();
    // Step at least every millisecond, so the flood arrives evenly.
    let end = start + FLOOD_DURATION + Duration::from_millis(100);
    while sim.now() < end {
        let tick = sim.now() + Duration::from_millis(1);
        let events = sim.step_until(tick);
        let now = sim.now();
        let elapsed = now - start;
        for e in &events {
            if client_set.contains(&e.node)
                && started.get(&e.node) == Some(&e.handle)
                && matches!(e.event, Event::Connected { .. })
            {
                connected.insert(e.node);
            }
        }
        // Start the clients whose time has come.
        for (i, &node) in clients.iter().enumerate() {
            if !started.contains_key(&node) && elapsed >= CLIENT_SPACING * (i as u32 + 1) {
                let h = sim
                    .endpoint(node)
                    .connect(now, server_key, &[server])
                    .unwrap();
                started.insert(node, h);
            }
        }
        // The flood: every initiation due by now, straight into the server.
        if elapsed <= FLOOD_DURATION {
            let due = (elapsed.as_micros() as u64 * FLOOD_RATE) / 1_000_000;
            while spoofed_sent < due {
                let (from, init) = attacker.next(now);
                sim.endpoint(server_node).handle_datagram(now, from, &init);
                spoofed_sent += 1;
            }
        }
        let held = sim.endpoint(server_node).connection_count();
        most_connections_held = most_connections_held.max(held);
    }
    assert_eq!(started.len(), CLIENTS, "every client started");
    let stats = sim.endpoint(server_node).endpoint_stats().clone();
    Outcome {
        connected: connected.len(),
        spoofed_sent,
        most_connections_held,
        cookie_replies: stats.cookie_replies_sent,
        handshakes_answered: stats.accepted + stats.refused,
    }
}

#[test]
fn genuine_handshakes_complete_under_a_flood_at_ten_times_capacity() {
    for seed in [31, 32] {
        flood_with_cookies(seed);
    }
}

fn flood_with_cookies(seed: u64) {
    let o = flood_scenario(seed, CookieMode::UnderLoad);
    println!("seed {seed}: {o:?}");
    let expected_flood = FLOOD_RATE * FLOOD_DURATION.as_millis() as u64 / 1000;
    assert!(o.spoofed_sent + 5 >= expected_flood, "{o:?}");
    let ratio = o.connected as f64 / CLIENTS as f64;
    assert!(
        ratio >= 0.99,
        "seed {seed}: only {}/{CLIENTS} genuine handshakes completed: {o:?}",
        o.connected
    );
    // The spoofed sources got cookies, not state: the server never held
    // more than the genuine connections and the spoofed handshakes of the
    // first instants, before the meter showed the load (about half a
    // second's capacity).
    assert!(o.cookie_replies + 200 >= o.spoofed_sent, "{o:?}");
    assert!(
        o.most_connections_held <= CLIENTS + CAPACITY as usize,
        "seed {seed}: spoofed sources created state: {o:?}"
    );
    // Handshake work stayed within the capacity.
    let allowed = u64::from(CAPACITY) * (FLOOD_DURATION.as_secs() + 2);
    assert!(o.handshakes_answered <= allowed, "{o:?}");
}

#[test]
fn without_cookies_the_same_flood_crowds_out_genuine_handshakes() {
    // The control experiment: the same flood against a responder that only
    // enforces its capacity. Spoofed initiations take most of the budget and
    // hold pending slots; many genuine clients never get an answer.
    let seed = 31;
    let o = flood_scenario(seed, CookieMode::Never);
    println!("seed {seed}, no cookies: {o:?}");
    assert_eq!(o.cookie_replies, 0);
    assert!(
        (o.connected as f64) < 0.9 * CLIENTS as f64,
        "seed {seed}: the flood should have hurt: {o:?}"
    );
}
