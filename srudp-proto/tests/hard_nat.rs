//! The hard-NAT round (spec §4.4): one knock from spare sockets to the
//! peer's observed address, then paced knocks to random ports of that IP
//! address only, within the endpoint's own per-minute budget; a knock
//! answered from the address it went to starts a path validation there.

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{addr, endpoint, A_ADDR, B_ADDR};
use srudp_proto::{
    ConnectionHandle, Endpoint, Event, Transmit, TransportConfig, HARD_NAT_BYTES_PER_MINUTE,
    HARD_NAT_KNOCKS, HARD_NAT_SPARE_SOCKETS, MAX_DATAGRAM_SIZE,
};

/// Knock: version 1, type 7; Data (here a PATH_CHALLENGE): type 3.
const KNOCK: [u8; 2] = [1, 7];
const DATA: [u8; 2] = [1, 3];

/// The peer's address as a rendezvous server observed it (its NAT's).
const OBSERVED: &str = "203.0.113.22:40000";

/// Everything `e` sends at `now`, with its bytes.
fn drain(e: &mut Endpoint, now: Instant) -> Vec<(Transmit, Vec<u8>)> {
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    let mut out = Vec::new();
    while let Some(t) = e.poll_transmit(now, &mut buf) {
        out.push((t, buf[..t.size].to_vec()));
    }
    out
}

