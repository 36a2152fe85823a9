//! An endpoint with one established connection, fed arbitrary datagrams
//! from arbitrary addresses, authenticated packets with arbitrary frames,
//! time, and application writes; then checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{CookieMode, EndpointConfig, TransportConfig};
use crate::event::{ConnectionHandle, Event};
use crate::keys::Keypair;
use crate::random::Rng;
use crate::sim::{Captured, LinkConfig, Network, NodeId, Simulation};
use crate::wire::{
    Writer, DATA_HEADER_LEN, MAX_DATAGRAM_SIZE, MAX_DATA_PLAINTEXT, MAX_UDP_PAYLOAD_SIZE, TAG_LEN,
};
use crate::Endpoint;

/// The client's address.
pub const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 4000);
/// The server's address.
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 4433);

/// The stream byte at offset `o` the client writes.
fn pattern(o: u64) -> u8 {
    (o.wrapping_mul(7) ^ (o >> 8)) as u8
}

/// A client and a server, connected over the simulator, deterministically:
/// the same keys, connection ids and session keys on every run.
#[derive(Debug)]
pub struct ConnectedPair {
    /// The simulation joining them (an ideal 5 ms link each).
    pub sim: Simulation,
    /// The initiator.
    pub client: NodeId,
    /// The responder, with small limits so inputs can reach them.
    pub server: NodeId,
    /// The client's connection.
    pub client_handle: ConnectionHandle,
    /// The server's connection.
    pub server_handle: ConnectionHandle,
    /// Stream bytes the client wrote.
    pub written: u64,
    /// Stream bytes the server's application read.
    pub received: Vec<u8>,
}

impl Default for ConnectedPair {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectedPair {
    /// Builds the pair and runs the handshake (datagrams are recorded).
    pub fn new() -> ConnectedPair {
        let mut net = Network::new(7);
        let link = LinkConfig::ideal().with_latency(Duration::from_millis(5));
        net.add_host(CLIENT.ip(), link.clone())
            .expect("fresh network");
        net.add_host(SERVER.ip(), link).expect("fresh network");
        let mut sim = Simulation::new(net, std::time::Instant::now());
        sim.record_datagrams();
        // The target forges authenticated frames: a protocol-error close is an
        // expected outcome here, not a bug in the sender.
        sim.allow_protocol_errors();
        let transport = Arc::new(TransportConfig {
            receive_window: 64 * 1024,
            max_receive_window: 64 * 1024,
            max_buffered_bytes: 72 * 1024,
            max_reorder_distance: 32 * 1024,
            ..TransportConfig::default()
        });
        let mut rng = Rng::from_seed(11);
        let mut server_config = EndpointConfig::new(Keypair::generate(&mut rng));
        server_config.rng_seed = Some(12);
        server_config.transport = transport.clone();
        server_config.max_connections = 6;
        server_config.max_pending_handshakes = 4;
        server_config.handshake_rate = 20;
        server_config.cookie_mode = CookieMode::UnderLoad;
        let mut client_config = EndpointConfig::new(Keypair::generate(&mut rng));
        client_config.rng_seed = Some(13);
        client_config.transport = transport;
        let server = sim.add_endpoint(SERVER, Endpoint::new(server_config).expect("valid"));
        let client = sim.add_endpoint(CLIENT, Endpoint::new(client_config).expect("valid"));
        let key = sim.endpoint(server).public_key();
        let now = sim.now();
        let client_handle = sim
            .endpoint(client)
            .connect(now, key, &[SERVER])
            .expect("connect");
        let mut server_handle = None;
        let mut client_up = false;
        sim.run_until(Duration::from_secs(5), |_, events| {
            for e in events {
                if matches!(e.event, Event::Connected { .. }) {
                    if e.node == server {
                        server_handle = Some(e.handle);
                    } else {
                        client_up = true;
                    }
                }
            }
            client_up && server_handle.is_some()
        });
        ConnectedPair {
            sim,
            client,
            server,
            client_handle,
            server_handle: server_handle.expect("the handshake completes"),
            written: 0,
            received: Vec::new(),
        }
    }

