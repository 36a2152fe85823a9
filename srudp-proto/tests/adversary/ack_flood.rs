//! CPU: ACK frames whose ranges span numbers with nothing in flight
//! (issue 15, finding 4; spec §6.2, §10.3).
//!
//! Before, acknowledging a range visited every packet number in it that lay
//! within the sent-packet ring, outstanding or not; the ring held a slot for
//! every number sent after the oldest unacknowledged packet, ACK-only ones
//! included. An attacker left one packet unacknowledged, drew thousands of
//! ACK-only answers with PINGs, then sent packets full of ACK frames whose
//! ranges covered that span: one 1121-byte packet cost 56.8 ms. Now a range
//! is located by binary search and only outstanding packets (and a few
//! jumps over holes) are looked at: the work is counted
//! (`ConnectionStats::ack_work`) and stays within a small multiple of the
//! packets acknowledged plus the ranges received.

use std::time::Duration;

use srudp_proto::wire::{emit_ack_fields, AckFrequencyFrame, Frame, Writer};
use srudp_proto::{CloseReason, ConnectionStats, TransportConfig};

use crate::hostile_peer::{frames, HostilePeer};

/// Plaintext room an attacker fills with frames (a full datagram's).
const ROOM: usize = 1150;

/// One ACK frame: `largest`, then ranges as (gap, len) pairs (§9.4.3).
fn ack(w: &mut Writer<'_>, largest: u64, first_range: u64, pairs: &[(u64, u64)]) -> bool {
    emit_ack_fields(w, largest, 0, first_range, pairs).is_ok()
}

/// The worst packets an attacker can build against span `lo..=hi` (every
/// number in it was sent; the packet at `lo - 1` is left unacknowledged):
/// `whole_span`: as many ACK frames as fit, each covering the whole span;
/// `spread`: ACK frames of 64 one-number ranges spread across the span.
fn hostile_packet(lo: u64, hi: u64, spread: bool) -> Vec<u8> {
    let mut buf = vec![0u8; ROOM];
    let mut w = Writer::new(&mut buf);
    if spread {
        let gap = ((hi - lo) / 64).saturating_sub(2);
        let pairs = [(gap, 0u64); 63];
        while ack(&mut w, hi, 0, &pairs) {}
    } else {
        while ack(&mut w, hi, hi - lo, &[]) {}
    }
    let n = w.len();
    buf.truncate(n);
    buf
}

/// The victim's work for one packet, and what the packet bought with it.
struct Cost {
    work: u64,
    ranges: u64,
    settled: u64,
}

fn cost(before: &ConnectionStats, after: &ConnectionStats) -> Cost {
    Cost {
        work: after.ack_work - before.ack_work,
        ranges: after.ack_ranges_received - before.ack_ranges_received,
        settled: (after.packets_acked + after.packets_lost)
            - (before.packets_acked + before.packets_lost),
    }
}

/// Sets the trap of the original attack: one victim packet left
/// unacknowledged, then `pings` PINGs that each draw an ACK-only answer, so
/// the span above the packet holds that many numbers with nothing in flight.
/// Returns the unacknowledged packet's number.
fn open_empty_span(hp: &mut HostilePeer, pings: u32) -> u64 {
    hp.victim
        .write(hp.victim_handle(), b"the one packet left unacknowledged")
        .unwrap();
    hp.step(Duration::from_millis(1));
    let held = hp.largest_from_victim.expect("the victim sent it");
    hp.send(&frames(&[Frame::AckFrequency(AckFrequencyFrame {
        sequence: 1,
        threshold: 1,
        max_delay_micros: 1000,
    })]));
    let ping = frames(&[Frame::Ping]);
    for i in 0..pings {
        hp.send(&ping);
        if i % 100 == 0 {
            hp.step(Duration::from_millis(1));
        }
    }
    held
}

#[test]
fn ack_ranges_over_a_span_with_nothing_in_flight_cost_what_they_acknowledge() {
    let mut hp = HostilePeer::connect(TransportConfig::default());
    let held = open_empty_span(&mut hp, 20_000);
    let top = hp.largest_from_victim.unwrap();
    assert!(top - held >= 20_000, "the span: {held}..{top}");
    let start = hp.victim_stats();
    let (mut worst_work, mut total) = (
        0u64,
        Cost {
            work: 0,
            ranges: 0,
            settled: 0,
        },
    );
    for i in 0..2_000 {
        let hi = hp.largest_from_victim.unwrap();
        let before = hp.victim_stats();
        hp.send(&hostile_packet(held + 1, hi, i % 2 == 1));
        let c = cost(&before, &hp.victim_stats());
        assert!(c.ranges >= 60, "a packet full of ranges: {}", c.ranges);
        // Each range: one search, a step or two, plus what it settles.
        assert!(
            c.work <= 3 * c.ranges + 3 * c.settled,
            "packet {i}: work {} for {} ranges settling {}",
            c.work,
            c.ranges,
            c.settled
        );
        worst_work = worst_work.max(c.work);
        total.work += c.work;
        total.ranges += c.ranges;
        total.settled += c.settled;
        if i % 50 == 0 {
            hp.step(Duration::from_millis(1));
        }
    }
    println!(
        "2000 hostile packets: {} ranges, {} packets settled, work {} (worst packet {worst_work})",
        total.ranges, total.settled, total.work
    );
    // The span of 20 000 numbers is never walked: before, each of these
    // ranges cost up to 20 000 steps.
    assert!(total.work <= 3 * (total.ranges + total.settled));
    assert!(worst_work < 2_000, "worst packet {worst_work}");
    // The attack changed nothing for the connection itself: its held
    // packet is still outstanding (ranges above it are not loss evidence
    // enough to drop data) or was resent, and an honest ACK settles all.
    assert_eq!(hp.attacker_closed, None);
    let all = hp.largest_from_victim.unwrap();
    let mut buf = vec![0u8; ROOM];
    let mut w = Writer::new(&mut buf);
    assert!(ack(&mut w, all, all, &[]));
    let n = w.len();
    hp.send(&buf[..n]);
    let s = hp.victim_stats();
    assert!(s.packets_acked > start.packets_acked);
    assert_eq!(s.sent_records, 0, "everything acknowledged");
    assert_eq!(s.stream_bytes_acked, 34, "the held message was delivered");
    hp.assert_honest_transfer_intact();
}

