//! Replay protection (spec §5, §4.2): a captured datagram re-sent any number
//! of times, at once or later, is never accepted twice, and a packet older
//! than the replay window is refused even if it was never seen; replayed
//! handshake messages create nothing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use srudp_proto::{ConnectionHandle, Endpoint, EndpointConfig, Event, Keypair, Rng};

const A: &str = "192.0.2.1:1000";
const B: &str = "198.51.100.2:2000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn endpoint(seed: u64) -> Endpoint {
    let mut config = EndpointConfig::new(Keypair::generate(&mut Rng::from_seed(seed)));
    config.rng_seed = Some(seed);
    Endpoint::new(config).unwrap()
}

/// Two endpoints joined by hand; every datagram a sends to b is kept.
struct Wire {
    a: Endpoint,
    b: Endpoint,
    ha: ConnectionHandle,
    hb: Option<ConnectionHandle>,
    now: Instant,
    a_to_b: Vec<Vec<u8>>,
    b_to_a: Vec<Vec<u8>>,
    /// Datagrams from a to b that are captured but not delivered.
    withhold: Option<usize>,
}

impl Wire {
    fn new() -> Wire {
        let (mut a, b) = (endpoint(1), endpoint(2));
        let now = Instant::now();
        let ha = a.connect(now, b.public_key(), &[addr(B)]).unwrap();
        Wire {
            a,
            b,
            ha,
            hb: None,
            now,
            a_to_b: Vec::new(),
            b_to_a: Vec::new(),
            withhold: None,
        }
    }

    /// Carries datagrams until quiet, then moves the clock to the next
    /// deadline; `rounds` times at most.
    fn run(&mut self, rounds: usize, mut done: impl FnMut(&mut Wire) -> bool) {
        let mut buf = [0u8; 1200];
        for _ in 0..rounds {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit(self.now, &mut buf) {
                let d = buf[..t.size].to_vec();
                if self.withhold != Some(self.a_to_b.len()) {
                    self.b.handle_datagram(self.now, addr(A), &d);
                }
                self.a_to_b.push(d);
                moved = true;
            }
            while let Some(t) = self.b.poll_transmit(self.now, &mut buf) {
                self.a.handle_datagram(self.now, addr(B), &buf[..t.size]);
                self.b_to_a.push(buf[..t.size].to_vec());
                moved = true;
            }
            while let Some((h, e)) = self.b.poll_event() {
                if matches!(e, Event::Connected { .. }) {
                    self.hb = Some(h);
                }
            }
            while self.a.poll_event().is_some() {}
            if let Some(hb) = self.hb {
                let mut sink = [0u8; 65536];
                while matches!(self.b.read(hb, &mut sink), Ok(n) if n > 0) {}
            }
            if done(self) {
                return;
            }
            if !moved {
                let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(self.now + Duration::from_millis(1));
                self.now = next.max(self.now);
                self.a.handle_timeout(self.now);
                self.b.handle_timeout(self.now);
            }
        }
        panic!("did not finish in {rounds} rounds");
    }

    fn b_stats(&self) -> srudp_proto::ConnectionStats {
        self.b.stats(self.hb.unwrap()).unwrap()
    }
}

/// Everything a sent is acknowledged, and it has sent more than `packets`.
fn all_acked(w: &Wire, packets: u64) -> bool {
    let s = w.a.stats(w.ha).unwrap();
    s.bytes_in_flight == 0 && s.packets_sent > packets
}

fn is_data(d: &[u8]) -> bool {
    d.len() > 1 && d[1] == 3
}

#[test]
fn a_replayed_data_packet_is_never_accepted_twice_now_or_later() {
    let mut w = Wire::new();
    w.run(1000, |w| w.hb.is_some());
    let ha = w.ha;
    w.a.write(ha, &[1u8; 20_000]).unwrap();
    let first = w.a_to_b.len();
    w.run(1000, |w| {
        let s = w.a.stats(ha).unwrap();
        s.stream_bytes_acked >= 20_000 && s.bytes_in_flight == 0
    });
    let captured: Vec<Vec<u8>> = w.a_to_b[first..]
        .iter()
        .filter(|d| is_data(d))
        .cloned()
        .collect();
    assert!(captured.len() >= 10);

    // Each captured packet replayed 5 times, at once: all dropped as replays.
    let before = w.b_stats();
    for d in &captured {
        for _ in 0..5 {
            w.b.handle_datagram(w.now, addr(A), d);
        }
    }
    let after = w.b_stats();
    assert_eq!(after.packets_received, before.packets_received);
    assert_eq!(
        after.dropped_replayed - before.dropped_replayed,
        5 * captured.len() as u64
    );
    let mut buf = [0u8; 100];
    assert!(
        w.b.read(w.hb.unwrap(), &mut buf).is_err(),
        "nothing new to read"
    );

    // Much later, after more than a replay window of packets: still dropped.
    w.a.write(ha, &vec![2u8; 3_000_000]).unwrap();
    w.run(100_000, |w| all_acked(w, 2600));
    let before = w.b_stats();
    for d in &captured {
        w.b.handle_datagram(w.now, addr(A), d);
        w.b.handle_datagram(w.now, addr("203.0.113.5:5"), d);
    }
    let after = w.b_stats();
    assert_eq!(after.packets_received, before.packets_received);
    assert_eq!(
        after.dropped_replayed - before.dropped_replayed,
        2 * captured.len() as u64
    );
}

#[test]
fn a_packet_delayed_beyond_the_replay_window_is_refused_though_never_seen() {
    let mut w = Wire::new();
    w.run(1000, |w| w.hb.is_some());
    let ha = w.ha;
    // Withhold one data packet from b (captured by an attacker, say).
    w.withhold = Some(w.a_to_b.len());
    w.a.write(ha, &vec![3u8; 3_000_000]).unwrap();
    w.run(100_000, |w| all_acked(w, 2600));
    let delayed = w.a_to_b[w.withhold.unwrap()].clone();
    assert!(is_data(&delayed));
    let before = w.b_stats();
    w.b.handle_datagram(w.now, addr(A), &delayed);
    let after = w.b_stats();
    assert_eq!(after.packets_received, before.packets_received, "too old");
    assert_eq!(after.dropped_replayed, before.dropped_replayed + 1);
}

#[test]
fn replayed_handshake_messages_change_nothing_on_an_established_connection() {
    let mut w = Wire::new();
    w.run(1000, |w| w.hb.is_some());
    let init = w.a_to_b[0].clone();
    let response = w.b_to_a[0].clone();
    assert_eq!((init[1], response[1]), (1, 2));
    for _ in 0..10 {
        w.b.handle_datagram(w.now, addr(A), &init);
        w.b.handle_datagram(w.now, addr("203.0.113.9:9"), &init);
        w.a.handle_datagram(w.now, addr(B), &response);
    }
    assert_eq!(w.b.connection_count(), 1, "no second connection");
    assert_eq!(w.a.connection_count(), 1);
    let mut buf = [0u8; 1200];
    assert!(w.b.poll_transmit(w.now, &mut buf).is_none(), "nothing sent");
    assert!(w.a.poll_transmit(w.now, &mut buf).is_none(), "nothing sent");
    // Both still work.
    w.a.write(w.ha, b"still here").unwrap();
    w.run(1000, |w| {
        all_acked(w, 2) && w.b_stats().packets_received >= 3
    });
}