    /// The datagrams the simulation carried so far.
    pub fn captured(&self) -> &[Captured] {
        self.sim.captured()
    }

    /// Runs the simulation for `d`, the server's application reading all.
    pub fn run(&mut self, d: Duration) {
        let (server, h) = (self.server, self.server_handle);
        let received = &mut self.received;
        self.sim.run_until(d, |sim, _| {
            let mut buf = [0u8; 8192];
            while let Ok(n) = sim.endpoint(server).read(h, &mut buf) {
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buf[..n]);
            }
            false
        });
    }

    /// The client's application writes `n` more pattern bytes (as many as fit).
    pub fn write(&mut self, n: usize) {
        let data: Vec<u8> = (self.written..self.written + n as u64)
            .map(pattern)
            .collect();
        if let Ok(k) = self
            .sim
            .endpoint(self.client)
            .write(self.client_handle, &data)
        {
            self.written += k as u64;
        }
    }

    fn check(&mut self) {
        self.sim.endpoint(self.server).assert_invariants();
        self.sim.endpoint(self.client).assert_invariants();
    }

    fn authenticated(&mut self) -> u64 {
        let (s, c) = (self.server_handle, self.client_handle);
        let server = self
            .sim
            .endpoint(self.server)
            .stats(s)
            .map_or(0, |s| s.packets_received);
        let client = self
            .sim
            .endpoint(self.client)
            .stats(c)
            .map_or(0, |s| s.packets_received);
        server + client
    }
}

/// One operation of the endpoint target's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointOp {
    /// A datagram to the server from `source(n)` (0: the client's address).
    ToServer(u8, Vec<u8>),
    /// A datagram to the client from the server's address.
    ToClient(Vec<u8>),
    /// Frames sealed by the client's real keys, from `source(n)`.
    Sealed(u8, Vec<u8>),
    /// Let `n × 10 ms` of virtual time pass, real traffic flowing.
    Wait(u8),
    /// The client's application writes `n × 97` bytes.
    Write(u8),
    /// ACK frames built from the body (`hostile_acks`), sealed by the
    /// client's keys: ranges aimed at the numbers the server sent.
    Acks(u8, Vec<u8>),
}

impl EndpointOp {
    /// Appends the operation's encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut bytes = |tag: u8, arg: u8, body: &[u8]| {
            out.extend_from_slice(&[tag, arg]);
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            out.extend_from_slice(body);
        };
        match self {
            EndpointOp::ToServer(src, d) => bytes(0, *src, d),
            EndpointOp::ToClient(d) => bytes(1, 0, d),
            EndpointOp::Sealed(src, d) => bytes(2, *src, d),
            EndpointOp::Wait(n) => out.extend_from_slice(&[3, *n]),
            EndpointOp::Write(n) => out.extend_from_slice(&[4, *n]),
            EndpointOp::Acks(flags, d) => bytes(5, *flags, d),
        }
    }

    /// Decodes the operations of an input: `tag u8 | arg u8`, and for tags
    /// 0–2 and 5 `len u16 | body[len]` (the tag is taken modulo 6).
    pub fn decode_all(mut data: &[u8]) -> Vec<EndpointOp> {
        let mut ops = Vec::new();
        while let [tag, arg, rest @ ..] = data {
            let (tag, arg) = (tag % 6, *arg);
            data = rest;
            if tag == 3 || tag == 4 {
                ops.push(if tag == 3 {
                    EndpointOp::Wait(arg)
                } else {
                    EndpointOp::Write(arg)
                });
                continue;
            }
            let Some((len, rest)) = data.split_first_chunk::<2>() else {
                break;
            };
            let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
            let body = rest[..len].to_vec();
            data = &rest[len..];
            ops.push(match tag {
                0 => EndpointOp::ToServer(arg, body),
                1 => EndpointOp::ToClient(body),
                2 => EndpointOp::Sealed(arg, body),
                _ => EndpointOp::Acks(arg, body),
            });
        }
        ops
    }
}

