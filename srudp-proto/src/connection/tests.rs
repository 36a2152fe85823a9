//! Connection-level scenarios (spec §6–§7): two established connections
//! joined by a tiny network of our own (fixed one-way delay, a per-packet
//! policy to drop or delay), with full control of time. Hostile input is
//! injected as frames sealed with the peer's real keys.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::crypto::Handshake;
use crate::keys::Keypair;
use crate::wire::Packet;

const MS: Duration = Duration::from_millis(1);
const A: Side = Side::Initiator;

/// What the test network does with one datagram.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    Deliver,
    Drop,
    /// Deliver this much later than usual.
    Delay(Duration),
}

type Policy = Box<dyn FnMut(bool, u64) -> Fate>;

struct Pair {
    a: Connection,
    b: Connection,
    now: Instant,
    one_way: Duration,
    /// Datagrams on the way: when, towards b?, bytes.
    wire: Vec<(Instant, bool, Vec<u8>)>,
    /// Decides each datagram's fate from its direction (towards b?) and packet number.
    policy: Policy,
    scratch: Vec<u8>,
    /// The size of the buffers `flush` offers `poll_transmit`: the base
    /// size, so no path MTU probe goes out unless a test makes room.
    datagram_buf: usize,
}

fn addr_a() -> SocketAddr {
    "192.0.2.1:1".parse().unwrap()
}

fn addr_b() -> SocketAddr {
    "192.0.2.2:2".parse().unwrap()
}

fn params(config: &TransportConfig, cid: ConnectionId) -> TransportParams {
    TransportParams {
        refused: false,
        cid,
        max_data: config.receive_window,
        idle_timeout_ms: config.idle_timeout.as_millis() as u64,
        max_ack_delay_ms: config.max_ack_delay.as_millis() as u64,
        accepts_ack_frequency: true,
        ticket_proof: None,
        ticket_required: false,
        introduced: false,
        max_udp_payload: config.max_udp_payload as u64,
    }
}

impl Pair {
    /// Two established connections, `a` (initiator) and `b`, `one_way` apart.
    fn new(config_a: TransportConfig, config_b: TransportConfig, one_way: Duration) -> Pair {
        let mut rng = Rng::from_seed(1);
        let server = Keypair::generate(&mut rng);
        let client = Keypair::generate(&mut rng);
        let (cid_a, cid_b) = (ConnectionId(0xaaaa), ConnectionId(0xbbbb));
        let mut i = Handshake::initiator(
            HandshakePattern::NK,
            crate::crypto::Cipher::ChaChaPoly,
            &client,
            &server.public(),
            cid_a,
            rng.seed32(),
        )
        .unwrap();
        let mut r = Handshake::responder(
            HandshakePattern::NK,
            crate::crypto::Cipher::ChaChaPoly,
            &server,
            cid_a,
            rng.seed32(),
        )
        .unwrap();
        let (mut m, mut p) = ([0u8; 512], [0u8; 512]);
        let n = i.write(b"", &mut m).unwrap();
        r.read(&m[..n], &mut p).unwrap();
        let n = r.write(b"", &mut m).unwrap();
        i.read(&m[..n], &mut p).unwrap();
        let now = Instant::now();
        let make = |config: TransportConfig,
                    side,
                    local,
                    remote,
                    peer_config: &TransportConfig,
                    remote_addr,
                    session| {
            let config = Arc::new(config);
            let cc = config.congestion.build(now, MAX_DATAGRAM_SIZE as u64);
            let mut c =
                Connection::blank(now, config, side, local, remote_addr, cc, Rng::from_seed(3));
            c.state = State::Established;
            c.remote_cid = remote;
            c.session = Some(session);
            c.path.validated = true;
            c.apply_peer_params(&params(peer_config, remote));
            c.timers.set(Timer::Idle, now + c.idle_timeout);
            c
        };
        let a = make(
            config_a.clone(),
            A,
            cid_a,
            cid_b,
            &config_b,
            addr_b(),
            i.into_session().unwrap(),
        );
        let b = make(
            config_b,
            Side::Responder,
            cid_b,
            cid_a,
            &config_a,
            addr_a(),
            r.into_session().unwrap(),
        );
        Pair {
            a,
            b,
            now,
            one_way,
            wire: Vec::new(),
            policy: Box::new(|_, _| Fate::Deliver),
            scratch: vec![0; crate::wire::MAX_UDP_PAYLOAD_SIZE],
            datagram_buf: MAX_DATAGRAM_SIZE,
        }
    }

    fn default_pair() -> Pair {
        Pair::new(
            TransportConfig::default(),
            TransportConfig::default(),
            25 * MS,
        )
    }

