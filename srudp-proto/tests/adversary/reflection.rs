//! Reflection through introductions (issue 15, finding 3; spec §4.4,
//! §11.4, §11.9). The attacker wants honest srudp clients to flood third
//! parties: it registers with third-party addresses as its "host
//! candidates" and asks to be introduced to honest clients (with one key or
//! a thousand), or, as a lying rendezvous server, sends honest clients
//! unsolicited introductions to made-up peers at third-party addresses.
//!
//! Each test counts every byte honest nodes send to the third parties
//! (none of which ever answers) and every byte the attacker sends, and
//! asserts the ratio is at most 10 (it was 1,244 before knocks and the
//! server's candidate filter). Each also checks that the attack really ran
//! (introductions happened, the honest side knocked) and that honest peers
//! still connect and talk.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use srudp_proto::rendezvous::message::MessageReader;
use srudp_proto::rendezvous::{ClientConfig, Message, Target};
use srudp_proto::sim::NatConfig;
use srudp_proto::wire::{Packet, HANDSHAKE_INIT_SIZE};
use srudp_proto::{
    AcceptPolicy, ConnectionHandle, Event, Keypair, PublicKey, Rng, UNANSWERED_BYTES_PER_CONNECTION,
};

use crate::world::{addr, data, peer_connected, Sent, World, SERVER};

const S: Duration = Duration::from_secs(1);

/// The ratio the issue allows: bytes at third parties ÷ bytes the attacker sent.
const MAX_RATIO: f64 = 10.0;

/// The victims of the reflection: public hosts (the server must not forward
/// them) and hosts on the honest clients' networks (private addresses, which
/// the server forwards: the clients' knock budgets must hold them). None of
/// them runs anything, so none ever answers.
fn third_parties() -> Vec<SocketAddr> {
    let public = (1..=8).map(|i| addr(&format!("198.18.0.{i}:53")));
    let private = (1..=7).map(|i| addr(&format!("10.0.0.{i}:80")));
    public.chain(private).collect()
}

/// Bytes honest nodes sent to `third`, and bytes the attacker's hosts sent
/// to `target` (what the attack needs; what they answer to the honest
/// clients' knocks and handshakes is left out, so the ratio is the one of
/// the cheapest attacker).
fn tally(
    captured: &[Sent],
    attacker: &HashSet<IpAddr>,
    target: SocketAddr,
    third: &[SocketAddr],
) -> (u64, u64) {
    let third: HashSet<SocketAddr> = third.iter().copied().collect();
    let mut at_third_parties = 0;
    let mut attacker_sent = 0;
    for s in captured {
        if attacker.contains(&s.from.ip()) {
            if s.to == target {
                attacker_sent += s.payload.len() as u64;
            }
        } else if third.contains(&s.to) {
            at_third_parties += s.payload.len() as u64;
        }
    }
    (at_third_parties, attacker_sent)
}

/// No honest node sent a HandshakeInit to a third party: only knocks.
fn assert_no_init_reached_a_third_party(captured: &[Sent], third: &[SocketAddr]) {
    for s in captured.iter().filter(|s| third.contains(&s.to)) {
        assert!(
            !matches!(Packet::parse(&s.payload), Ok(Packet::HandshakeInit(_))),
            "{} sent a HandshakeInit to {}",
            s.from,
            s.to
        );
        assert!(s.payload.len() < HANDSHAKE_INIT_SIZE);
    }
}

/// `n` honest clients on the open Internet (192.0.2.1…), registered, each
/// declaring its own address as host candidate.
fn honest_clients(w: &mut World, n: usize) -> Vec<usize> {
    let clients: Vec<usize> = (0..n)
        .map(|i| {
            let host = format!("192.0.2.{}", i + 1);
            w.add_public_host(&host);
            let mut c = w.client_config();
            c.detect_nat = false;
            c.host_candidates = vec![addr(&format!("{host}:4000"))];
            w.add_client(&format!("{host}:4000"), 1000 + i as u64, c)
        })
        .collect();
    w.wait_registered(&clients, 10 * S);
    clients
}

