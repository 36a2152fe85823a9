//! A client whose NAT gives it another port while it waits on the server
//! pings the link each second, so the server follows it at once (spec
//! §11.3, `ClientConfig::waiting_ping_interval`), not at the next keepalive:
//! the relay and any late Introduce or PeerOpened reach it there.

use std::net::SocketAddr;
use std::time::Duration;

use srudp_proto::rendezvous::ServerConfig;
use srudp_proto::sim::{LinkConfig, LinkId, NatConfig};

use crate::world::{addr, World};

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// Client 0 behind a full-cone NAT asks for client 1 (public), whose
/// uplink fails once both have their Introduce: client 0's introduced
/// connection keeps punching, with nothing else outstanding at the server.
/// Then client 0's NAT forgets its mappings. Returns how long the server
/// took to see client 0's new address.
fn server_follows_after(seed: u64, waiting_ping_interval: Duration) -> Duration {
    let mut w = World::new(seed);
    w.start_server(ServerConfig::default());
    let nat = w.add_nat("198.51.100.1", NatConfig::full_cone());
    w.add_host_behind(nat, "192.168.1.10");
    w.add_public_host("198.51.100.2");
    for (i, socket) in ["192.168.1.10:5000", "198.51.100.2:6000"]
        .iter()
        .enumerate()
    {
        let mut c = w.client_config();
        c.host_candidates = vec![addr(socket)];
        c.detect_nat = false;
        c.waiting_ping_interval = waiting_ping_interval;
        w.add_client(socket, seed * 10 + i as u64 + 1, c);
    }
    w.wait_registered(&[0, 1], 5 * S);
    let key_a = w.key(0);
    let old: SocketAddr = w.server().registered_address(&key_a).unwrap();
    let (now, key_b) = (w.now(), w.key(1));
    w.client(0).connect_by_key(now, key_b).unwrap();
    w.run_for(20 * MS);
    let b_host = w.net.host_by_ip("198.51.100.2".parse().unwrap()).unwrap();
    w.net
        .set_link(
            LinkId::from(b_host),
            LinkConfig::default().with_loss_rate(1.0),
        )
        .unwrap();
    w.run_for(500 * MS);
    assert!(
        w.events(0).iter().all(|e| !matches!(
            e,
            srudp_proto::rendezvous::ClientEvent::PeerConnected { .. }
        )),
        "client 0 is still connecting"
    );
    w.net.flush_nat_mappings(nat).unwrap();
    let flushed = w.now();
    let moved = w.run_until(20 * S, |w| {
        w.server()
            .registered_address(&key_a)
            .is_some_and(|a| a != old)
    });
    assert!(moved, "the server never followed");
    w.now() - flushed
}

#[test]
fn a_client_still_connecting_to_a_peer_is_followed_within_a_second_of_its_rebinding() {
    let waiting = server_follows_after(1, S);
    assert!(waiting <= S + 100 * MS, "followed after {waiting:?}");
}

#[test]
fn without_the_waiting_pings_the_server_follows_only_when_the_client_next_sends() {
    // The control: the same rebinding is seen only when the client next
    // sends the server something of its own accord (here its relay
    // fallback, 3 s after the punch started) — what the pings avoid.
    let idle = server_follows_after(1, Duration::from_secs(3600));
    assert!(idle > 2 * S, "followed after {idle:?}");
}