    /// Sends everything both sides have to send now.
    fn flush(&mut self) {
        let mut buf = vec![0u8; self.datagram_buf];
        for towards_b in [true, false] {
            loop {
                let conn = if towards_b { &mut self.a } else { &mut self.b };
                let Some(t) = conn.poll_transmit(
                    self.now,
                    &mut buf,
                    &mut UnansweredBudget::default(),
                    &mut UnansweredBudget::default(),
                ) else {
                    break;
                };
                let Ok(Packet::Data(header, _)) = Packet::parse(&buf[..t.size]) else {
                    panic!("only data packets after the handshake");
                };
                let at = match (self.policy)(towards_b, header.packet_number) {
                    Fate::Drop => continue,
                    Fate::Deliver => self.now + self.one_way,
                    Fate::Delay(d) => self.now + self.one_way + d,
                };
                self.wire.push((at, towards_b, buf[..t.size].to_vec()));
            }
        }
    }

    fn deliver(&mut self, towards_b: bool, datagram: &[u8]) {
        let Ok(Packet::Data(header, sealed)) = Packet::parse(datagram) else {
            panic!("not a data packet");
        };
        let (conn, from) = if towards_b {
            (&mut self.b, addr_a())
        } else {
            (&mut self.a, addr_b())
        };
        conn.handle_data(
            self.now,
            from,
            header,
            sealed,
            datagram.len(),
            &mut self.scratch,
        );
    }

    /// Runs deliveries and timers until `until`, and lets the app act via `app` after each step.
    fn run_until(&mut self, until: Instant, app: &mut dyn FnMut(&mut Pair)) {
        for _ in 0..1_000_000 {
            app(self);
            self.flush();
            let next_wire = self.wire.iter().map(|(t, _, _)| *t).min();
            let next = [next_wire, self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .filter(|t| *t <= until);
            let Some(next) = next else {
                self.now = self.now.max(until);
                return;
            };
            self.now = self.now.max(next);
            let now = self.now;
            let due: Vec<_> = self
                .wire
                .iter()
                .filter(|(t, _, _)| *t <= now)
                .cloned()
                .collect();
            self.wire.retain(|(t, _, _)| *t > now);
            for (_, towards_b, d) in due {
                self.deliver(towards_b, &d);
            }
            self.a.handle_timeout(now);
            self.b.handle_timeout(now);
        }
        panic!("run_until did not reach its deadline");
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until, &mut |_| {});
    }

    /// Seals `frames` as the next packet of `a` (or of `b`) and delivers it
    /// to the other side at once: what a hostile peer holding the keys can do.
    fn inject(&mut self, towards_b: bool, frames: &[u8]) -> u64 {
        let sender = if towards_b { &mut self.a } else { &mut self.b };
        let pn = sender.next_pn;
        sender.next_pn += 1;
        let mut datagram = [0u8; MAX_DATAGRAM_SIZE];
        let receiver_cid = if towards_b {
            self.b.local_cid
        } else {
            self.a.local_cid
        };
        let h = DataHeader {
            dcid: receiver_cid,
            packet_number: pn,
        }
        .emit(&mut datagram)
        .unwrap();
        let sender = if towards_b { &self.a } else { &self.b };
        let n = sender
            .session
            .as_ref()
            .unwrap()
            .seal(pn, frames, &mut datagram[h..])
            .unwrap();
        self.deliver(towards_b, &datagram[..h + n]);
        pn
    }

    /// Writes `n` bytes on `a`'s stream (as many as fit).
    fn write_a(&mut self, n: usize) -> usize {
        self.a.write(&vec![0x42; n]).unwrap_or(0)
    }

    fn read_b(&mut self) -> usize {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0;
        while let Ok(n) = self.b.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    }
}

fn frame_bytes(frame: Frame<'_>) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    frame.emit(&mut w).unwrap();
    let n = w.len();
    buf[..n].to_vec()
}

fn ack_bytes(largest: u64, delay_micros: u64) -> Vec<u8> {
    let mut ranges = crate::range_set::RangeSet::new();
    ranges.insert(0..largest + 1);
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    crate::wire::emit_ack(&mut w, &ranges, delay_micros, 32).unwrap();
    let n = w.len();
    buf[..n].to_vec()
}

