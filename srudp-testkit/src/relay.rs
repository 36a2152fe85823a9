//! A UDP relay on loopback that impairs what it forwards: seeded drop,
//! duplication, reordering, delay and jitter.
//!
//! The relay sits between two fixed peers `a` and `b`. Datagrams from `a` go
//! to `b` and datagrams from `b` go to `a`; anything from another address is
//! ignored. `a` talks to [`ImpairingRelay::addr`] as if it were `b`, and `b`
//! sees the relay's address as its peer's.
//!
//! Two threads share the socket. The receiving one blocks in `recv_from`
//! (waking at least every [`MAX_TICK`] to notice a stop request), draws
//! every decision, in arrival order, from an [`Rng`] seeded by
//! [`Impairment::seed`], and puts the surviving datagrams in a delay queue.
//! The sending one sleeps on a condition variable until the next datagram
//! is due, so delays are kept to a fraction of a millisecond.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use srudp_proto::Rng;

/// Longest a relay thread sleeps before checking whether it should stop.
pub const MAX_TICK: Duration = Duration::from_millis(100);

/// Most datagrams waiting in the delay queue; more are dropped (and counted).
pub const MAX_QUEUED: usize = 16 * 1024;

/// How long a datagram chosen for reordering waits for a later one to
/// overtake it before it is sent anyway (in addition to its delay).
pub const REORDER_HOLD: Duration = Duration::from_millis(10);

/// Seeded impairments applied by the relay, per datagram.
///
/// Probabilities are clamped to `0.0..=1.0`. A datagram is first dropped with
/// probability `drop`; a surviving one is held back until the next datagram
/// in the same direction has been sent with probability `reorder`, and is
/// sent twice with probability `duplicate`. Every copy is delayed by `delay`
/// plus a uniformly random part of `jitter` (jitter alone also reorders).
#[derive(Debug, Clone)]
pub struct Impairment {
    /// Seed of every random decision.
    pub seed: u64,
    /// Probability that a datagram is dropped.
    pub drop: f64,
    /// Probability that a datagram is sent twice.
    pub duplicate: f64,
    /// Probability that a datagram is overtaken by the next one.
    pub reorder: f64,
    /// Fixed one-way delay added to every datagram.
    pub delay: Duration,
    /// Upper bound of the random delay added on top of `delay`.
    pub jitter: Duration,
}

impl Default for Impairment {
    /// No impairment: every datagram is forwarded at once, once, in order.
    fn default() -> Self {
        Impairment {
            seed: 0,
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
        }
    }
}

/// What the relay did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Datagrams sent on to a peer (duplicates count twice).
    pub forwarded: u64,
    /// Datagrams dropped, by the impairment or because the queue was full.
    pub dropped: u64,
    /// Datagrams that were sent twice.
    pub duplicated: u64,
    /// Datagrams that were overtaken by a later one in the same direction.
    pub reordered: u64,
}

#[derive(Debug, Default)]
struct Counters {
    forwarded: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A UDP relay on loopback between two fixed peers; see the module docs.
#[derive(Debug)]
pub struct ImpairingRelay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// A handle on the relay's socket, to wake the receiving thread when stopping.
    waker: UdpSocket,
    threads: Vec<JoinHandle<()>>,
}

/// State shared by the receiving and the sending thread.
#[derive(Debug, Default)]
struct Shared {
    counters: Counters,
    stop: AtomicBool,
    schedule: Mutex<Schedule>,
    /// Signalled when the schedule gets an earlier datagram or on stop.
    changed: Condvar,
}

impl ImpairingRelay {
    /// Starts a relay between `a` and `b`, bound to `127.0.0.1:0` or
    /// `[::1]:0` to match `a`'s address family.
    pub fn start(
        a: SocketAddr,
        b: SocketAddr,
        impairment: Impairment,
    ) -> io::Result<ImpairingRelay> {
        let bind: SocketAddr = match a {
            SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
        };
        let socket = UdpSocket::bind(bind)?;
        // The receiving thread checks for a stop request this often at least.
        socket.set_read_timeout(Some(MAX_TICK))?;
        let addr = socket.local_addr()?;
        let waker = socket.try_clone()?;
        let sender = socket.try_clone()?;
        let shared = Arc::new(Shared::default());
        let mut relay = ImpairingRelay {
            addr,
            shared: shared.clone(),
            waker,
            threads: Vec::new(),
        };
        let intake = Intake {
            socket,
            peers: [a, b],
            rng: Rng::from_seed(impairment.seed),
            impairment,
            shared: shared.clone(),
        };
        // On an error here, dropping `relay` stops the threads already started.
        relay.threads.push(
            std::thread::Builder::new()
                .name(format!("relay-in {addr}"))
                .spawn(move || intake.run())?,
        );
        relay.threads.push(
            std::thread::Builder::new()
                .name(format!("relay-out {addr}"))
                .spawn(move || send_loop(&shared, &sender))?,
        );
        Ok(relay)
    }

