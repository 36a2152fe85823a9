//! Attacks on the peer's identity (spec §4.5, §4.7): an anonymous (NK)
//! initiator sends from an address it holds that is one of the candidates of
//! a connect toward a key — a LAN host holding the peer's advertised private
//! address, an on-path attacker, or the rendezvous server, which chooses the
//! candidates. It must never be taken for that key: a connection reports a
//! peer only when the handshake authenticated it.

use std::time::{Duration, Instant};

use srudp_proto::{
    AcceptPolicy, CloseReason, ConnectOptions, ConnectionHandle, Endpoint, Event, HandshakePattern,
    PublicKey,
};

use crate::common::addr;

/// The victim V, the peer P it wants to reach, and the attacker M, which
/// sends from P's candidate address. Seeds are chosen so that V's key is
/// the higher one: in a crossing, V is the side that answers (spec §4.5).
struct World {
    v: Endpoint,
    p: Endpoint,
    m: Endpoint,
    now: Instant,
}

const V_ADDR: &str = "192.0.2.10:5000";
/// P's advertised address, which the attacker holds (or can send from).
const P_ADDR: &str = "192.168.1.20:5000";
/// Where the genuine P really is.
const P_REAL: &str = "198.51.100.20:5000";

fn endpoint(seed: u64, accept: AcceptPolicy) -> Endpoint {
    crate::common::endpoint_configured(seed, |c| c.accept = accept)
}

impl World {
    fn new(accept: impl Fn(PublicKey) -> AcceptPolicy) -> World {
        let mut seed = 1;
        loop {
            let p = endpoint(seed + 1, AcceptPolicy::AcceptAll);
            let v = endpoint(seed, accept(p.public_key()));
            if v.public_key() > p.public_key() {
                let m = endpoint(seed + 2, AcceptPolicy::AcceptAll);
                return World {
                    v,
                    p,
                    m,
                    now: Instant::now(),
                };
            }
            seed += 3;
        }
    }

    /// V connects to P with IK, punching P's advertised address (the
    /// attacker's) and P's real one.
    fn v_connects_to_p(&mut self) -> ConnectionHandle {
        self.v
            .connect_with(
                self.now,
                ConnectOptions {
                    peer: self.p.public_key(),
                    candidates: vec![addr(P_ADDR), addr(P_REAL)],
                    pattern: Some(HandshakePattern::IK),
                    ticket: None,
                },
            )
            .unwrap()
    }

    /// The attacker opens an anonymous (NK) connection to V and writes `bytes`.
    fn m_attacks(&mut self, bytes: &[u8]) -> ConnectionHandle {
        let h = self
            .m
            .connect_with(
                self.now,
                ConnectOptions {
                    peer: self.v.public_key(),
                    candidates: vec![addr(V_ADDR)],
                    pattern: Some(HandshakePattern::NK),
                    ticket: None,
                },
            )
            .unwrap();
        self.m.write(h, bytes).unwrap();
        h
    }

    /// Delivers everything queued, in rounds, for `rounds` × 10 ms. V's
    /// datagrams to P's advertised address reach the attacker; those to
    /// P's real address reach P only if `p_online`.
    fn run(&mut self, rounds: usize, p_online: bool) {
        let mut buf = [0u8; 1500];
        for _ in 0..rounds {
            while let Some(t) = self.v.poll_transmit(self.now, &mut buf) {
                if t.destination == addr(P_ADDR) {
                    self.m
                        .handle_datagram(self.now, addr(V_ADDR), &buf[..t.size]);
                } else if t.destination == addr(P_REAL) && p_online {
                    self.p
                        .handle_datagram(self.now, addr(V_ADDR), &buf[..t.size]);
                }
            }
            while let Some(t) = self.m.poll_transmit(self.now, &mut buf) {
                // Whatever the attacker sends leaves from P's advertised address.
                self.v
                    .handle_datagram(self.now, addr(P_ADDR), &buf[..t.size]);
            }
            while let Some(t) = self.p.poll_transmit(self.now, &mut buf) {
                if p_online {
                    self.v
                        .handle_datagram(self.now, addr(P_REAL), &buf[..t.size]);
                }
            }
            self.now += Duration::from_millis(10);
            for e in [&mut self.v, &mut self.p, &mut self.m] {
                e.handle_timeout(self.now);
            }
        }
    }
}

/// Everything V's application learns: (handle, event) in order.
fn events(e: &mut Endpoint) -> Vec<(ConnectionHandle, Event)> {
    std::iter::from_fn(|| e.poll_event()).collect()
}

