//! Property: whatever the write sizes and whatever the network does to the
//! datagrams (loss, reordering, duplication), each side reads exactly the
//! bytes the other wrote, in order, and the connection closes gracefully
//! (spec §6.3, §6.6). Two endpoints are driven directly over a wire whose
//! every datagram's fate the property test chooses.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use srudp_proto::{
    CloseReason, ConnectionHandle, Endpoint, EndpointConfig, Event, Keypair, ReadError, Rng,
};

const A: &str = "192.0.2.1:1000";
const B: &str = "198.51.100.2:2000";
const ONE_WAY: Duration = Duration::from_millis(5);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Fate {
    Deliver,
    Drop,
    /// Delivered this many milliseconds late (reordered behind later ones).
    Delay(u64),
    /// Delivered twice, the copy this many milliseconds later.
    Duplicate(u64),
}

fn arb_fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        10 => Just(Fate::Deliver),
        3 => Just(Fate::Drop),
        2 => (1u64..40).prop_map(Fate::Delay),
        1 => (0u64..30).prop_map(Fate::Duplicate),
    ]
}

/// One side of the connection, as the application sees it.
struct Side {
    endpoint: Endpoint,
    handle: Option<ConnectionHandle>,
    data: Vec<u8>,
    writes: Vec<usize>,
    next_write: usize,
    written: usize,
    finished: bool,
    received: Vec<u8>,
    closed: Option<CloseReason>,
}

impl Side {
    fn new(seed: u64, data: Vec<u8>, writes: Vec<usize>) -> Side {
        let mut config = EndpointConfig::new(Keypair::generate(&mut Rng::from_seed(seed)));
        config.rng_seed = Some(seed);
        Side {
            endpoint: Endpoint::new(config).unwrap(),
            handle: None,
            data,
            writes,
            next_write: 0,
            written: 0,
            finished: false,
            received: Vec::new(),
            closed: None,
        }
    }

    /// Application work: events, writes of the chosen sizes, reads.
    fn pump(&mut self) {
        while let Some((h, e)) = self.endpoint.poll_event() {
            self.handle.get_or_insert(h);
            if let Event::Closed { reason } = e {
                self.closed = Some(reason);
            }
        }
        let Some(h) = self.handle else { return };
        while self.written < self.data.len() {
            let size = self
                .writes
                .get(self.next_write)
                .copied()
                .unwrap_or(4096)
                .max(1);
            let end = (self.written + size).min(self.data.len());
            match self.endpoint.write(h, &self.data[self.written..end]) {
                Ok(n) if n > 0 => {
                    self.written += n;
                    self.next_write += 1;
                }
                _ => break,
            }
        }
        if self.written == self.data.len() && !self.finished && self.endpoint.finish(h).is_ok() {
            self.finished = true;
        }
        let mut buf = [0u8; 3000];
        loop {
            match self.endpoint.read(h, &mut buf) {
                Ok(0)
                | Err(ReadError::Blocked | ReadError::Closed | ReadError::UnknownConnection) => {
                    break
                }
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
            }
        }
    }
}

struct InFlight {
    at: Instant,
    seq: u64,
    to_b: bool,
    bytes: Vec<u8>,
}

/// Runs the exchange; returns both sides when both closed (or gives up).
fn exchange(sizes: [(Vec<u8>, Vec<usize>); 2], fates: &[Fate]) -> (Side, Side) {
    let [(da, wa), (db, wb)] = sizes;
    let mut a = Side::new(1, da, wa);
    let mut b = Side::new(2, db, wb);
    let mut now = Instant::now();
    let start = now;
    let kb = b.endpoint.public_key();
    a.handle = Some(a.endpoint.connect(now, kb, &[addr(B)]).unwrap());
    let mut wire: Vec<InFlight> = Vec::new();
    let (mut sent, mut seq) = (0usize, 0u64);
    let mut buf = [0u8; 1200];
    while now - start < Duration::from_secs(600) {
        a.pump();
        b.pump();
        if a.closed.is_some() && b.closed.is_some() {
            break;
        }
        for (side, to_b) in [(&mut a, true), (&mut b, false)] {
            while let Some(t) = side.endpoint.poll_transmit(now, &mut buf) {
                let fate = fates.get(sent).copied().unwrap_or(Fate::Deliver);
                sent += 1;
                let bytes = buf[..t.size].to_vec();
                let mut send = |delay: u64| {
                    seq += 1;
                    wire.push(InFlight {
                        at: now + ONE_WAY + Duration::from_millis(delay),
                        seq,
                        to_b,
                        bytes: bytes.clone(),
                    });
                };
                match fate {
                    Fate::Deliver => send(0),
                    Fate::Drop => {}
                    Fate::Delay(ms) => send(ms),
                    Fate::Duplicate(ms) => {
                        send(0);
                        send(ms);
                    }
                }
            }
        }
        // Jump to the next delivery or timer.
        let next_delivery = wire.iter().map(|d| d.at).min();
        let next_timer = [a.endpoint.poll_timeout(), b.endpoint.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = [next_delivery, next_timer].into_iter().flatten().min() else {
            break;
        };
        now = now.max(next);
        wire.sort_by_key(|d| (d.at, d.seq));
        let due = wire.iter().take_while(|d| d.at <= now).count();
        for d in wire.drain(..due) {
            if d.to_b {
                b.endpoint.handle_datagram(now, addr(A), &d.bytes);
            } else {
                a.endpoint.handle_datagram(now, addr(B), &d.bytes);
            }
        }
        a.endpoint.handle_timeout(now);
        b.endpoint.handle_timeout(now);
    }
    (a, b)
}

fn arb_side() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    (
        0usize..40_000,
        any::<u64>(),
        proptest::collection::vec(
            prop_oneof![1usize..10, 10usize..2000, 2000usize..9000],
            1..30,
        ),
    )
        .prop_map(|(len, seed, writes)| {
            let mut data = vec![0u8; len];
            Rng::from_seed(seed).fill(&mut data);
            (data, writes)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn each_side_reads_exactly_what_the_other_wrote(
        a in arb_side(),
        b in arb_side(),
        fates in proptest::collection::vec(arb_fate(), 0..400),
    ) {
        let (a_data, b_data) = (a.0.clone(), b.0.clone());
        let (sa, sb) = exchange([a, b], &fates);
        prop_assert!(sb.received == a_data, "b got {} of {} bytes", sb.received.len(), a_data.len());
        prop_assert!(sa.received == b_data, "a got {} of {} bytes", sa.received.len(), b_data.len());
        prop_assert_eq!(sa.closed, Some(CloseReason::Finished));
        prop_assert_eq!(sb.closed, Some(CloseReason::Finished));
    }
}