/// A bare endpoint at `socket` connected to the rendezvous server with IK:
/// the attacker speaks the rendezvous protocol itself, and refuses the
/// handshakes of the clients it is introduced to.
fn attacker_key(w: &mut World, socket: &str, key_seed: u64) -> (usize, ConnectionHandle) {
    let r = w.add_raw(socket, key_seed);
    w.raws[r]
        .endpoint
        .set_accept_policy(AcceptPolicy::RefuseAll);
    let h = w.connect_raw_to_server(r);
    (r, h)
}

fn frames(messages: &[Message]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for m in messages {
        let mut frame = [0u8; 1026];
        let n = m.emit(&mut frame).unwrap();
        bytes.extend_from_slice(&frame[..n]);
    }
    bytes
}

fn write_all(w: &mut World, r: usize, h: ConnectionHandle, bytes: &[u8]) {
    let n = w.raws[r].endpoint.write(h, bytes).unwrap();
    assert_eq!(n, bytes.len());
}

fn register_with(third: &[SocketAddr]) -> Message {
    Message::Register {
        request: 1,
        name: None,
        groups: Vec::new(),
        candidates: third.to_vec(),
        stream_only: false,
    }
}

/// Two honest clients get introduced and exchange data.
fn assert_honest_pair_connects(w: &mut World, a: usize, b: usize) {
    let (ea, eb) = (w.events(a).len(), w.events(b).len());
    let now = w.now();
    let key_b = w.key(b);
    w.client(a).connect_by_key(now, key_b).unwrap();
    let ok = w.run_until(10 * S, |w| {
        peer_connected(&w.events(a)[ea..]).is_some() && peer_connected(&w.events(b)[eb..]).is_some()
    });
    assert!(ok, "seed {}: the honest pair did not connect", w.seed);
    let (ha, _) = peer_connected(&w.events(a)[ea..]).unwrap();
    let (hb, _) = peer_connected(&w.events(b)[eb..]).unwrap();
    let (da, db) = (data(1, 50_000), data(2, 40_000));
    let (ra, rb) = w.exchange((a, ha), (b, hb), &da, &db, 20 * S);
    assert_eq!((ra, rb), (db, da), "honest data intact");
}

/// What the per-minute budget lets one client send in `elapsed`: a full
/// bucket, plus what it earns back meanwhile.
fn per_minute_bound(elapsed: Duration) -> u64 {
    let per_minute = srudp_proto::UNANSWERED_BYTES_PER_MINUTE;
    per_minute + (per_minute as f64 * elapsed.as_secs_f64() / 60.0) as u64
}

fn ratio(at_third_parties: u64, attacker_sent: u64) -> f64 {
    at_third_parties as f64 / attacker_sent.max(1) as f64
}

#[test]
fn one_key_asking_for_many_honest_clients_reflects_at_most_10x() {
    let mut w = World::new(15);
    w.start_server(Default::default());
    let honest = honest_clients(&mut w, 20);
    let victims: Vec<PublicKey> = honest.iter().map(|&i| w.key(i)).collect();
    let third = third_parties();
    w.add_public_host("192.0.2.200");
    let (r, h) = attacker_key(&mut w, "192.0.2.200:9000", 77);
    w.capture();
    // Register with third parties as host candidates, and ask for every
    // honest client at once, packed as tightly as the stream allows; again
    // every 12 s (after the callees' previous attempts timed out) for a
    // minute, within the server's request rate.
    let mut request = 2;
    for round in 0..5 {
        // Registered again each round: a registration expires after 45 s.
        let _ = round;
        let mut messages = vec![register_with(&third)];
        for key in &victims {
            messages.push(Message::Connect {
                request,
                target: Target::Key(*key),
            });
            request += 1;
        }
        write_all(&mut w, r, h, &frames(&messages));
        w.run_for(12 * S);
    }
    let introductions = w.server().stats().introductions;
    assert!(
        introductions >= 80,
        "the attack ran: {introductions} introductions"
    );
    let captured = w.captured.take().unwrap();
    let attacker = HashSet::from([addr("192.0.2.200:0").ip()]);
    let (at_third, sent) = tally(&captured, &attacker, addr(SERVER), &third);
    let public_hit = captured
        .iter()
        .filter(|s| third[..8].contains(&s.to))
        .count();
    assert_eq!(
        public_hit, 0,
        "the server forwarded no public host candidate"
    );
    assert!(
        at_third > 0,
        "the private candidates were knocked (the attack reached the clients)"
    );
    assert!(
        at_third <= introductions * UNANSWERED_BYTES_PER_CONNECTION,
        "{at_third} bytes for {introductions} introductions"
    );
    assert_no_init_reached_a_third_party(&captured, &third);
    let ratio = ratio(at_third, sent);
    println!(
        "one key: {introductions} introductions, {sent} bytes sent by the attacker, \
         {at_third} bytes at third parties: {ratio:.2}x"
    );
    assert!(ratio <= MAX_RATIO, "reflection {ratio:.2}x");
    assert_honest_pair_connects(&mut w, honest[0], honest[1]);
}

