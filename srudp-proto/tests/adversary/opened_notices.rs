//! Opened / PeerOpened (spec §11.4): the server tells a client that a peer
//! opened its NAT only for a pair it introduced. A registered client cannot
//! use it to reach keys it never asked to meet.

use std::time::Duration;

use srudp_proto::rendezvous::{Message, RequestId, ServerConfig, Target};
use srudp_proto::TransportConfig;

use crate::rendezvous_attacker::{attacker_at, raw_connected, read_messages, write_messages};
use crate::world::World;

const S: Duration = Duration::from_secs(1);

fn register(request: RequestId) -> Message {
    Message::Register {
        request,
        name: None,
        groups: vec![],
        candidates: vec![],
        stream_only: false,
    }
}

#[test]
fn opened_reaches_only_a_peer_the_sender_was_introduced_to() {
    let mut w = World::new(18);
    w.start_server(ServerConfig::default());
    let transport = TransportConfig::default();
    w.add_public_host("192.0.2.66");
    w.add_public_host("192.0.2.67");
    let (a, ha) = attacker_at(&mut w, "192.0.2.66:9000", 66, &transport);
    let (v, hv) = attacker_at(&mut w, "192.0.2.67:9000", 67, &transport);
    assert!(w.run_until(5 * S, |w| raw_connected(w, a, ha)
        && raw_connected(w, v, hv)));
    write_messages(&mut w, a, ha, &[register(1)]);
    write_messages(&mut w, v, hv, &[register(1)]);
    w.run_for(S);
    let (ka, kv) = (
        w.raws[a].endpoint.public_key(),
        w.raws[v].endpoint.public_key(),
    );
    let _ = read_messages(&mut w, v, hv);
    // Never introduced: the notice goes nowhere, however often it is sent.
    let notices = vec![Message::Opened { peer: kv }; 10];
    write_messages(&mut w, a, ha, &notices);
    w.run_for(S);
    let got = read_messages(&mut w, v, hv);
    assert!(
        !got.iter().any(|m| matches!(m, Message::PeerOpened { .. })),
        "{got:?}"
    );
    // Introduced (a asks to meet v): now it is forwarded, naming the sender.
    write_messages(
        &mut w,
        a,
        ha,
        &[
            Message::Connect {
                request: 2,
                target: Target::Key(kv),
            },
            Message::Opened { peer: kv },
        ],
    );
    w.run_for(S);
    let got = read_messages(&mut w, v, hv);
    assert!(
        got.iter()
            .any(|m| matches!(m, Message::Introduce { peer, .. } if *peer == ka)),
        "{got:?}"
    );
    assert_eq!(
        got.iter()
            .filter(|m| **m == Message::PeerOpened { peer: ka })
            .count(),
        1,
        "{got:?}"
    );
}
