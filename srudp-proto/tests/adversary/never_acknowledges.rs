//! Memory: a peer that keeps a connection alive but never acknowledges
//! (issue 15, finding 5; spec §6.5, §10.3).
//!
//! Before, the victim recorded every packet number it sent after the oldest
//! unacknowledged one — its ACK-only answers included — so a peer sending
//! PINGs and asking for an ACK after each (ACK_FREQUENCY threshold 1) grew
//! the sent-packet ring by one slot per PING, without end, and the
//! connection never closed. Now ACK-only packets take no slot, the record
//! holds at most 16 384 slots (2.125 MiB), and a peer that acknowledges
//! nothing for the idle timeout, or lets the record fill, is closed with
//! `CloseReason::PeerStoppedAcknowledging`.

use std::time::Duration;

use srudp_proto::wire::{AckFrequencyFrame, Frame};
use srudp_proto::{CloseReason, TransportConfig};

use crate::hostile_peer::{frames, HostilePeer};

/// The spec's bound on the sent-packet record (§10.3).
const MAX_SENT_RECORDS: u64 = 16_384;
const MAX_SENT_RECORD_BYTES: u64 = 2_228_224; // 2.125 MiB

/// What the victim held at most while the attack ran.
#[derive(Debug, Default)]
struct Peak {
    records: u64,
    bytes: u64,
}

impl Peak {
    fn sample(&mut self, hp: &HostilePeer) {
        if let Some(s) = hp.victim.stats(hp.victim_handle()) {
            self.records = self.records.max(s.sent_records);
            self.bytes = self.bytes.max(s.sent_record_bytes);
        }
    }
}

#[test]
fn a_million_pings_that_never_acknowledge_hold_a_few_records_and_are_closed() {
    let config = TransportConfig::default();
    let idle = config.idle_timeout;
    let mut hp = HostilePeer::connect(config);
    // The victim's application has data for the attacker.
    let data = vec![0x5a; 256 * 1024];
    let written = hp.victim.write(hp.victim_handle(), &data).unwrap();
    assert!(written > 0);
    // Acknowledge every ack-eliciting packet at once, please.
    hp.send(&frames(&[Frame::AckFrequency(AckFrequencyFrame {
        sequence: 1,
        threshold: 1,
        max_delay_micros: 1000,
    })]));
    let start = hp.now;
    let ping = frames(&[Frame::Ping]);
    let mut peak = Peak::default();
    let mut closed_at = None;
    let answers_before = hp.datagrams_to_attacker;
    for i in 0..1_000_000u32 {
        hp.send(&ping);
        if i % 100 == 0 {
            // 100 PINGs per 5 ms: the million span 50 s.
            hp.step(Duration::from_millis(5));
            peak.sample(&hp);
            if closed_at.is_none() && hp.attacker_closed.is_some() {
                closed_at = Some(hp.now);
            }
        }
    }
    // The victim answered the PINGs while the connection lasted: it is the
    // acknowledgments of its own packets that never came.
    assert!(hp.datagrams_to_attacker - answers_before > 100_000);
    assert_eq!(
        hp.attacker_closed,
        Some(CloseReason::PeerStoppedAcknowledging)
    );
    let closed_at = closed_at.expect("closed");
    // Closed at the first probe timeout after the oldest unacknowledged
    // packet turned idle_timeout old (probe timeouts back off to 4 s at most).
    assert!(
        closed_at - start <= idle + Duration::from_secs(5),
        "closed after {:?}",
        closed_at - start
    );
    // ACK-only answers took no slot: the record held the initial window
    // and the probes, not one slot per PING.
    println!("peak: {peak:?}");
    assert!(peak.records <= 64, "{peak:?}");
    assert!(peak.bytes <= MAX_SENT_RECORD_BYTES, "{peak:?}");
    hp.assert_honest_transfer_intact();
}

#[test]
fn a_peer_that_draws_answers_but_never_acknowledges_fills_the_record_and_is_closed() {
    let mut hp = HostilePeer::connect(TransportConfig::default());
    let data = vec![0x5a; 256 * 1024];
    hp.victim.write(hp.victim_handle(), &data).unwrap();
    // Every PATH_CHALLENGE draws an ack-eliciting PATH_RESPONSE, which
    // bypasses the congestion window: one record per packet the attacker
    // sends, never acknowledged, all within a fraction of the idle timeout.
    let mut peak = Peak::default();
    let mut sent = 0u64;
    for i in 0..100_000u64 {
        hp.send(&frames(&[Frame::PathChallenge(i.to_be_bytes())]));
        sent += 1;
        if i % 64 == 0 {
            hp.step(Duration::from_micros(100));
            peak.sample(&hp);
        }
        if hp.attacker_closed.is_some() {
            break;
        }
    }
    peak.sample(&hp);
    println!("peak after {sent} challenges: {peak:?}");
    assert_eq!(
        hp.attacker_closed,
        Some(CloseReason::PeerStoppedAcknowledging)
    );
    assert!(peak.records <= MAX_SENT_RECORDS, "{peak:?}");
    assert!(peak.bytes <= MAX_SENT_RECORD_BYTES, "{peak:?}");
    assert!(
        peak.records > MAX_SENT_RECORDS / 2,
        "the limit, not a timeout, ended it: {peak:?}"
    );
    // The rest of a long attack meets a closing connection: it answers
    // with CLOSE (§6.6), records nothing, and the record stays as it was.
    let answers = hp.datagrams_to_attacker;
    for i in 0..10_000u64 {
        hp.send(&frames(&[Frame::PathChallenge(i.to_le_bytes())]));
    }
    assert!(hp.datagrams_to_attacker - answers <= 10_000);
    let records = peak.records;
    peak.sample(&hp);
    assert_eq!(peak.records, records, "nothing more recorded once closing");
    hp.assert_honest_transfer_intact();
}
