//! Rate limits, bounds and hostile clients (spec §11.2, §11.3, §11.5).

use std::time::Duration;

use srudp_proto::rendezvous::{
    close_code, ClientEvent, ErrorCode, Message, Name, ServerConfig, Target,
};
use srudp_proto::{CloseReason, ConnectionHandle, Event, PublicKey};

use crate::introduction::introduce;
use crate::world::World;

const S: Duration = Duration::from_secs(1);

/// A bare endpoint on the open Internet connected to the server with IK.
fn raw_client(w: &mut World, host: &str, key_seed: u64) -> (usize, ConnectionHandle) {
    w.add_public_host(host);
    let r = w.add_raw(&format!("{host}:9000"), key_seed);
    let h = w.connect_raw_to_server(r);
    (r, h)
}

fn write_messages(w: &mut World, r: usize, h: ConnectionHandle, messages: &[Message]) {
    let mut bytes = Vec::new();
    for m in messages {
        let mut frame = [0u8; 1026];
        let n = m.emit(&mut frame).unwrap();
        bytes.extend_from_slice(&frame[..n]);
    }
    let n = w.raws[r].endpoint.write(h, &bytes).unwrap();
    assert_eq!(n, bytes.len());
}

/// Two honest clients on the open Internet (not yet registered).
fn honest_pair(w: &mut World) {
    for (i, host) in ["192.0.2.10", "192.0.2.11"].into_iter().enumerate() {
        w.add_public_host(host);
        let mut c = w.client_config();
        c.detect_nat = false;
        w.add_client(&format!("{host}:4000"), 100 + i as u64, c);
    }
}

#[test]
fn a_request_flood_from_one_client_is_rate_limited_while_others_are_served() {
    let mut w = World::new(1);
    w.start_server(ServerConfig::default());
    let (r, h) = raw_client(&mut w, "192.0.2.66", 66);
    let mut flood = vec![Message::Register {
        request: 1,
        name: Some(Name::new("flooder").unwrap()),
        groups: vec![],
        candidates: vec![],
        stream_only: false,
    }];
    for i in 0..20_000u32 {
        flood.push(Message::Connect {
            request: 2 + i,
            target: Target::Key(PublicKey([7; 32])),
        });
        if i % 20 == 0 {
            flood.push(Message::Register {
                request: 100_000 + i,
                name: None,
                groups: vec![],
                candidates: vec![],
                stream_only: false,
            });
        }
    }
    write_messages(&mut w, r, h, &flood);
    honest_pair(&mut w);
    w.wait_registered(&[0, 1], 10 * S);
    let _ = introduce(&mut w, 0, 1, 10 * S);
    w.run_for(2 * S);
    let stats = w.server().stats().clone();
    // 21 001 requests, of which at most the burst (20) plus 5 per second got
    // through; the rest was refused cheaply. (Their 168 kB of answers stay
    // within the flooder's backlog limit, and it acknowledges them.)
    let elapsed = w.elapsed().as_secs();
    let accepted = stats.peer_unknown + stats.registrations - 2;
    assert!(accepted <= 20 + 5 * elapsed, "{stats:?} after {elapsed} s");
    assert!(stats.rate_limited >= 21_001 - 20 - 5 * elapsed, "{stats:?}");
    assert_eq!(stats.introductions, 1, "the honest pair was served");
    assert_eq!(w.server().registration_count(), 3);
}