/// The source address of selector `n`: the client for 0, else strangers on
/// IPv4 and IPv6.
fn source(n: u8) -> SocketAddr {
    match n {
        0 => CLIENT,
        1..=127 => SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, n)),
            1000 + u16::from(n),
        ),
        _ => SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n))),
            u16::from(n),
        ),
    }
}

/// ACK frames from fuzz input, as hostile as they come but mostly valid,
/// so they reach the sent-packet record instead of failing to parse: ranges
/// named relative to `next_pn` (the first number the server has not sent),
/// huge first ranges, up to 64 ranges per frame, as many frames as fit.
/// With `flags & 1` the largest may lie beyond what was sent (spec §6.2:
/// a protocol violation).
pub(super) fn hostile_acks(next_pn: u64, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = [0u8; MAX_DATA_PLAINTEXT];
    let mut w = Writer::new(&mut out);
    let mut bytes = body.iter().copied();
    let mut byte = || bytes.next();
    'frames: while let (Some(count), Some(back), Some(first)) = (byte(), byte(), byte()) {
        let largest = if flags & 1 != 0 && back & 0x80 != 0 {
            next_pn + u64::from(back & 0x7f)
        } else {
            // Below next_pn, as far back as the input says.
            next_pn.saturating_sub(1 + u64::from(back))
        };
        // 0xff: the whole span down to 0; else a span of `first²` numbers.
        let first_range = if first == 0xff {
            largest
        } else {
            (u64::from(first) * u64::from(first)).min(largest)
        };
        let mut smallest = largest - first_range;
        let mut pairs = Vec::new();
        for _ in 0..count % 64 {
            let (Some(g), Some(l)) = (byte(), byte()) else {
                break;
            };
            let (gap, len) = (u64::from(g), u64::from(l) * u64::from(l));
            // Stop where the next range would run below 0.
            let Some(s) = smallest.checked_sub(gap + 2 + len) else {
                break;
            };
            smallest = s;
            pairs.push((gap, len));
        }
        if crate::wire::emit_ack_fields(&mut w, largest, 0, first_range, &pairs).is_err() {
            break 'frames;
        }
    }
    let n = w.len();
    out[..n].to_vec()
}