/// `b` closed with a protocol violation about `detail`, and `a` hears the
/// CLOSE with `code` and that reason.
fn assert_closed_by_b(p: &mut Pair, detail: &str, code: u64) {
    match &p.b.close_reason {
        Some(CloseReason::ProtocolViolation { detail: d }) => {
            assert!(d.contains(detail), "closed for {d:?}, expected {detail:?}")
        }
        other => panic!("b did not close with a protocol violation: {other:?}"),
    }
    p.run_for(100 * MS);
    match &p.a.close_reason {
        Some(CloseReason::PeerError { code: c, reason }) => {
            assert_eq!(*c, code);
            assert!(reason.contains(detail), "reason {reason:?}");
        }
        other => panic!("a did not hear the reason: {other:?}"),
    }
}

fn assert_open(c: &Connection) {
    assert!(c.close_reason.is_none(), "closed: {:?}", c.close_reason);
}

// ----- hostile input (spec §6.2, §6.4, §9.4.1) -----------------------------

#[test]
fn an_ack_for_a_packet_never_sent_closes_the_connection_with_a_reason() {
    let mut p = Pair::default_pair();
    p.write_a(3000);
    p.run_for(200 * MS);
    let never_sent = p.b.next_pn + 10;
    p.inject(true, &ack_bytes(never_sent, 0));
    assert_closed_by_b(
        &mut p,
        "ack for a packet never sent",
        close_code::PROTOCOL_VIOLATION,
    );
    // The largest number there is, too, without overflow.
    let mut p = Pair::default_pair();
    let mut frame = vec![0x02];
    frame.extend_from_slice(&[0xff; 8]); // largest 2^62 − 1
    frame.extend_from_slice(&[0x00, 0x00, 0x00]);
    p.inject(true, &frame);
    assert_closed_by_b(
        &mut p,
        "ack for a packet never sent",
        close_code::PROTOCOL_VIOLATION,
    );
}

#[test]
fn backwards_and_overlapping_ack_ranges_close_the_connection() {
    // first_range (6) larger than largest (5): a range running below zero, backwards.
    let mut p = Pair::default_pair();
    p.inject(true, &[0x02, 0x05, 0x00, 0x00, 0x06]);
    assert_closed_by_b(&mut p, "malformed frame", close_code::PROTOCOL_VIOLATION);
    // A second range that would overlap the first (5 − 4 − 2 < 0).
    let mut p = Pair::default_pair();
    p.inject(true, &[0x02, 0x05, 0x00, 0x01, 0x00, 0x04, 0x00]);
    assert_closed_by_b(&mut p, "malformed frame", close_code::PROTOCOL_VIOLATION);
}

#[test]
fn an_absurd_ack_delay_closes_the_connection_but_a_normal_one_does_not() {
    let mut p = Pair::default_pair();
    // b sends something ack-eliciting; a acknowledges it with a sane delay.
    p.b.ping_pending = true;
    p.flush();
    p.wire.clear();
    let pn = p.b.next_pn - 1;
    p.now += 50 * MS;
    p.inject(true, &ack_bytes(pn, 1_000));
    assert_open(&p.b);
    assert_eq!(p.b.rtt.latest(), 50 * MS);
    // An ack delay of an hour, for a packet sent 50 ms ago.
    p.b.ping_pending = true;
    p.flush();
    let pn = p.b.next_pn - 1;
    p.now += 50 * MS;
    p.inject(true, &ack_bytes(pn, 3_600_000_000));
    assert_closed_by_b(&mut p, "ack delay", close_code::PROTOCOL_VIOLATION);
    // The largest encodable delay does not overflow either.
    let mut p = Pair::default_pair();
    p.b.ping_pending = true;
    p.flush();
    let pn = p.b.next_pn - 1;
    p.inject(true, &ack_bytes(pn, crate::wire::VARINT_MAX));
    assert_closed_by_b(&mut p, "ack delay", close_code::PROTOCOL_VIOLATION);
}

#[test]
fn a_flow_control_limit_that_goes_down_closes_the_connection() {
    let mut p = Pair::default_pair();
    let initial = p.b.peer_max_data;
    p.inject(true, &frame_bytes(Frame::MaxData(initial + 10_000)));
    assert_eq!(p.b.peer_max_data, initial + 10_000);
    p.inject(true, &frame_bytes(Frame::MaxData(initial + 5_000)));
    assert_closed_by_b(
        &mut p,
        "flow-control limit went down",
        close_code::FLOW_CONTROL,
    );
    // Below the handshake's initial limit.
    let mut p = Pair::default_pair();
    let initial = p.b.peer_max_data;
    p.inject(true, &frame_bytes(Frame::MaxData(initial - 1)));
    assert_closed_by_b(
        &mut p,
        "flow-control limit went down",
        close_code::FLOW_CONTROL,
    );
}