#[test]
fn a_thousand_keys_asking_for_the_same_clients_reflect_at_most_10x() {
    let mut w = World::new(16);
    w.start_server(Default::default());
    let honest = honest_clients(&mut w, 3);
    let victims: Vec<PublicKey> = honest.iter().map(|&i| w.key(i)).collect();
    let third = third_parties();
    // 1000 keys on 100 hosts, each asking for every honest client.
    let mut attackers = Vec::new();
    let mut attacker_ips = HashSet::new();
    for host in 0..100 {
        let ip = format!("192.0.2.{}", 100 + host);
        w.add_public_host(&ip);
        attacker_ips.insert(addr(&format!("{ip}:0")).ip());
        for k in 0..10 {
            attackers.push(attacker_key(
                &mut w,
                &format!("{ip}:{}", 9000 + k),
                5000 + host * 10 + k,
            ));
        }
    }
    w.capture();
    let started = w.now();
    let mut messages = vec![register_with(&third)];
    for (i, key) in victims.iter().enumerate() {
        messages.push(Message::Connect {
            request: 2 + i as u32,
            target: Target::Key(*key),
        });
    }
    let bytes = frames(&messages);
    for &(r, h) in &attackers {
        write_all(&mut w, r, h, &bytes);
    }
    w.run_for(60 * S);
    let introductions = w.server().stats().introductions;
    assert!(
        introductions >= 100,
        "the attack ran: {introductions} introductions"
    );
    let captured = w.captured.take().unwrap();
    let (at_third, sent) = tally(&captured, &attacker_ips, addr(SERVER), &third);
    assert!(at_third > 0, "the private candidates were knocked");
    assert_no_init_reached_a_third_party(&captured, &third);
    // Each honest client stays within its per-minute budget, however many
    // keys ask for it.
    let elapsed = w.now() - started;
    for &c in &honest {
        let from = w.clients[c].addr;
        let bytes: u64 = captured
            .iter()
            .filter(|s| s.from == from && third.contains(&s.to))
            .map(|s| s.payload.len() as u64)
            .sum();
        assert!(
            bytes <= per_minute_bound(elapsed),
            "client {c}: {bytes} bytes at third parties in {elapsed:?}"
        );
    }
    let ratio = ratio(at_third, sent);
    println!(
        "1000 keys: {introductions} introductions, {sent} bytes sent by the attacker, \
         {at_third} bytes at third parties: {ratio:.3}x"
    );
    assert!(ratio <= MAX_RATIO, "reflection {ratio:.3}x");
    assert_honest_pair_connects(&mut w, honest[0], honest[1]);
}

