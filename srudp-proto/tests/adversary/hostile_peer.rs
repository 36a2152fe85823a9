//! A victim endpoint with two established connections: one to an honest
//! peer, carried faithfully, and one to an attacker who completed an NK
//! handshake and from then on sends only packets it forges — authenticated
//! with its session keys, holding whatever frames the test chooses — and
//! never answers otherwise. Datagrams are carried by hand on a virtual
//! clock (no simulator), so a million hostile packets take seconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use srudp_proto::wire::{Frame, FrameIter, Packet, MAX_DATAGRAM_SIZE};
use srudp_proto::{
    CloseReason, ConnectionHandle, ConnectionStats, Endpoint, EndpointConfig, Event, Keypair, Rng,
    TransportConfig,
};

const VICTIM: &str = "192.0.2.1:4433";
const ATTACKER: &str = "198.51.100.7:5000";
const HONEST: &str = "203.0.113.9:6000";

/// Stream bytes the honest peer sends the victim during an attack.
pub(crate) const HONEST_BYTES: usize = 256 * 1024;

fn endpoint(seed: u64, transport: &TransportConfig) -> Endpoint {
    let mut rng = Rng::from_seed(seed);
    let mut config = EndpointConfig::new(Keypair::generate(&mut rng));
    config.rng_seed = Some(seed);
    config.transport = std::sync::Arc::new(transport.clone());
    Endpoint::new(config).expect("valid config")
}

