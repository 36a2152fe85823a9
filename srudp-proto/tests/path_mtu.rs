//! Path MTU discovery (spec §6.9): a direct path is probed for room for
//! Data packets larger than the 1200-byte base, up to both sides'
//! `max_udp_payload`; a lost probe is not congestion; a path that stops
//! carrying large packets falls back to the base without losing a byte.

mod common;

use std::time::{Duration, Instant};

use common::{addr, data, endpoint, pump, Side, A_ADDR, B_ADDR};
use srudp_proto::sim::{LinkConfig, Network, SimEvent, Simulation};
use srudp_proto::{ConnectionStats, Event, TransportConfig};

const MIB: usize = 1 << 20;

/// A clean 20 Mbit/s, 20 ms path whose links carry UDP payloads of up to
/// `mtu` bytes, with a queue that never overflows.
fn link(mtu: usize) -> LinkConfig {
    LinkConfig::default()
        .with_latency(Duration::from_millis(5))
        .with_bandwidth_bps(20_000_000)
        .with_queue_bytes(4 << 20)
        .with_mtu(mtu)
}

/// What `a` saw sending `size` bytes to `b`, and what `b` received.
struct Run {
    a: ConnectionStats,
    received: Vec<u8>,
    sent: Vec<u8>,
}

/// `a` connects to `b` over links of `mtu` and sends `size` bytes; `edit`
/// runs at every step with the simulation and `a`'s current statistics.
fn send(
    mtu: usize,
    config_a: TransportConfig,
    config_b: TransportConfig,
    size: usize,
    mut edit: impl FnMut(&mut Simulation, &ConnectionStats),
) -> Run {
    let mut net = Network::new(7);
    net.add_host(addr(A_ADDR).ip(), link(mtu)).unwrap();
    net.add_host(addr(B_ADDR).ip(), link(mtu)).unwrap();
    let mut sim = Simulation::new(net, Instant::now());
    let a = sim.add_endpoint(addr(A_ADDR), endpoint(1, config_a));
    let b = sim.add_endpoint(addr(B_ADDR), endpoint(2, config_b));
    let kb = sim.endpoint(b).public_key();
    let now = sim.now();
    let ha = sim.endpoint(a).connect(now, kb, &[addr(B_ADDR)]).unwrap();
    let payload = data(3, size);
    let mut side_a = Side {
        handle: Some(ha),
        ..Side::default()
    };
    let mut side_b = Side::default();
    let mut stats = ConnectionStats::default();
    sim.run_until(Duration::from_secs(120), |sim, events| {
        for SimEvent {
            node,
            handle,
            event,
        } in events
        {
            if *node == b && side_b.handle.is_none() {
                side_b.handle = Some(*handle);
            }
            if *node == a && matches!(event, Event::AllDataAcked) {
                side_a.all_acked = true;
            }
        }
        pump(sim, a, &mut side_a, &payload);
        pump(sim, b, &mut side_b, &[]);
        if let Some(s) = sim.endpoint(a).stats(ha) {
            stats = s;
        }
        edit(sim, &stats);
        side_a.all_acked && side_b.received.len() == size
    });
    Run {
        a: stats,
        received: side_b.received,
        sent: payload,
    }
}

#[test]
fn an_ethernet_path_carries_1472_byte_data_packets_found_with_one_probe() {
    let run = send(
        1472,
        TransportConfig::default(),
        TransportConfig::default(),
        4 * MIB,
        |_, _| {},
    );
    assert!(run.received == run.sent, "every byte arrives");
    assert_eq!(run.a.max_datagram_size, 1472);
    assert_eq!(run.a.mtu_probes_sent, 1, "the first candidate is the limit");
    assert_eq!(run.a.mtu_probes_lost, 0);
    // The same bytes in fewer packets than at the base size.
    let base = send(
        1472,
        TransportConfig {
            max_udp_payload: 1200,
            ..TransportConfig::default()
        },
        TransportConfig::default(),
        4 * MIB,
        |_, _| {},
    );
    assert!(base.received == base.sent);
    assert_eq!(base.a.max_datagram_size, 1200);
    assert_eq!(base.a.mtu_probes_sent, 0, "1200 turns the discovery off");
    let ratio = run.a.packets_sent as f64 / base.a.packets_sent as f64;
    assert!(
        ratio < 0.85,
        "{} packets against {}",
        run.a.packets_sent,
        base.a.packets_sent
    );
}

#[test]
fn a_1400_byte_path_is_found_and_lost_probes_are_not_congestion() {
    let run = send(
        1400,
        TransportConfig::default(),
        TransportConfig::default(),
        4 * MIB,
        |_, _| {},
    );
    assert!(run.received == run.sent);
    let size = run.a.max_datagram_size;
    assert!(
        (1400 - 16 + 1..=1400).contains(&(size as usize)),
        "found {size}"
    );
    assert!(run.a.mtu_probes_lost >= 3, "1472 failed three times first");
    // The path lost nothing but probes: no congestion event, no
    // retransmission.
    assert_eq!(run.a.packets_lost, 0);
    assert_eq!(run.a.congestion_events, 0);
    assert_eq!(run.a.stream_bytes_retransmitted, 0);
}

#[test]
fn a_peer_that_allows_1200_bytes_is_never_probed() {
    let small = TransportConfig {
        max_udp_payload: 1200,
        ..TransportConfig::default()
    };
    let run = send(1472, TransportConfig::default(), small, MIB, |_, _| {});
    assert!(run.received == run.sent);
    assert_eq!(run.a.mtu_probes_sent, 0);
    assert_eq!(run.a.max_datagram_size, 1200);
}

#[test]
fn a_path_that_stops_carrying_large_packets_falls_back_without_losing_a_byte() {
    let mut shrunk = false;
    let run = send(
        1472,
        TransportConfig::default(),
        TransportConfig::default(),
        8 * MIB,
        |sim, stats| {
            // Once the transfer runs at 1472 bytes, a's link shrinks to 1300
            // (a tunnel on a new route): every large packet vanishes.
            if !shrunk && stats.max_datagram_size == 1472 && stats.stream_bytes_acked > MIB as u64 {
                let host_a = sim.network.host_by_ip(addr(A_ADDR).ip()).unwrap();
                sim.network.set_link(host_a, link(1300)).unwrap();
                shrunk = true;
            }
        },
    );
    assert!(shrunk, "the transfer reached 1472 bytes first");
    assert!(run.received == run.sent, "every byte arrives");
    assert_eq!(run.a.mtu_black_holes, 1);
    assert_eq!(run.a.max_datagram_size, 1200);
    // Found at the first probe timeout: its bare PING arrived, the large
    // packets before it did not; one window reduction for the flight lost.
    assert_eq!(run.a.pto_count, 1, "{:?}", run.a);
    assert_eq!(run.a.congestion_events, 1, "{:?}", run.a);
}
