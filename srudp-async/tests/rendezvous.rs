//! Rendezvous endpoints on loopback, under tokio, smol and async-std:
//! registering, reaching a peer by name or key with data both ways over a
//! direct path, the quick "peer not registered" error, a taken name, NAT
//! detection, closing a registered endpoint, and re-registration after a
//! server restart. The server runs on a small tokio runtime of its own.

#[macro_use]
mod common;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{config, config_with, payload, quick_transport, v4, within, Exec};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use srudp_async::rendezvous::{ClientConfig, NatMapping, ServerConfig};
use srudp_async::{Endpoint, PathKind, RendezvousServer};

const WAIT: Duration = Duration::from_secs(10);

/// A rendezvous server on loopback, with the runtime it runs on.
struct Server {
    server: RendezvousServer,
    _runtime: ServerRuntime,
}

/// The server's small tokio runtime; dropped from inside an executor (even
/// tokio's), so it shuts down in the background.
struct ServerRuntime(Option<tokio::runtime::Runtime>);

impl ServerRuntime {
    fn new() -> ServerRuntime {
        ServerRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
        ))
    }

    fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().unwrap()
    }

    fn bind(&self, addr: SocketAddr, seed: u64, second_port: Option<u16>) -> RendezvousServer {
        let _enter = self.get().enter();
        RendezvousServer::bind(addr, config(seed), ServerConfig::default(), second_port).unwrap()
    }
}

impl Drop for ServerRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

fn server(seed: u64, second_port: Option<u16>) -> Server {
    let runtime = ServerRuntime::new();
    Server {
        server: runtime.bind(v4(), seed, second_port),
        _runtime: runtime,
    }
}

fn client_config(server: &Server, name: Option<&str>) -> ClientConfig {
    let mut c = ClientConfig::new(server.server.public_key(), server.server.local_addr());
    c.name = name.map(|n| n.parse().unwrap());
    c
}

fn peer(seed: u64, server: &Server, name: Option<&str>) -> Endpoint {
    Endpoint::bind_with_rendezvous(v4(), config(seed), client_config(server, name)).unwrap()
}

async fn peers_register_and_connect_by_name_directly_moving_data_both_ways(ex: Exec) {
    let server = server(1, None);
    let listener = peer(2, &server, Some("alice"));
    let caller = peer(3, &server, None);
    let observed = within(WAIT, "listener registers", listener.wait_registered())
        .await
        .unwrap();
    assert_eq!(observed, listener.local_addr(), "loopback has no NAT");
    within(WAIT, "caller registers", caller.wait_registered())
        .await
        .unwrap();
    assert_eq!(server.server.registration_count(), 2);

    let connecting = caller.connect_by_name("alice");
    let (mut incoming, _, peer_key) = within(WAIT, "accept", listener.accept()).await.unwrap();
    let mut outgoing = within(WAIT, "connect_by_name", connecting).await.unwrap();
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
    let caller_side = ex.spawn(async move {
        outgoing.write_all(&a2).await.unwrap();
        outgoing.close().await.unwrap();
        let mut got = Vec::new();
        outgoing.read_to_end(&mut got).await.unwrap();
        got
    });
    incoming.write_all(&b2).await.unwrap();
    incoming.close().await.unwrap();
    let mut got = Vec::new();
    within(WAIT, "listener reads", incoming.read_to_end(&mut got))
        .await
        .unwrap();
    assert!(got == a, "the listener received the caller's bytes");
    assert!(within(WAIT, "caller reads", caller_side).await == b);
}

