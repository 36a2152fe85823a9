//! Relay fallback (spec §11.5), the search for a direct path (§11.6), and
//! relayed connections surviving a NAT rebinding.

use std::time::Duration;

use srudp_proto::rendezvous::{ClientEvent, RateLimit, ServerConfig};
use srudp_proto::sim::NatConfig;
use srudp_proto::wire::{RelayData, MAX_RELAYED_DATAGRAM_SIZE};
use srudp_proto::{ConnectionHandle, Event, PathKind};

use crate::introduction::{introduce, pair};
use crate::world::{addr, data, World, SERVER};

const S: Duration = Duration::from_secs(1);

fn relayed() -> PathKind {
    PathKind::Relayed { via: addr(SERVER) }
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn symmetric_nats_on_both_sides_fall_back_to_the_relay_which_cannot_read_the_data() {
    for seed in 0..3 {
        let mut w = pair(seed, NatConfig::symmetric(), NatConfig::symmetric());
        w.capture();
        let start = w.now();
        let ((ha, pa), (hb, pb)) = introduce(&mut w, 0, 1, 15 * S);
        assert_eq!((pa, pb), (relayed(), relayed()), "seed {seed}");
        // The direct attempt had its configured 3 s first.
        assert!(w.now() - start >= 3 * S, "seed {seed}");
        let (a_data, b_data) = (data(seed, 300_000), data(seed + 7, 200_000));
        let (ra, rb) = w.exchange((0, ha), (1, hb), &a_data, &b_data, 60 * S);
        assert_eq!(ra, b_data, "seed {seed}");
        assert_eq!(rb, a_data, "seed {seed}");
        assert_eq!(w.client(0).path_kind(ha), Some(relayed()), "still relayed");
        let stats = w.server().stats().clone();
        assert!(stats.relayed_bytes > 500_000, "{stats:?}");
        // What the server forwarded: envelopes of one session, never the
        // plaintext (no 32-byte run of either side's data appears).
        let sent = w.captured.take().unwrap();
        let relayed: Vec<_> = sent
            .iter()
            .filter(|d| d.from == addr(SERVER))
            .filter_map(|d| RelayData::parse(&d.payload).ok())
            .collect();
        assert!(
            relayed.len() > 400,
            "seed {seed}: {} relayed",
            relayed.len()
        );
        assert!(relayed.iter().all(|r| r.session == relayed[0].session));
        for probe in [
            &a_data[1000..1032],
            &b_data[5000..5032],
            &a_data[250_000..250_032],
        ] {
            assert!(
                !sent.iter().any(|d| contains(&d.payload, probe)),
                "seed {seed}: plaintext on the wire"
            );
        }
        // The relayed HandshakeInit needs the 1210-byte envelope, no more.
        assert_eq!(w.largest_datagram, MAX_RELAYED_DATAGRAM_SIZE);
    }
}

#[test]
fn symmetric_and_port_restricted_nats_connect_through_the_relay() {
    for seed in 0..4 {
        let mut w = pair(
            seed,
            NatConfig::symmetric(),
            NatConfig::port_restricted_cone(),
        );
        let ((ha, pa), (hb, pb)) = introduce(&mut w, 0, 1, 15 * S);
        assert_eq!((pa, pb), (relayed(), relayed()), "seed {seed}");
        // Direct probes keep failing; the relay keeps carrying the data.
        w.run_for(20 * S);
        let msg = data(seed, 100_000);
        let (ra, rb) = w.exchange((0, ha), (1, hb), &msg, &msg, 30 * S);
        assert_eq!((ra, rb), (msg.clone(), msg), "seed {seed}");
        assert_eq!(w.client(1).path_kind(hb), Some(relayed()));
    }
}

#[test]
fn symmetric_and_full_cone_nats_end_up_on_a_direct_path() {
    // Whichever side initiates (the lower key), the pair ends up direct: at
    // once if the symmetric side initiates, otherwise through the relay
    // first and then by the direct probes (spec §11.6).
    let mut upgraded = 0;
    for seed in 0..6 {
        let mut w = pair(seed, NatConfig::symmetric(), NatConfig::full_cone());
        let ((ha, pa), (hb, _)) = introduce(&mut w, 0, 1, 15 * S);
        if pa.is_relayed() {
            upgraded += 1;
        }
        let direct = w.run_until(30 * S, |w| {
            w.client(0).path_kind(ha).is_some_and(|p| !p.is_relayed())
                && w.client(1).path_kind(hb).is_some_and(|p| !p.is_relayed())
        });
        assert!(direct, "seed {seed}: {:?}", w.client(0).path_kind(ha));
        let b_public = addr("198.51.100.2:6000").ip();
        assert!(
            matches!(w.client(0).path_kind(ha), Some(PathKind::Direct(a)) if a.ip() == b_public),
            "seed {seed}"
        );
        let msg = data(seed, 100_000);
        let (ra, rb) = w.exchange((0, ha), (1, hb), &msg, &msg, 30 * S);
        assert_eq!((ra, rb), (msg.clone(), msg), "seed {seed}");
    }
    assert!(upgraded > 0, "some seeds went through the relay first");
}

#[test]
fn the_relay_enforces_its_per_pair_rate() {
    let rate = RateLimit::new(64 << 10, 16 << 10);
    let mut w = World::new(77);
    w.start_server(ServerConfig {
        relay_pair_rate: rate,
        ..ServerConfig::default()
    });
    let mut w = {
        // Same topology as `pair`, with this server.
        let na = w.add_nat("198.51.100.1", NatConfig::symmetric());
        let nb = w.add_nat("198.51.100.2", NatConfig::symmetric());
        w.add_host_behind(na, "192.168.1.10");
        w.add_host_behind(nb, "192.168.2.20");
        for (socket, key_seed) in [("192.168.1.10:5000", 771), ("192.168.2.20:6000", 772)] {
            let mut c = w.client_config();
            c.detect_nat = false;
            w.add_client(socket, key_seed, c);
        }
        w.wait_registered(&[0, 1], 5 * S);
        w
    };
    let start = w.now();
    let ((ha, _), (hb, _)) = introduce(&mut w, 0, 1, 15 * S);
    let msg = data(1, 400_000);
    let (_, rb) = w.exchange((0, ha), (1, hb), &msg, &[], 120 * S);
    assert_eq!(rb, msg, "the data still arrives, slower");
    let stats = w.server().stats().clone();
    let elapsed = (w.now() - start).as_secs_f64();
    let allowed = rate.burst as f64 + rate.per_second as f64 * elapsed;
    assert!(
        (stats.relayed_bytes as f64) <= allowed,
        "{} bytes relayed in {elapsed:.1} s, at most {allowed:.0} allowed",
        stats.relayed_bytes
    );
    assert!(stats.relay_rate_limited > 0, "{stats:?}");
}

#[test]
fn an_unused_relay_session_is_released() {
    let mut w = pair(
        5,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let _ = introduce(&mut w, 0, 1, 10 * S);
    assert_eq!(
        w.server().relay_count(),
        1,
        "allotted with the introduction"
    );
    w.run_for(31 * S);
    assert_eq!(
        w.server().relay_count(),
        0,
        "released after 30 idle seconds"
    );
}

/// Drives a one-way transfer over `(a, ha) → (b, hb)`, flushing `nat` of the
/// sender halfway; returns what arrived and the path events seen.
fn transfer_with_flush(
    w: &mut World,
    (a, ha): (usize, ConnectionHandle),
    (b, hb): (usize, ConnectionHandle),
    nat: srudp_proto::sim::NatId,
    msg: &[u8],
) -> Vec<u8> {
    let half = msg.len() / 2;
    let mut written = 0;
    let mut received = Vec::new();
    let mut flushed = false;
    w.run_until(120 * S, |w| {
        let ep = w.client(a).endpoint_mut();
        while written < msg.len() {
            match ep.write(ha, &msg[written..]) {
                Ok(n) if n > 0 => written += n,
                _ => break,
            }
        }
        let mut buf = [0u8; 16384];
        while let Ok(n) = w.client(b).endpoint_mut().read(hb, &mut buf) {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
        }
        if !flushed && received.len() >= half {
            flushed = true;
            w.net.flush_nat_mappings(nat).unwrap();
        }
        received.len() >= msg.len()
    });
    assert!(flushed);
    received
}

#[test]
fn a_relayed_connection_survives_a_nat_rebinding() {
    let mut w = pair(9, NatConfig::symmetric(), NatConfig::symmetric());
    let ((ha, pa), (hb, _)) = introduce(&mut w, 0, 1, 15 * S);
    assert!(pa.is_relayed());
    let nat_a = w.nats[0];
    let key_a = w.key(0);
    let before = w.server().registered_address(&key_a).unwrap();
    let msg = data(3, 600_000);
    let got = transfer_with_flush(&mut w, (0, ha), (1, hb), nat_a, &msg);
    assert_eq!(got, msg, "no byte lost");
    assert!(!w.client(0).endpoint().is_closed(ha));
    // The relay saw A's envelopes come from a new port, probed A's
    // rendezvous connection there, and follows A to it.
    let after = w.server().registered_address(&key_a).unwrap();
    assert_eq!(after.ip(), before.ip());
    assert_ne!(after.port(), before.port(), "A's NAT gave it a new port");
    assert!(w.server().stats().relay_dropped > 0);
}

#[test]
fn a_direct_connection_follows_a_peer_whose_nat_rebinds_mid_transfer() {
    // The receiver's NAT lets the sender's new port in (full cone): plain
    // path validation moves the connection (spec §6.7).
    for seed in 0..3 {
        let mut w = pair(
            seed,
            NatConfig::port_restricted_cone(),
            NatConfig::full_cone(),
        );
        let ((ha, pa), (hb, _)) = introduce(&mut w, 0, 1, 10 * S);
        assert!(!pa.is_relayed());
        let nat_a = w.nats[0];
        let msg = data(seed, 800_000);
        let got = transfer_with_flush(&mut w, (0, ha), (1, hb), nat_a, &msg);
        assert_eq!(got, msg, "seed {seed}: no byte lost");
        let moved = w.events(1).iter().any(|e| {
            matches!(e, ClientEvent::Connection { handle, event: Event::PathChanged { .. } } if *handle == hb)
        });
        assert!(moved, "seed {seed}: b followed a to its new port");
        assert!(matches!(
            w.client(1).path_kind(hb),
            Some(PathKind::Direct(_))
        ));
    }
}

#[test]
fn a_direct_connection_between_port_restricted_nats_survives_a_rebinding_through_the_relay() {
    // Port-restricted filtering drops the sender's packets from its new port
    // and the receiver's packets to the old one: the path is dead both ways.
    // The connections move to the relay, get a fresh introduction, punch
    // again, and return to a direct path at the new port (spec §11.6).
    for seed in 0..3 {
        let mut w = pair(
            seed,
            NatConfig::port_restricted_cone(),
            NatConfig::port_restricted_cone(),
        );
        let ((ha, pa), (hb, _)) = introduce(&mut w, 0, 1, 10 * S);
        assert!(!pa.is_relayed());
        let key_a = w.key(0);
        let old_a = w.server().registered_address(&key_a).unwrap();
        let nat_a = w.nats[0];
        let msg = data(seed, 800_000);
        let got = transfer_with_flush(&mut w, (0, ha), (1, hb), nat_a, &msg);
        assert_eq!(got, msg, "seed {seed}: no byte lost");
        let relayed_once = w.events(1).iter().any(|e| {
            matches!(e, ClientEvent::Connection { handle, event: Event::PathChanged { remote } } if *handle == hb && *remote == addr(SERVER))
        });
        assert!(relayed_once, "seed {seed}: went through the relay");
        let direct_again = w.run_until(30 * S, |w| {
            matches!(w.client(1).path_kind(hb), Some(PathKind::Direct(a)) if a.ip() == old_a.ip() && a != old_a)
        });
        assert!(
            direct_again,
            "seed {seed}: back to direct: {:?}",
            w.client(1).path_kind(hb)
        );
        let msg = data(seed + 1, 100_000);
        let (ra, rb) = w.exchange((0, ha), (1, hb), &msg, &msg, 30 * S);
        assert_eq!((ra, rb), (msg.clone(), msg), "seed {seed}");
    }
}
