//! Introductions and coordinated hole punching (spec §11.4), the mesh
//! notices, and connections outliving the server.

use std::time::Duration;

use srudp_proto::rendezvous::{ClientEvent, GroupSecret, Name, RendezvousError, ServerConfig};
use srudp_proto::sim::NatConfig;
use srudp_proto::PathKind;

pub(crate) use crate::world::introduce;
use crate::world::{addr, data, World};

const S: Duration = Duration::from_secs(1);

/// Clients 0 and 1 behind NATs of the given kinds (public IPs .1 and .2),
/// registered, with their LAN addresses as host candidates.
pub(crate) fn pair(seed: u64, nat_a: NatConfig, nat_b: NatConfig) -> World {
    let mut w = World::new(seed);
    w.start_server(ServerConfig::default());
    let na = w.add_nat("198.51.100.1", nat_a);
    let nb = w.add_nat("198.51.100.2", nat_b);
    w.add_host_behind(na, "192.168.1.10");
    w.add_host_behind(nb, "192.168.2.20");
    for (socket, seed_key, name) in [
        ("192.168.1.10:5000", seed * 10 + 1, "alice"),
        ("192.168.2.20:6000", seed * 10 + 2, "bob"),
    ] {
        let mut c = w.client_config();
        c.name = Some(Name::new(name).unwrap());
        c.host_candidates = vec![addr(socket)];
        c.detect_nat = false;
        w.add_client(socket, seed_key, c);
    }
    w.wait_registered(&[0, 1], 5 * S);
    w
}

#[test]
fn peers_behind_cone_nats_get_one_direct_connection_and_talk_both_ways() {
    for (kind, nat) in [
        ("full cone", NatConfig::full_cone()),
        ("restricted cone", NatConfig::restricted_cone()),
        ("port-restricted cone", NatConfig::port_restricted_cone()),
    ] {
        for seed in 0..3 {
            let mut w = pair(seed, nat.clone(), nat.clone());
            let ((ha, pa), (hb, pb)) = introduce(&mut w, 0, 1, 10 * S);
            let (ka, kb) = (w.key(0), w.key(1));
            let b_public = w.server().registered_address(&kb).unwrap();
            let a_public = w.server().registered_address(&ka).unwrap();
            assert_eq!(pa, PathKind::Direct(b_public), "{kind} seed {seed}");
            assert_eq!(pb, PathKind::Direct(a_public), "{kind} seed {seed}");
            // One connection each (plus the link to the server).
            assert_eq!(w.client(0).endpoint().connection_count(), 2);
            assert_eq!(w.client(1).endpoint().connection_count(), 2);
            let (a_data, b_data) = (data(seed, 200_000), data(seed + 100, 150_000));
            let (ra, rb) = w.exchange((0, ha), (1, hb), &a_data, &b_data, 30 * S);
            assert_eq!(ra, b_data, "{kind} seed {seed}");
            assert_eq!(rb, a_data, "{kind} seed {seed}");
            assert_eq!(w.server().stats().relayed_datagrams, 0, "nothing relayed");
        }
    }
}

#[test]
fn connecting_to_our_own_name_or_key_is_refused_at_once_without_asking_the_server() {
    let mut w = pair(3, NatConfig::port_restricted_cone(), NatConfig::full_cone());
    let now = w.now();
    let own_key = w.key(0);
    assert_eq!(
        w.client(0).connect_by_name(now, "alice"),
        Err(RendezvousError::SelfConnect)
    );
    assert_eq!(
        w.client(0).connect_by_key(now, own_key),
        Err(RendezvousError::SelfConnect)
    );
}

#[test]
fn a_peer_is_reached_by_name() {
    let mut w = pair(3, NatConfig::port_restricted_cone(), NatConfig::full_cone());
    let now = w.now();
    let request = w.client(1).connect_by_name(now, "alice").unwrap();
    let up = w.wait_for(1, 10 * S, |e| {
        matches!(e, ClientEvent::PeerConnected { .. })
    });
    let key_a = w.key(0);
    assert!(matches!(
        up,
        Some(ClientEvent::PeerConnected { peer, request: Some(r), path: PathKind::Direct(_), .. })
            if peer == key_a && r == request
    ));
}

