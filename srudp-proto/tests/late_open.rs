//! Late open (spec §4.5): the application connects to a peer whose
//! handshake its endpoint already answered; it gets that connection instead
//! of opening a second one.

mod common;

use std::time::Duration;

use common::{addr, Pair, A_ADDR, B_ADDR};
use srudp_proto::sim::LinkConfig;
use srudp_proto::{ConnectOptions, Event, HandshakePattern, TransportConfig};

fn late_open(pattern: HandshakePattern, seed: u64) {
    let mut p = Pair::public(
        seed,
        LinkConfig::default().with_latency(Duration::from_millis(10)),
        TransportConfig::default(),
    );
    let (ka, kb) = (p.key(p.a), p.key(p.b));
    let (a, b) = (p.a, p.b);
    let options = |peer, candidate| ConnectOptions {
        peer,
        candidates: vec![addr(candidate)],
        pattern: Some(pattern),
    };
    let now = p.sim.now();
    let ha = p
        .sim
        .endpoint(a)
        .connect_with(now, options(kb, B_ADDR))
        .unwrap();
    // Run until `b` answered `a`'s handshake, before `a` confirms it.
    let answered = p.sim.run_until(Duration::from_secs(1), |sim, _| {
        sim.endpoint(b).endpoint_stats().accepted == 1
    });
    assert!(answered, "seed {seed}: b answered a's handshake");
    assert_eq!(p.sim.endpoint(b).connection_count(), 1);

    // Now `b`'s application connects to `a`: it gets the answered connection.
    let now = p.sim.now();
    let hb = p
        .sim
        .endpoint(b)
        .connect_with(now, options(ka, A_ADDR))
        .unwrap();
    assert_eq!(
        p.sim.endpoint(b).connection_count(),
        1,
        "seed {seed}: no second connection"
    );

    let mut connected = [false, false];
    let mut got = Vec::new();
    p.sim.run_until(Duration::from_secs(5), |sim, events| {
        for e in events {
            if let Event::Connected { .. } = e.event {
                if e.node == a {
                    assert_eq!(e.handle, ha);
                    connected[0] = true;
                    sim.endpoint(a).write(ha, b"to the late side").unwrap();
                } else {
                    assert_eq!(e.handle, hb, "seed {seed}: b's own handle connects");
                    connected[1] = true;
                }
            }
            if e.node == b && e.event == Event::Readable {
                let mut buf = [0u8; 64];
                while let Ok(n) = sim.endpoint(b).read(hb, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            }
        }
        got == b"to the late side"
    });
    assert_eq!(connected, [true, true], "seed {seed}");
    assert_eq!(got, b"to the late side", "seed {seed}");
    assert_eq!(p.sim.endpoint(b).peer_identity(hb), Some(ka), "seed {seed}");
    assert_eq!(p.sim.endpoint(a).connection_count(), 1, "seed {seed}");
    assert_eq!(p.sim.endpoint(b).connection_count(), 1, "seed {seed}");
}

#[test]
fn a_late_nk_connect_takes_the_handshake_already_answered() {
    late_open(HandshakePattern::NK, 31);
}

#[test]
fn a_late_ik_connect_takes_the_handshake_already_answered() {
    late_open(HandshakePattern::IK, 32);
}
