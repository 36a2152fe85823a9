//! Garbage, truncated, replayed, bit-flipped and wrong-key datagrams are
//! dropped and leave a live connection unharmed (spec §5, §9).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{addr, data, endpoint, pump, Pair, Side, A_ADDR, B_ADDR};
use srudp_proto::sim::LinkConfig;
use srudp_proto::{CloseReason, Event, Rng, TransportConfig};

const SIZE: usize = 512 * 1024;

#[test]
fn hostile_datagrams_are_dropped_and_the_transfer_completes_intact() {
    let link = LinkConfig::default()
        .with_latency(Duration::from_millis(10))
        .with_bandwidth_bps(50_000_000)
        .with_queue_bytes(200_000);
    let mut p = Pair::public(77, link, TransportConfig::default());
    p.sim.record_datagrams();
    let ha = p.connect_a_to_b();
    let (a_data, b_data) = (data(1, SIZE), data(2, SIZE));
    let mut sa = Side {
        handle: Some(ha),
        ..Side::default()
    };
    let mut sb = Side::default();
    let (a, b) = (p.a, p.b);
    let mut rng = Rng::from_seed(99);
    let mut attacks = 0u32;
    let mut step = 0u64;
    let done = p.sim.run_until(Duration::from_secs(120), |sim, events| {
        for e in events {
            let side = if e.node == a { &mut sa } else { &mut sb };
            if side.handle.is_none() {
                side.handle = Some(e.handle);
            }
            assert_eq!(side.handle, Some(e.handle), "only one connection per side");
            if let Event::Closed { reason } = &e.event {
                side.closed = Some(reason.clone());
            }
        }
        pump(sim, a, &mut sa, &a_data);
        pump(sim, b, &mut sb, &b_data);
        step += 1;
        // Every 50 steps, once data flows, throw a volley at both endpoints.
        if step % 50 == 0 && sb.handle.is_some() && sa.closed.is_none() {
            attack(sim, &mut rng, a, b);
            attacks += 1;
        }
        sa.closed.is_some() && sb.closed.is_some()
    });
    assert!(done, "transfer did not finish");
    assert!(attacks >= 10, "only {attacks} attack volleys were made");
    assert_eq!(sa.closed, Some(CloseReason::Finished));
    assert_eq!(sb.closed, Some(CloseReason::Finished));
    assert!(sa.received == b_data, "a's data intact");
    assert!(sb.received == a_data, "b's data intact");
    let stats_b = p.sim.endpoint(b).endpoint_stats().clone();
    assert!(stats_b.dropped_malformed > 0, "{stats_b:?}");
    assert!(stats_b.dropped_bad_handshake > 0, "{stats_b:?}");
    assert_eq!(
        p.sim.endpoint(b).connection_count(),
        1,
        "no connection was created by the attacker"
    );
}

fn attack(
    sim: &mut srudp_proto::sim::Simulation,
    rng: &mut Rng,
    a: srudp_proto::sim::NodeId,
    b: srudp_proto::sim::NodeId,
) {
    let now = sim.now();
    let a_addr = addr(A_ADDR);
    let b_addr = addr(B_ADDR);
    let captured: Vec<_> = sim.captured().iter().rev().take(20).cloned().collect();
    let stranger: SocketAddr = addr("203.0.113.66:999");
    for c in &captured {
        let (target, from) = if c.to == b_addr {
            (b, a_addr)
        } else {
            (a, b_addr)
        };
        let ep = sim.endpoint(target);
        // Replayed, from the real source and from a stranger.
        ep.handle_datagram(now, from, &c.payload);
        ep.handle_datagram(now, stranger, &c.payload);
        // Truncated at a few places.
        for cut in [
            0,
            1,
            2,
            9,
            17,
            18,
            19,
            33,
            c.payload.len().saturating_sub(1),
        ] {
            ep.handle_datagram(now, from, &c.payload[..cut.min(c.payload.len())]);
        }
        // One bit flipped, at a random place.
        let mut flipped = c.payload.clone();
        let bit = rng.below(flipped.len() as u64 * 8) as usize;
        flipped[bit / 8] ^= 1 << (bit % 8);
        ep.handle_datagram(now, from, &flipped);
    }
    // Garbage of every kind of length, including a valid-looking header.
    for _ in 0..20 {
        let len = rng.below(1400) as usize;
        let mut g = vec![0u8; len];
        rng.fill(&mut g);
        if len > 2 && rng.below(2) == 0 {
            g[0] = 1;
            g[1] = 1 + rng.below(4) as u8;
        }
        sim.endpoint(b).handle_datagram(now, a_addr, &g);
        sim.endpoint(a).handle_datagram(now, stranger, &g);
    }
    // A handshake initiation sealed to the wrong key (an unrelated endpoint's).
    let mut mallory = endpoint(rng.next_u64(), TransportConfig::default());
    let wrong_key = endpoint(rng.next_u64(), TransportConfig::default()).public_key();
    mallory.connect(now, wrong_key, &[b_addr]).unwrap();
    let mut buf = [0u8; 1200];
    let t = mallory.poll_transmit(now, &mut buf).unwrap();
    sim.endpoint(b)
        .handle_datagram(now, stranger, &buf[..t.size]);
}

#[test]
fn a_replayed_initiation_creates_no_second_connection() {
    let mut p = Pair::public(
        5,
        LinkConfig::default().with_latency(Duration::from_millis(5)),
        TransportConfig::default(),
    );
    p.sim.record_datagrams();
    let t = p.transfer(b"hi", b"yo", Duration::from_secs(10));
    assert_eq!(t.b.received, b"hi");
    let now = p.sim.now();
    p.sim.endpoint(p.a).release(now, t.a.handle.unwrap());
    p.sim.endpoint(p.b).release(now, t.b.handle.unwrap());
    let init = p
        .sim
        .captured()
        .iter()
        .find(|c| c.payload[1] == 1)
        .unwrap()
        .clone();
    // Replayed while the connection lingers, and long after it is gone.
    for delay in [Duration::ZERO, Duration::from_secs(60)] {
        common::run_for(&mut p.sim, delay);
        for _ in 0..10 {
            let now = p.sim.now();
            p.sim
                .endpoint(p.b)
                .handle_datagram(now, init.from, &init.payload);
        }
        let events = common::run_for(&mut p.sim, Duration::from_secs(20));
        assert!(
            !events
                .iter()
                .any(|e| e.node == p.b && matches!(e.event, Event::Connected { .. })),
            "replay produced a connection: {events:?}"
        );
        assert_eq!(
            p.sim.endpoint(p.b).connection_count(),
            0,
            "no state left behind after {delay:?}"
        );
    }
}