#[test]
fn both_asking_at_once_still_gives_one_connection() {
    let mut w = pair(
        8,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let now = w.now();
    let (ka, kb) = (w.key(0), w.key(1));
    let ra = w.client(0).connect_by_key(now, kb).unwrap();
    let rb = w.client(1).connect_by_key(now, ka).unwrap();
    w.run_for(10 * S);
    let handles = |w: &World, i: usize, r| {
        w.events(i)
            .iter()
            .filter_map(|e| match e {
                ClientEvent::PeerConnected {
                    handle, request, ..
                } if *request == Some(r) || request.is_none() => Some(*handle),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let (ha, hb) = (handles(&w, 0, ra), handles(&w, 1, rb));
    assert!(!ha.is_empty() && !hb.is_empty(), "{:?}", w.events(0));
    assert!(ha.iter().all(|h| *h == ha[0]), "one handle at a: {ha:?}");
    assert!(hb.iter().all(|h| *h == hb[0]), "one handle at b: {hb:?}");
    assert_eq!(w.client(0).endpoint().connection_count(), 2);
    assert_eq!(w.client(1).endpoint().connection_count(), 2);
}

#[test]
fn peers_behind_the_same_nat_without_hairpinning_connect_over_the_lan() {
    let mut w = World::new(30);
    w.start_server(ServerConfig::default());
    let nat = w.add_nat(
        "198.51.100.1",
        NatConfig::port_restricted_cone().with_hairpinning(false),
    );
    w.add_host_behind(nat, "192.168.1.10");
    w.add_host_behind(nat, "192.168.1.11");
    for (socket, key_seed) in [("192.168.1.10:5000", 301), ("192.168.1.11:5000", 302)] {
        let mut c = w.client_config();
        c.host_candidates = vec![addr(socket)];
        c.detect_nat = false;
        w.add_client(socket, key_seed, c);
    }
    w.wait_registered(&[0, 1], 5 * S);
    let ((ha, pa), (hb, pb)) = introduce(&mut w, 0, 1, 10 * S);
    assert_eq!(pa, PathKind::Direct(addr("192.168.1.11:5000")));
    assert_eq!(pb, PathKind::Direct(addr("192.168.1.10:5000")));
    let msg = data(1, 50_000);
    let (ra, rb) = w.exchange((0, ha), (1, hb), &msg, &msg, 10 * S);
    assert_eq!((ra, rb), (msg.clone(), msg));
}

#[test]
fn a_direct_connection_outlives_the_server() {
    let mut w = pair(
        40,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let ((ha, _), (hb, _)) = introduce(&mut w, 0, 1, 10 * S);
    w.stop_server();
    // Long enough for the clients to notice and start reconnecting.
    w.run_for(40 * S);
    let (a_data, b_data) = (data(4, 300_000), data(5, 300_000));
    let (ra, rb) = w.exchange((0, ha), (1, hb), &a_data, &b_data, 30 * S);
    assert_eq!(ra, b_data);
    assert_eq!(rb, a_data);
    assert!(!w.client(0).endpoint().is_closed(ha));
    assert!(!w.client(0).is_registered());
}

#[test]
fn group_members_are_told_who_joins_and_who_leaves() {
    let mut w = World::new(50);
    w.start_server(ServerConfig::default());
    let secret = GroupSecret::from_bytes([0x7e; 32]);
    let group = secret.id();
    for i in 0..3u64 {
        let host = format!("192.0.2.{}", 10 + i);
        w.add_public_host(&host);
        let mut c = w.client_config();
        c.groups = vec![secret.clone()];
        c.detect_nat = false;
        w.add_client(&format!("{host}:4000"), 500 + i, c);
        w.wait_registered(&[i as usize], 5 * S);
    }
    w.run_for(S);
    let joined = |w: &World, i: usize| {
        let mut v: Vec<_> = w
            .events(i)
            .iter()
            .filter_map(|e| match e {
                ClientEvent::PeerJoined { group: g, peer, .. } if *g == group => Some(*peer),
                _ => None,
            })
            .collect();
        v.sort();
        v
    };
    let keys: Vec<_> = (0..3).map(|i| w.key(i)).collect();
    for i in 0..3 {
        let mut others: Vec<_> = keys.iter().copied().filter(|k| *k != keys[i]).collect();
        others.sort();
        assert_eq!(joined(&w, i), others, "client {i} knows the others");
    }
    // Client 2 goes away for good (its link stops).
    let link = w.client(2).server_link().unwrap();
    let now = w.now();
    w.client(2).endpoint_mut().close(now, link, 0, b"bye");
    w.clients[2].client = {
        // Replace it by a client of another server that never answers, so
        // it does not come back.
        let mut c = w.client_config();
        c.server_addr = addr("192.0.2.250:1");
        c.detect_nat = false;
        let ep = crate::world::endpoint(999, &w.transport);
        srudp_proto::rendezvous::RendezvousClient::new(now, ep, c).unwrap()
    };
    let left = w.wait_for(0, 60 * S, |e| matches!(e, ClientEvent::PeerLeft { .. }));
    assert_eq!(
        left,
        Some(ClientEvent::PeerLeft {
            group,
            peer: keys[2]
        })
    );
    assert!(w
        .events(1)
        .iter()
        .any(|e| matches!(e, ClientEvent::PeerLeft { peer, .. } if *peer == keys[2])));
}

#[test]
fn a_second_request_for_a_connected_peer_opens_a_second_connection() {
    // One connection per stream: an application that asks for a peer it is
    // already connected to (a TCP forwarder, one srudp connection per TCP
    // connection) gets a new connection, and the peer a new incoming one;
    // both carry their own data.
    let mut w = pair(
        7,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let ((first_a, _), (first_b, _)) = introduce(&mut w, 0, 1, 10 * S);
    let now = w.now();
    let key_b = w.key(1);
    let request = w.client(0).connect_by_key(now, key_b).unwrap();
    let (ea, eb) = (w.events(0).len(), w.events(1).len());
    let mut sides = (None, None);
    let ok = w.run_until(10 * S, |w| {
        sides.0 = w.events(0)[ea..].iter().find_map(|e| match e {
            ClientEvent::PeerConnected {
                handle,
                request: Some(r),
                ..
            } if *r == request => Some(*handle),
            _ => None,
        });
        sides.1 = w.events(1)[eb..].iter().find_map(|e| match e {
            ClientEvent::Connection {
                handle,
                event: srudp_proto::Event::Connected { incoming: true, .. },
            } => Some(*handle),
            ClientEvent::PeerConnected {
                handle,
                request: None,
                ..
            } => Some(*handle),
            _ => None,
        });
        sides.0.is_some() && sides.1.is_some()
    });
    assert!(
        ok,
        "no second connection\n a: {:?}\n b: {:?}",
        w.events(0),
        w.events(1)
    );
    let (second_a, second_b) = (sides.0.unwrap(), sides.1.unwrap());
    assert_ne!(
        second_a, first_a,
        "a new connection, not the first one again"
    );
    assert_ne!(second_b, first_b);
    assert_eq!(
        w.client(0).endpoint().connection_count(),
        3,
        "server link and two"
    );
    assert_eq!(w.client(1).endpoint().connection_count(), 3);
    let (a_data, b_data) = (data(1, 50_000), data(2, 40_000));
    let (ra, rb) = w.exchange((0, second_a), (1, second_b), &a_data, &b_data, 30 * S);
    assert_eq!(
        (ra, rb),
        (b_data.clone(), a_data.clone()),
        "the second connection carries data"
    );
    let (ra, rb) = w.exchange((0, first_a), (1, first_b), &a_data, &b_data, 30 * S);
    assert_eq!((ra, rb), (b_data, a_data), "and the first still does");
}

#[test]
fn two_requests_at_once_for_the_same_peer_get_two_connections() {
    let mut w = pair(
        8,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let _first = introduce(&mut w, 0, 1, 10 * S);
    let now = w.now();
    let key_b = w.key(1);
    let r1 = w.client(0).connect_by_key(now, key_b).unwrap();
    let r2 = w.client(0).connect_by_key(now, key_b).unwrap();
    let ea = w.events(0).len();
    let mut handles = (None, None);
    let ok = w.run_until(10 * S, |w| {
        for e in &w.events(0)[ea..] {
            if let ClientEvent::PeerConnected {
                handle,
                request: Some(r),
                ..
            } = e
            {
                if *r == r1 {
                    handles.0 = Some(*handle);
                } else if *r == r2 {
                    handles.1 = Some(*handle);
                }
            }
        }
        handles.0.is_some() && handles.1.is_some()
    });
    assert!(ok, "both requests connect: {:?}", w.events(0));
    assert_ne!(handles.0, handles.1, "one connection each");
    assert_eq!(
        w.client(0).endpoint().connection_count(),
        4,
        "server link and three"
    );
}

/// A host candidate added after registration — the external address of a
/// port mapping the client's gateway granted, on its NAT's public IP — is
/// registered at once and reaches the peers introduced from then on, which
/// punch toward it; one on an IP the server did not observe does not (it
/// would aim the peer's probes at a third party, spec §11.4).
#[test]
fn a_port_mapped_candidate_added_after_registration_reaches_later_peers() {
    let mut w = pair(7, NatConfig::symmetric(), NatConfig::symmetric());
    let mapped = addr("198.51.100.1:40001");
    let elsewhere = addr("198.51.100.9:40001");
    let now = w.now();
    w.client(0).add_host_candidate(now, mapped);
    w.client(0).add_host_candidate(now, elsewhere);
    w.run_for(2 * S);
    w.capture();
    let now = w.now();
    let key_a = w.key(0);
    w.client(1).connect_by_key(now, key_a).unwrap();
    w.run_for(3 * S);
    let sent = w.captured.take().unwrap();
    let from_b = addr("192.168.2.20:6000");
    assert!(
        sent.iter().any(|d| d.from == from_b && d.to == mapped),
        "the peer never punched toward the mapped address"
    );
    assert!(
        !sent.iter().any(|d| d.to == elsewhere),
        "a candidate on another public IP was forwarded"
    );
}