async fn connect_by_key_reaches_a_peer_registered_without_a_name(_ex: Exec) {
    let server = server(20, None);
    let listener = peer(21, &server, None);
    let caller = peer(22, &server, None);
    within(WAIT, "listener registers", listener.wait_registered())
        .await
        .unwrap();
    within(WAIT, "caller registers", caller.wait_registered())
        .await
        .unwrap();
    let connecting = caller.connect_by_key(listener.public_key());
    let (mut incoming, _, _) = within(WAIT, "accept", listener.accept()).await.unwrap();
    let mut outgoing = within(WAIT, "connect_by_key", connecting).await.unwrap();
    outgoing.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    within(WAIT, "read", incoming.read_exact(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf, b"ping");
}

async fn three_connects_by_key_to_one_peer_give_three_streams_each_with_its_own_bytes(_ex: Exec) {
    // One stream per connection: a forwarder opens one connection per TCP
    // connection to the same peer, one after the other and at once.
    let server = server(23, None);
    let listener = peer(24, &server, None);
    let caller = peer(25, &server, None);
    for e in [&listener, &caller] {
        within(WAIT, "register", e.wait_registered()).await.unwrap();
    }
    let first = caller.connect_by_key(listener.public_key());
    let (a, _, _) = within(WAIT, "first accept", listener.accept())
        .await
        .unwrap();
    let first = within(WAIT, "first connect", first).await.unwrap();
    let (second, third) = (
        caller.connect_by_key(listener.public_key()),
        caller.connect_by_key(listener.public_key()),
    );
    let (b, _, _) = within(WAIT, "second accept", listener.accept())
        .await
        .unwrap();
    let (c, _, _) = within(WAIT, "third accept", listener.accept())
        .await
        .unwrap();
    let second = within(WAIT, "second connect", second).await.unwrap();
    let third = within(WAIT, "third connect", third).await.unwrap();
    for (i, mut out) in [first, second, third].into_iter().enumerate() {
        out.write_all(&[i as u8; 3]).await.unwrap();
        out.close().await.unwrap();
    }
    let mut received = Vec::new();
    for mut incoming in [a, b, c] {
        let mut got = Vec::new();
        within(WAIT, "read", incoming.read_to_end(&mut got))
            .await
            .unwrap();
        received.push(got);
    }
    received.sort();
    assert_eq!(received, vec![vec![0; 3], vec![1; 3], vec![2; 3]]);
}

async fn an_unknown_name_fails_quickly_with_not_found(_ex: Exec) {
    let server = server(30, None);
    let caller = peer(31, &server, None);
    within(WAIT, "caller registers", caller.wait_registered())
        .await
        .unwrap();
    let started = Instant::now();
    let err = within(WAIT, "connect_by_name", caller.connect_by_name("nobody"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("peer not registered"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "not a timeout");
}

async fn a_taken_name_is_refused_at_registration(_ex: Exec) {
    let server = server(40, None);
    let first = peer(41, &server, Some("bob"));
    within(WAIT, "first registers", first.wait_registered())
        .await
        .unwrap();
    let second = peer(42, &server, Some("bob"));
    let err = within(WAIT, "second registers", second.wait_registered())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
}

async fn endpoints_without_rendezvous_say_so(_ex: Exec) {
    let plain = Endpoint::bind(v4(), config(40)).unwrap();
    let err = plain.connect_by_name("alice").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(plain.rendezvous_status().is_none());
}

async fn closing_a_registered_endpoint_leaves_the_rendezvous_and_lets_it_go_idle(_ex: Exec) {
    let server = server(50, None);
    // A short closing linger, so that idling does not take long.
    let first = Endpoint::bind_with_rendezvous(
        v4(),
        config_with(51, quick_transport()),
        client_config(&server, Some("carol")),
    )
    .unwrap();
    within(WAIT, "first registers", first.wait_registered())
        .await
        .unwrap();
    first.close();
    // No keepalive or re-registration keeps the closed endpoint busy.
    within(WAIT, "closed endpoint idles", first.wait_idle()).await;
    let err = first.wait_registered().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
    // The server heard it leave: the name is free again.
    let second = peer(52, &server, Some("carol"));
    within(WAIT, "second takes the name", second.wait_registered())
        .await
        .unwrap();
}

async fn a_registered_endpoint_is_idle_once_its_connections_are_over_and_closes_promptly(
    _ex: Exec,
) {
    // Default transport. `wait_idle` returns within a second of the last
    // connection going idle (issue 22), though the closing period is
    // `CLOSING_PERIOD` (12 s) and the rendezvous link lives on: it waits
    // for the peers' answers, not for those.
    let prompt = Duration::from_secs(1);
    let server = server(55, None);
    let listener = peer(56, &server, None);
    let caller = peer(57, &server, None);
    for e in [&listener, &caller] {
        within(WAIT, "register", e.wait_registered()).await.unwrap();
    }
    // Registered, with no connection: idle at once.
    within(prompt, "idle with no connection", listener.wait_idle()).await;

    let connecting = caller.connect_by_key(listener.public_key());
    let (mut incoming, _, _) = within(WAIT, "accept", listener.accept()).await.unwrap();
    let mut outgoing = within(WAIT, "connect_by_key", connecting).await.unwrap();
    outgoing.write_all(b"done").await.unwrap();
    outgoing.close().await.unwrap();
    let mut got = Vec::new();
    within(WAIT, "read", incoming.read_to_end(&mut got))
        .await
        .unwrap();
    assert_eq!(got, b"done");
    incoming.close().await.unwrap();
    drop((incoming, outgoing));
    // Both finished: each side's CLOSE is answered, so both are idle within
    // a few round trips, still registered.
    within(prompt, "listener idle", listener.wait_idle()).await;
    within(prompt, "caller idle", caller.wait_idle()).await;
    assert!(listener.wait_registered().await.is_ok());

    // Closing a registered endpoint with a connection open is prompt too.
    let connecting = caller.connect_by_key(listener.public_key());
    let (_incoming, _, _) = within(WAIT, "accept", listener.accept()).await.unwrap();
    let _outgoing = within(WAIT, "connect_by_key", connecting).await.unwrap();
    caller.close();
    within(prompt, "closed caller idle", caller.wait_idle()).await;
}

async fn nat_detection_through_the_second_port_sees_no_nat_on_loopback(_ex: Exec) {
    let server = server(60, Some(0));
    assert!(server.server.alt_addr().is_some());
    let client = peer(61, &server, None);
    let nat = within(WAIT, "NAT detection", client.nat_behavior())
        .await
        .unwrap();
    assert_eq!(nat.mapping, NatMapping::NotBehindNat, "{nat}");
}

async fn peers_register_again_by_themselves_after_a_server_restart(_ex: Exec) {
    let runtime = ServerRuntime::new();
    let first = runtime.bind(v4(), 70, None);
    let addr = first.local_addr();
    let mut c = ClientConfig::new(first.public_key(), addr);
    c.refresh_interval = Duration::from_millis(300);
    c.reply_timeout = Duration::from_millis(300);
    c.reconnect_initial = Duration::from_millis(100);
    c.reconnect_max = Duration::from_millis(400);
    let client = Endpoint::bind_with_rendezvous(v4(), config(71), c).unwrap();
    within(WAIT, "registers", client.wait_registered())
        .await
        .unwrap();
    let before = client.rendezvous_status().unwrap();
    assert_eq!(before.registrations, 1);
    // The server shuts down on its own runtime; its task's handle is
    // awaited from this executor.
    within(
        WAIT,
        "server shutdown",
        runtime.get().spawn(first.shutdown()),
    )
    .await
    .unwrap();

    let second = runtime.bind(addr, 70, None);
    let mut status = before;
    while status.registrations < 2 {
        status = within(
            WAIT,
            "the client re-registers by itself",
            client.rendezvous_changed(status),
        )
        .await
        .unwrap();
    }
    assert!(status.registered);
    assert_eq!(
        second.registered_address(&client.public_key()),
        Some(client.local_addr())
    );
}

on_every_executor!(
    peers_register_and_connect_by_name_directly_moving_data_both_ways,
    connect_by_key_reaches_a_peer_registered_without_a_name,
    three_connects_by_key_to_one_peer_give_three_streams_each_with_its_own_bytes,
    an_unknown_name_fails_quickly_with_not_found,
    a_taken_name_is_refused_at_registration,
    endpoints_without_rendezvous_say_so,
    closing_a_registered_endpoint_leaves_the_rendezvous_and_lets_it_go_idle,
    a_registered_endpoint_is_idle_once_its_connections_are_over_and_closes_promptly,
    nat_detection_through_the_second_port_sees_no_nat_on_loopback,
    peers_register_again_by_themselves_after_a_server_restart,
);
