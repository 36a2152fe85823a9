//! Two srudp-proto endpoints joined in memory: every datagram one of them
//! emits is handed straight to the other, with the wall clock as `now`. No
//! socket, no copy beyond the one the calling contract implies — what is
//! left is the protocol's own cost (framing, crypto, recovery, flow control).
//! The pair owns its one datagram buffer, so the receiver opens each
//! datagram in it (`Endpoint::handle_datagram_in_place`), as an adapter
//! that owns its receive buffers does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use srudp_proto::MAX_UDP_PAYLOAD_SIZE;
use srudp_proto::{
    Cipher, ConnectionHandle, Endpoint, EndpointConfig, Event, Keypair, Rng, TransportConfig,
};

/// Address the sender pretends to have.
pub const A_ADDR: &str = "192.0.2.1:4433";
/// Address the receiver pretends to have.
pub const B_ADDR: &str = "198.51.100.1:4433";

/// A connected pair of endpoints, `a` (sender) and `b` (receiver).
#[derive(Debug)]
pub struct MemoryPair {
    /// The sending endpoint.
    pub a: Endpoint,
    /// The receiving endpoint.
    pub b: Endpoint,
    /// `a`'s handle of the connection.
    pub ha: ConnectionHandle,
    /// `b`'s handle of the connection.
    pub hb: ConnectionHandle,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
    datagram: Vec<u8>,
    read_buf: Vec<u8>,
}

fn endpoint(seed: u64, transport: &Arc<TransportConfig>, cipher: Cipher) -> Endpoint {
    let mut rng = Rng::from_seed(seed);
    let mut config = EndpointConfig::new(Keypair::generate(&mut rng));
    config.rng_seed = Some(seed ^ 0x5eed);
    config.transport = transport.clone();
    config.cipher = cipher;
    Endpoint::new(config).expect("valid configuration")
}

impl MemoryPair {
    /// Two endpoints with fixed seeds, connected (the handshake is done),
    /// with the default cipher (ChaCha20-Poly1305).
    pub fn connected(transport: TransportConfig) -> MemoryPair {
        Self::connected_with(transport, Cipher::ChaChaPoly)
    }

    /// As [`connected`](Self::connected), with the sender proposing `cipher`.
    pub fn connected_with(transport: TransportConfig, cipher: Cipher) -> MemoryPair {
        let transport = Arc::new(transport);
        let mut a = endpoint(1, &transport, cipher);
        let b = endpoint(2, &transport, cipher);
        let (a_addr, b_addr) = (A_ADDR.parse().unwrap(), B_ADDR.parse().unwrap());
        let ha = a
            .connect(Instant::now(), b.public_key(), &[b_addr])
            .expect("connect");
        let mut pair = MemoryPair {
            a,
            b,
            ha,
            hb: ha,
            a_addr,
            b_addr,
            datagram: vec![0; MAX_UDP_PAYLOAD_SIZE],
            read_buf: vec![0; 256 * 1024],
        };
        let mut hb = None;
        for _ in 0..1000 {
            pair.exchange(Instant::now());
            while let Some((h, e)) = pair.b.poll_event() {
                if matches!(e, Event::Connected { .. }) {
                    hb = Some(h);
                }
            }
            while pair.a.poll_event().is_some() {}
            if let Some(h) = hb {
                pair.hb = h;
                return pair;
            }
        }
        panic!("the in-memory handshake did not complete");
    }

    /// Carries datagrams both ways until neither side has anything to send
    /// at `now`; handles due timers first. Returns the datagrams carried.
    pub fn exchange(&mut self, now: Instant) -> usize {
        for ep in [&mut self.a, &mut self.b] {
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
            }
        }
        let mut carried = 0;
        loop {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit(now, &mut self.datagram) {
                self.b
                    .handle_datagram_in_place(now, self.a_addr, &mut self.datagram[..t.size]);
                moved = true;
                carried += 1;
            }
            while let Some(t) = self.b.poll_transmit(now, &mut self.datagram) {
                self.a
                    .handle_datagram_in_place(now, self.b_addr, &mut self.datagram[..t.size]);
                moved = true;
                carried += 1;
            }
            if !moved {
                return carried;
            }
        }
    }

    /// Reads (and discards) what `b` has; returns the byte count and
    /// whether the stream ended.
    pub fn read_b(&mut self) -> (u64, bool) {
        let mut total = 0;
        loop {
            match self.b.read(self.hb, &mut self.read_buf) {
                Ok(0) => return (total, true),
                Ok(n) => total += n as u64,
                Err(_) => return (total, false),
            }
        }
    }

    /// Drops both sides' events (the pair needs none of them).
    pub fn drain_events(&mut self) {
        while self.a.poll_event().is_some() {}
        while self.b.poll_event().is_some() {}
    }

    /// Sends `bytes` from `a` to `b` on the already-connected pair and
    /// returns the wall-clock time until `b` has read them all. Does not
    /// finish the stream, so the pair can be reused.
    pub fn transfer(&mut self, bytes: u64, chunk: &[u8]) -> Duration {
        let start = Instant::now();
        let (mut written, mut read) = (0u64, 0u64);
        let deadline = start + Duration::from_secs(600);
        while read < bytes {
            while written < bytes {
                let n = (bytes - written).min(chunk.len() as u64) as usize;
                match self.a.write(self.ha, &chunk[..n]) {
                    Ok(n) if n > 0 => written += n as u64,
                    _ => break,
                }
            }
            let now = Instant::now();
            assert!(now < deadline, "in-memory transfer stalled");
            self.exchange(now);
            self.drain_events();
            read += self.read_b().0;
        }
        start.elapsed()
    }
}
