//! Finding 6 of issue 15: one host with 52 keys took all 1,024 relay
//! sessions within the rate limits, and registrations could be filled the
//! same way; an honest pair behind symmetric NATs introduced afterwards got
//! no relay and could not connect. Registrations, introductions, relay
//! sessions and NAT tests now have quotas per source (IPv4 address, IPv6
//! /64), and a relay session is allotted only when a pair relays through it
//! (spec §11.3, §11.5).

use std::collections::BTreeSet;

use srudp_proto::rendezvous::message::MessageReader;
use srudp_proto::rendezvous::{ErrorCode, Message, ServerConfig, SourcePrefix, Target};
use srudp_proto::sim::NatConfig;
use srudp_proto::wire::RelayData;
use srudp_proto::{ConnectionHandle, PathKind, PublicKey, ReadError, TransportConfig};

use crate::rendezvous_attacker::{
    attacker_at, connect_and_exchange, honest_pair, raw_connected, write_messages, S,
};
use crate::world::{addr, ip, World, SERVER, SERVER_ALT_PORT};

/// The attacker's host, and how many keys it holds.
const HOST: &str = "192.0.2.66";
const KEYS: usize = 1000;

/// One of the attacker's keys: a bare endpoint with its connection to the
/// server.
struct Key {
    raw: usize,
    handle: ConnectionHandle,
    socket: String,
    key: PublicKey,
    reader: MessageReader,
    registered: bool,
    /// Relay sessions the server offered this key.
    sessions: BTreeSet<u64>,
}

impl Key {
    /// The messages the server sent since the last call.
    fn drain(&mut self, w: &mut World) -> Vec<Message> {
        let mut out = Vec::new();
        loop {
            let ep = &mut w.raws[self.raw].endpoint;
            match ep.read(self.handle, self.reader.want()) {
                Ok(0)
                | Err(ReadError::Blocked | ReadError::Closed | ReadError::UnknownConnection) => {
                    return out
                }
                Ok(n) => {
                    if let Ok(Some(m)) = self.reader.advance(n) {
                        out.push(m);
                    }
                }
            }
        }
    }
}