/// The endpoint target: run `data`'s operations against a fresh pair, then
/// check limits, and that the connection still works.
pub fn endpoint(data: &[u8]) {
    let ops = EndpointOp::decode_all(data);
    let mut p = ConnectedPair::new();
    let mut authenticated_input = false;
    let mut waited = Duration::ZERO;
    // Bounded work per input: at most 64 operations and 60 s of virtual time.
    for op in ops.into_iter().take(64) {
        let now = p.sim.now();
        let before = p.authenticated();
        let raw = matches!(op, EndpointOp::ToServer(..) | EndpointOp::ToClient(_));
        match op {
            EndpointOp::ToServer(src, d) => {
                p.sim
                    .endpoint(p.server)
                    .handle_datagram(now, source(src), &d);
            }
            EndpointOp::ToClient(d) => {
                p.sim.endpoint(p.client).handle_datagram(now, SERVER, &d);
            }
            EndpointOp::Sealed(src, frames) => {
                // Up to a 1472-byte Data packet: large STREAM frames too.
                let mut dg = [0u8; MAX_UDP_PAYLOAD_SIZE];
                let frames = &frames[..frames
                    .len()
                    .min(MAX_UDP_PAYLOAD_SIZE - DATA_HEADER_LEN - TAG_LEN)];
                let h = p.client_handle;
                if let Some(n) = p
                    .sim
                    .endpoint(p.client)
                    .seal_for_peer(now, h, frames, &mut dg)
                {
                    p.sim
                        .endpoint(p.server)
                        .handle_datagram(now, source(src), &dg[..n]);
                }
                authenticated_input = true;
            }
            EndpointOp::Acks(flags, body) => {
                let next_pn = p
                    .sim
                    .endpoint(p.server)
                    .next_packet_number(p.server_handle)
                    .unwrap_or(0);
                let frames = hostile_acks(next_pn, flags, &body);
                let mut dg = [0u8; MAX_DATAGRAM_SIZE];
                let h = p.client_handle;
                if let Some(n) = p
                    .sim
                    .endpoint(p.client)
                    .seal_for_peer(now, h, &frames, &mut dg)
                {
                    p.sim
                        .endpoint(p.server)
                        .handle_datagram(now, CLIENT, &dg[..n]);
                }
                authenticated_input = true;
            }
            EndpointOp::Wait(n) => {
                let d = Duration::from_millis(10 * u64::from(n));
                waited += d;
                p.run(d);
            }
            EndpointOp::Write(n) => p.write(97 * usize::from(n)),
        }
        // A raw datagram that authenticated is a real packet of this pair
        // (a seed replaying another timeline); it may legitimately change
        // the connection's course.
        if raw && p.authenticated() > before {
            authenticated_input = true;
        }
        p.run(Duration::ZERO);
        p.check();
        if waited > Duration::from_secs(60) {
            break;
        }
    }

    // Still usable? The client writes more; everything it wrote must arrive.
    let (client, server) = (p.client, p.server);
    let closed = p.sim.endpoint(client).is_closed(p.client_handle)
        || p.sim.endpoint(server).is_closed(p.server_handle);
    if closed {
        assert!(
            authenticated_input,
            "unauthenticated input closed the connection"
        );
        return;
    }
    p.write(5000);
    let target = p.written;
    for _ in 0..600 {
        p.run(Duration::from_millis(100));
        if p.received.len() as u64 >= target || p.sim.endpoint(client).is_closed(p.client_handle) {
            break;
        }
    }
    p.check();
    if !authenticated_input {
        assert!(!p.sim.endpoint(client).is_closed(p.client_handle));
        assert_eq!(p.received.len() as u64, target, "data lost");
        let expected: Vec<u8> = (0..target).map(pattern).collect();
        assert!(p.received == expected, "data corrupted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_acks_from_fuzz_input_reach_the_sent_packet_record() {
        let seed = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fuzz/corpus/endpoint/seed-hostile-acks"),
        )
        .unwrap();
        let ops = EndpointOp::decode_all(&seed);
        assert!(
            ops.iter()
                .filter(|o| matches!(o, EndpointOp::Acks(..)))
                .count()
                >= 3
        );
        // The valid ones, by hand: ranges parse and are processed.
        let mut p = ConnectedPair::new();
        p.write(5000);
        p.run(Duration::from_millis(20));
        let next = p
            .sim
            .endpoint(p.server)
            .next_packet_number(p.server_handle)
            .unwrap();
        let before = p.sim.endpoint(p.server).stats(p.server_handle).unwrap();
        for op in ops.iter().filter(|o| matches!(o, EndpointOp::Acks(0, _))) {
            let EndpointOp::Acks(flags, body) = op else {
                unreachable!()
            };
            let frames = hostile_acks(next, *flags, body);
            assert!(frames.len() > 100);
            let mut dg = [0u8; MAX_DATAGRAM_SIZE];
            let (c, h, now) = (p.client, p.client_handle, p.sim.now());
            let n = p
                .sim
                .endpoint(c)
                .seal_for_peer(now, h, &frames, &mut dg)
                .unwrap();
            p.sim
                .endpoint(p.server)
                .handle_datagram(now, CLIENT, &dg[..n]);
        }
        let after = p.sim.endpoint(p.server).stats(p.server_handle).unwrap();
        assert!(!p.sim.endpoint(p.server).is_closed(p.server_handle));
        let ranges = after.ack_ranges_received - before.ack_ranges_received;
        assert!(ranges >= 100, "{ranges} ranges processed");
        p.check();
        // And the whole input runs clean through the target.
        endpoint(&seed);
    }
}
