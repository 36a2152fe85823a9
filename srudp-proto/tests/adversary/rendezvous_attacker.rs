//! What the rendezvous attacks share: an attacker's bare endpoints speaking
//! the rendezvous protocol by hand, and an honest pair whose service must
//! survive the attack.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use srudp_proto::rendezvous::Message;
use srudp_proto::sim::NatConfig;
use srudp_proto::{ConnectionHandle, Event, PathKind, TransportConfig};

use crate::world::{addr, data, endpoint, introduce, RawSlot, World};

pub const S: Duration = Duration::from_secs(1);

/// A bare endpoint at `socket` (key from `key_seed`) opening an IK
/// connection to the server, as a client would; returns its index among the
/// world's raw endpoints and the connection's handle.
pub fn attacker_at(
    w: &mut World,
    socket: &str,
    key_seed: u64,
    transport: &TransportConfig,
) -> (usize, ConnectionHandle) {
    let ep = endpoint(key_seed, transport);
    w.raws.push(RawSlot {
        addr: addr(socket),
        endpoint: ep,
        events: Vec::new(),
    });
    let r = w.raws.len() - 1;
    let h = w.connect_raw_to_server(r);
    (r, h)
}

/// Writes rendezvous messages on a raw endpoint's connection to the server.
pub fn write_messages(w: &mut World, r: usize, h: ConnectionHandle, messages: &[Message]) {
    let mut bytes = Vec::new();
    for m in messages {
        let mut frame = [0u8; 1026];
        let n = m.emit(&mut frame).unwrap();
        bytes.extend_from_slice(&frame[..n]);
    }
    let n = w.raws[r].endpoint.write(h, &bytes).unwrap();
    assert_eq!(n, bytes.len(), "the attacker's send buffer takes the flood");
}

/// Everything the server sent a raw endpoint on `h` so far, read from the
/// stream and parsed.
pub fn read_messages(w: &mut World, r: usize, h: ConnectionHandle) -> Vec<Message> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = w.raws[r].endpoint.read(h, &mut buf) {
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if rest.len() < 2 + len {
            break;
        }
        if let Ok(m) = Message::parse(&rest[2..2 + len]) {
            out.push(m);
        }
        rest = &rest[2 + len..];
    }
    out
}

/// Whether raw endpoint `r`'s connection `h` is up.
pub fn raw_connected(w: &World, r: usize, h: ConnectionHandle) -> bool {
    w.raws[r]
        .events
        .iter()
        .any(|(hh, e)| *hh == h && matches!(e, Event::Connected { .. }))
}

/// Adds two honest clients behind NATs of the given kind (public IPs
/// 198.51.100.1 and .2), with `groups` secrets if any; returns their indexes.
pub fn honest_pair(w: &mut World, nat: NatConfig) -> (usize, usize) {
    let na = w.add_nat("198.51.100.1", nat.clone());
    let nb = w.add_nat("198.51.100.2", nat);
    w.add_host_behind(na, "192.168.1.10");
    w.add_host_behind(nb, "192.168.2.20");
    let mut ids = [0; 2];
    for (k, (socket, key_seed)) in [("192.168.1.10:5000", 501), ("192.168.2.20:6000", 502)]
        .into_iter()
        .enumerate()
    {
        let mut c = w.client_config();
        c.detect_nat = false;
        c.host_candidates = vec![addr(socket)];
        ids[k] = w.add_client(socket, key_seed, c);
    }
    (ids[0], ids[1])
}

/// Client `a` asks for client `b` by key; both must report the connection
/// within `limit`, and 50 kB must cross it each way. Returns `a`'s path.
pub fn connect_and_exchange(w: &mut World, a: usize, b: usize, limit: Duration) -> PathKind {
    let ((ha, path), (hb, _)) = introduce(w, a, b, limit);
    let (a_data, b_data) = (data(w.seed, 50_000), data(w.seed + 1, 50_000));
    let (ra, rb) = w.exchange((a, ha), (b, hb), &a_data, &b_data, 30 * S);
    assert_eq!(ra, b_data, "seed {}", w.seed);
    assert_eq!(rb, a_data, "seed {}", w.seed);
    path
}
