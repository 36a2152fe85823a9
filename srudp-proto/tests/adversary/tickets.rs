//! Attacks on tickets (spec §4.9): a ticket turns knowing a listener's
//! public key — which the rendezvous server knows — into a capability.
//! Without the ticket's secret nobody connects: not with NK, not with IK,
//! not with a guessed secret, not by crossing the listener's own connect.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use srudp_proto::{
    AcceptPolicy, CloseReason, ConnectOptions, ConnectionHandle, Endpoint, Event, HandshakePattern,
    PublicKey, Rng, TicketSecret,
};

use crate::common::addr;

/// One endpoint of the network: its address, itself, and what it reported.
type Node = (SocketAddr, Endpoint, Vec<(ConnectionHandle, Event)>);

/// Endpoints on a lossless network, each at its own address.
struct Net {
    nodes: Vec<Node>,
    now: Instant,
}

fn endpoint(seed: u64, accept: AcceptPolicy) -> Endpoint {
    crate::common::endpoint_configured(seed, |c| c.accept = accept)
}

impl Net {
    fn new() -> Net {
        Net {
            nodes: Vec::new(),
            now: Instant::now(),
        }
    }

    fn add(&mut self, at: &str, endpoint: Endpoint) -> usize {
        self.nodes.push((addr(at), endpoint, Vec::new()));
        self.nodes.len() - 1
    }

    fn key(&self, i: usize) -> PublicKey {
        self.nodes[i].1.public_key()
    }

    fn at(&self, i: usize) -> SocketAddr {
        self.nodes[i].0
    }

    fn ep(&mut self, i: usize) -> &mut Endpoint {
        &mut self.nodes[i].1
    }

    fn connect(
        &mut self,
        from: usize,
        to: usize,
        pattern: HandshakePattern,
        ticket: Option<&TicketSecret>,
    ) -> ConnectionHandle {
        let options = ConnectOptions {
            pattern: Some(pattern),
            ticket: ticket.cloned(),
            ..ConnectOptions::new(self.key(to), vec![self.at(to)])
        };
        let now = self.now;
        self.ep(from).connect_with(now, options).unwrap()
    }

    /// Delivers every datagram, 10 ms per round, for `rounds` rounds.
    fn run(&mut self, rounds: usize) {
        let mut buf = [0u8; 1500];
        for _ in 0..rounds {
            let mut flights = Vec::new();
            for (from, ep, _) in &mut self.nodes {
                while let Some(t) = ep.poll_transmit(self.now, &mut buf) {
                    flights.push((*from, t.destination, buf[..t.size].to_vec()));
                }
            }
            for (from, to, d) in flights {
                if let Some((_, ep, _)) = self.nodes.iter_mut().find(|n| n.0 == to) {
                    ep.handle_datagram(self.now, from, &d);
                }
            }
            self.now += Duration::from_millis(10);
            for (_, ep, events) in &mut self.nodes {
                ep.handle_timeout(self.now);
                events.extend(std::iter::from_fn(|| ep.poll_event()));
            }
        }
    }

    fn connected(&self, i: usize) -> Vec<ConnectionHandle> {
        self.nodes[i]
            .2
            .iter()
            .filter(|(_, e)| matches!(e, Event::Connected { .. }))
            .map(|(h, _)| *h)
            .collect()
    }

    fn closed_with(&self, i: usize, h: ConnectionHandle) -> Option<CloseReason> {
        self.nodes[i].2.iter().find_map(|(hh, e)| match e {
            Event::Closed { reason } if *hh == h => Some(reason.clone()),
            _ => None,
        })
    }

    fn read(&mut self, i: usize, h: ConnectionHandle) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let n = self.ep(i).read(h, &mut buf).unwrap_or(0);
        buf[..n].to_vec()
    }
}

fn secret(seed: u64) -> TicketSecret {
    TicketSecret::generate(&mut Rng::from_seed(seed))
}

