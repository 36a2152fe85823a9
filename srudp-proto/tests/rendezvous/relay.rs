//! Relay fallback (spec §11.5), the search for a direct path (§11.6), and
//! relayed connections surviving a NAT rebinding.

use std::time::Duration;

use srudp_proto::rendezvous::{ClientEvent, RateLimit, ServerConfig};
use srudp_proto::sim::NatConfig;
use srudp_proto::wire::{Packet, RelayData, MAX_DATAGRAM_SIZE};
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
        // Relayed or not, no datagram is larger than 1200 bytes: the full
        // envelopes (of the HandshakeInit, of full data packets) are exactly
        // that, their inner datagrams 1190 bytes at most.
        assert_eq!(w.largest_datagram, MAX_DATAGRAM_SIZE);
        assert!(relayed.iter().all(|r| r.inner.len() <= 1190));
        assert!(relayed.iter().any(|r| r.inner.len() == 1190));
    }
}

#[test]
fn clients_whose_link_rides_the_stream_carrier_relay_from_the_start_without_the_3_s_wait() {
    // Spec §12.5: told that its server link is on the stream carrier (UDP
    // blocked), a client does not give direct punching its 3 s first.
    for seed in 0..3 {
        let mut w = pair(seed, NatConfig::symmetric(), NatConfig::symmetric());
        for i in [0, 1] {
            let now = w.now();
            w.client(i)
                .set_link_carrier(now, srudp_proto::stream_carrier::Carrier::Stream);
        }
        let start = w.now();
        let ((ha, pa), (hb, pb)) = introduce(&mut w, 0, 1, 15 * S);
        assert_eq!((pa, pb), (relayed(), relayed()), "seed {seed}");
        assert!(
            w.now() - start < 3 * S,
            "seed {seed}: {:?}",
            w.now() - start
        );
        let (a_data, b_data) = (data(seed, 50_000), data(seed + 7, 40_000));
        let (ra, rb) = w.exchange((0, ha), (1, hb), &a_data, &b_data, 30 * S);
        assert_eq!((ra, rb), (b_data, a_data), "seed {seed}");
    }
}