fn honest_byte(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

pub(crate) struct HostilePeer {
    pub(crate) victim: Endpoint,
    attacker: Endpoint,
    honest: Endpoint,
    /// The victim's connection to the attacker.
    victim_handle: Option<ConnectionHandle>,
    attacker_handle: ConnectionHandle,
    honest_handle: ConnectionHandle,
    victim_honest_handle: Option<ConnectionHandle>,
    pub(crate) now: Instant,
    buf: Vec<u8>,
    read_buf: Vec<u8>,
    /// Highest packet number the victim sent the attacker.
    pub(crate) largest_from_victim: Option<u64>,
    /// Datagrams the victim sent the attacker.
    pub(crate) datagrams_to_attacker: u64,
    /// Numbers of the victim's packets to the attacker that elicit no
    /// acknowledgment (ACK-only): the attacker opens them with its keys,
    /// once `track_ack_only` is set.
    pub(crate) ack_only_from_victim: Vec<u64>,
    pub(crate) track_ack_only: bool,
    honest_written: usize,
    /// What the victim read from the honest peer.
    pub(crate) honest_received: Vec<u8>,
    /// Why the victim closed its connection to the attacker, once it did.
    pub(crate) attacker_closed: Option<CloseReason>,
    honest_closed: Option<CloseReason>,
}

impl HostilePeer {
    /// Both handshakes, carried faithfully; the attacker's connection is
    /// confirmed before the attack starts.
    pub(crate) fn connect(transport: TransportConfig) -> HostilePeer {
        let victim = endpoint(1, &transport);
        let mut attacker = endpoint(2, &transport);
        let mut honest = endpoint(3, &transport);
        let now = Instant::now();
        let victim_addr: SocketAddr = VICTIM.parse().unwrap();
        let attacker_handle = attacker
            .connect(now, victim.public_key(), &[victim_addr])
            .unwrap();
        let honest_handle = honest
            .connect(now, victim.public_key(), &[victim_addr])
            .unwrap();
        let mut p = HostilePeer {
            victim,
            attacker,
            honest,
            victim_handle: None,
            attacker_handle,
            honest_handle,
            victim_honest_handle: None,
            now,
            buf: vec![0; MAX_DATAGRAM_SIZE],
            read_buf: vec![0; 64 * 1024],
            largest_from_victim: None,
            datagrams_to_attacker: 0,
            ack_only_from_victim: Vec::new(),
            track_ack_only: false,
            honest_written: 0,
            honest_received: Vec::new(),
            attacker_closed: None,
            honest_closed: None,
        };
        for _ in 0..10_000 {
            if p.victim_handle.is_some() && p.victim_honest_handle.is_some() {
                break;
            }
            // The handshake, carried both ways for the attacker too.
            while let Some(t) = p.attacker.poll_transmit(p.now, &mut p.buf) {
                p.victim
                    .handle_datagram(p.now, ATTACKER.parse().unwrap(), &p.buf[..t.size]);
            }
            while let Some(t) = p.victim.poll_transmit(p.now, &mut p.buf) {
                if t.destination == ATTACKER.parse().unwrap() {
                    p.attacker
                        .handle_datagram(p.now, victim_addr, &p.buf[..t.size]);
                }
                if t.destination == HONEST.parse().unwrap() {
                    p.honest
                        .handle_datagram(p.now, victim_addr, &p.buf[..t.size]);
                }
            }
            while let Some(t) = p.honest.poll_transmit(p.now, &mut p.buf) {
                p.victim
                    .handle_datagram(p.now, HONEST.parse().unwrap(), &p.buf[..t.size]);
            }
            while let Some((h, e)) = p.victim.poll_event() {
                if let Event::Connected { .. } = e {
                    if p.victim.remote_address(h) == Some(ATTACKER.parse().unwrap()) {
                        p.victim_handle = Some(h);
                    } else {
                        p.victim_honest_handle = Some(h);
                    }
                }
            }
            while p.attacker.poll_event().is_some() {}
            while p.honest.poll_event().is_some() {}
            p.now += Duration::from_millis(1);
            for ep in [&mut p.victim, &mut p.attacker, &mut p.honest] {
                ep.handle_timeout(p.now);
            }
        }
        assert!(
            p.victim_handle.is_some(),
            "the attacker's handshake completed"
        );
        assert!(
            p.victim_honest_handle.is_some(),
            "the honest handshake completed"
        );
        // Let the handshake's last packets settle on both connections.
        for _ in 0..50 {
            p.step(Duration::from_millis(1));
        }
        p
    }

    /// The attacker sends one authenticated packet holding `frames`; the
    /// victim handles it and everything it makes the victim send.
    pub(crate) fn send(&mut self, frames: &[u8]) {
        let n = self
            .attacker
            .seal_for_peer(self.now, self.attacker_handle, frames, &mut self.buf)
            .expect("the attacker's connection can seal");
        self.victim
            .handle_datagram(self.now, ATTACKER.parse().unwrap(), &self.buf[..n]);
        self.drain_victim();
    }

    /// Time passes: the victim's timers run, the honest transfer moves on.
    pub(crate) fn step(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            let next = self.victim.poll_timeout().filter(|&t| t <= until);
            self.now = next.unwrap_or(until).max(self.now);
            self.victim.handle_timeout(self.now);
            self.honest.handle_timeout(self.now);
            self.drain_victim();
            if next.is_none() {
                break;
            }
        }
    }

    /// Carries the victim's datagrams (to the attacker: counted, never
    /// answered) and the honest exchange, then the events.
    fn drain_victim(&mut self) {
        let victim_addr: SocketAddr = VICTIM.parse().unwrap();
        while self.honest_written < HONEST_BYTES {
            let end = (self.honest_written + 16 * 1024).min(HONEST_BYTES);
            let chunk: Vec<u8> = (self.honest_written..end).map(honest_byte).collect();
            match self.honest.write(self.honest_handle, &chunk) {
                Ok(n) if n > 0 => self.honest_written += n,
                _ => break,
            }
        }
        for _ in 0..64 {
            let mut moved = false;
            while let Some(t) = self.victim.poll_transmit(self.now, &mut self.buf) {
                moved = true;
                if t.destination == ATTACKER.parse().unwrap() {
                    self.datagrams_to_attacker += 1;
                    if let Ok(Packet::Data(header, _)) = Packet::parse(&self.buf[..t.size]) {
                        let pn = header.packet_number;
                        self.largest_from_victim =
                            Some(self.largest_from_victim.map_or(pn, |l| l.max(pn)));
                        if self.track_ack_only {
                            let plain = self
                                .attacker
                                .open_from_peer(self.attacker_handle, &self.buf[..t.size])
                                .unwrap_or_default();
                            let ack_only = FrameIter::new(&plain)
                                .all(|f| matches!(f, Ok(Frame::Ack(_) | Frame::Padding { .. })));
                            if ack_only {
                                self.ack_only_from_victim.push(pn);
                            }
                        }
                    }
                } else {
                    self.honest
                        .handle_datagram(self.now, victim_addr, &self.buf[..t.size]);
                }
            }
            while let Some(t) = self.honest.poll_transmit(self.now, &mut self.buf) {
                moved = true;
                self.victim
                    .handle_datagram(self.now, HONEST.parse().unwrap(), &self.buf[..t.size]);
            }
            if !moved {
                break;
            }
        }
        while let Some((h, e)) = self.victim.poll_event() {
            if let Event::Closed { reason } = e {
                if Some(h) == self.victim_handle {
                    self.attacker_closed = Some(reason);
                } else {
                    self.honest_closed = Some(reason);
                }
            }
        }
        while self.honest.poll_event().is_some() {}
        if let Some(h) = self.victim_honest_handle {
            while let Ok(n) = self.victim.read(h, &mut self.read_buf) {
                if n == 0 {
                    break;
                }
                self.honest_received.extend_from_slice(&self.read_buf[..n]);
            }
        }
    }

    /// The victim's connection to the attacker.
    pub(crate) fn victim_handle(&self) -> ConnectionHandle {
        self.victim_handle.expect("connected")
    }

    /// The victim's counters for its connection to the attacker.
    pub(crate) fn victim_stats(&self) -> ConnectionStats {
        self.victim
            .stats(self.victim_handle())
            .expect("the victim keeps the connection")
    }

    /// Runs the honest transfer to its end and checks it: every byte, in
    /// order, and the honest connection still open.
    pub(crate) fn assert_honest_transfer_intact(&mut self) {
        for _ in 0..100_000 {
            if self.honest_received.len() >= HONEST_BYTES {
                break;
            }
            self.step(Duration::from_millis(1));
        }
        assert_eq!(self.honest_closed, None, "the honest connection survived");
        assert_eq!(
            self.honest_received.len(),
            HONEST_BYTES,
            "every honest byte arrived"
        );
        assert!(
            self.honest_received
                .iter()
                .enumerate()
                .all(|(i, &b)| b == honest_byte(i)),
            "honest bytes arrive intact"
        );
    }
}

/// The plaintext of a Data packet holding `list`, as the attacker writes it.
pub(crate) fn frames(list: &[Frame<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_DATAGRAM_SIZE];
    let mut w = srudp_proto::wire::Writer::new(&mut buf);
    for f in list {
        f.emit(&mut w).unwrap();
    }
    let n = w.len();
    buf.truncate(n);
    buf
}
