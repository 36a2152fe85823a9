//! An Introduce lost, corrupted, duplicated or delayed past the peer's
//! punch still gives exactly one connection, reported as `PeerConnected`
//! on both sides (spec §11.4, issue 23): the peer's introduced initiation
//! that arrives first is held for the late Introduce, which adopts it.

use std::time::Duration;

use srudp_proto::rendezvous::{ClientEvent, ServerConfig};
use srudp_proto::sim::NatConfig;
use srudp_proto::{ConnectionHandle, Event};

use crate::world::{addr, data, Fault, Impairment, World, SERVER};

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// Where the two clients live.
#[derive(Debug, Clone, Copy)]
enum Place {
    Public,
    Cone,
    Symmetric,
}

/// Clients 0 (the caller) and 1 (the callee), registered.
fn world(seed: u64, place: Place) -> World {
    let mut w = World::new(seed);
    w.start_server(ServerConfig::default());
    let sockets = match place {
        Place::Public => {
            w.add_public_host("198.51.100.1");
            w.add_public_host("198.51.100.2");
            ["198.51.100.1:5000", "198.51.100.2:6000"]
        }
        Place::Cone | Place::Symmetric => {
            let nat = match place {
                Place::Cone => NatConfig::port_restricted_cone(),
                _ => NatConfig::symmetric(),
            };
            let na = w.add_nat("198.51.100.1", nat.clone());
            let nb = w.add_nat("198.51.100.2", nat);
            w.add_host_behind(na, "192.168.1.10");
            w.add_host_behind(nb, "192.168.2.20");
            ["192.168.1.10:5000", "192.168.2.20:6000"]
        }
    };
    for (i, socket) in sockets.into_iter().enumerate() {
        let mut c = w.client_config();
        c.host_candidates = vec![addr(socket)];
        c.detect_nat = false;
        w.add_client(socket, seed * 10 + i as u64 + 1, c);
    }
    w.wait_registered(&[0, 1], 5 * S);
    w
}

/// The caller asks for the callee while the server's datagrams to
/// `victim` suffer `fault` for `span`; asserts one connection, reported as
/// `PeerConnected` on both sides (the caller's with its request), that
/// carries data both ways.
fn introduction_survives(seed: u64, place: Place, victim: usize, fault: Fault, span: Duration) {
    let mut w = world(seed, place);
    let what =
        format!("seed {seed}, {place:?}, client {victim}'s Introduce {fault:?} for {span:?}");
    let victim_key = w.key(victim);
    let victim_ip = w
        .server()
        .registered_address(&victim_key)
        .expect("registered")
        .ip();
    let now = w.now();
    w.impairments.push(Impairment {
        from: addr(SERVER),
        to_ip: victim_ip,
        until: now + span,
        fault,
    });
    let (ea, eb) = (w.events(0).len(), w.events(1).len());
    let key_b = w.key(1);
    let request = w.client(0).connect_by_key(now, key_b).unwrap();
    let connected = |events: &[ClientEvent]| -> Vec<ConnectionHandle> {
        events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::PeerConnected { handle, .. } => Some(*handle),
                _ => None,
            })
            .collect()
    };
    let both = w.run_until(30 * S, |w| {
        !connected(&w.events(0)[ea..]).is_empty() && !connected(&w.events(1)[eb..]).is_empty()
    });
    assert!(
        both,
        "{what}: a {:?}\n b {:?}",
        &w.events(0)[ea..],
        &w.events(1)[eb..]
    );
    // Let any second connection or late failure show.
    w.run_for(15 * S);
    for (i, from) in [(0, ea), (1, eb)] {
        let events = &w.events(i)[from..];
        assert_eq!(connected(events).len(), 1, "{what}: client {i}: {events:?}");
        assert!(
            !events.iter().any(|e| matches!(
                e,
                ClientEvent::ConnectFailed { .. }
                    | ClientEvent::Connection {
                        event: Event::Connected { .. },
                        ..
                    }
            )),
            "{what}: client {i} also saw {events:?}"
        );
        // The link to the server and the one connection.
        assert_eq!(
            w.client(i).endpoint().connection_count(),
            2,
            "{what}: client {i}'s connections"
        );
    }
    assert!(w.events(0)[ea..].iter().any(|e| matches!(
        e,
        ClientEvent::PeerConnected { request: Some(r), .. } if *r == request
    )));
    let ha = connected(&w.events(0)[ea..])[0];
    let hb = connected(&w.events(1)[eb..])[0];
    let (a_data, b_data) = (data(seed, 30_000), data(seed + 1, 20_000));
    let (ra, rb) = w.exchange((0, ha), (1, hb), &a_data, &b_data, 20 * S);
    assert!(
        ra == b_data && rb == a_data,
        "{what}: the handles name one connection"
    );
}