#[test]
fn a_udp_peer_introduced_to_a_stream_only_peer_relays_from_the_start_too() {
    // Spec §11.2, §12.5: a client whose link rides the stream carrier says
    // so in its Register; the server passes it on in the Introduce its
    // peer gets, and that peer — on UDP, with its own 3 s relay_fallback —
    // punches through the relay from the coordinated start as well: its
    // first relay envelope goes out before any of the stream-only peer's
    // reaches it (without the flag it would only answer through the relay
    // once the peer's relayed handshake taught it the way, a round trip
    // later, or when it is the handshake's initiator (§4.5) wait longer).
    for seed in 0..3 {
        for (stream_side, udp_socket, udp_nat) in [
            (0, "192.168.2.20:6000", "198.51.100.2"),
            (1, "192.168.1.10:5000", "198.51.100.1"),
        ] {
            let mut w = pair(seed, NatConfig::symmetric(), NatConfig::symmetric());
            let now = w.now();
            w.client(stream_side)
                .set_link_carrier(now, srudp_proto::stream_carrier::Carrier::Stream);
            // The refreshed Register (with the flag) reaches the server.
            w.run_for(S);
            w.capture();
            let start = w.now();
            let ((ha, pa), (hb, pb)) = introduce(&mut w, 0, 1, 15 * S);
            assert_eq!((pa, pb), (relayed(), relayed()), "seed {seed}");
            assert!(w.now() - start < 3 * S, "seed {seed}");
            let sent = w.captured.take().unwrap();
            let is_envelope = |d: &&crate::world::Sent| RelayData::parse(&d.payload).is_ok();
            let first_out = sent
                .iter()
                .position(|d| is_envelope(&d) && d.from == addr(udp_socket))
                .expect("the UDP peer relays");
            let udp_nat: std::net::IpAddr = udp_nat.parse().unwrap();
            let first_in = sent
                .iter()
                .position(|d| is_envelope(&d) && d.from == addr(SERVER) && d.to.ip() == udp_nat)
                .expect("the relay forwards to the UDP peer");
            assert!(
                first_out < first_in,
                "seed {seed}, stream side {stream_side}: the UDP peer's first envelope \
                 (datagram {first_out}) before the first forwarded to it ({first_in})"
            );
            let (a_data, b_data) = (data(seed, 20_000), data(seed + 7, 20_000));
            let (ra, rb) = w.exchange((0, ha), (1, hb), &a_data, &b_data, 30 * S);
            assert_eq!((ra, rb), (b_data, a_data), "seed {seed}");
        }
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
    // Whichever side initiates (the lower key), the pair connects direct at
    // once: if the symmetric side initiates, its init goes through the full
    // cone; otherwise the symmetric side's own initiation arrives from the
    // port its NAT chose toward the full-cone side, and that peer-reflexive
    // candidate is answered at once (spec §4.4). (Before peer-reflexive
    // candidates, those seeds went through the relay first and then direct
    // by the direct probes, spec §11.6.)
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
    assert_eq!(upgraded, 0, "no seed went through the relay first");
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
fn a_pair_that_punches_through_only_gets_a_relay_offer_which_is_released_when_unused() {
    let mut w = pair(
        5,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let ((_, pa), _) = introduce(&mut w, 0, 1, 10 * S);
    assert!(matches!(pa, PathKind::Direct(_)), "{pa:?}");
    assert_eq!(
        (w.server().relay_count(), w.server().relay_offer_count()),
        (0, 1),
        "offered with the introduction, not allotted: the pair never relayed"
    );
    w.run_for(31 * S);
    assert_eq!(
        w.server().relay_offer_count(),
        0,
        "released after 30 idle seconds"
    );
}

#[test]
fn a_relay_session_is_allotted_when_the_pair_first_relays_and_released_when_idle() {
    let mut w = pair(6, NatConfig::symmetric(), NatConfig::symmetric());
    let ((ha, pa), (hb, _)) = introduce(&mut w, 0, 1, 15 * S);
    assert_eq!(pa, relayed());
    assert_eq!(
        (w.server().relay_count(), w.server().relay_offer_count()),
        (1, 0),
        "the offer became an allotted session"
    );
    let now = w.now();
    w.client(0).endpoint_mut().close(now, ha, 0, b"done");
    w.client(1).endpoint_mut().close(now, hb, 0, b"done");
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

#[test]
fn forged_and_replayed_relay_envelopes_change_nothing() {
    let mut w = pair(11, NatConfig::symmetric(), NatConfig::symmetric());
    w.capture();
    let ((ha, pa), (hb, _)) = introduce(&mut w, 0, 1, 15 * S);
    assert!(pa.is_relayed());
    let msg = data(11, 100_000);
    let (_, rb) = w.exchange((0, ha), (1, hb), &msg, &[], 30 * S);
    assert_eq!(rb, msg);
    // Every envelope the server delivered to B, injected again: once from
    // the server's own address (a replay), once from a stranger, and once
    // with its session changed.
    let key_b = w.key(1);
    let b_public = w.server().registered_address(&key_b).unwrap();
    let to_b: Vec<Vec<u8>> = w
        .captured
        .take()
        .unwrap()
        .into_iter()
        .filter(|d| {
            d.from == addr(SERVER) && d.to == b_public && RelayData::parse(&d.payload).is_ok()
        })
        .map(|d| d.payload)
        .collect();
    assert!(to_b.len() > 50);
    let before = w.client(1).endpoint().endpoint_stats().clone();
    let stranger = addr(crate::world::SERVER_ALT_IP);
    let now = w.now();
    for envelope in &to_b {
        // Straight into B (B's NAT would filter the stranger anyway).
        let b = w.client(1);
        b.handle_datagram(now, addr(SERVER), envelope);
        b.handle_datagram(now, stranger, envelope);
        let mut other = envelope.clone();
        other[9] ^= 1;
        b.handle_datagram(now, addr(SERVER), &other);
    }
    let mut extra = Vec::new();
    w.run_until(5 * S, |w| {
        let mut buf = [0u8; 4096];
        while let Ok(n) = w.client(1).endpoint_mut().read(hb, &mut buf) {
            if n == 0 {
                break;
            }
            extra.extend_from_slice(&buf[..n]);
        }
        false
    });
    assert!(extra.is_empty(), "no byte delivered twice or forged");
    let after = w.client(1).endpoint().endpoint_stats().clone();
    let count = to_b.len() as u64;
    assert!(
        after.dropped_unknown_connection >= before.dropped_unknown_connection + 2 * count,
        "strangers and unknown sessions dropped: {before:?} → {after:?}"
    );
    assert!(!w.client(1).endpoint().is_closed(hb));
    assert_eq!(w.client(1).path_kind(hb), Some(relayed()));
}

#[test]
fn a_relay_session_binds_to_one_connection() {
    let mut ep = crate::world::endpoint(1, &srudp_proto::TransportConfig::default());
    let now = std::time::Instant::now();
    let peer = crate::world::endpoint(2, &srudp_proto::TransportConfig::default()).public_key();
    let other = crate::world::endpoint(3, &srudp_proto::TransportConfig::default()).public_key();
    let candidate = addr("198.51.100.2:6000");
    let h1 = ep.connect(now, peer, &[candidate]).unwrap();
    let h2 = ep.connect(now, other, &[candidate]).unwrap();
    let relay = addr(SERVER);
    let session = srudp_proto::RelaySessionId(0x1234);
    assert!(
        !ep.set_relay(h1, relay, srudp_proto::RelaySessionId(0)),
        "0 means no relay"
    );
    assert!(ep.set_relay(h1, relay, session));
    assert!(
        !ep.set_relay(h2, relay, session),
        "taken by another connection"
    );
    assert!(
        ep.set_relay(h1, relay, session),
        "binding again is harmless"
    );
    assert_eq!(ep.path_kind(h1), Some(PathKind::Direct(candidate)));
    assert!(ep.add_candidate(now, h1, relay));
    // A 1200-byte buffer holds every datagram, relay envelopes included.
    let mut big = [0u8; MAX_DATAGRAM_SIZE];
    let mut envelopes = 0;
    for ms in 1..=10 {
        let later = now + Duration::from_millis(ms);
        // Punch probes are spaced by the punch timer (calling contract:
        // handle_timeout once poll_timeout's deadline has passed).
        if ep.poll_timeout().is_some_and(|t| t <= later) {
            ep.handle_timeout(later);
        }
        while let Some(t) = ep.poll_transmit(later, &mut big) {
            if t.destination == relay {
                let env = RelayData::parse(&big[..t.size]).unwrap();
                assert_eq!(env.session, 0x1234);
                // The HandshakeInit, re-padded to 1190 bytes so that its
                // envelope is 1200.
                assert_eq!(t.size, 1200);
                assert_eq!(env.inner.len(), 1190);
                assert!(matches!(
                    Packet::parse_relayed(env.inner),
                    Ok(Packet::HandshakeInit(_))
                ));
                envelopes += 1;
            }
        }
    }
    assert_eq!(envelopes, 1, "one round of punching reached the relay");
    ep.release(now, h1);
    assert!(ep.set_relay(h2, relay, session), "free again once released");
}

/// Caps every link of the world (the server's, the NATs' uplinks, the hosts'
/// LAN links) at `mtu`-byte datagrams.
fn cap_every_link(w: &mut World, mtu: usize) {
    let hosts = [
        SERVER,
        crate::world::SERVER_ALT_IP,
        "192.168.1.10:0",
        "192.168.2.20:0",
    ]
    .map(|s| w.net.host_by_ip(addr(s).ip()).expect("host"));
    for host in hosts {
        let link = w.net.link(host).unwrap().clone().with_mtu(mtu);
        w.net.set_link(host, link).unwrap();
    }
    for nat in w.nats.clone() {
        let link = w.net.link(nat).unwrap().clone().with_mtu(mtu);
        w.net.set_link(nat, link).unwrap();
    }
}

#[test]
fn a_relayed_pair_on_1200_byte_paths_moves_a_megabyte_each_way() {
    // Every path, the server's included, carries 1200-byte datagrams and no
    // more: the relay's envelopes must fit too (spec §2, §11.5).
    for seed in 0..2 {
        let mut w = pair(seed, NatConfig::symmetric(), NatConfig::symmetric());
        cap_every_link(&mut w, MAX_DATAGRAM_SIZE);
        let ((ha, pa), (hb, pb)) = introduce(&mut w, 0, 1, 15 * S);
        assert_eq!((pa, pb), (relayed(), relayed()), "seed {seed}");
        let (a_data, b_data) = (data(seed, 1 << 20), data(seed + 5, 1 << 20));
        let (ra, rb) = w.exchange((0, ha), (1, hb), &a_data, &b_data, 120 * S);
        assert!(
            ra == b_data,
            "seed {seed}: B → A intact ({} bytes)",
            ra.len()
        );
        assert!(
            rb == a_data,
            "seed {seed}: A → B intact ({} bytes)",
            rb.len()
        );
        assert_eq!(w.client(0).path_kind(ha), Some(relayed()), "still relayed");
        assert_eq!(
            w.net.stats().dropped_mtu,
            0,
            "seed {seed}: nothing too large"
        );
        assert!(w.server().stats().relayed_bytes > 2 << 20);
    }
}

#[test]
fn a_direct_connection_that_moves_to_the_relay_mid_transfer_on_1200_byte_paths_delivers() {
    // Direct between port-restricted NATs, 1200-byte paths everywhere; A's
    // NAT rebinds mid-transfer, the direct path dies both ways, and the
    // connection moves to the relay with data in flight: what was sent as
    // 1200-byte packets is sent again in 1190-byte ones (spec §11.5).
    for seed in 0..2 {
        let mut w = pair(
            seed,
            NatConfig::port_restricted_cone(),
            NatConfig::port_restricted_cone(),
        );
        cap_every_link(&mut w, MAX_DATAGRAM_SIZE);
        let ((ha, pa), (hb, _)) = introduce(&mut w, 0, 1, 10 * S);
        assert!(!pa.is_relayed());
        let nat_a = w.nats[0];
        let msg = data(seed, 800_000);
        let got = transfer_with_flush(&mut w, (0, ha), (1, hb), nat_a, &msg);
        assert!(
            got == msg,
            "seed {seed}: {} of {} bytes",
            got.len(),
            msg.len()
        );
        let relayed_once = w.events(1).iter().any(|e| {
            matches!(e, ClientEvent::Connection { handle, event: Event::PathChanged { remote } } if *handle == hb && *remote == addr(SERVER))
        });
        assert!(relayed_once, "seed {seed}: went through the relay");
        assert_eq!(
            w.net.stats().dropped_mtu,
            0,
            "seed {seed}: nothing too large"
        );
    }
}

#[test]
fn the_server_refuses_a_relay_envelope_over_1200_bytes() {
    let mut w = pair(4, NatConfig::symmetric(), NatConfig::symmetric());
    w.capture();
    let ((ha, pa), (hb, _)) = introduce(&mut w, 0, 1, 15 * S);
    assert!(pa.is_relayed());
    let msg = data(4, 50_000);
    let (_, rb) = w.exchange((0, ha), (1, hb), &msg, &[], 30 * S);
    assert_eq!(rb, msg);
    // A full envelope A sent the server: exactly 1200 bytes (A's socket
    // sent it; the server saw it from A's public address).
    let key_a = w.key(0);
    let a_public = w.server().registered_address(&key_a).unwrap();
    let full = w
        .captured
        .take()
        .unwrap()
        .into_iter()
        .find(|d| {
            d.from == addr("192.168.1.10:5000")
                && d.to == addr(SERVER)
                && d.payload.len() == 1200
                && RelayData::parse(&d.payload).is_ok()
        })
        .expect("a full relayed packet")
        .payload;
    let now = w.now();
    let relayed_to_b = |w: &mut World| {
        let mut buf = [0u8; 1500];
        let mut n = 0;
        while let Some(t) = w.server().poll_transmit(now, &mut buf) {
            n += usize::from(RelayData::parse(&buf[..t.size]).is_ok());
        }
        n
    };
    relayed_to_b(&mut w);
    // The same envelope one byte longer: refused, not forwarded.
    let mut long = full.clone();
    long.push(0);
    let before = w.server().stats().clone();
    w.server().handle_datagram(now, a_public, &long);
    assert_eq!(
        relayed_to_b(&mut w),
        0,
        "an envelope over 1200 bytes is not relayed"
    );
    let after = w.server().stats().clone();
    assert_eq!(after.relay_dropped, before.relay_dropped + 1);
    assert_eq!(after.relayed_bytes, before.relayed_bytes);
    // The envelope itself (a replay, which B will drop) is still relayed:
    // the refusal is the size, nothing else.
    w.server().handle_datagram(now, a_public, &full);
    assert_eq!(relayed_to_b(&mut w), 1);
}

/// Knocks client `from` sent toward `peer_ip`: the distinct ports, and in
/// all.
fn knocks_toward(w: &World, from: &str, peer_ip: &str) -> (usize, usize) {
    let (from, ip) = (addr(from), addr(&format!("{peer_ip}:0")).ip());
    let knocks: Vec<u16> = w
        .captured
        .as_ref()
        .unwrap()
        .iter()
        .filter(|d| d.from == from && d.to.ip() == ip && d.payload[..2] == [1, 7])
        .map(|d| d.to.port())
        .collect();
    let ports: std::collections::HashSet<u16> = knocks.iter().copied().collect();
    (ports.len(), knocks.len())
}

#[test]
fn only_a_pair_left_on_the_relay_runs_the_hard_nat_round_once_after_its_first_direct_attempts() {
    // Punched through: no round, nothing to random ports.
    let mut w = pair(
        5,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    w.capture();
    let ((_, pa), _) = introduce(&mut w, 0, 1, 10 * S);
    assert!(matches!(pa, PathKind::Direct(_)), "{pa:?}");
    w.run_for(30 * S);
    let (ports, _) = knocks_toward(&w, "192.168.1.10:5000", "198.51.100.2");
    assert!(ports <= 1, "{ports} ports knocked");
    // Left on the relay: not before the first direct-probe round (5 s after
    // connecting), then one round each, to the peer's observed IP only.
    let mut w = pair(1, NatConfig::symmetric(), NatConfig::symmetric());
    w.capture();
    let ((_, pa), _) = introduce(&mut w, 0, 1, 15 * S);
    assert_eq!(pa, relayed());
    w.run_for(4 * S);
    for (me, peer) in [
        ("192.168.1.10:5000", "198.51.100.2"),
        ("192.168.2.20:6000", "198.51.100.1"),
    ] {
        let (ports, _) = knocks_toward(&w, me, peer);
        assert!(ports <= 2, "{me}: {ports} ports before the round");
    }
    w.run_for(60 * S);
    for (me, peer) in [
        ("192.168.1.10:5000", "198.51.100.2"),
        ("192.168.2.20:6000", "198.51.100.1"),
    ] {
        let (ports, knocks) = knocks_toward(&w, me, peer);
        assert!(ports > 900, "{me}: {ports} ports knocked");
        // One round (1024 knocks, and the spare knock, sent once from the
        // simulator's one socket), plus the few knocks of the first punch.
        let round = usize::from(srudp_proto::HARD_NAT_KNOCKS) + 1;
        assert!(
            (round..round + 10).contains(&knocks),
            "{me}: {knocks} knocks"
        );
    }
    let elsewhere = w
        .captured
        .as_ref()
        .unwrap()
        .iter()
        .filter(|d| d.payload[..2] == [1, 7])
        .filter(|d| !["198.51.100.1", "198.51.100.2"].contains(&d.to.ip().to_string().as_str()))
        .filter(|d| {
            d.to.ip().to_string() != "192.168.1.10" && d.to.ip().to_string() != "192.168.2.20"
        })
        .count();
    assert_eq!(
        elsewhere, 0,
        "knocks only to the observed IP (and the LAN candidates of the punch)"
    );
}