#[test]
fn a_reordered_older_max_data_is_ignored_not_punished() {
    let mut p = Pair::default_pair();
    let initial = p.b.peer_max_data;
    // The peer sent MAX_DATA 1 000 more in packet n and 2 000 more in n + 1;
    // n + 1 arrives first.
    let older = p.a.next_pn;
    p.a.next_pn += 1;
    p.inject(true, &frame_bytes(Frame::MaxData(initial + 2_000)));
    let newer_pn = p.a.next_pn - 1;
    assert!(newer_pn > older);
    // Now the older packet, sealed with its own (lower) number.
    let save = p.a.next_pn;
    p.a.next_pn = older;
    p.inject(true, &frame_bytes(Frame::MaxData(initial + 1_000)));
    p.a.next_pn = save;
    assert_open(&p.b);
    assert_eq!(
        p.b.peer_max_data,
        initial + 2_000,
        "the limit never shrinks"
    );
    // But an older packet claiming *more* than a newer one means the newer went down.
    let older = p.a.next_pn;
    p.a.next_pn += 1;
    p.inject(true, &frame_bytes(Frame::MaxData(initial + 3_000)));
    let save = p.a.next_pn;
    p.a.next_pn = older;
    p.inject(true, &frame_bytes(Frame::MaxData(initial + 4_000)));
    p.a.next_pn = save;
    assert_closed_by_b(
        &mut p,
        "flow-control limit went down",
        close_code::FLOW_CONTROL,
    );
}

// ----- loss recovery (spec §6.5) -------------------------------------------

/// Runs a transfer until `a` has an RTT sample and some data acknowledged.
fn warmed_up(mut p: Pair) -> Pair {
    p.write_a(200_000);
    let until = p.now + 300 * MS;
    p.run_until(until, &mut |p| {
        p.read_b();
    });
    assert!(p.a.rtt.has_sample());
    p
}

#[test]
fn a_probe_timeout_sends_two_probes_and_leaves_the_window_alone() {
    let mut p = warmed_up(Pair::default_pair());
    let window = p.a.cc.window();
    // Everything from now on is lost.
    p.policy = Box::new(|_, _| Fate::Drop);
    p.write_a(1000);
    p.flush();
    let sent_before = p.a.stats.packets_sent;
    let pto = p.a.timers.deadline(Timer::LossDetection).expect("armed");
    p.run_until(pto, &mut |_| {});
    assert_eq!(p.a.stats.pto_count, 1);
    assert_eq!(p.a.cc.window(), window, "a PTO declares nothing lost");
    assert_eq!(p.a.stats.packets_sent - sent_before, 2, "two probes");
    // The next probe timeout is twice as far.
    let next = p.a.timers.deadline(Timer::LossDetection).unwrap();
    assert!(
        next - pto >= p.a.pto() * 2 - MS,
        "{:?} vs {:?}",
        next - pto,
        p.a.pto()
    );
}

#[test]
fn a_peer_heard_again_after_an_outage_ends_the_probe_timeout_backoff() {
    let mut p = warmed_up(Pair::default_pair());
    // An outage: a's data and b's packets are all lost, long enough for
    // a's probe timeout to back off twice (spec §6.5).
    p.policy = Box::new(|_, _| Fate::Drop);
    p.write_a(1000);
    p.flush();
    for _ in 0..2 {
        let pto = p.a.timers.deadline(Timer::LossDetection).expect("armed");
        p.run_until(pto, &mut |_| {});
    }
    assert_eq!(p.a.stats.pto_count, 2);
    let backed_off = p.a.timers.deadline(Timer::LossDetection).unwrap();
    assert!(backed_off - p.now >= p.a.pto() * 4 - MS, "backed off 4×");
    // The outage ends: b's next packet (a PING) reaches a, whose
    // unacknowledged data goes again one unbacked PTO after its last send.
    p.policy = Box::new(|_, _| Fate::Deliver);
    p.b.ping_pending = true;
    p.flush();
    let heard = p.now + p.one_way;
    p.run_until(heard, &mut |_| {});
    let rearmed = p.a.timers.deadline(Timer::LossDetection).expect("armed");
    assert!(
        rearmed < backed_off,
        "{rearmed:?} not before {backed_off:?}"
    );
    assert!(rearmed <= heard + p.a.pto(), "at most one PTO from now");
}

