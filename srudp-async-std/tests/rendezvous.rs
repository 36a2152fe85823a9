//! Rendezvous endpoints on loopback, under smol and async-std: registering,
//! reaching a peer by name with data both ways over a direct path, and the
//! quick "peer not registered" error for an unknown name, and closing a
//! registered endpoint. The server is
//! `srudp-tokio`'s, on a small tokio runtime of its own.

#[macro_use]
mod common;

use std::io;
use std::time::{Duration, Instant};

use common::{config, config_with, payload, quick_transport, v4, within, Exec};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use srudp_async_std::rendezvous::ClientConfig;
use srudp_async_std::{Endpoint, PathKind};
use srudp_tokio::rendezvous::ServerConfig;
use srudp_tokio::RendezvousServer;

const WAIT: Duration = Duration::from_secs(10);

/// A rendezvous server on loopback, with the runtime it runs on.
struct Server {
    server: RendezvousServer,
    _runtime: tokio::runtime::Runtime,
}

fn server(seed: u64) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = {
        let _enter = runtime.enter();
        RendezvousServer::bind(v4(), config(seed), ServerConfig::default(), None).unwrap()
    };
    Server {
        server,
        _runtime: runtime,
    }
}

fn peer(seed: u64, server: &Server, name: Option<&str>) -> Endpoint {
    let mut c = ClientConfig::new(server.server.public_key(), server.server.local_addr());
    c.name = name.map(|n| n.parse().unwrap());
    Endpoint::bind_with_rendezvous(v4(), config(seed), c).unwrap()
}

async fn peers_register_and_connect_by_name_directly_moving_data_both_ways(ex: Exec) {
    let server = server(1);
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

    let (a, b) = (payload(10, 256 << 10), payload(11, 256 << 10));
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

async fn an_unknown_name_fails_quickly_with_not_found(_ex: Exec) {
    let server = server(30);
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

async fn endpoints_without_rendezvous_say_so(_ex: Exec) {
    let plain = Endpoint::bind(v4(), config(40)).unwrap();
    let err = plain.connect_by_name("alice").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(plain.rendezvous_status().is_none());
}

async fn closing_a_registered_endpoint_leaves_the_rendezvous_and_lets_it_go_idle(_ex: Exec) {
    let server = server(50);
    // A short closing linger, so that idling does not take long.
    let mut rendezvous = ClientConfig::new(server.server.public_key(), server.server.local_addr());
    rendezvous.name = Some("carol".parse().unwrap());
    let first =
        Endpoint::bind_with_rendezvous(v4(), config_with(51, quick_transport()), rendezvous)
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

on_both_executors!(
    peers_register_and_connect_by_name_directly_moving_data_both_ways,
    an_unknown_name_fails_quickly_with_not_found,
    endpoints_without_rendezvous_say_so,
    closing_a_registered_endpoint_leaves_the_rendezvous_and_lets_it_go_idle,
);