    /// The relay's address: `a` sends here to reach `b`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counts of what the relay did so far.
    pub fn stats(&self) -> RelayStats {
        let c = &self.shared.counters;
        RelayStats {
            forwarded: c.forwarded.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            duplicated: c.duplicated.load(Ordering::Relaxed),
            reordered: c.reordered.load(Ordering::Relaxed),
        }
    }
}

impl Drop for ImpairingRelay {
    /// Stops the relay's threads and waits for them; datagrams still delayed
    /// are discarded. Never panics.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        {
            // Taking the lock orders the flag before the sender's next check.
            let _schedule = self.shared.lock();
            self.shared.changed.notify_all();
        }
        // Wake the receiving thread now rather than at its next tick; if this
        // datagram is lost the tick still ends its loop.
        let _ = self.waker.send_to(&[], self.addr);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A datagram waiting in the delay queue, ordered by due time then arrival.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Delayed {
    due: Instant,
    seq: u64,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// A datagram held back so that the next one overtakes it.
#[derive(Debug)]
struct Held {
    /// Sent anyway at this instant if nothing overtook it.
    deadline: Instant,
    datagram: Delayed,
}

/// What is waiting to be sent, and when.
#[derive(Debug, Default)]
struct Schedule {
    queue: BinaryHeap<Reverse<Delayed>>,
    /// One held datagram per direction (index of the sending peer).
    held: [Option<Held>; 2],
    next_seq: u64,
}

impl Schedule {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn enqueue(&mut self, datagram: Delayed, counters: &Counters) {
        if self.queue.len() >= MAX_QUEUED {
            Counters::add(&counters.dropped);
            return;
        }
        self.queue.push(Reverse(datagram));
    }

    /// Moves held datagrams whose wait is over into the queue.
    fn release_held(&mut self, now: Instant, counters: &Counters) {
        for side in 0..2 {
            if self.held[side].as_ref().is_some_and(|h| h.deadline <= now) {
                if let Some(held) = self.held[side].take() {
                    self.enqueue(held.datagram, counters);
                }
            }
        }
    }

    /// The next instant something becomes due.
    fn next_due(&self) -> Option<Instant> {
        let queued = self.queue.peek().map(|Reverse(d)| d.due);
        let held = self.held.iter().flatten().map(|h| h.deadline).min();
        match (queued, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The receiving thread: takes every decision, in arrival order, from the
/// seeded generator, and hands the datagrams to the schedule.
struct Intake {
    socket: UdpSocket,
    peers: [SocketAddr; 2],
    impairment: Impairment,
    rng: Rng,
    shared: Arc<Shared>,
}

impl Intake {
    fn run(mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        while !self.shared.stopped() {
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => self.on_datagram(from, &buf[..n]),
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted
                    // Windows reports ICMP port-unreachable on the next receive.
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionRefused => {}
                    _ => return,
                },
            }
        }
    }

    fn on_datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        let Some(side) = self.peers.iter().position(|p| *p == from) else {
            return; // a stranger, or our own wake-up
        };
        let to = self.peers[1 - side];
        let now = Instant::now();
        let imp = &self.impairment;
        let counters = &self.shared.counters;
        if chance(&mut self.rng, imp.drop) {
            Counters::add(&counters.dropped);
            return;
        }
        let hold = chance(&mut self.rng, imp.reorder);
        let copies = if chance(&mut self.rng, imp.duplicate) {
            Counters::add(&counters.duplicated);
            2
        } else {
            1
        };
        let dues: Vec<Instant> = (0..copies)
            .map(|_| now + imp.delay + jitter(&mut self.rng, imp.jitter))
            .collect();
        let mut schedule = self.shared.lock();
        for (copy, due) in dues.into_iter().enumerate() {
            let seq = schedule.seq();
            let datagram = Delayed {
                due,
                seq,
                to,
                bytes: bytes.to_vec(),
            };
            if hold && copy == 0 && schedule.held[side].is_none() {
                schedule.held[side] = Some(Held {
                    deadline: due + REORDER_HOLD,
                    datagram,
                });
                continue;
            }
            schedule.enqueue(datagram, counters);
            // A datagram was waiting for this one to overtake it: it goes next.
            if let Some(mut held) = schedule.held[side].take() {
                held.datagram.due = held.datagram.due.max(due);
                held.datagram.seq = schedule.seq();
                Counters::add(&counters.reordered);
                schedule.enqueue(held.datagram, counters);
            }
        }
        self.shared.changed.notify_one();
    }
}

/// The sending thread: sleeps on the condition variable (precise to well
/// under a millisecond, unlike a socket read timeout) until the next
/// datagram is due, and sends it.
fn send_loop(shared: &Shared, socket: &UdpSocket) {
    let mut schedule = shared.lock();
    while !shared.stopped() {
        let now = Instant::now();
        schedule.release_held(now, &shared.counters);
        while schedule.queue.peek().is_some_and(|Reverse(d)| d.due <= now) {
            let Some(Reverse(d)) = schedule.queue.pop() else {
                break;
            };
            if socket.send_to(&d.bytes, d.to).is_ok() {
                Counters::add(&shared.counters.forwarded);
            }
        }
        let wait = schedule
            .next_due()
            .map_or(MAX_TICK, |due| due.saturating_duration_since(now))
            .min(MAX_TICK);
        if !wait.is_zero() {
            schedule = shared
                .changed
                .wait_timeout(schedule, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// `true` with probability `p`; certain outcomes draw nothing.
fn chance(rng: &mut Rng, p: f64) -> bool {
    if p.is_nan() || p <= 0.0 {
        false
    } else if p >= 1.0 {
        true
    } else {
        // 53 random bits: uniform in [0, 1).
        ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// A uniformly random duration in `0..=max`.
fn jitter(rng: &mut Rng, max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.below(nanos.saturating_add(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two plain sockets on loopback with the relay between them.
    fn setup(impairment: Impairment) -> (UdpSocket, UdpSocket, ImpairingRelay) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&a, &b] {
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
        }
        let relay =
            ImpairingRelay::start(a.local_addr().unwrap(), b.local_addr().unwrap(), impairment)
                .unwrap();
        (a, b, relay)
    }

    /// Receives datagrams until `quiet` passes without one.
    fn drain(socket: &UdpSocket, quiet: Duration) -> Vec<(Vec<u8>, SocketAddr)> {
        socket.set_read_timeout(Some(quiet)).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            out.push((buf[..n].to_vec(), from));
        }
        out
    }

    #[test]
    fn without_impairment_forwards_both_ways_in_order_from_the_relay_address() {
        let (a, b, relay) = setup(Impairment::default());
        for i in 0u8..20 {
            a.send_to(&[i], relay.addr()).unwrap();
        }
        let at_b = drain(&b, Duration::from_millis(200));
        assert_eq!(
            at_b.iter().map(|(d, _)| d[0]).collect::<Vec<_>>(),
            (0u8..20).collect::<Vec<_>>()
        );
        assert!(at_b.iter().all(|(_, from)| *from == relay.addr()));
        b.send_to(b"back", relay.addr()).unwrap();
        let at_a = drain(&a, Duration::from_millis(200));
        assert_eq!(at_a, vec![(b"back".to_vec(), relay.addr())]);
        assert_eq!(
            relay.stats(),
            RelayStats {
                forwarded: 21,
                ..RelayStats::default()
            }
        );
    }

    #[test]
    fn datagrams_from_strangers_are_ignored() {
        let (_a, b, relay) = setup(Impairment::default());
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(b"hi", relay.addr()).unwrap();
        assert!(drain(&b, Duration::from_millis(100)).is_empty());
        assert_eq!(relay.stats(), RelayStats::default());
    }

    #[test]
    fn drop_duplicate_and_reorder_follow_their_probabilities() {
        let seed = 7;
        let (a, b, relay) = setup(Impairment {
            seed,
            drop: 0.2,
            duplicate: 0.1,
            reorder: 0.1,
            ..Impairment::default()
        });
        let sent = 2000u32;
        // Receive while sending, and send in batches that wait until the
        // relay has handled and `b` has received what went before: loopback
        // socket buffers hold only a few hundred datagrams, and on a loaded
        // machine an unpaced sender would overflow them (a kernel drop is
        // not the relay's, and would break the accounting below).
        let received = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let receiver = {
            let (received, done) = (received.clone(), done.clone());
            std::thread::spawn(move || {
                b.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                let (mut out, mut buf) = (Vec::new(), [0u8; 64]);
                let deadline = Instant::now() + Duration::from_secs(60);
                while Instant::now() < deadline {
                    match b.recv_from(&mut buf) {
                        Ok((n, _)) => {
                            out.push(buf[..n].to_vec());
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) if done.load(Ordering::Relaxed) => break,
                        Err(_) => {}
                    }
                }
                out
            })
        };
        // Waits (bounded) until the relay accounted for `count` datagrams,
        // less `held` it may still hold back for reordering, and `b` has
        // received every one it forwarded.
        let settle = |count: u64, held: u64| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                let s = relay.stats();
                let handled = s.dropped + s.forwarded - s.duplicated;
                if handled + held >= count && received.load(Ordering::Relaxed) >= s.forwarded {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        for i in 0..sent {
            a.send_to(&i.to_be_bytes(), relay.addr()).unwrap();
            if i % 50 == 49 {
                settle(u64::from(i) + 1, 1);
            }
        }
        // The last one held back for reordering leaves after REORDER_HOLD.
        settle(u64::from(sent), 0);
        done.store(true, Ordering::Relaxed);
        let got = receiver.join().unwrap();
        let stats = relay.stats();
        let seqs: Vec<u32> = got
            .iter()
            .map(|d| u32::from_be_bytes(d[..4].try_into().unwrap()))
            .collect();
        let n = f64::from(sent);
        let within = |count: u64, p: f64| {
            let (c, mean) = (count as f64, n * p);
            (c - mean).abs() < 5.0 * (mean * (1.0 - p)).sqrt()
        };
        assert!(within(stats.dropped, 0.2), "seed {seed}: {stats:?}");
        assert!(
            within(stats.duplicated, 0.8 * 0.1),
            "seed {seed}: {stats:?}"
        );
        assert!(stats.reordered > 0, "seed {seed}: {stats:?}");
        assert_eq!(stats.forwarded, seqs.len() as u64, "seed {seed}");
        assert_eq!(
            u64::from(sent) - stats.dropped + stats.duplicated,
            stats.forwarded,
            "seed {seed}: every datagram is dropped or forwarded"
        );
        let out_of_order = seqs.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(out_of_order > 0, "seed {seed}: some arrived out of order");
    }

    #[test]
    fn the_same_seed_takes_the_same_decisions() {
        let run = |seed| {
            let (a, b, relay) = setup(Impairment {
                seed,
                drop: 0.3,
                ..Impairment::default()
            });
            for i in 0u8..100 {
                a.send_to(&[i], relay.addr()).unwrap();
            }
            drain(&b, Duration::from_millis(200))
                .into_iter()
                .map(|(d, _)| d[0])
                .collect::<Vec<u8>>()
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }

    #[test]
    fn delay_holds_datagrams_back() {
        let delay = Duration::from_millis(80);
        let (a, b, relay) = setup(Impairment {
            delay,
            ..Impairment::default()
        });
        let start = Instant::now();
        a.send_to(b"late", relay.addr()).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"late");
        assert!(start.elapsed() >= delay);
    }

    #[test]
    fn dropping_the_relay_stops_forwarding_promptly() {
        let (a, b, relay) = setup(Impairment {
            delay: Duration::from_secs(5),
            ..Impairment::default()
        });
        let addr = relay.addr();
        a.send_to(b"never", addr).unwrap();
        let start = Instant::now();
        drop(relay);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "drop joins at once"
        );
        a.send_to(b"x", addr).unwrap();
        assert!(drain(&b, Duration::from_millis(100)).is_empty());
    }

    #[test]
    fn binds_ipv6_loopback_for_an_ipv6_peer() {
        let Ok(a) = UdpSocket::bind("[::1]:0") else {
            println!("skipped: ::1 cannot be bound here");
            return;
        };
        let b = UdpSocket::bind("[::1]:0").unwrap();
        let relay = ImpairingRelay::start(
            a.local_addr().unwrap(),
            b.local_addr().unwrap(),
            Impairment::default(),
        )
        .unwrap();
        assert!(relay.addr().is_ipv6());
        a.send_to(b"six", relay.addr()).unwrap();
        assert_eq!(drain(&b, Duration::from_millis(200)).len(), 1);
    }
}