#[test]
fn one_probe_timeout_is_not_an_outage_a_packet_from_the_peer_keeps_its_backoff() {
    let mut p = warmed_up(Pair::default_pair());
    p.policy = Box::new(|towards_b, _| if towards_b { Fate::Drop } else { Fate::Deliver });
    p.write_a(1000);
    p.flush();
    let pto = p.a.timers.deadline(Timer::LossDetection).expect("armed");
    p.run_until(pto, &mut |_| {});
    assert_eq!(p.a.stats.pto_count, 1);
    let backed_off = p.a.timers.deadline(Timer::LossDetection).unwrap();
    p.b.ping_pending = true;
    p.flush();
    let heard = p.now + p.one_way;
    p.run_until(heard, &mut |_| {});
    assert_eq!(
        p.a.timers.deadline(Timer::LossDetection),
        Some(backed_off),
        "a single expiry is ordinary loss recovery"
    );
}

#[test]
fn of_the_two_probes_only_the_first_carries_data_the_second_is_a_ping() {
    let mut p = warmed_up(Pair::default_pair());
    let settled = p.now + Duration::from_secs(1);
    p.run_until(settled, &mut |p| {
        p.read_b();
    });
    p.policy = Box::new(|_, _| Fate::Drop);
    // More than the window: new data is still waiting when the PTO fires.
    assert!(p.write_a(3_000_000) > 2 * p.a.cc.window() as usize);
    p.flush();
    // Let the paced sends fill the window (all lost) until the probe
    // timeout is the next thing to happen.
    let mut pto = p.a.timers.deadline(Timer::LossDetection).expect("armed");
    for _ in 0..1000 {
        p.run_until(pto - MS, &mut |_| {});
        let next = p.a.timers.deadline(Timer::LossDetection).expect("armed");
        if next == pto {
            break;
        }
        pto = next;
    }
    assert_eq!(p.a.stats.pto_count, 0);
    let stream_bytes = |s: &ConnectionStats| s.stream_bytes_sent + s.stream_bytes_retransmitted;
    let (sent_before, carried_before) = (p.a.stats.packets_sent, stream_bytes(&p.a.stats));
    p.run_until(pto, &mut |_| {});
    assert_eq!(p.a.stats.pto_count, 1);
    assert_eq!(p.a.stats.packets_sent - sent_before, 2, "two probes");
    // One datagram's worth of stream data: the first probe's. The second is
    // a bare PING, which a peer never refuses (spec §6.3, §6.5).
    let carried = stream_bytes(&p.a.stats) - carried_before;
    assert!(
        carried > 0 && carried <= MAX_DATAGRAM_SIZE as u64,
        "{carried} stream bytes in the probes"
    );
}

#[test]
fn losses_spanning_the_persistent_congestion_period_collapse_the_window() {
    let mut p = warmed_up(Pair::default_pair());
    // An outage of the a → b direction: data and probes vanish for 3 s.
    p.policy = Box::new(|towards_b, _| if towards_b { Fate::Drop } else { Fate::Deliver });
    p.write_a(50_000);
    let outage_end = p.now + Duration::from_secs(3);
    p.run_until(outage_end, &mut |_| {});
    assert!(p.a.stats.pto_count >= 2);
    assert_eq!(
        p.a.stats.persistent_congestion_events, 0,
        "nothing declared lost yet"
    );
    // The path heals; the next probe's ack declares everything before it lost.
    p.policy = Box::new(|_, _| Fate::Deliver);
    let mut window_then = None;
    let until = p.now + Duration::from_secs(6);
    p.run_until(until, &mut |p| {
        if p.a.stats.persistent_congestion_events > 0 && window_then.is_none() {
            window_then = Some(p.a.cc.window());
        }
    });
    assert_eq!(p.a.stats.persistent_congestion_events, 1);
    let w = window_then.unwrap();
    assert!(
        w <= 4 * MAX_DATAGRAM_SIZE as u64,
        "window {w} after persistent congestion"
    );
}