#[test]
fn without_the_ticket_the_listeners_key_opens_nothing() {
    let ticket = secret(1);
    let mut net = Net::new();
    let listener = net.add(
        "192.0.2.1:1",
        endpoint(1, AcceptPolicy::Ticket(ticket.clone())),
    );
    // The attackers know the listener's key (a rendezvous server does), with
    // either pattern, no ticket or a guessed one.
    let attempts = [
        (HandshakePattern::NK, None),
        (HandshakePattern::IK, None),
        (HandshakePattern::NK, Some(secret(666))),
        (HandshakePattern::IK, Some(secret(667))),
    ];
    let mut attackers = Vec::new();
    for (i, (pattern, guess)) in attempts.iter().enumerate() {
        let m = net.add(
            &format!("203.0.113.{}:1", i + 1),
            endpoint(100 + i as u64, AcceptPolicy::RefuseAll),
        );
        let h = net.connect(m, listener, *pattern, guess.as_ref());
        net.ep(m).write(h, b"let me in").unwrap();
        attackers.push((m, h));
    }
    // And the ticket's holder, beside them.
    let holder = net.add("198.51.100.1:1", endpoint(9, AcceptPolicy::RefuseAll));
    let hh = net.connect(holder, listener, HandshakePattern::NK, Some(&ticket));
    net.ep(holder).write(hh, b"I hold the ticket").unwrap();
    net.run(50);

    for (m, h) in attackers {
        assert_eq!(
            net.closed_with(m, h),
            Some(CloseReason::TicketRefused),
            "an authenticated refusal that says why"
        );
        assert!(net.connected(m).is_empty());
    }
    let stats = net.ep(listener).endpoint_stats().clone();
    assert_eq!(stats.refused_without_ticket, 4);
    assert_eq!(stats.accepted, 1, "only the holder");
    let accepted = net.connected(listener);
    assert_eq!(accepted.len(), 1);
    assert_eq!(net.read(listener, accepted[0]), b"I hold the ticket");
    assert_eq!(net.connected(holder), vec![hh]);
}

#[test]
fn a_listener_without_the_ticket_is_closed_by_the_holder() {
    // The holder proves the ticket and expects the proof back: a responder
    // that does not hold it (here one that takes anybody) is not the peer
    // the ticket was for.
    let ticket = secret(2);
    let mut net = Net::new();
    let impostor = net.add("192.0.2.1:1", endpoint(3, AcceptPolicy::AcceptAll));
    let holder = net.add("198.51.100.1:1", endpoint(4, AcceptPolicy::RefuseAll));
    let h = net.connect(holder, impostor, HandshakePattern::NK, Some(&ticket));
    net.ep(holder)
        .write(h, b"for the ticket's owner only")
        .unwrap();
    net.run(50);
    assert_eq!(
        net.closed_with(holder, h),
        Some(CloseReason::PeerWithoutTicket)
    );
    assert!(net.connected(holder).is_empty(), "never reported connected");
    // The impostor's application never sees a connection: the holder's
    // first packet is its CLOSE, which ends the handshake.
    assert!(net.connected(impostor).is_empty());
    assert_eq!(
        net.ep(impostor).connection_count(),
        0,
        "nothing kept either"
    );
}

/// A listener punching toward an introduced peer with its ticket, while the
/// peer punches back (a rendezvous introduction, spec §11.4): whichever key
/// is higher, a peer without the ticket gets no connection, and a holder does.
#[test]
fn crossing_connects_need_the_ticket_on_both_sides_whichever_key_is_higher() {
    for seed in 0..6 {
        let ticket = secret(seed);
        for peer_holds_it in [false, true] {
            let mut net = Net::new();
            let listener = net.add(
                "192.0.2.1:1",
                endpoint(10 + seed, AcceptPolicy::Ticket(ticket.clone())),
            );
            let peer = net.add(
                "198.51.100.1:1",
                endpoint(20 + seed, AcceptPolicy::AcceptAll),
            );
            let hl = net.connect(listener, peer, HandshakePattern::IK, Some(&ticket));
            let peer_ticket = peer_holds_it.then(|| ticket.clone());
            let hp = net.connect(peer, listener, HandshakePattern::IK, peer_ticket.as_ref());
            net.ep(peer).write(hp, b"hello").unwrap();
            net.run(80);
            let higher = if net.key(listener) > net.key(peer) {
                "listener"
            } else {
                "peer"
            };
            if peer_holds_it {
                assert_eq!(
                    net.connected(listener),
                    vec![hl],
                    "seed {seed}, {higher} higher"
                );
                assert_eq!(net.connected(peer), vec![hp]);
                assert_eq!(net.read(listener, hl), b"hello");
            } else {
                assert!(
                    net.connected(listener).is_empty(),
                    "seed {seed}, {higher} higher: the listener connects to nobody"
                );
                let why = net.closed_with(listener, hl);
                assert!(
                    matches!(
                        why,
                        Some(CloseReason::PeerWithoutTicket)
                            | Some(CloseReason::HandshakeTimeout)
                            | None
                    ),
                    "seed {seed}: {why:?}"
                );
                assert!(
                    net.connected(peer)
                        .iter()
                        .all(|h| net.nodes[peer].1.is_closed(*h)),
                    "seed {seed}, {higher} higher: whatever the peer opened is closed"
                );
            }
        }
    }
}