fn read_all(e: &mut Endpoint, h: ConnectionHandle) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = e.read(h, &mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// No event anywhere says the attacker's connection is P.
fn assert_never_attributed_to_p(seen: &[(ConnectionHandle, Event)], p: PublicKey) {
    for (h, e) in seen {
        if let Event::Connected { peer, .. } = e {
            assert_ne!(*peer, Some(p), "{h}: connected as P without proof: {e:?}");
        }
    }
}

#[test]
fn late_open_an_anonymous_initiation_from_a_candidate_address_is_not_adopted() {
    let mut w = World::new(|_| AcceptPolicy::AcceptAll);
    let p_key = w.p.public_key();
    // The attacker's NK initiation reaches V first; V answers it.
    let hm = w.m_attacks(b"attacker's bytes");
    w.run(1, false);
    assert_eq!(w.v.pending_handshake_count(), 1);
    // Then V's application connects to P, listing the attacker's address.
    let hv = w.v_connects_to_p();
    assert_eq!(
        w.v.connection_count(),
        2,
        "V's connect opens its own connection"
    );
    w.run(50, false);
    let seen = events(&mut w.v);
    assert_never_attributed_to_p(&seen, p_key);
    assert_eq!(w.v.peer_identity(hv), None, "P never answered: nobody is P");
    assert!(
        read_all(&mut w.v, hv).is_empty(),
        "V's connection to P reads nothing"
    );
    // The attacker got an anonymous incoming connection at most.
    let attacker_conn = seen
        .iter()
        .find_map(|(h, e)| matches!(e, Event::Connected { incoming: true, .. }).then_some(*h));
    let hv_in = attacker_conn.expect("V accepts anonymous connections (AcceptAll)");
    assert_ne!(hv_in, hv);
    assert_eq!(
        w.v.peer_identity(hv_in),
        None,
        "anonymous it is, and anonymous it stays"
    );
    let _ = hm;

    // And the genuine P still gets through on V's connection.
    w.run(150, true);
    assert_eq!(w.v.peer_identity(hv), Some(p_key));
}

#[test]
fn crossing_an_anonymous_initiation_is_refused_under_an_accept_list() {
    let mut w = World::new(|p| AcceptPolicy::AcceptKeys(vec![p]));
    let p_key = w.p.public_key();
    let hv = w.v_connects_to_p();
    // V is punching toward P (with the higher key, it would answer P's own
    // crossing initiation); the attacker's NK initiation comes from P's
    // candidate address.
    let hm = w.m_attacks(b"attacker's bytes");
    w.run(50, false);
    let seen = events(&mut w.v);
    assert_never_attributed_to_p(&seen, p_key);
    assert!(
        seen.iter()
            .all(|(_, e)| !matches!(e, Event::Connected { .. })),
        "V connects to nobody: {seen:?}"
    );
    assert_eq!(w.v.connection_count(), 1, "only V's own connect");
    assert!(w.v.endpoint_stats().refused >= 1);
    // The attacker learns it was refused, by a response only V could write.
    let m_seen = events(&mut w.m);
    assert!(
        m_seen.iter().any(|(h, e)| *h == hm
            && matches!(
                e,
                Event::Closed {
                    reason: CloseReason::Refused
                }
            )),
        "the attacker is refused: {m_seen:?}"
    );
    // V's initiation is unharmed: P, online now, completes it.
    w.run(150, true);
    assert_eq!(w.v.peer_identity(hv), Some(p_key));
    let seen = events(&mut w.v);
    assert!(seen.iter().any(
        |(h, e)| *h == hv && matches!(e, Event::Connected { peer: Some(k), .. } if *k == p_key)
    ));
}

#[test]
fn crossing_an_anonymous_initiation_never_takes_over_the_connect() {
    let mut w = World::new(|_| AcceptPolicy::AcceptAll);
    let p_key = w.p.public_key();
    let hv = w.v_connects_to_p();
    w.m_attacks(b"attacker's bytes");
    w.run(50, false);
    let seen = events(&mut w.v);
    assert_never_attributed_to_p(&seen, p_key);
    assert!(
        seen.iter().all(|(h, _)| *h != hv),
        "V's connect to P sees nothing of the attacker: {seen:?}"
    );
    assert!(read_all(&mut w.v, hv).is_empty());
    // P comes online and connects too, with IK: a genuine crossing.
    let hp =
        w.p.connect_with(
            w.now,
            ConnectOptions {
                peer: w.v.public_key(),
                candidates: vec![addr(V_ADDR)],
                pattern: Some(HandshakePattern::IK),
                ticket: None,
            },
        )
        .unwrap();
    w.p.write(hp, b"from the real P").unwrap();
    w.run(150, true);
    assert_eq!(w.v.peer_identity(hv), Some(p_key));
    assert_eq!(read_all(&mut w.v, hv), b"from the real P");
}