#[test]
fn a_malformed_message_closes_only_its_senders_connection() {
    let mut w = World::new(2);
    w.start_server(ServerConfig::default());
    honest_pair(&mut w);
    w.wait_registered(&[0, 1], 5 * S);
    let (r, h) = raw_client(&mut w, "192.0.2.66", 66);
    // A frame of an unknown type is skipped; a Register whose name has an
    // upper-case letter is malformed.
    let mut bytes = vec![0x00, 0x03, 0x7e, 0xaa, 0xbb];
    bytes.extend_from_slice(&[0x00, 0x09, 0x01, 0, 0, 0, 1, 0x02, b'N', b'o', 0x00]);
    w.raws[r].endpoint.write(h, &bytes).unwrap();
    let closed = w.run_until(5 * S, |w| {
        w.raws[r]
            .events
            .iter()
            .any(|(hh, e)| *hh == h && matches!(e, Event::Closed { .. }))
    });
    assert!(closed);
    let reason = w.raws[r]
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::Closed { reason } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        matches!(reason, CloseReason::PeerClose { code, .. } if code == close_code::MALFORMED_MESSAGE),
        "{reason:?}"
    );
    assert_eq!(w.server().stats().clients_dropped, 1);
    // The others did not notice.
    w.run_for(S);
    assert!(w.client(0).is_registered() && w.client(1).is_registered());
    let _ = introduce(&mut w, 0, 1, 10 * S);
    for i in 0..2 {
        assert!(!w
            .events(i)
            .iter()
            .any(|e| matches!(e, ClientEvent::Disconnected { .. })));
    }
}

#[test]
fn a_frame_with_an_impossible_length_closes_the_connection() {
    let mut w = World::new(3);
    w.start_server(ServerConfig::default());
    let (r, h) = raw_client(&mut w, "192.0.2.66", 66);
    w.raws[r].endpoint.write(h, &[0xff, 0xff, 0x01]).unwrap();
    let closed = w.run_until(5 * S, |w| {
        w.raws[r]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::Closed { .. }))
    });
    assert!(closed);
    assert_eq!(w.server().stats().clients_dropped, 1);
}

#[test]
fn the_server_holds_at_most_its_configured_registrations() {
    let mut w = World::new(4);
    w.start_server(ServerConfig {
        max_registrations: 2,
        ..ServerConfig::default()
    });
    honest_pair(&mut w);
    w.wait_registered(&[0, 1], 5 * S);
    w.add_public_host("192.0.2.12");
    let mut c = w.client_config();
    c.detect_nat = false;
    let third = w.add_client("192.0.2.12:4000", 102, c);
    let refused = w.wait_for(third, 5 * S, |e| {
        matches!(e, ClientEvent::RegistrationRefused { .. })
    });
    assert_eq!(
        refused,
        Some(ClientEvent::RegistrationRefused {
            code: ErrorCode::ServerFull
        })
    );
    assert_eq!(w.server().registration_count(), 2);
}

#[test]
fn relay_sessions_are_bounded_and_allotted_to_the_pairs_that_relay_first() {
    use srudp_proto::rendezvous::{RendezvousError, ServerEvent};
    use srudp_proto::sim::NatConfig;
    let mut w = World::new(5);
    w.start_server(ServerConfig {
        max_relays: 1,
        ..ServerConfig::default()
    });
    // Two pairs behind symmetric NATs: each needs the relay.
    for (i, public) in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
    ]
    .into_iter()
    .enumerate()
    {
        let nat = w.add_nat(public, NatConfig::symmetric());
        let host = format!("192.168.{}.10", i + 1);
        w.add_host_behind(nat, &host);
        let mut c = w.client_config();
        c.detect_nat = false;
        w.add_client(&format!("{host}:5000"), 200 + i as u64, c);
    }
    w.wait_registered(&[0, 1, 2, 3], 5 * S);
    let ((ha, _), (hb, _)) = introduce(&mut w, 0, 1, 15 * S);
    assert_eq!(w.server().relay_count(), 1);
    // The second pair is offered a session, but the relay is full when it
    // tries to use it: its datagrams are refused and the attempt times out.
    let now = w.now();
    let k3 = w.key(3);
    let request = w.client(2).connect_by_key(now, k3).unwrap();
    let failed = w.wait_for(2, 30 * S, |e| {
        matches!(e, ClientEvent::ConnectFailed { .. })
    });
    assert_eq!(
        failed,
        Some(ClientEvent::ConnectFailed {
            request: Some(request),
            peer: Some(k3),
            error: RendezvousError::Timeout
        })
    );
    let server = w.server.as_ref().unwrap();
    let offered: Vec<_> = server
        .events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Introduced { relay, .. } => Some(relay.is_some()),
            _ => None,
        })
        .collect();
    assert_eq!(offered, vec![true, true]);
    assert!(server.server.stats().relay_refused > 0);
    assert_eq!(w.server().relay_count(), 1);
    // Once the first pair is done and its session idle, the second pair
    // gets the relay.
    let now = w.now();
    w.client(0).endpoint_mut().close(now, ha, 0, b"done");
    w.client(1).endpoint_mut().close(now, hb, 0, b"done");
    w.run_for(31 * S);
    assert_eq!(w.server().relay_count(), 0);
    let _ = introduce(&mut w, 2, 3, 15 * S);
    assert_eq!(w.server().relay_count(), 1);
}

