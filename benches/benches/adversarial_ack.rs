//! What the worst packet an authenticated peer can send costs its victim
//! (issue 15, finding 4; spec §6.2, §10.3), next to a PING:
//!
//! ```text
//! cargo bench -p srudp-benches --bench adversarial_ack
//! ```
//!
//! The victim (`a` of an in-memory pair) has grown its window in an honest
//! 8 MiB transfer; then it answered 20 000 PINGs with ACK-only packets (a
//! span of numbers with nothing in flight) and 15 000 PATH_CHALLENGEs with
//! PATH_RESPONSEs, and sent a window of data, none of it acknowledged: its
//! sent-packet record is nearly full (about 15 200 of 16 384 slots), so
//! every binary search is as deep as it gets. The attacker (`b`) seals full datagrams holding only ACK frames
//! and the victim handles each one, answers included:
//!
//! * `ping` — one PING (the victim answers with an ACK), for comparison;
//! * `ping_frames_full` — 1166 PING frames in one packet: what parsing a
//!   datagram of the smallest frames costs, whatever they are;
//! * `ack_frames_whole_span` — as many ACK frames as fit (about 100), each
//!   one range over every number below the record, ACK-only span included:
//!   the packet that cost 56.8 ms before;
//! * `ack_frames_64_ranges` — 8 ACK frames of 64 one-number ranges each,
//!   spread over the same span: the most ranges a datagram carries;
//! * `ack_frames_64_ranges_inside_record` — the same, but every range names
//!   an ACK-only number lying among the records (the answers to the
//!   PATH_CHALLENGEs): no shortcut applies, each range costs a full binary
//!   search of the record and acknowledges nothing. The worst case.
//!
//! Both hostile shapes acknowledge nothing new, so every iteration meets
//! the same state: it is the steady cost of the attack (a packet can only
//! be acknowledged once). Sealing happens outside the timed part.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use srudp_benches::in_memory::{MemoryPair, B_ADDR};
use srudp_proto::wire::{
    emit_ack_fields, AckFrequencyFrame, Frame, FrameIter, Packet, Writer, MAX_DATAGRAM_SIZE,
    MAX_DATA_PLAINTEXT,
};
use srudp_proto::TransportConfig;

/// The victim with a nearly full sent-packet record above an ACK-only span;
/// returns the pair, the lowest number in its record, and the numbers of
/// ACK-only packets it sent among its records.
fn victim() -> (MemoryPair, u64, Vec<u64>) {
    let mut pair = MemoryPair::connected(TransportConfig::default());
    let chunk = vec![0x5a; 64 * 1024];
    pair.transfer(8 << 20, &chunk);
    let from: SocketAddr = B_ADDR.parse().unwrap();
    let mut buf = vec![0u8; MAX_DATAGRAM_SIZE];
    let now = Instant::now();
    // 20 000 PINGs, each answered at once by an ACK-only packet.
    let n = seal(
        &mut pair,
        now,
        &frames(&[Frame::AckFrequency(AckFrequencyFrame {
            sequence: 1_000,
            threshold: 1,
            max_delay_micros: 1000,
        })]),
        &mut buf,
    );
    pair.a.handle_datagram(now, from, &buf[..n]);
    for _ in 0..20_000 {
        let n = seal(&mut pair, now, &frames(&[Frame::Ping]), &mut buf);
        pair.a.handle_datagram(now, from, &buf[..n]);
        while pair.a.poll_transmit(now, &mut buf).is_some() {}
    }
    // 15 000 PATH_CHALLENGEs, each answered by a PATH_RESPONSE the victim
    // records and the attacker never acknowledges: the record near its limit.
    // Their ACK-only answers fall between the records: numbers inside the
    // record with nothing in flight.
    let mut lowest_record = None;
    let mut ack_only_inside = Vec::new();
    for i in 0..15_000u64 {
        let challenge = frames(&[Frame::PathChallenge(i.to_be_bytes())]);
        let n = seal(&mut pair, now, &challenge, &mut buf);
        pair.a.handle_datagram(now, from, &buf[..n]);
        while let Some(t) = pair.a.poll_transmit(now, &mut buf) {
            let Ok(Packet::Data(h, _)) = Packet::parse(&buf[..t.size]) else {
                continue;
            };
            let plain = pair
                .b
                .open_from_peer(pair.hb, &buf[..t.size])
                .unwrap_or_default();
            let eliciting = FrameIter::new(&plain)
                .any(|f| !matches!(f, Ok(Frame::Ack(_) | Frame::Padding { .. })));
            if eliciting {
                lowest_record.get_or_insert(h.packet_number);
            } else if lowest_record.is_some() {
                ack_only_inside.push(h.packet_number);
            }
        }
    }
    // A window of data, sent and never delivered.
    while matches!(pair.a.write(pair.ha, &chunk), Ok(n) if n > 0) {}
    while pair.a.poll_transmit(now, &mut buf).is_some() {}
    let s = pair.a.stats(pair.ha).unwrap();
    eprintln!(
        "victim: {} sent-packet records ({} bytes in flight), lowest {lowest_record:?}, \
         {} ACK-only numbers among them",
        s.sent_records,
        s.bytes_in_flight,
        ack_only_inside.len()
    );
    (
        pair,
        lowest_record.expect("the responses left"),
        ack_only_inside,
    )
}