#[test]
fn scattered_losses_with_acks_in_between_are_not_persistent_congestion() {
    let mut p = warmed_up(Pair::default_pair());
    // Every third packet from a is lost, for 3 s: plenty of loss, but
    // acknowledged packets between the losses.
    p.policy = Box::new(|towards_b, pn| {
        if towards_b && pn % 3 == 0 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let until = p.now + Duration::from_secs(3);
    p.run_until(until, &mut |p| {
        p.write_a(100_000);
        p.read_b();
    });
    assert!(p.a.stats.packets_lost > 30, "{}", p.a.stats.packets_lost);
    assert_eq!(p.a.stats.persistent_congestion_events, 0);
}

#[test]
fn a_delayed_packet_declared_lost_is_a_spurious_loss_and_the_cut_is_undone() {
    let mut p = warmed_up(Pair::default_pair());
    let window_before = p.a.cc.window();
    let ssthresh_before = p.a.cc.ssthresh();
    // Delay one packet by 60 ms: later packets overtake it, so a declares it
    // lost (packet threshold) and reduces its window; then it arrives.
    let victim = p.a.next_pn + 5;
    p.policy = Box::new(move |towards_b, pn| {
        if towards_b && pn == victim {
            Fate::Delay(60 * MS)
        } else {
            Fate::Deliver
        }
    });
    let mut cut = None;
    let until = p.now + 200 * MS;
    p.run_until(until, &mut |p| {
        p.write_a(30_000);
        p.read_b();
        if p.a.stats.congestion_events > 0 && cut.is_none() {
            cut = Some(p.a.cc.window());
        }
    });
    let cut = cut.expect("the delayed packet was declared lost");
    assert!(cut < window_before, "{cut} < {window_before}");
    assert_eq!(p.a.stats.packets_spuriously_lost, 1);
    assert_eq!(p.a.stats.congestion_events_undone, 1);
    assert!(
        p.a.cc.window() >= window_before,
        "{} ≥ {window_before}",
        p.a.cc.window()
    );
    assert_eq!(p.a.cc.ssthresh(), ssthresh_before);
    // Its data (one full packet's worth) arrived twice.
    let dup = p.b.stats().stream_bytes_duplicate;
    assert!((1100..=1160).contains(&dup), "{dup}");
}

// ----- pacing and packing (spec §6.3, §7.2) --------------------------------

/// A controller with a fixed window, so that only the pacer limits the sender.
#[derive(Debug, Clone)]
struct FixedWindow(u64);

impl Controller for FixedWindow {
    fn on_ack(&mut self, _: Instant, _: Instant, _: u64, _: bool, _: &RttEstimator) {}
    fn on_congestion_event(&mut self, _: Instant, _: Instant, _: bool, _: u64) {}
    fn window(&self) -> u64 {
        self.0
    }
    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }
}

#[test]
fn poll_timeout_reports_the_pacing_deadline_instead_of_bursting() {
    let mut p = warmed_up(Pair::default_pair());
    p.a.cc = Box::new(FixedWindow(1_200_000));
    p.write_a(4 << 20);
    p.flush();
    // The burst left; the window has room, yet nothing more may leave now.
    assert!(p.a.send.has_data(p.a.peer_max_data));
    assert!(p.a.sent.bytes_in_flight() + (MAX_DATAGRAM_SIZE as u64) <= p.a.cc.window());
    let deadline = p.a.poll_timeout().unwrap();
    assert_eq!(p.a.timers.deadline(Timer::Pacing), Some(deadline));
    // 1.25 × 1.2 MB per smoothed RTT: one full datagram's time at most.
    let rate = p.a.pacing_rate().unwrap();
    let interval = rate.transmission_time(MAX_DATAGRAM_SIZE as u64);
    let srtt = p.a.rtt.smoothed().as_secs_f64();
    assert!((rate.bytes_per_second - 1.25 * 1.2e6 / srtt).abs() < 1.0);
    assert!(deadline > p.now && deadline <= p.now + interval);
    // Exactly one packet leaves at the deadline, then the next deadline is one interval on.
    let mut buf = [0u8; MAX_DATAGRAM_SIZE];
    p.a.handle_timeout(deadline);
    assert!(p
        .a
        .poll_transmit(
            deadline,
            &mut buf,
            &mut UnansweredBudget::default(),
            &mut UnansweredBudget::default()
        )
        .is_some());
    assert!(p
        .a
        .poll_transmit(
            deadline,
            &mut buf,
            &mut UnansweredBudget::default(),
            &mut UnansweredBudget::default()
        )
        .is_none());
    let next = p.a.poll_timeout().unwrap();
    assert!(
        next > deadline && next <= deadline + interval,
        "{:?}",
        next - deadline
    );
    assert!(p.a.stats().pacing_limited_time > Duration::ZERO);
}

#[test]
fn a_full_packet_carries_two_stream_frames() {
    // 1166 plaintext bytes: a frame of 1024 data bytes at offset 0 takes
    // 1 + 1 + 2 + 1024 = 1028; the second starts at 1024, a 2-byte varint as
    // are all offsets below the written end (10 000): 1 + 2 + 2 + 133 = 138.
    let mut p = Pair::default_pair();
    p.write_a(10_000);
    p.flush();
    assert_eq!(p.a.stats.stream_bytes_sent, 10_000);
    assert_eq!(p.a.stats.packets_sent, 9, "⌈10 000 / 1157⌉");
    let first = p.a.sent.iter().next().unwrap().1;
    let chunks: Vec<_> = first.stream.iter().map(|c| (c.offset, c.len)).collect();
    assert_eq!(chunks, vec![(0, 1024), (1024, 133)]);
    assert!(p
        .wire
        .iter()
        .take(8)
        .all(|(_, _, d)| d.len() == MAX_DATAGRAM_SIZE));
}

#[test]
fn a_full_packet_larger_than_the_base_size_carries_one_stream_frame() {
    // Once a 1472-byte probe is acknowledged (spec §6.9), 1438 plaintext
    // bytes: one frame at an offset of 4 varint bytes (16 KiB..1 GiB) takes
    // 1 + 4 + 2 + 1431, where two would have carried 1424.
    let mut p = Pair::default_pair();
    p.datagram_buf = crate::wire::MAX_UDP_PAYLOAD_SIZE;
    let total = 1 << 20;
    let mut written = 0;
    let mut read = 0;
    let until = p.now + Duration::from_secs(30);
    p.run_until(until, &mut |p| {
        if written < total {
            written += p.write_a(total - written);
        }
        read += p.read_b();
    });
    read += p.read_b();
    assert_eq!(read, total, "every byte arrived");
    assert_eq!(p.a.stats().max_datagram_size, 1472);
    p.write_a(100_000);
    p.flush();
    let sizes: Vec<_> = p.wire.iter().map(|(_, _, d)| d.len()).collect();
    assert!(
        sizes.len() >= 50 && sizes.iter().take(50).all(|&n| n == 1472),
        "{sizes:?}"
    );
    let chunks: Vec<_> =
        p.a.sent
            .iter()
            .filter(|(_, sent)| usize::from(sent.size) == 1472)
            .map(|(_, sent)| sent.stream.iter().map(|c| c.len).collect::<Vec<_>>())
            .collect();
    assert!(chunks.len() >= 50);
    assert!(chunks.iter().all(|c| c == &[1431]), "{chunks:?}");
}

/// A fixed-window controller that records every datagram size it is told of.
#[derive(Debug, Clone)]
struct SizeSpy(std::sync::Arc<std::sync::Mutex<Vec<u64>>>);

impl Controller for SizeSpy {
    fn on_ack(&mut self, _: Instant, _: Instant, _: u64, _: bool, _: &RttEstimator) {}
    fn on_congestion_event(&mut self, _: Instant, _: Instant, _: bool, _: u64) {}
    fn on_max_datagram_size(&mut self, size: u64) {
        self.0.lock().unwrap().push(size);
    }
    fn window(&self) -> u64 {
        1 << 20
    }
    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }
}

