//! Anti-amplification (spec §4.7, §4.8, §6.7): before an address is
//! validated, an endpoint never sends it more than three times the bytes it
//! received from it. Audited on every datagram of a handshake: plain,
//! refused, answered with a cookie, with duplicated and replayed
//! initiations, and on a path change.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use srudp_proto::{AcceptPolicy, CookieMode, Endpoint, EndpointConfig, Event};

const CLIENT: &str = "192.0.2.10:5000";
const SERVER: &str = "198.51.100.20:4433";

mod common;
use common::{addr, endpoint_configured as endpoint};

/// Bytes the server received from and sent to each address, and the
/// addresses it validated (handshake confirmed there, or path changed there).
#[derive(Default)]
struct Audit {
    received: HashMap<SocketAddr, u64>,
    sent: HashMap<SocketAddr, u64>,
    validated: HashSet<SocketAddr>,
    datagrams_checked: usize,
}

impl Audit {
    fn check(&mut self, to: SocketAddr, size: usize) {
        *self.sent.entry(to).or_default() += size as u64;
        self.datagrams_checked += 1;
        if self.validated.contains(&to) {
            return;
        }
        let received = self.received.get(&to).copied().unwrap_or(0);
        let sent = self.sent[&to];
        assert!(
            sent <= 3 * received,
            "sent {sent} bytes to unvalidated {to}, which sent only {received}"
        );
    }
}

/// A client and an audited server joined by hand, so the test decides what
/// arrives from where.
struct Bench {
    client: Endpoint,
    server: Endpoint,
    now: Instant,
    audit: Audit,
    buf: [u8; 1200],
}

impl Bench {
    fn new(edit_server: impl FnOnce(&mut EndpointConfig)) -> Bench {
        Bench {
            client: endpoint(1, |_| {}),
            server: endpoint(2, edit_server),
            now: Instant::now(),
            audit: Audit::default(),
            buf: [0; 1200],
        }
    }

    /// Hands `datagram` to the server as if from `from`, then drains and
    /// audits everything the server sends; returns what went to `from`.
    fn deliver_to_server(&mut self, from: SocketAddr, datagram: &[u8]) -> Vec<Vec<u8>> {
        *self.audit.received.entry(from).or_default() += datagram.len() as u64;
        self.server.handle_datagram(self.now, from, datagram);
        self.note_server_events();
        let mut replies = Vec::new();
        while let Some(t) = self.server.poll_transmit(self.now, &mut self.buf) {
            self.audit.check(t.destination, t.size);
            if t.destination == from {
                replies.push(self.buf[..t.size].to_vec());
            }
        }
        replies
    }

    fn note_server_events(&mut self) {
        while let Some((_, e)) = self.server.poll_event() {
            match e {
                Event::Connected { remote, .. } | Event::PathChanged { remote } => {
                    self.audit.validated.insert(remote);
                }
                _ => {}
            }
        }
    }

    /// Everything the client wants to send now.
    fn client_output(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(t) = self.client.poll_transmit(self.now, &mut self.buf) {
            out.push(self.buf[..t.size].to_vec());
        }
        out
    }

    fn deliver_to_client(&mut self, datagrams: &[Vec<u8>]) {
        for d in datagrams {
            self.client.handle_datagram(self.now, addr(SERVER), d);
        }
    }

    /// Carries datagrams both ways (client at `client_at`) until quiet.
    fn settle(&mut self, client_at: SocketAddr) {
        for _ in 0..1000 {
            let out = self.client_output();
            if out.is_empty() {
                return;
            }
            for d in out {
                let replies = self.deliver_to_server(client_at, &d);
                self.deliver_to_client(&replies);
            }
        }
        panic!("never settled");
    }

    fn connect(&mut self) {
        let key = self.server.public_key();
        self.client.connect(self.now, key, &[addr(SERVER)]).unwrap();
    }
}

fn spoofed(i: u64) -> SocketAddr {
    format!("203.0.113.{}:{}", i + 1, 7000 + i).parse().unwrap()
}

#[test]
fn a_plain_handshake_with_duplicated_and_replayed_initiations_never_amplifies() {
    let mut b = Bench::new(|_| {});
    b.connect();
    let init = b.client_output().remove(0);
    assert_eq!(init.len(), 1200);
    // The init arrives three times from the client, and is replayed from
    // spoofed addresses, several times each, before the client confirms.
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.extend(b.deliver_to_server(addr(CLIENT), &init));
    }
    for i in 0..5 {
        for _ in 0..4 {
            let r = b.deliver_to_server(spoofed(i), &init);
            assert!(r.iter().all(|d| d.len() < init.len()), "response ≤ init");
        }
    }
    assert!(!replies.is_empty(), "the cached response was resent");
    b.deliver_to_client(&replies);
    b.settle(addr(CLIENT));
    assert!(
        b.audit.validated.contains(&addr(CLIENT)),
        "handshake confirmed"
    );
    // Replays after confirmation still amplify nothing.
    for i in 5..8 {
        b.deliver_to_server(spoofed(i), &init);
    }
    assert!(
        b.audit.datagrams_checked >= 8,
        "{}",
        b.audit.datagrams_checked
    );
}

