//! Hole punching and simultaneous open through simulated NATs, keepalive and
//! idle timeout (spec §4.4, §4.5, §6.8).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{addr, data, endpoint, pump, Side};
use srudp_proto::sim::{LinkConfig, NatConfig, Network, NodeId, Simulation};
use srudp_proto::{
    CloseReason, ConnectOptions, Event, HandshakePattern, PublicKey, TransportConfig,
};

struct NatPair {
    sim: Simulation,
    a: NodeId,
    b: NodeId,
    /// The addresses each peer would learn from a rendezvous: its public
    /// mapping (port-preserving NATs keep the private port) and its LAN address.
    a_candidates: Vec<SocketAddr>,
    b_candidates: Vec<SocketAddr>,
}

fn nat_pair(seed: u64, nat: NatConfig, transport: TransportConfig) -> NatPair {
    let link = LinkConfig::default().with_latency(Duration::from_millis(10));
    let mut net = Network::new(seed);
    let nat_a = net
        .add_nat(addr("203.0.113.1:0").ip(), nat.clone(), link.clone())
        .unwrap();
    let nat_b = net
        .add_nat(addr("203.0.113.2:0").ip(), nat, link.clone())
        .unwrap();
    net.add_host_behind(
        nat_a,
        addr("192.0.2.10:0").ip(),
        LinkConfig::default().with_latency(Duration::from_millis(1)),
    )
    .unwrap();
    net.add_host_behind(
        nat_b,
        addr("198.51.100.10:0").ip(),
        LinkConfig::default().with_latency(Duration::from_millis(1)),
    )
    .unwrap();
    let mut sim = Simulation::new(net, Instant::now());
    let a = sim.add_endpoint(
        addr("192.0.2.10:5000"),
        endpoint(seed * 2 + 1, transport.clone()),
    );
    let b = sim.add_endpoint(
        addr("198.51.100.10:6000"),
        endpoint(seed * 2 + 2, transport),
    );
    NatPair {
        sim,
        a,
        b,
        a_candidates: vec![addr("203.0.113.1:5000"), addr("192.0.2.10:5000")],
        b_candidates: vec![addr("203.0.113.2:6000"), addr("198.51.100.10:6000")],
    }
}

/// Options toward `peer` with IK, which a simultaneous open needs (spec §4.5).
fn ik(peer: PublicKey, candidates: &[SocketAddr]) -> ConnectOptions {
    ConnectOptions {
        pattern: Some(HandshakePattern::IK),
        ..ConnectOptions::new(peer, candidates.to_vec())
    }
}

/// Both peers call connect toward each other at the same instant, with IK
/// as a simultaneous open requires (spec §4.5); returns the sides after both
/// report Connected (or after 20 s).
fn simultaneous_open(p: &mut NatPair) -> [Side; 2] {
    let now = p.sim.now();
    let (ka, kb) = (
        p.sim.endpoint(p.a).public_key(),
        p.sim.endpoint(p.b).public_key(),
    );
    let ha = p
        .sim
        .endpoint(p.a)
        .connect_with(now, ik(kb, &p.b_candidates))
        .unwrap();
    let hb = p
        .sim
        .endpoint(p.b)
        .connect_with(now, ik(ka, &p.a_candidates))
        .unwrap();
    let mut sides = [
        Side {
            handle: Some(ha),
            ..Side::default()
        },
        Side {
            handle: Some(hb),
            ..Side::default()
        },
    ];
    let (a, b) = (p.a, p.b);
    let mut other_connected = 0;
    p.sim.run_until(Duration::from_secs(20), |_, events| {
        for e in events {
            let i = if e.node == a {
                0
            } else if e.node == b {
                1
            } else {
                continue;
            };
            if let Event::Connected { .. } = e.event {
                if Some(e.handle) == sides[i].handle {
                    sides[i].connected += 1;
                } else {
                    other_connected += 1;
                }
            }
        }
        sides.iter().all(|s| s.connected > 0)
    });
    assert_eq!(other_connected, 0, "a second connection appeared");
    sides
}