#[test]
fn the_controller_hears_of_the_datagram_size_path_mtu_discovery_finds() {
    // Built for 1200 bytes; told once, when the 1472-byte probe comes back
    // (spec §6.9, §7.1), and not again while the size holds.
    let mut p = Pair::default_pair();
    p.datagram_buf = crate::wire::MAX_UDP_PAYLOAD_SIZE;
    let sizes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    p.a.cc = Box::new(SizeSpy(sizes.clone()));
    let mut read = 0;
    p.write_a(300_000);
    let until = p.now + Duration::from_secs(5);
    p.run_until(until, &mut |p| read += p.read_b());
    read += p.read_b();
    assert_eq!(read, 300_000);
    assert_eq!(p.a.stats().max_datagram_size, 1472);
    assert_eq!(*sizes.lock().unwrap(), vec![1472]);
}

// ----- flow control (spec §6.4) ---------------------------------------------

#[test]
fn the_sender_never_exceeds_the_peer_limit_and_counts_the_time_blocked() {
    let small = TransportConfig {
        receive_window: 4096,
        max_receive_window: 4096,
        ..TransportConfig::default()
    };
    let mut p = Pair::new(TransportConfig::default(), small, 25 * MS);
    p.write_a(100_000);
    p.run_for(Duration::from_secs(1)); // b's application never reads
    p.flush(); // the statistics count up to the latest input
    assert_eq!(p.a.stats.stream_bytes_sent, 4096);
    assert_eq!(p.b.recv.received(), 4096);
    let s = p.a.stats();
    assert!(s.flow_limited_time > Duration::from_millis(900), "{s:?}");
    // Reading opens the window again, by half a window at a time.
    p.read_b();
    p.run_for(200 * MS);
    assert_eq!(p.a.stats.stream_bytes_sent, 8192);
}

#[test]
fn the_receive_window_grows_to_fill_the_path_and_stops_at_the_cap() {
    let config = TransportConfig {
        receive_window: 64 * 1024,
        max_receive_window: 1 << 20,
        ..TransportConfig::default()
    };
    let mut p = Pair::new(config.clone(), config, 50 * MS);
    let until = p.now + Duration::from_secs(3);
    p.run_until(until, &mut |p| {
        p.write_a(1 << 20);
        p.read_b();
    });
    assert_eq!(
        p.b.recv.window(),
        1 << 20,
        "doubled from 64 KiB up to the cap"
    );
    // No more than the cap was ever outstanding beyond what b read.
    assert!(p.a.peer_max_data <= p.b.recv.received() + (1 << 20));
}