#[test]
fn refusals_never_amplify() {
    let mut b = Bench::new(|c| c.accept = AcceptPolicy::RefuseAll);
    b.connect();
    let init = b.client_output().remove(0);
    for i in 0..6 {
        let replies = b.deliver_to_server(spoofed(i % 2), &init);
        assert_eq!(replies.len(), 1, "each initiation gets one refusal");
        assert!(replies[0].len() < init.len());
    }
    assert_eq!(b.server.connection_count(), 0, "a refusal keeps no state");
}

#[test]
fn cookie_replies_and_the_cookie_round_trip_never_amplify() {
    let mut b = Bench::new(|c| c.cookie_mode = CookieMode::Always);
    b.connect();
    let init = b.client_output().remove(0);
    // Spoofed copies get a small cookie reply each, and create nothing.
    for i in 0..4 {
        let replies = b.deliver_to_server(spoofed(i), &init);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0][1], 4, "a CookieReply");
        assert!(replies[0].len() * 10 < init.len());
    }
    assert_eq!(b.server.connection_count(), 0);
    // The genuine client gets one too, resends with mac2, and connects.
    let replies = b.deliver_to_server(addr(CLIENT), &init);
    b.deliver_to_client(&replies);
    let resent = b.client_output();
    assert_eq!(resent.len(), 1, "the init goes again at once, with mac2");
    assert_eq!(resent[0][..1184], init[..1184]);
    assert_ne!(resent[0][1184..], init[1184..]);
    let replies = b.deliver_to_server(addr(CLIENT), &resent[0]);
    assert_eq!(replies[0][1], 2, "a HandshakeResponse");
    b.deliver_to_client(&replies);
    b.settle(addr(CLIENT));
    assert!(b.audit.validated.contains(&addr(CLIENT)));
    // The mac2-bearing init replayed from elsewhere proves nothing there:
    // once the connection exists it is a duplicate, answered from cache.
    for i in 10..13 {
        b.deliver_to_server(spoofed(i), &resent[0]);
    }
}

#[test]
fn a_path_change_is_validated_before_it_gets_more_than_three_times_its_bytes() {
    let mut b = Bench::new(|_| {});
    b.connect();
    b.settle(addr(CLIENT));
    assert!(b.audit.validated.contains(&addr(CLIENT)));
    let handle = {
        // The client's only connection.
        let mut h = None;
        while let Some((handle, _)) = b.client.poll_event() {
            h = Some(handle);
        }
        h.unwrap()
    };
    // The client's NAT rebinds: its packets now come from a new address.
    let rebound = addr("192.0.2.99:6000");
    b.client.write(handle, &vec![7u8; 50_000]).unwrap();
    for _ in 0..200 {
        let out = b.client_output();
        if out.is_empty() {
            b.now += Duration::from_millis(5);
            b.client.handle_timeout(b.now);
            b.server.handle_timeout(b.now);
            continue;
        }
        for d in out {
            let replies = b.deliver_to_server(rebound, &d);
            b.deliver_to_client(&replies);
        }
        if b.audit.validated.contains(&rebound) {
            break;
        }
    }
    assert!(
        b.audit.validated.contains(&rebound),
        "the new path was validated"
    );
    assert!(b.audit.sent.get(&rebound).is_some_and(|&n| n > 0));
}

#[test]
fn an_initiation_never_confirmed_gets_its_response_and_a_few_nudges_within_three_times_its_bytes() {
    // A replayed initiation from a victim's address: the responder answers
    // it, then nudges the "initiator" while it waits for a confirmation
    // that never comes (spec §4.2). All of it stays within three times the
    // one initiation's bytes, and ends with the handshake timeout.
    let mut b = Bench::new(|_| {});
    b.connect();
    let init = b.client_output().remove(0);
    let victim = spoofed(0);
    let first = b.deliver_to_server(victim, &init);
    assert_eq!(first.len(), 1, "the response");
    let mut nudges = 0;
    for _ in 0..200 {
        let Some(at) = b.server.poll_timeout() else {
            break;
        };
        b.now = at;
        b.server.handle_timeout(b.now);
        while let Some(t) = b.server.poll_transmit(b.now, &mut b.buf) {
            b.audit.check(t.destination, t.size);
            assert_eq!(t.destination, victim);
            assert_eq!(b.buf[1], 3, "a nudge is a Data packet");
            nudges += 1;
        }
    }
    assert_eq!(nudges, 7, "seven nudges, then nothing");
    assert_eq!(b.server.connection_count(), 0, "forgotten at the timeout");
    assert!(b.audit.sent[&victim] <= 3 * init.len() as u64);
}