#[test]
fn ack_ranges_naming_ack_only_numbers_among_the_records_cost_one_search_each() {
    let mut hp = HostilePeer::connect(TransportConfig::default());
    hp.send(&frames(&[Frame::AckFrequency(AckFrequencyFrame {
        sequence: 1,
        threshold: 1,
        max_delay_micros: 1000,
    })]));
    // Each PATH_CHALLENGE draws a recorded PATH_RESPONSE and an ACK-only
    // answer: 5000 records with ACK-only numbers between them, where no
    // shortcut applies and every range must be searched for.
    hp.track_ack_only = true;
    let first_ack_only = hp.ack_only_from_victim.len();
    for i in 0..5_000u64 {
        hp.send(&frames(&[Frame::PathChallenge(i.to_be_bytes())]));
    }
    let inside: Vec<u64> = hp.ack_only_from_victim[first_ack_only..].to_vec();
    let records = hp.victim_stats().sent_records;
    assert!(
        records >= 5_000 && inside.len() >= 4_000,
        "{records} records, {} ACK-only",
        inside.len()
    );
    // Frames of 64 one-number ranges, each an ACK-only number, spread over
    // the records: they acknowledge nothing.
    let step = inside.len() / 64;
    let picks: Vec<u64> = inside
        .iter()
        .rev()
        .step_by(step)
        .take(64)
        .copied()
        .collect();
    let pairs: Vec<(u64, u64)> = picks.windows(2).map(|p| (p[0] - p[1] - 2, 0)).collect();
    let mut buf = vec![0u8; ROOM];
    let mut w = Writer::new(&mut buf);
    while ack(&mut w, picks[0], 0, &pairs) {}
    let n = w.len();
    let packet = buf[..n].to_vec();
    let start = hp.victim_stats();
    for _ in 0..2_000 {
        let before = hp.victim_stats();
        hp.send(&packet);
        let c = cost(&before, &hp.victim_stats());
        assert_eq!(c.ranges, 320, "five frames of 64 ranges");
        assert_eq!(c.settled, 0, "they name nothing in flight");
        assert!(
            c.work <= 2 * c.ranges,
            "work {} for {} ranges",
            c.work,
            c.ranges
        );
    }
    let end = hp.victim_stats();
    assert_eq!(
        end.sent_records, start.sent_records,
        "the record is untouched"
    );
    assert_eq!(hp.attacker_closed, None);
    // An honest acknowledgment of everything still settles every record.
    let all = hp.largest_from_victim.unwrap();
    let mut buf = vec![0u8; ROOM];
    let mut w = Writer::new(&mut buf);
    assert!(ack(&mut w, all, all, &[]));
    let n = w.len();
    hp.send(&buf[..n]);
    assert_eq!(hp.victim_stats().sent_records, 0);
    hp.assert_honest_transfer_intact();
}

#[test]
fn acknowledging_a_number_never_sent_closes_the_connection() {
    let mut hp = HostilePeer::connect(TransportConfig::default());
    let top = hp.largest_from_victim.unwrap_or(0);
    // Spec §6.2: an ACK of a packet number never sent is a protocol
    // violation — here a largest far ahead, as a lure to walk a huge range.
    let mut buf = vec![0u8; ROOM];
    let mut w = Writer::new(&mut buf);
    assert!(ack(&mut w, top + (1 << 40), (1 << 40) + top, &[]));
    let n = w.len();
    let before = hp.victim_stats();
    hp.send(&buf[..n]);
    let after = hp.victim_stats();
    assert!(
        matches!(hp.attacker_closed, Some(CloseReason::ProtocolViolation { ref detail }) if detail.contains("never sent")),
        "{:?}",
        hp.attacker_closed
    );
    assert!(
        after.ack_work - before.ack_work <= 1,
        "refused before any work"
    );
    hp.assert_honest_transfer_intact();
}