#[test]
fn peers_that_can_reach_each_other_neither_directly_nor_through_a_relay_get_a_timeout() {
    use srudp_proto::rendezvous::RendezvousError;
    use srudp_proto::sim::NatConfig;
    let mut w = World::new(6);
    w.start_server(ServerConfig {
        max_relays: 0,
        ..ServerConfig::default()
    });
    let na = w.add_nat("198.51.100.1", NatConfig::symmetric());
    let nb = w.add_nat("198.51.100.2", NatConfig::symmetric());
    w.add_host_behind(na, "192.168.1.10");
    w.add_host_behind(nb, "192.168.2.20");
    for (socket, key_seed) in [("192.168.1.10:5000", 61), ("192.168.2.20:6000", 62)] {
        let mut c = w.client_config();
        c.detect_nat = false;
        w.add_client(socket, key_seed, c);
    }
    w.wait_registered(&[0, 1], 5 * S);
    let now = w.now();
    let kb = w.key(1);
    let request = w.client(0).connect_by_key(now, kb).unwrap();
    let failed = w.wait_for(0, 30 * S, |e| {
        matches!(e, ClientEvent::ConnectFailed { .. })
    });
    assert_eq!(
        failed,
        Some(ClientEvent::ConnectFailed {
            request: Some(request),
            peer: Some(kb),
            error: RendezvousError::Timeout
        })
    );
    // The callee's side of the attempt fails too, and both are cleaned up.
    assert!(w.events(1).iter().any(|e| matches!(
        e,
        ClientEvent::ConnectFailed {
            request: None,
            error: RendezvousError::Timeout,
            ..
        }
    )));
    w.run_for(S);
    assert_eq!(
        w.client(0).endpoint().connection_count(),
        1,
        "only the server link"
    );
}

#[test]
fn the_backlog_limit_holds_the_notices_of_a_newcomer_to_four_full_groups() {
    use srudp_proto::rendezvous::GroupSecret;
    let mut w = World::new(7);
    // The smallest backlog the configuration allows: exactly the burst of
    // PeerJoined a Register into four full groups causes.
    let mut config = ServerConfig {
        max_group_members: 8,
        ..ServerConfig::default()
    };
    config.max_backlog = config.largest_register_burst();
    w.start_server(config);
    let secrets: Vec<GroupSecret> = (1..=4u8)
        .map(|b| GroupSecret::from_bytes([b; 32]))
        .collect();
    let mut clients = Vec::new();
    for i in 0..8u64 {
        let host = format!("192.0.2.{}", 20 + i);
        w.add_public_host(&host);
        let mut c = w.client_config();
        c.groups = secrets.clone();
        c.name = Some(Name::new(&format!("member-with-a-long-name-{i:040}")).unwrap());
        c.detect_nat = false;
        clients.push(w.add_client(&format!("{host}:4000"), 300 + i, c));
        if i == 6 {
            w.wait_registered(&clients, 10 * S);
        }
    }
    let newcomer = clients[7];
    w.wait_registered(&clients, 10 * S);
    w.run_for(S);
    let joined = w
        .events(newcomer)
        .iter()
        .filter(|e| matches!(e, ClientEvent::PeerJoined { .. }))
        .count();
    assert_eq!(joined, 4 * 7, "one notice per member of each group");
    assert_eq!(w.server().stats().clients_dropped, 0);
}
