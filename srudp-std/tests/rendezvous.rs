//! Rendezvous endpoints on loopback: registering, reaching a peer by name
//! with data both ways over a direct path, and the quick "peer not
//! registered" error for an unknown name. The server is `srudp-tokio`'s, on
//! a small tokio runtime of its own.

mod common;

use std::io::{self, Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use common::{addr_of, assert_same_bytes, config, payload};
use srudp_std::rendezvous::ClientConfig;
use srudp_std::srudp_proto::Rng;
use srudp_std::{Endpoint, PathKind};
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
        let mut cfg = srudp_tokio::EndpointConfig::new(srudp_tokio::Keypair::generate(
            &mut Rng::from_seed(seed),
        ));
        cfg.rng_seed = Some(seed ^ 0x5eed);
        RendezvousServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            cfg,
            ServerConfig::default(),
            None,
        )
        .unwrap()
    };
    Server {
        server,
        _runtime: runtime,
    }
}

fn peer(seed: u64, server: &Server, name: Option<&str>) -> Endpoint {
    let mut c = ClientConfig::new(server.server.public_key(), server.server.local_addr());
    c.name = name.map(|n| n.parse().unwrap());
    Endpoint::bind_with_rendezvous("127.0.0.1:0", config(seed), c).unwrap()
}

#[test]
fn peers_register_and_connect_by_name_directly_moving_data_both_ways() {
    let server = server(1);
    let listener = peer(2, &server, Some("alice"));
    let caller = peer(3, &server, None);
    let observed = listener.wait_registered(Some(WAIT)).unwrap();
    assert_eq!(observed, addr_of(&listener), "loopback has no NAT");
    caller.wait_registered(Some(WAIT)).unwrap();
    assert_eq!(server.server.registration_count(), 2);
    assert_eq!(listener.rendezvous_status().unwrap().registrations, 1);

    let accepting = {
        let listener = listener.clone();
        thread::spawn(move || listener.accept_timeout(WAIT))
    };
    let mut outgoing = caller.connect_by_name("alice").unwrap();
    let (mut incoming, _, peer_key) = accepting.join().unwrap().unwrap();
    assert_eq!(
        peer_key,
        Some(caller.public_key()),
        "introduced peers authenticate with IK"
    );
    assert_eq!(outgoing.peer_public_key(), Some(listener.public_key()));
    assert_eq!(
        outgoing.path().unwrap(),
        PathKind::Direct(addr_of(&listener))
    );
    assert_eq!(incoming.path().unwrap(), PathKind::Direct(addr_of(&caller)));

    outgoing.set_read_timeout(Some(WAIT)).unwrap();
    incoming.set_read_timeout(Some(WAIT)).unwrap();
    let (a, b) = (payload(10, 256 << 10), payload(11, 256 << 10));
    let a2 = a.clone();
    let caller_side = thread::spawn(move || {
        outgoing.write_all(&a2).unwrap();
        outgoing.shutdown().unwrap();
        let mut got = Vec::new();
        outgoing.read_to_end(&mut got).unwrap();
        got
    });
    incoming.write_all(&b).unwrap();
    incoming.shutdown().unwrap();
    let mut got = Vec::new();
    incoming.read_to_end(&mut got).unwrap();
    assert_same_bytes(&got, &a, "the listener received the caller's bytes");
    assert_same_bytes(
        &caller_side.join().unwrap(),
        &b,
        "the caller received the listener's bytes",
    );
}

#[test]
fn an_unknown_name_fails_quickly_with_not_found() {
    let server = server(30);
    let caller = peer(31, &server, None);
    caller.wait_registered(Some(WAIT)).unwrap();
    let started = Instant::now();
    let err = caller.connect_by_name("nobody").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("peer not registered"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "not a timeout");
}

#[test]
fn a_registered_endpoint_is_idle_once_its_connections_are_over_and_closes_promptly() {
    // The closing period is 12 s: anything that waited for it, or for the
    // rendezvous link, would miss these deadlines.
    let prompt = srudp_std::srudp_proto::CLOSING_PERIOD / 3;
    let within = |what: &str, f: &dyn Fn()| {
        let started = Instant::now();
        f();
        let took = started.elapsed();
        assert!(took < prompt, "{what} took {took:?}");
    };
    let server = server(40);
    let listener = peer(41, &server, None);
    let caller = peer(42, &server, None);
    listener.wait_registered(Some(WAIT)).unwrap();
    caller.wait_registered(Some(WAIT)).unwrap();
    within("idle with no connection", &|| listener.wait_idle());

    let accepting = {
        let listener = listener.clone();
        thread::spawn(move || listener.accept_timeout(WAIT))
    };
    let outgoing = caller.connect_by_key(listener.public_key()).unwrap();
    let (mut incoming, _, _) = accepting.join().unwrap().unwrap();
    outgoing.send_all(b"done").unwrap();
    outgoing.close().unwrap();
    incoming.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    incoming.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"done");
    incoming.close().unwrap();
    drop((incoming, outgoing));
    within("listener idle", &|| listener.wait_idle());
    within("caller idle", &|| caller.wait_idle());

    let accepting = {
        let listener = listener.clone();
        thread::spawn(move || listener.accept_timeout(WAIT))
    };
    let _outgoing = caller.connect_by_key(listener.public_key()).unwrap();
    let _incoming = accepting.join().unwrap().unwrap();
    caller.close();
    within("closed caller idle", &|| caller.wait_idle());
}

#[test]
fn endpoints_without_rendezvous_say_so() {
    let plain = Endpoint::bind("127.0.0.1:0", config(40)).unwrap();
    let err = plain.connect_by_name("alice").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(plain.rendezvous_status().is_none());
    let err = plain.wait_registered(Some(WAIT)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
}