/// Two endpoints at `A_ADDR` and `B_ADDR`, connected directly; the handle
/// of a's connection and the instant it is established.
fn connected(seed: u64) -> (Endpoint, Endpoint, ConnectionHandle, Instant) {
    let (mut a, mut b) = (
        endpoint(seed, TransportConfig::default()),
        endpoint(seed + 1, TransportConfig::default()),
    );
    let (a_addr, b_addr) = (addr(A_ADDR), addr(B_ADDR));
    let mut now = Instant::now();
    let h = a.connect(now, b.public_key(), &[b_addr]).unwrap();
    let mut established = false;
    for _ in 0..50 {
        for (t, d) in drain(&mut a, now) {
            b.handle_datagram(now, a_addr, &d);
            assert_eq!(t.spare_sockets, 0);
        }
        for (_, d) in drain(&mut b, now) {
            a.handle_datagram(now, b_addr, &d);
        }
        while let Some((_, e)) = a.poll_event() {
            established |= matches!(e, Event::Connected { .. });
        }
        while b.poll_event().is_some() {}
        now += Duration::from_millis(1);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    assert!(established);
    (a, b, h, now)
}

/// Steps `e` through its timers for `span` from `from`, collecting what it
/// sends to `ip`.
fn sent_to(
    e: &mut Endpoint,
    ip: IpAddr,
    from: Instant,
    span: Duration,
) -> Vec<(Instant, Transmit, Vec<u8>)> {
    let mut out = Vec::new();
    let mut now = from;
    let end = from + span;
    while now < end {
        out.extend(
            drain(e, now)
                .into_iter()
                .filter(|(t, _)| t.destination.ip() == ip)
                .map(|(t, d)| (now, t, d)),
        );
        now = e
            .poll_timeout()
            .unwrap_or(end)
            .max(now + Duration::from_micros(100));
        e.handle_timeout(now);
    }
    out
}

#[test]
fn a_round_is_a_spare_probe_then_knocks_to_random_ports_of_the_observed_ip_only() {
    let (mut a, _b, h, now) = connected(10);
    let observed = addr(OBSERVED);
    assert!(a.start_hard_nat_round(now, h, observed));
    assert!(!a.start_hard_nat_round(now, h, observed), "one at a time");
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    let mut all = Vec::new();
    let mut t = now;
    let end = now + Duration::from_secs(5);
    while t < end {
        while let Some(tr) = a.poll_transmit(t, &mut buf) {
            all.push((tr, [buf[0], buf[1]]));
        }
        t = a
            .poll_timeout()
            .unwrap_or(end)
            .max(t + Duration::from_micros(100));
        a.handle_timeout(t);
    }
    let spare: Vec<_> = all.iter().filter(|(t, _)| t.spare_sockets > 0).collect();
    assert_eq!(spare.len(), 1, "one spare probe");
    assert_eq!(spare[0].0.spare_sockets, HARD_NAT_SPARE_SOCKETS);
    assert_eq!(spare[0].0.destination, observed);
    assert_eq!(
        spare[0].0.hop_limit,
        Some(2),
        "it dies before the peer's NAT"
    );
    assert_eq!(spare[0].1, KNOCK);
    let knocks: Vec<SocketAddr> = all
        .iter()
        .filter(|(t, head)| t.spare_sockets == 0 && *head == KNOCK)
        .map(|(t, _)| t.destination)
        .collect();
    assert_eq!(knocks.len(), usize::from(HARD_NAT_KNOCKS));
    assert!(knocks.iter().all(|k| k.ip() == observed.ip()));
    let ports: HashSet<u16> = knocks.iter().map(|k| k.port()).collect();
    assert!(ports.len() > 900, "random ports: {}", ports.len());
}

#[test]
fn the_same_seed_knocks_the_same_ports() {
    let ports = |seed| {
        let (mut a, _b, h, now) = connected(seed);
        let observed = addr(OBSERVED);
        a.start_hard_nat_round(now, h, observed);
        sent_to(&mut a, observed.ip(), now, Duration::from_secs(3))
            .into_iter()
            .map(|(_, t, _)| t.destination.port())
            .collect::<Vec<_>>()
    };
    let first = ports(20);
    assert_eq!(first.len(), 1 + usize::from(HARD_NAT_KNOCKS));
    assert_eq!(first, ports(20));
    assert_ne!(first, ports(30));
}

#[test]
fn a_knock_answered_from_its_own_address_starts_a_path_validation_there() {
    let (mut a, mut b, h, now) = connected(40);
    let observed = addr(OBSERVED);
    a.start_hard_nat_round(now, h, observed);
    let sent = sent_to(&mut a, observed.ip(), now, Duration::from_secs(2));
    // The 100th knock lands on one of b's spare sockets: b's endpoint gets
    // it from a's public address and answers it.
    let (at, hit, knock) = &sent[100];
    let a_public = addr("203.0.113.21:5000");
    b.handle_datagram(*at, a_public, knock);
    let reply = drain(&mut b, *at);
    assert_eq!(reply.len(), 1);
    assert_eq!(reply[0].0.destination, a_public);
    // The reply reaches a from the address its knock went to: a probes it.
    a.handle_datagram(*at, hit.destination, &reply[0].1);
    let out = drain(&mut a, *at);
    assert!(
        out.iter()
            .any(|(t, d)| t.destination == hit.destination && d[..2] == DATA),
        "a PATH_CHALLENGE to {}: {:?}",
        hit.destination,
        out.iter()
            .map(|(t, d)| (t.destination, d.len()))
            .collect::<Vec<_>>()
    );
    // The same reply from another port of that IP, or from elsewhere, is
    // not the answer to a knock sent there: nothing goes to it.
    for from in [
        SocketAddr::new(hit.destination.ip(), hit.destination.port() ^ 1),
        addr("198.51.100.99:4000"),
    ] {
        a.handle_datagram(*at, from, &reply[0].1);
        assert!(drain(&mut a, *at)
            .iter()
            .all(|(t, _)| t.destination != from));
    }
    // Before the reply, nothing but knocks went to that IP address.
    assert!(sent.iter().all(|(_, _, d)| d[..2] == KNOCK));
}

#[test]
fn a_flood_of_rounds_naming_a_victim_sends_it_at_most_the_budget_per_minute() {
    // A lying rendezvous server introduces us to 40 peers, all "observed"
    // at the victim's IP address, and each connection runs its round.
    let victim = addr("198.51.100.66:443");
    let mut a = endpoint(50, TransportConfig::default());
    let mut peers: Vec<Endpoint> = (0..40)
        .map(|i| endpoint(100 + i, TransportConfig::default()))
        .collect();
    let a_addr = addr(A_ADDR);
    let mut now = Instant::now();
    let mut handles = Vec::new();
    for (i, p) in peers.iter().enumerate() {
        let p_addr = SocketAddr::new(addr(B_ADDR).ip(), 5000 + i as u16);
        handles.push((a.connect(now, p.public_key(), &[p_addr]).unwrap(), p_addr));
    }
    for _ in 0..50 {
        for (t, d) in drain(&mut a, now) {
            if let Some(i) = handles.iter().position(|(_, p)| *p == t.destination) {
                peers[i].handle_datagram(now, a_addr, &d);
            }
        }
        for (i, p) in peers.iter_mut().enumerate() {
            for (_, d) in drain(p, now) {
                a.handle_datagram(now, handles[i].1, &d);
            }
        }
        now += Duration::from_millis(1);
        a.handle_timeout(now);
        peers.iter_mut().for_each(|p| p.handle_timeout(now));
    }
    let started = handles
        .iter()
        .filter(|(h, _)| a.start_hard_nat_round(now, *h, victim))
        .count();
    assert_eq!(started, 40);
    let sent = sent_to(&mut a, victim.ip(), now, Duration::from_secs(60));
    let bytes: u64 = sent
        .iter()
        .map(|(_, t, _)| t.size as u64 * u64::from(t.spare_sockets.max(1)))
        .sum();
    // What the budget holds, plus what it earns back in the minute.
    assert!(bytes <= 2 * HARD_NAT_BYTES_PER_MINUTE, "{bytes} bytes");
    assert!(bytes >= HARD_NAT_BYTES_PER_MINUTE / 2, "{bytes} bytes");
    // Without the budget: 40 rounds of 43 520 bytes.
    assert!(bytes < 40 * 43_520 / 10);
}
