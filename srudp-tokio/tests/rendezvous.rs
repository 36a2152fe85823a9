//! The tokio rendezvous server and rendezvous endpoints on loopback:
//! registering, reaching a peer by name or key, the path report, NAT
//! detection, errors, and re-registration after a server restart.

mod common;

use std::io;
use std::time::Duration;

use common::{config, config_with, payload, quick_transport, v4};
use srudp_tokio::rendezvous::{ClientConfig, NatMapping, ServerConfig};
use srudp_tokio::{Endpoint, PathKind, RendezvousServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

fn server(seed: u64, second_port: Option<u16>) -> RendezvousServer {
    RendezvousServer::bind(v4(), config(seed), ServerConfig::default(), second_port).unwrap()
}

fn client_config(server: &RendezvousServer, name: Option<&str>) -> ClientConfig {
    let mut c = ClientConfig::new(server.public_key(), server.local_addr());
    c.name = name.map(|n| n.parse().unwrap());
    c
}

fn peer(seed: u64, server: &RendezvousServer, name: Option<&str>) -> Endpoint {
    Endpoint::bind_with_rendezvous(v4(), config(seed), client_config(server, name)).unwrap()
}

#[tokio::test]
async fn peers_register_and_connect_by_name_directly_moving_data_both_ways() {
    let server = server(1, None);
    let listener = peer(2, &server, Some("alice"));
    let caller = peer(3, &server, None);
    let observed = timeout(WAIT, listener.wait_registered())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(observed, listener.local_addr(), "loopback has no NAT");
    timeout(WAIT, caller.wait_registered())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(server.registration_count(), 2);

    let connecting = caller.connect_by_name("alice");
    let (mut incoming, _, peer_key) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut outgoing = timeout(WAIT, connecting).await.unwrap().unwrap();
    assert_eq!(
        peer_key,
        Some(caller.public_key()),
        "introduced peers authenticate with IK"
    );
    assert_eq!(outgoing.peer_public_key(), Some(listener.public_key()));
    assert_eq!(outgoing.path(), PathKind::Direct(listener.local_addr()));
    assert_eq!(incoming.path(), PathKind::Direct(caller.local_addr()));

    let (a, b) = (payload(10, 1 << 20), payload(11, 1 << 20));
    let (a2, b2) = (a.clone(), b.clone());
    let send_a = tokio::spawn(async move {
        outgoing.write_all(&a2).await.unwrap();
        outgoing.shutdown().await.unwrap();
        let mut got = Vec::new();
        outgoing.read_to_end(&mut got).await.unwrap();
        got
    });
    incoming.write_all(&b2).await.unwrap();
    incoming.shutdown().await.unwrap();
    let mut got = Vec::new();
    timeout(WAIT, incoming.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got == a, "the listener received the caller's bytes");
    assert!(timeout(WAIT, send_a).await.unwrap().unwrap() == b);
}

#[tokio::test]
async fn connect_by_key_reaches_a_peer_registered_without_a_name() {
    let server = server(20, None);
    let listener = peer(21, &server, None);
    let caller = peer(22, &server, None);
    timeout(WAIT, listener.wait_registered())
        .await
        .unwrap()
        .unwrap();
    timeout(WAIT, caller.wait_registered())
        .await
        .unwrap()
        .unwrap();
    let connecting = caller.connect_by_key(listener.public_key());
    let (mut incoming, _, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut outgoing = timeout(WAIT, connecting).await.unwrap().unwrap();
    outgoing.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    timeout(WAIT, incoming.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test]
async fn three_connects_by_key_to_one_peer_give_three_streams_each_with_its_own_bytes() {
    // One stream per connection: a forwarder opens one connection per TCP
    // connection to the same peer, one after the other and at once.
    let server = server(23, None);
    let listener = peer(24, &server, None);
    let caller = peer(25, &server, None);
    for e in [&listener, &caller] {
        timeout(WAIT, e.wait_registered()).await.unwrap().unwrap();
    }
    let first = caller.connect_by_key(listener.public_key());
    let (a, _, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let first = timeout(WAIT, first).await.unwrap().unwrap();
    let (second, third) = (
        caller.connect_by_key(listener.public_key()),
        caller.connect_by_key(listener.public_key()),
    );
    let (b, _, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let (c, _, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let second = timeout(WAIT, second).await.unwrap().unwrap();
    let third = timeout(WAIT, third).await.unwrap().unwrap();
    let mut received = Vec::new();
    for (i, mut out) in [first, second, third].into_iter().enumerate() {
        out.write_all(&[i as u8; 3]).await.unwrap();
        out.shutdown().await.unwrap();
    }
    for mut incoming in [a, b, c] {
        let mut got = Vec::new();
        timeout(WAIT, incoming.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        received.push(got);
    }
    received.sort();
    assert_eq!(received, vec![vec![0; 3], vec![1; 3], vec![2; 3]]);
}

#[tokio::test]
async fn an_unknown_name_fails_quickly_with_not_found() {
    let server = server(30, None);
    let caller = peer(31, &server, None);
    timeout(WAIT, caller.wait_registered())
        .await
        .unwrap()
        .unwrap();
    let started = std::time::Instant::now();
    let err = timeout(WAIT, caller.connect_by_name("nobody"))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("peer not registered"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "not a timeout");
}

#[tokio::test]
async fn a_taken_name_is_refused_at_registration() {
    let server = server(40, None);
    let first = peer(41, &server, Some("bob"));
    timeout(WAIT, first.wait_registered())
        .await
        .unwrap()
        .unwrap();
    let second = peer(42, &server, Some("bob"));
    let err = timeout(WAIT, second.wait_registered())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
}

#[tokio::test]
async fn closing_a_registered_endpoint_leaves_the_rendezvous_and_lets_it_go_idle() {
    let server = server(60, None);
    // A short closing linger, so that idling does not take long.
    let first = Endpoint::bind_with_rendezvous(
        v4(),
        config_with(61, quick_transport()),
        client_config(&server, Some("carol")),
    )
    .unwrap();
    timeout(WAIT, first.wait_registered())
        .await
        .unwrap()
        .unwrap();
    first.close();
    // No keepalive or re-registration keeps the closed endpoint busy.
    timeout(WAIT, first.wait_idle()).await.unwrap();
    let err = first.wait_registered().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
    // The server heard it leave: the name is free again.
    let second = peer(62, &server, Some("carol"));
    timeout(WAIT, second.wait_registered())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn endpoints_without_rendezvous_say_so() {
    let plain = Endpoint::bind(v4(), config(50)).unwrap();
    assert!(plain.rendezvous_status().is_none());
    let err = plain.connect_by_name("x").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn nat_detection_through_the_second_port_sees_no_nat_on_loopback() {
    let server = server(60, Some(0));
    assert!(server.alt_addr().is_some());
    let client = peer(61, &server, None);
    let nat = timeout(WAIT, client.nat_behavior()).await.unwrap().unwrap();
    assert_eq!(nat.mapping, NatMapping::NotBehindNat, "{nat}");
}

#[tokio::test]
async fn peers_register_again_by_themselves_after_a_server_restart() {
    let first = server(70, None);
    let addr = first.local_addr();
    let key = first.public_key();
    let mut c = ClientConfig::new(key, addr);
    c.refresh_interval = Duration::from_millis(300);
    c.reply_timeout = Duration::from_millis(300);
    c.reconnect_initial = Duration::from_millis(100);
    c.reconnect_max = Duration::from_millis(400);
    let client = Endpoint::bind_with_rendezvous(v4(), config(71), c).unwrap();
    timeout(WAIT, client.wait_registered())
        .await
        .unwrap()
        .unwrap();
    let before = client.rendezvous_status().unwrap();
    assert_eq!(before.registrations, 1);
    first.shutdown().await;

    let second = RendezvousServer::bind(addr, config(70), ServerConfig::default(), None).unwrap();
    let mut status = before;
    while status.registrations < 2 {
        status = timeout(WAIT, client.rendezvous_changed(status))
            .await
            .expect("the client re-registers by itself")
            .unwrap();
    }
    assert!(status.registered);
    assert_eq!(
        second.registered_address(&client.public_key()),
        Some(client.local_addr())
    );
}