/// A lying rendezvous server: a bare endpoint holding the server key the
/// honest clients trust, which introduces them to made-up peers "at"
/// third-party addresses (`count` introductions, `per_round` at a time).
fn lying_server_run(
    seed: u64,
    count: usize,
    per_round: usize,
) -> (u64, u64, u64, Duration, World, usize) {
    let mut w = World::new(seed);
    let liar_keys = Keypair::generate(&mut Rng::from_seed(seed));
    let r = w.add_raw(SERVER, 0);
    // The raw endpoint's key is the one the client is configured to trust.
    w.raws[r].endpoint = {
        let mut config = srudp_proto::EndpointConfig::new(liar_keys.clone());
        config.rng_seed = Some(seed);
        srudp_proto::Endpoint::new(config).unwrap()
    };
    w.add_public_host("192.0.2.1");
    let mut c = ClientConfig::new(liar_keys.public(), addr(SERVER));
    c.detect_nat = false;
    let victim = w.add_client("192.0.2.1:4000", 11, c);
    let mut link = None;
    w.run_until(5 * S, |w| {
        link = w.raws[r].events.iter().find_map(|(h, e)| match e {
            Event::Connected { .. } => Some(*h),
            _ => None,
        });
        link.is_some()
    });
    let link = link.expect("the victim connected to the lying server");
    // The liar answers the victim's registrations, or the victim would
    // leave it (spec §11.3) and stop believing it.
    let observed = w.clients[victim].addr;
    let mut reader = MessageReader::default();
    let mut keep_victim = |w: &mut World| {
        answer_registrations(w, r, link, &mut reader, observed);
        false
    };
    w.run_until(2 * S, &mut keep_victim);
    w.capture();
    let started = w.now();
    let third = third_parties();
    let mut rng = Rng::from_seed(seed + 1);
    let mut sent_introductions = 0;
    while sent_introductions < count {
        let n = per_round.min(count - sent_introductions);
        let messages: Vec<Message> = (0..n)
            .map(|_| Message::Introduce {
                request: 0,
                peer: Keypair::generate(&mut rng).public(),
                name: None,
                start_in_ms: 0,
                relay_session: 0,
                candidates: third.clone(),
                peer_stream_only: false,
            })
            .collect();
        write_all(&mut w, r, link, &frames(&messages));
        sent_introductions += n;
        w.run_until(2 * S, &mut keep_victim);
    }
    w.run_until(12 * S, &mut keep_victim);
    let captured = w.captured.take().unwrap();
    let liar = HashSet::from([addr(SERVER).ip()]);
    let victim_addr = w.clients[victim].addr;
    let (at_third, sent) = tally(&captured, &liar, victim_addr, &third);
    assert_no_init_reached_a_third_party(&captured, &third);
    let elapsed = w.now() - started;
    (
        at_third,
        sent,
        sent_introductions as u64,
        elapsed,
        w,
        victim,
    )
}

/// Reads what the victim sent the liar and answers each Register.
fn answer_registrations(
    w: &mut World,
    r: usize,
    link: ConnectionHandle,
    reader: &mut MessageReader,
    observed: SocketAddr,
) {
    let mut replies = Vec::new();
    while let Ok(n @ 1..) = w.raws[r].endpoint.read(link, reader.want()) {
        if let Ok(Some(Message::Register { request, .. })) = reader.advance(n) {
            replies.push(Message::Registered {
                request,
                observed,
                refresh_secs: 15,
                expiry_secs: 45,
            });
        }
    }
    if !replies.is_empty() {
        write_all(w, r, link, &frames(&replies));
    }
}

#[test]
fn a_lying_server_with_one_unsolicited_introduction_reflects_at_most_10x() {
    let (at_third, sent, _, _, _, _) = lying_server_run(21, 1, 1);
    assert!(at_third > 0, "the victim knocked");
    assert!(at_third <= UNANSWERED_BYTES_PER_CONNECTION);
    let ratio = ratio(at_third, sent);
    println!(
        "lying server, 1 introduction: {sent} bytes sent, {at_third} at third parties: {ratio:.2}x"
    );
    assert!(ratio <= MAX_RATIO, "reflection {ratio:.2}x");
}

