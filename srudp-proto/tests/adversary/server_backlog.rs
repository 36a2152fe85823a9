//! Finding 8 of issue 15: a client that never reads its messages made the
//! rendezvous server hold about 4 MiB for it (the endpoint's send buffer)
//! instead of the 64 KiB backlog limit. The limit now counts what the
//! connection holds for the client (spec §11.3).

use srudp_proto::rendezvous::{close_code, Message, ServerConfig, Target};
use srudp_proto::sim::NatConfig;
use srudp_proto::{CloseReason, Event, PublicKey, TransportConfig};

use crate::rendezvous_attacker::{
    attacker_at, connect_and_exchange, honest_pair, raw_connected, write_messages, S,
};
use crate::world::World;

#[test]
fn a_client_that_never_reads_its_answers_costs_the_server_at_most_its_backlog_limit() {
    let mut w = World::new(81);
    w.start_server(ServerConfig::default());
    let limit = w.server().config().max_backlog;
    // The attacker's connection advertises a 1 KiB receive window and never
    // reads: the server may send it almost nothing, so every answer stays
    // in the server's send buffer.
    w.add_public_host("192.0.2.66");
    let transport = TransportConfig {
        receive_window: 1024,
        max_receive_window: 1024,
        ..TransportConfig::default()
    };
    let (r, h) = attacker_at(&mut w, "192.0.2.66:9000", 66, &transport);
    assert!(w.run_until(5 * S, |w| raw_connected(w, r, h)));
    let attacker_key = w.raws[r].endpoint.public_key();
    // 50 001 requests, each answered (Registered, PeerUnknown or
    // RateLimited): 400 kB of answers, 1.5 × the limit.
    let mut flood = vec![Message::Register {
        request: 1,
        name: None,
        groups: vec![],
        candidates: vec![],
        stream_only: false,
    }];
    flood.extend((0..50_000u32).map(|i| Message::Connect {
        request: 2 + i,
        target: Target::Key(PublicKey([7; 32])),
    }));
    write_messages(&mut w, r, h, &flood);
    let (a, b) = honest_pair(&mut w, NatConfig::full_cone());
    let mut most_held = 0;
    let closed = w.run_until(20 * S, |w| {
        if let Some(held) = w.server().held_for(&attacker_key) {
            most_held = most_held.max(held);
        }
        w.raws[r]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::Closed { .. }))
    });
    assert!(closed, "the server gave up on the attacker");
    assert!(
        most_held > limit / 2,
        "the attack did fill the backlog ({most_held} bytes)"
    );
    assert!(
        most_held <= limit,
        "the server held {most_held} bytes for a client that never reads (limit {limit})"
    );
    let reason = w.raws[r].events.iter().find_map(|(_, e)| match e {
        Event::Closed { reason } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        matches!(reason, Some(CloseReason::PeerClose { code, .. }) if code == close_code::BACKLOG),
        "{reason:?}"
    );
    assert!(w.server().held_for(&attacker_key).is_none(), "forgotten");
    // The honest pair registers, is introduced and exchanges data.
    w.wait_registered(&[a, b], 10 * S);
    connect_and_exchange(&mut w, a, b, 15 * S);
}