fn seal(pair: &mut MemoryPair, now: Instant, plaintext: &[u8], buf: &mut [u8]) -> usize {
    pair.b
        .seal_for_peer(now, pair.hb, plaintext, buf)
        .expect("the attacker can seal")
}

fn frames(list: &[Frame<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_DATA_PLAINTEXT];
    let mut w = Writer::new(&mut buf);
    for f in list {
        f.emit(&mut w).unwrap();
    }
    let n = w.len();
    buf.truncate(n);
    buf
}

/// Appends one ACK frame (§9.4.3) if it fits whole.
fn ack(w: &mut Writer<'_>, largest: u64, first_range: u64, pairs: &[(u64, u64)]) -> bool {
    emit_ack_fields(w, largest, 0, first_range, pairs).is_ok()
}

fn whole_span(top: u64) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_DATA_PLAINTEXT];
    let mut w = Writer::new(&mut buf);
    while ack(&mut w, top, top, &[]) {}
    let n = w.len();
    buf.truncate(n);
    buf
}

fn spread_ranges(top: u64) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_DATA_PLAINTEXT];
    let mut w = Writer::new(&mut buf);
    let gap = (top / 64).saturating_sub(2);
    while ack(&mut w, top, 0, &[(gap, 0); 63]) {}
    let n = w.len();
    buf.truncate(n);
    buf
}

/// ACK frames of 64 one-number ranges, each an ACK-only number among the
/// records: every range needs a full search of the record and finds nothing.
fn ranges_inside_record(ack_only: &[u64]) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_DATA_PLAINTEXT];
    let mut w = Writer::new(&mut buf);
    let step = (ack_only.len() / 64).max(1);
    let picks: Vec<u64> = ack_only
        .iter()
        .rev()
        .step_by(step)
        .take(64)
        .copied()
        .collect();
    let pairs: Vec<(u64, u64)> = picks.windows(2).map(|p| (p[0] - p[1] - 2, 0)).collect();
    while ack(&mut w, picks[0], 0, &pairs) {}
    let n = w.len();
    buf.truncate(n);
    buf
}

fn adversarial_ack(c: &mut Criterion) {
    let (mut pair, lowest_record, ack_only) = victim();
    let top = lowest_record - 1;
    let shapes = [
        ("adversarial_ack/ping", frames(&[Frame::Ping])),
        (
            "adversarial_ack/ping_frames_full",
            vec![0x01; MAX_DATA_PLAINTEXT],
        ),
        ("adversarial_ack/ack_frames_whole_span", whole_span(top)),
        ("adversarial_ack/ack_frames_64_ranges", spread_ranges(top)),
        (
            "adversarial_ack/ack_frames_64_ranges_inside_record",
            ranges_inside_record(&ack_only),
        ),
    ];
    let from: SocketAddr = B_ADDR.parse().unwrap();
    let mut out = vec![0u8; MAX_DATAGRAM_SIZE];
    for (name, plaintext) in &shapes {
        let before = pair.a.stats(pair.ha).unwrap();
        c.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let now = Instant::now();
                let sealed: Vec<Vec<u8>> = (0..iters)
                    .map(|_| {
                        let mut buf = vec![0u8; MAX_DATAGRAM_SIZE];
                        let n = seal(&mut pair, now, plaintext, &mut buf);
                        buf.truncate(n);
                        buf
                    })
                    .collect();
                let start = Instant::now();
                for d in &sealed {
                    pair.a.handle_datagram(now, from, d);
                    while pair.a.poll_transmit(now, &mut out).is_some() {}
                }
                start.elapsed()
            })
        });
        let after = pair.a.stats(pair.ha).unwrap();
        assert!(!pair.a.is_closed(pair.ha), "the victim kept the connection");
        assert_eq!(
            after.packets_acked, before.packets_acked,
            "nothing new acknowledged"
        );
        let packets = after.packets_received - before.packets_received;
        eprintln!(
            "{name}: {} plaintext bytes; per packet {} ranges, work {}",
            plaintext.len(),
            (after.ack_ranges_received - before.ack_ranges_received) / packets.max(1),
            (after.ack_work - before.ack_work) / packets.max(1),
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = adversarial_ack
}
criterion_main!(benches);