#[test]
fn peers_behind_cone_nats_opening_at_once_get_exactly_one_connection() {
    for (name, nat) in [
        ("full cone", NatConfig::full_cone()),
        ("restricted cone", NatConfig::restricted_cone()),
        ("port-restricted cone", NatConfig::port_restricted_cone()),
    ] {
        // Port-preserving, like Linux masquerade: the public port is the private one,
        // which is what a rendezvous would have observed.
        let nat = nat.with_port_preservation(true);
        for seed in 0..5 {
            let mut p = nat_pair(seed, nat.clone(), TransportConfig::default());
            let sides = simultaneous_open(&mut p);
            assert_eq!(
                sides[0].connected, 1,
                "{name} seed {seed}: a connected once"
            );
            assert_eq!(
                sides[1].connected, 1,
                "{name} seed {seed}: b connected once"
            );
            assert_eq!(
                p.sim.endpoint(p.a).connection_count(),
                1,
                "{name}: one connection at a"
            );
            assert_eq!(
                p.sim.endpoint(p.b).connection_count(),
                1,
                "{name}: one connection at b"
            );
            // And it carries data both ways.
            let (ha, hb) = (sides[0].handle.unwrap(), sides[1].handle.unwrap());
            p.sim.endpoint(p.a).write(ha, b"ping from a").unwrap();
            p.sim.endpoint(p.b).write(hb, b"ping from b").unwrap();
            let (mut ra, mut rb) = (
                Side {
                    handle: Some(ha),
                    ..Side::default()
                },
                Side {
                    handle: Some(hb),
                    ..Side::default()
                },
            );
            let (a, b) = (p.a, p.b);
            p.sim.run_until(Duration::from_secs(5), |sim, _| {
                pump(sim, a, &mut ra, &[]);
                pump(sim, b, &mut rb, &[]);
                ra.received.len() == 11 && rb.received.len() == 11
            });
            assert_eq!(ra.received, b"ping from b");
            assert_eq!(rb.received, b"ping from a");
        }
    }
}

#[test]
fn symmetric_nats_cannot_be_punched_and_the_handshake_times_out_cleanly() {
    // Random ports per destination: the addresses the peers know are wrong.
    let mut p = nat_pair(3, NatConfig::symmetric(), TransportConfig::default());
    let now = p.sim.now();
    let (ka, kb) = (
        p.sim.endpoint(p.a).public_key(),
        p.sim.endpoint(p.b).public_key(),
    );
    let ha = p
        .sim
        .endpoint(p.a)
        .connect_with(now, ik(kb, &p.b_candidates))
        .unwrap();
    p.sim
        .endpoint(p.b)
        .connect_with(now, ik(ka, &p.a_candidates))
        .unwrap();
    let closed = common::wait_for(&mut p.sim, Duration::from_secs(30), |e| {
        e.handle == ha && matches!(e.event, Event::Closed { .. })
    });
    let closed = closed.expect("a reports the failure");
    assert_eq!(
        closed.event,
        Event::Closed {
            reason: CloseReason::HandshakeTimeout
        }
    );
    assert!(
        p.sim.elapsed() <= Duration::from_secs(11),
        "gave up at the handshake timeout"
    );
}

/// Connects simultaneously, then stays idle for `idle` and returns what each side saw.
fn idle_after_connect(
    keepalive: Option<Duration>,
    idle: Duration,
) -> (NatPair, Vec<common::Side>, Vec<srudp_proto::sim::SimEvent>) {
    let nat = NatConfig::port_restricted_cone()
        .with_port_preservation(true)
        .with_mapping_timeout(Duration::from_secs(30));
    let transport = TransportConfig {
        keepalive_interval: keepalive,
        ..TransportConfig::default()
    };
    let mut p = nat_pair(9, nat, transport);
    let sides = simultaneous_open(&mut p);
    let events = common::run_for(&mut p.sim, idle);
    (p, sides.into_iter().collect(), events)
}

#[test]
fn keepalives_hold_a_30s_nat_mapping_open_through_two_idle_minutes() {
    let (mut p, sides, events) =
        idle_after_connect(Some(Duration::from_secs(15)), Duration::from_secs(120));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.event, Event::Closed { .. })),
        "no close during two idle minutes: {events:?}"
    );
    // The mapping still works: a message goes through each way.
    let (ha, hb) = (sides[0].handle.unwrap(), sides[1].handle.unwrap());
    let msg = data(5, 5000);
    p.sim.endpoint(p.a).write(ha, &msg).unwrap();
    p.sim.endpoint(p.b).write(hb, &msg).unwrap();
    let (mut ra, mut rb) = (
        Side {
            handle: Some(ha),
            ..Side::default()
        },
        Side {
            handle: Some(hb),
            ..Side::default()
        },
    );
    let (a, b) = (p.a, p.b);
    p.sim.run_until(Duration::from_secs(5), |sim, _| {
        pump(sim, a, &mut ra, &[]);
        pump(sim, b, &mut rb, &[]);
        ra.received.len() == msg.len() && rb.received.len() == msg.len()
    });
    assert_eq!(ra.received, msg);
    assert_eq!(rb.received, msg);
}

#[test]
fn without_keepalive_the_idle_timeout_fires_on_both_sides() {
    let (p, sides, events) = idle_after_connect(None, Duration::from_secs(120));
    for (node, side) in [(p.a, &sides[0]), (p.b, &sides[1])] {
        let closed: Vec<_> = events
            .iter()
            .filter(|e| e.node == node && Some(e.handle) == side.handle)
            .filter_map(|e| match &e.event {
                Event::Closed { reason } => Some(reason.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(closed, vec![CloseReason::IdleTimeout], "node {node:?}");
    }
}