#[test]
fn reproduction_the_callers_introduce_lost_for_300ms_on_clean_public_links() {
    // Issue 23: three public hosts, 10 ms links, the server's datagrams to
    // A dropped for 300 ms after A's connect_by_key. B punches first; A
    // used to accept B's initiation as an unrelated incoming connection and
    // open a second one when its Introduce came.
    for seed in 0..4 {
        introduction_survives(seed, Place::Public, 0, Fault::Lost, 300 * MS);
    }
}

#[test]
fn an_introduce_lost_corrupted_duplicated_or_delayed_past_the_peers_punch_gives_one_connection() {
    for place in [Place::Public, Place::Cone, Place::Symmetric] {
        for victim in [0, 1] {
            for (fault, span) in [
                (Fault::Lost, 300 * MS),
                (Fault::Corrupted, 300 * MS),
                (Fault::Duplicated, 2 * S),
                // Delayed well past the peer's punch (and its relay fallback).
                (Fault::Lost, 4 * S),
            ] {
                introduction_survives(40 + victim as u64, place, victim, fault, span);
            }
        }
    }
}

#[test]
fn held_introduced_connections_are_bounded_in_count_and_time() {
    // Anyone can make keys and claim an introduction (spec §11.4 (7)): at
    // most `max_held_introductions` wait, each at most `introduction_hold`;
    // the others, and then those, are reported as ordinary incoming
    // connections. Nothing is lost, nothing grows.
    let mut w = world(7, Place::Public);
    let hold = w.client(1).config().introduction_hold;
    let max_held = w.client(1).config().max_held_introductions;
    let extra = 4;
    let b_addr = addr("198.51.100.2:6000");
    let key_b = w.key(1);
    for i in 0..max_held + extra {
        let ip = format!("192.0.2.{}", i + 1);
        w.add_public_host(&ip);
        let r = w.add_raw(&format!("{ip}:7000"), 1000 + i as u64);
        let now = w.now();
        let options = srudp_proto::ConnectOptions {
            pattern: Some(srudp_proto::HandshakePattern::IK),
            ..srudp_proto::ConnectOptions::new(key_b, vec![b_addr])
        };
        w.raws[r]
            .endpoint
            .connect_introduced(now, options, now)
            .unwrap();
    }
    let incoming = |w: &World| {
        w.events(1)
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    ClientEvent::Connection {
                        event: Event::Connected { incoming: true, .. },
                        ..
                    }
                )
            })
            .count()
    };
    let start = w.now();
    let reported = w.run_until(5 * S, |w| incoming(w) >= extra);
    assert!(reported, "beyond the bound: reported at once");
    w.run_for(S);
    let up = w
        .raws
        .iter()
        .filter(|r| {
            r.events
                .iter()
                .any(|(_, e)| matches!(e, Event::Connected { .. }))
        })
        .count();
    assert_eq!(up, max_held + extra, "every initiator connects");
    assert_eq!(incoming(&w), extra, "beyond the bound: reported at once");
    w.run_until(hold - (w.now() - start) - 100 * MS, |_| false);
    assert_eq!(incoming(&w), extra, "the held ones wait");
    w.run_for(S);
    assert_eq!(
        incoming(&w),
        max_held + extra,
        "after the hold: reported as incoming"
    );
}