#[test]
fn application_limited_acks_do_not_grow_the_window() {
    let mut p = Pair::default_pair();
    let window = p.a.cc.window();
    // A trickle: 100 bytes every 50 ms for 5 s.
    for _ in 0..100 {
        p.write_a(100);
        p.run_for(50 * MS);
    }
    assert_eq!(p.a.cc.window(), window);
    assert!(p.a.stats().app_limited_time > Duration::from_secs(4));
}

/// A 4 MiB bulk transfer from `a` with `a` asking for ACKs up to every
/// `max_threshold` packets; returns (data packets a sent, packets b sent,
/// when b had everything).
fn bulk_with_ack_frequency(max_threshold: u32) -> (u64, u64, Duration) {
    const TOTAL: usize = 4 << 20;
    let config_a = TransportConfig {
        ack_frequency_threshold: max_threshold,
        ..TransportConfig::default()
    };
    let mut p = Pair::new(config_a, TransportConfig::default(), 10 * MS);
    let start = p.now;
    let (mut written, mut received) = (0, 0);
    let mut done_at = None;
    let until = p.now + Duration::from_secs(5);
    p.run_until(until, &mut |p| {
        written += p.write_a(TOTAL - written);
        received += p.read_b();
        if received == TOTAL && done_at.is_none() {
            done_at = Some(p.now - start);
        }
    });
    let done_at = done_at.expect("the transfer completes");
    (p.a.stats.packets_sent, p.b.stats.packets_sent, done_at)
}

#[test]
fn ack_frequency_lets_a_bulk_receiver_send_far_fewer_acks() {
    let (data, acks, took) = bulk_with_ack_frequency(10);
    let (data_default, acks_default, took_default) = bulk_with_ack_frequency(0);
    println!("with ACK_FREQUENCY: {acks} ACKs for {data} packets in {took:?}; without: {acks_default} for {data_default} in {took_default:?}");
    // Without a request the receiver acknowledges every second packet (or
    // every batch that arrives at once); with one, once the window is
    // large, about every tenth.
    assert!(acks * 5 < data, "{acks} ACKs for {data} packets");
    assert!(
        acks * 4 < acks_default,
        "{acks} ACKs with ACK_FREQUENCY, {acks_default} without"
    );
    // And the transfer is not slower for it.
    assert!(
        took <= took_default + took_default / 10,
        "{took:?} vs {took_default:?} without ACK_FREQUENCY"
    );
}

#[test]
fn a_peer_that_does_not_accept_ack_frequency_gets_no_request() {
    let mut p = Pair::default_pair();
    p.a.peer_accepts_ack_frequency = false;
    let until = p.now + Duration::from_secs(1);
    let mut requests = 0;
    p.run_until(until, &mut |p| {
        p.write_a(1 << 20);
        p.read_b();
        requests += u32::from(p.a.ack_frequency.poll_frame().is_some());
    });
    assert_eq!(requests, 0, "nothing was even queued");
    assert_eq!(p.b.received.frequency_sequence(), None);
}

// ----- a peer that stops acknowledging (spec §6.5) -------------------------

/// `a` sent data at `sent` that was never acknowledged; its last word
/// from `b` came `heard_after` later. What a probe timeout at `sent` +
/// the idle timeout makes of it.
fn probe_timeout_after_idle(heard_after: Duration) -> Option<CloseReason> {
    let mut p = warmed_up(Pair::default_pair());
    p.policy = Box::new(|_, _| Fate::Drop);
    p.write_a(1000);
    p.flush();
    let sent = p.now;
    let idle = p.a.idle_timeout;
    p.a.timers.set(Timer::Idle, sent + heard_after + idle);
    p.a.on_loss_timeout(sent + idle);
    p.a.close_reason.clone()
}

#[test]
fn a_path_that_fell_silent_as_our_packet_left_is_the_idle_timeouts_to_report() {
    // The peer's last packet crossed ours: it could not have acknowledged
    // it. The idle timer fires a moment later and names the real cause.
    assert_eq!(probe_timeout_after_idle(MS), None);
}

#[test]
fn a_peer_heard_long_after_our_packet_that_never_acknowledged_it_stopped_acknowledging() {
    assert_eq!(
        probe_timeout_after_idle(Duration::from_secs(1)),
        Some(CloseReason::PeerStoppedAcknowledging)
    );
}
