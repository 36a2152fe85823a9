//! Keepalive and idle timeout (spec §6.8): the keepalive follows the
//! negotiated idle timeout, so a peer announcing a short one is kept alive
//! by both ends instead of timing out while both are alive.

mod common;

use std::time::{Duration, Instant};

use common::{addr, endpoint, A_ADDR, B_ADDR};
use srudp_proto::sim::{LinkConfig, Network, NodeId, Simulation};
use srudp_proto::{Event, TransportConfig};

/// `a` with the default transport, `b` announcing `b_idle` as its idle
/// timeout; `a` connects to `b`. Returns the simulation, both nodes and the
/// handles once both are connected.
fn connected_pair(
    seed: u64,
    b_idle: Duration,
) -> (
    Simulation,
    NodeId,
    NodeId,
    srudp_proto::ConnectionHandle,
    srudp_proto::ConnectionHandle,
) {
    let link = LinkConfig::default().with_latency(Duration::from_millis(20));
    let mut net = Network::new(seed);
    net.add_host(addr(A_ADDR).ip(), link.clone()).unwrap();
    net.add_host(addr(B_ADDR).ip(), link).unwrap();
    let mut sim = Simulation::new(net, Instant::now());
    let a = sim.add_endpoint(
        addr(A_ADDR),
        endpoint(seed * 2 + 1, TransportConfig::default()),
    );
    let b_transport = TransportConfig {
        idle_timeout: b_idle,
        ..TransportConfig::default()
    };
    let b = sim.add_endpoint(addr(B_ADDR), endpoint(seed * 2 + 2, b_transport));
    let kb = sim.endpoint(b).public_key();
    let now = sim.now();
    let ha = sim.endpoint(a).connect(now, kb, &[addr(B_ADDR)]).unwrap();
    let hb = common::wait_for(&mut sim, Duration::from_secs(5), |e| {
        e.node == b && matches!(e.event, Event::Connected { .. })
    })
    .expect("b accepts")
    .handle;
    (sim, a, b, ha, hb)
}

#[test]
fn a_peer_announcing_a_three_second_idle_timeout_stays_connected_through_a_quiet_minute() {
    let (mut sim, a, b, ha, hb) = connected_pair(21, Duration::from_secs(3));
    let events = common::run_for(&mut sim, Duration::from_secs(60));
    let closed: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.event, Event::Closed { .. }))
        .collect();
    assert!(
        closed.is_empty(),
        "both ends alive, yet a connection closed: {closed:?}"
    );
    // Still usable both ways after the quiet minute.
    sim.endpoint(a).write(ha, b"still there?").unwrap();
    sim.endpoint(b).write(hb, b"yes").unwrap();
    let mut got_b = Vec::new();
    let mut got_a = Vec::new();
    sim.run_until(Duration::from_secs(5), |sim, _| {
        let mut buf = [0u8; 64];
        if let Ok(n) = sim.endpoint(b).read(hb, &mut buf) {
            got_b.extend_from_slice(&buf[..n]);
        }
        if let Ok(n) = sim.endpoint(a).read(ha, &mut buf) {
            got_a.extend_from_slice(&buf[..n]);
        }
        got_b == b"still there?" && got_a == b"yes"
    });
    assert_eq!(got_b, b"still there?");
    assert_eq!(got_a, b"yes");
}

#[test]
fn a_vanished_peer_still_times_out_within_the_negotiated_idle_timeout() {
    // The keepalive keeps a live peer, not a dead one: with `b`'s link cut,
    // `a` (default 30 s) times out after `b`'s announced 3 s.
    let (mut sim, a, _b, _ha, _hb) = connected_pair(22, Duration::from_secs(3));
    let start = sim.now();
    let b_host = sim.network.host_by_ip(addr(B_ADDR).ip()).unwrap();
    let dead = LinkConfig::default().with_loss_rate(1.0);
    sim.network.set_link(b_host, dead).unwrap();
    let closed = common::wait_for(&mut sim, Duration::from_secs(10), |e| {
        e.node == a && matches!(e.event, Event::Closed { .. })
    })
    .expect("a notices b is gone");
    assert_eq!(
        closed.event,
        Event::Closed {
            reason: srudp_proto::CloseReason::IdleTimeout
        }
    );
    assert!(sim.now() - start <= Duration::from_secs(4));
}