#[test]
fn a_lying_server_flooding_unsolicited_introductions_reflects_at_most_10x() {
    // 600 introductions in a minute, 20 per datagram-sized burst.
    let (at_third, sent, count, elapsed, mut w, victim) = lying_server_run(22, 600, 20);
    let ratio = ratio(at_third, sent);
    println!(
        "lying server, {count} introductions: {sent} bytes sent, {at_third} at third parties: {ratio:.3}x"
    );
    assert!(ratio <= MAX_RATIO, "reflection {ratio:.3}x");
    // However many introductions, the victim spends at most its per-minute
    // budget on third parties.
    assert!(
        at_third <= per_minute_bound(elapsed),
        "{at_third} bytes in {elapsed:?}"
    );
    assert!(
        at_third >= srudp_proto::UNANSWERED_BYTES_PER_MINUTE / 2,
        "the flood did reach the victim's budget"
    );
    // The victim is unharmed: a peer it reaches directly still connects.
    let peer_ip = "192.0.2.2";
    w.add_public_host(peer_ip);
    let p = w.add_raw(&format!("{peer_ip}:5000"), 99);
    let peer_key = w.raws[p].endpoint.public_key();
    let now = w.now();
    let h = w.clients[victim]
        .client
        .endpoint_mut()
        .connect(now, peer_key, &[addr(&format!("{peer_ip}:5000"))])
        .unwrap();
    let ok = w.run_until(5 * S, |w| {
        w.raws[p]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::Connected { .. }))
    });
    assert!(ok, "the victim still connects to a peer it chose");
    let ep = w.clients[victim].client.endpoint();
    assert!(!ep.is_closed(h));
    assert_eq!(ep.peer_identity(h), Some(peer_key));
}

/// Two honest clients behind NATs of the given kinds (public .1 and .2),
/// registered with their LAN addresses as host candidates; `a` asks for
/// `b`. Returns the virtual time from the request until both report the
/// connection, and whether it is relayed.
fn introduced_pair(seed: u64, nat_a: &NatConfig, nat_b: &NatConfig) -> (Duration, bool) {
    let mut w = World::new(seed);
    w.start_server(Default::default());
    let na = w.add_nat("198.51.100.1", nat_a.clone());
    let nb = w.add_nat("198.51.100.2", nat_b.clone());
    w.add_host_behind(na, "192.168.1.10");
    w.add_host_behind(nb, "192.168.2.20");
    for (socket, key_seed) in [
        ("192.168.1.10:5000", seed * 10 + 1),
        ("192.168.2.20:6000", seed * 10 + 2),
    ] {
        let mut c = w.client_config();
        c.host_candidates = vec![addr(socket)];
        c.detect_nat = false;
        w.add_client(socket, key_seed, c);
    }
    w.wait_registered(&[0, 1], 5 * S);
    let asked = w.now();
    let key_b = w.key(1);
    w.client(0).connect_by_key(asked, key_b).unwrap();
    let ok = w.run_until(20 * S, |w| {
        peer_connected(w.events(0)).is_some() && peer_connected(w.events(1)).is_some()
    });
    assert!(ok, "seed {seed}: the introduced pair did not connect");
    let (_, path) = peer_connected(w.events(0)).unwrap();
    (w.now() - asked, path.is_relayed())
}

/// Knocks change nothing for honest peers: pairs behind every kind of NAT
/// still connect, directly through cone NATs and through the relay when one
/// side is symmetric. Prints the median time from request to connection
/// (virtual time; BENCHMARKS.md compares it with the times before knocks).
#[test]
fn honest_introductions_through_nats_still_connect() {
    let cone = NatConfig::port_restricted_cone();
    for (kind, a, b, relayed) in [
        (
            "full cone",
            NatConfig::full_cone(),
            NatConfig::full_cone(),
            false,
        ),
        (
            "restricted cone",
            NatConfig::restricted_cone(),
            NatConfig::restricted_cone(),
            false,
        ),
        ("port-restricted cone", cone.clone(), cone.clone(), false),
        (
            "port-restricted + symmetric",
            cone.clone(),
            NatConfig::symmetric(),
            true,
        ),
    ] {
        let mut times: Vec<Duration> = (0..10)
            .map(|seed| {
                let (took, via_relay) = introduced_pair(seed, &a, &b);
                assert_eq!(via_relay, relayed, "{kind}, seed {seed}");
                took
            })
            .collect();
        times.sort();
        println!(
            "introduced handshake, {kind}: median {:?}, max {:?} (10 seeds)",
            times[5], times[9]
        );
    }
}