#[test]
fn one_host_with_a_thousand_keys_cannot_take_the_relay_registrations_or_nat_tests_from_an_honest_pair(
) {
    let mut w = World::new(61);
    let config = ServerConfig {
        alt_address: Some(addr(SERVER_ALT_PORT)),
        ..ServerConfig::default()
    };
    w.start_server(config.clone());
    w.add_public_host(HOST);
    let source = SourcePrefix::of(ip(HOST));
    let mut keys: Vec<Key> = (0..KEYS)
        .map(|i| {
            let socket = format!("{HOST}:{}", 10_000 + i);
            let (raw, handle) = attacker_at(
                &mut w,
                &socket,
                10_000 + i as u64,
                &TransportConfig::default(),
            );
            let key = w.raws[raw].endpoint.public_key();
            Key {
                raw,
                handle,
                socket,
                key,
                reader: MessageReader::default(),
                registered: false,
                sessions: BTreeSet::new(),
            }
        })
        .collect();
    assert!(
        w.run_until(30 * S, |w| keys
            .iter()
            .all(|k| raw_connected(w, k.raw, k.handle))),
        "the attacker's connections are up"
    );

    // 1. Every key registers.
    for k in &keys {
        let register = Message::Register {
            request: 1,
            name: None,
            groups: vec![],
            candidates: vec![],
            stream_only: false,
        };
        write_messages(&mut w, k.raw, k.handle, &[register]);
    }
    w.run_for(3 * S);
    let mut quota_refusals = 0;
    for k in &mut keys {
        for m in k.drain(&mut w) {
            match m {
                Message::Registered { .. } => k.registered = true,
                Message::Error {
                    code: ErrorCode::QuotaExceeded,
                    ..
                } => quota_refusals += 1,
                _ => {}
            }
        }
    }
    let registered: Vec<usize> = (0..KEYS).filter(|&i| keys[i].registered).collect();
    assert_eq!(registered.len(), config.max_registrations_per_source);
    assert_eq!(quota_refusals, KEYS - config.max_registrations_per_source);
    assert_eq!(w.server().registrations_from(source), registered.len());

    // 2. An honest pair behind symmetric NATs (no direct path: it needs the
    // relay) registers beside the attack.
    let (a, b) = honest_pair(&mut w, NatConfig::symmetric());
    w.wait_registered(&[a, b], 10 * S);

    // 3. For 20 s, every registered key runs a NAT test and asks to meet 20
    // others each second, and both members of every session they were
    // offered relay through it.
    let attack_start = w.now();
    let mut request = 2;
    for round in 0..20 {
        for (n, &i) in registered.iter().enumerate() {
            request += 1;
            let mut requests = vec![Message::NatTest { request }];
            requests.extend((1..=20).map(|d| {
                request += 1;
                Message::Connect {
                    request,
                    target: Target::Key(keys[registered[(n + d + round) % registered.len()]].key),
                }
            }));
            write_messages(&mut w, keys[i].raw, keys[i].handle, &requests);
        }
        w.run_for(S);
        let now = w.now();
        for &i in &registered {
            for m in keys[i].drain(&mut w) {
                if let Message::Introduce { relay_session, .. } = m {
                    if relay_session != 0 {
                        keys[i].sessions.insert(relay_session);
                    }
                }
            }
            for &session in &keys[i].sessions {
                let mut envelope = [0u8; 200];
                let n = RelayData {
                    session,
                    inner: &[0x55; 100],
                }
                .emit(&mut envelope)
                .unwrap();
                w.net
                    .send(now, addr(&keys[i].socket), addr(SERVER), &envelope[..n]);
            }
        }
    }
    let attack_secs = (w.now() - attack_start).as_secs_f64();
    let offered: BTreeSet<u64> = keys
        .iter()
        .flat_map(|k| k.sessions.iter().copied())
        .collect();
    let stats = w.server().stats().clone();
    assert!(
        offered.len() > config.max_relays_per_source,
        "the attacker was offered {} sessions",
        offered.len()
    );
    assert_eq!(
        w.server().relays_allotted_to(source),
        config.max_relays_per_source,
        "the attacker holds its quota of relays, no more"
    );
    assert!(stats.relay_refused > 0, "{stats:?}");
    let burst = config.introduction_rate_per_source.burst as f64;
    let rate = config.introduction_rate_per_source.per_second as f64;
    assert!(
        stats.introductions as f64 <= burst + rate * attack_secs,
        "{} introductions in {attack_secs:.1} s",
        stats.introductions
    );
    let burst = config.nat_test_rate_per_source.burst as f64;
    let rate = config.nat_test_rate_per_source.per_second as f64;
    assert!(stats.nat_tests > 0 && stats.source_limited > 0, "{stats:?}");
    assert!(
        stats.nat_tests as f64 <= burst + rate * attack_secs,
        "{} NAT tests in {attack_secs:.1} s",
        stats.nat_tests
    );

    // 4. The honest pair is introduced and connects through the relay,
    // while the attacker's sessions are still held.
    let path = connect_and_exchange(&mut w, a, b, 20 * S);
    assert_eq!(path, PathKind::Relayed { via: addr(SERVER) });
    assert_eq!(
        w.server().relay_count(),
        w.server().relays_allotted_to(source) + 1
    );
}

#[test]
fn peers_an_attacker_asks_to_meet_do_not_pay_for_the_relays_it_causes() {
    // An office: many clients behind one symmetric NAT, one source.
    const OFFICE: usize = 20;
    let mut w = World::new(62);
    let config = ServerConfig::default();
    w.start_server(config.clone());
    let office_nat = w.add_nat("198.51.100.9", NatConfig::symmetric());
    let office: Vec<usize> = (0..OFFICE)
        .map(|i| {
            let host = format!("192.168.9.{}", 10 + i);
            w.add_host_behind(office_nat, &host);
            let mut c = w.client_config();
            c.detect_nat = false;
            w.add_client(&format!("{host}:5000"), 900 + i as u64, c)
        })
        .collect();
    // A partner of the office's behind another symmetric NAT.
    let partner_nat = w.add_nat("198.51.100.10", NatConfig::symmetric());
    w.add_host_behind(partner_nat, "192.168.10.10");
    let mut c = w.client_config();
    c.detect_nat = false;
    let partner = w.add_client("192.168.10.10:5000", 950, c);
    let mut all = office.clone();
    all.push(partner);
    w.wait_registered(&all, 10 * S);

    // The attacker registers one key per office client and asks each to
    // meet "its" key, then vanishes: every office client punches toward a
    // dead address and falls back to the relay.
    w.add_public_host(HOST);
    let first_raw = w.raws.len();
    let mut attackers = Vec::new();
    for i in 0..OFFICE {
        let (r, h) = attacker_at(
            &mut w,
            &format!("{HOST}:{}", 20_000 + i),
            20_000 + i as u64,
            &TransportConfig::default(),
        );
        attackers.push((r, h));
    }
    assert!(w.run_until(10 * S, |w| attackers
        .iter()
        .all(|&(r, h)| raw_connected(w, r, h))));
    for (n, &(r, h)) in attackers.iter().enumerate() {
        let target = w.key(office[n]);
        write_messages(
            &mut w,
            r,
            h,
            &[
                Message::Register {
                    request: 1,
                    name: None,
                    groups: vec![],
                    candidates: vec![],
                    stream_only: false,
                },
                Message::Connect {
                    request: 2,
                    target: Target::Key(target),
                },
            ],
        );
    }
    // The attacker vanishes as soon as the server made the introductions,
    // before the office's first punches arrive.
    assert!(w.run_until(S, |w| w.server().stats().introductions == OFFICE as u64));
    w.raws.truncate(first_raw);
    w.run_for(5 * S);
    let office_source = SourcePrefix::of(ip("198.51.100.9"));
    let attacker_source = SourcePrefix::of(ip(HOST));
    assert_eq!(
        w.server().relays_allotted_to(office_source),
        0,
        "the office relays for the attacker's introductions, on the attacker's quota"
    );
    assert_eq!(
        w.server().relays_allotted_to(attacker_source),
        config.max_relays_per_source
    );
    assert!(
        w.server().stats().relay_refused > 0,
        "beyond the attacker's quota"
    );

    // The office's own call to its partner gets a relay, on its own quota.
    let path = connect_and_exchange(&mut w, office[0], partner, 20 * S);
    assert_eq!(path, PathKind::Relayed { via: addr(SERVER) });
    assert_eq!(w.server().relays_allotted_to(office_source), 1);
}

#[test]
fn keys_spread_over_the_addresses_of_one_ipv6_slash_64_share_one_registration_quota() {
    const KEYS: usize = 100;
    let mut w = World::new(63);
    let config = ServerConfig::default();
    w.start_server(config.clone());
    // The attacker uses a fresh address of its /64 for every key.
    let mut keys = Vec::new();
    for i in 0..KEYS {
        let host = format!("2001:db8:66:1::{:x}", i + 1);
        w.add_public_host(&host);
        keys.push(attacker_at(
            &mut w,
            &format!("[{host}]:9000"),
            30_000 + i as u64,
            &TransportConfig::default(),
        ));
    }
    // An honest client in the neighbouring /64.
    w.add_public_host("2001:db8:66:2::1");
    let mut c = w.client_config();
    c.detect_nat = false;
    let honest = w.add_client("[2001:db8:66:2::1]:4000", 31_000, c);
    assert!(w.run_until(10 * S, |w| keys
        .iter()
        .all(|&(r, h)| raw_connected(w, r, h))));
    for &(r, h) in &keys {
        let register = Message::Register {
            request: 1,
            name: None,
            groups: vec![],
            candidates: vec![],
            stream_only: false,
        };
        write_messages(&mut w, r, h, &[register]);
    }
    w.run_for(3 * S);
    let attacker = SourcePrefix::of(ip("2001:db8:66:1::1"));
    assert_eq!(
        w.server().registrations_from(attacker),
        config.max_registrations_per_source
    );
    assert_eq!(
        w.server().stats().source_limited,
        (KEYS - config.max_registrations_per_source) as u64
    );
    w.wait_registered(&[honest], 5 * S);
    assert_eq!(
        w.server().registration_count(),
        config.max_registrations_per_source + 1
    );
}
