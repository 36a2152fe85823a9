//! Ack-eliciting packets sent and not yet acknowledged or declared lost
//! (RFC 9002 §A.1), with the two bounds a hostile peer must not break
//! (spec §10.3): the work an ACK costs, and the memory the record holds.
//!
//! The record is a ring of the ack-eliciting packets only, in packet-number
//! order; packets that elicit no acknowledgment (ACK-only, CLOSE) take no
//! slot, so a connection that only answers a peer's PINGs keeps nothing. A
//! packet acknowledged or declared lost out of order leaves a *hole* until
//! the ring's front passes it.
//!
//! **Work per ACK.** A range is located by binary search on the packet
//! numbers, never by walking the span it names, so a range over numbers we
//! never recorded (ACK-only packets, numbers acknowledged long ago) costs
//! the same as an empty one. Inside a range, each hole holds a jump to a
//! later record with only holes between (`skip`), shortened as it is
//! followed (path halving, as in union-find), so runs of holes are crossed
//! in a few steps rather than one step per hole: over any sequence of ACKs
//! the records looked at are a small multiple of the packets acknowledged
//! plus the ranges received. [`SentPackets::visited`] counts them.
//!
//! **Memory.** At most [`MAX_SENT_RECORDS`] slots (outstanding packets and
//! holes); the sender stops sending new ack-eliciting packets short of it
//! ([`SEND_BLOCK_RECORDS`]), and a peer that lets the record fill anyway is
//! closed for not acknowledging (`recovery.rs`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::delivery_rate::PacketDelivery;
use super::send_stream::StreamChunks;

/// Most slots the record holds (outstanding packets plus holes), so at most
/// `MAX_SENT_RECORDS × (size_of::<Record>() + 8)` bytes (spec §10.3). Four times
/// the full-size packets a default 4 MiB send buffer fills: honest transfers
/// are limited by the send buffer and the congestion window long before.
pub(crate) const MAX_SENT_RECORDS: usize = 16_384;
/// New ack-eliciting packets wait while the record holds this many slots
/// (as if the congestion window were full); the slots above are kept for
/// probes and PATH_RESPONSEs, which bypass the window.
pub(crate) const SEND_BLOCK_RECORDS: usize = MAX_SENT_RECORDS - 1024;

/// What we remember about one ack-eliciting packet (all of them count in flight).
#[derive(Debug, Clone)]
pub(crate) struct SentPacket {
    pub(crate) time_sent: Instant,
    /// Bytes on the wire.
    pub(crate) size: u16,
    /// The sender was not using the whole congestion window.
    pub(crate) app_limited: bool,
    pub(crate) stream: StreamChunks,
    /// The packet carried a MAX_DATA frame (resend the current limit if lost).
    pub(crate) max_data: bool,
    /// The packet carried an ACK_FREQUENCY frame (resend the request if lost).
    pub(crate) ack_frequency: bool,
    /// The delivery state when it was sent, for delivery-rate samples.
    pub(crate) delivery: PacketDelivery,
}

/// One slot of the ring (its packet number is in `SentPackets::pns`).
#[derive(Debug)]
pub(crate) struct Record {
    /// `None` once acknowledged or declared lost: a hole.
    packet: Option<SentPacket>,
    /// For a hole: how many slots ahead the next outstanding packet may be
    /// looked for; every slot jumped over is a hole. At least 1.
    skip: u32,
}

#[derive(Debug, Default)]
pub(crate) struct SentPackets {
    /// In packet-number order; the front is outstanding (holes there are
    /// dropped at once).
    ring: VecDeque<Record>,
    /// The packet number of each slot, apart: binary searches probe a dense
    /// array of 8-byte numbers (128 KiB at most) instead of whole records.
    pns: VecDeque<u64>,
    bytes_in_flight: u64,
    count: u64,
    /// Slots looked at, and ranges located, while acknowledging.
    visited: u64,
}

impl SentPackets {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records packet `pn`, which must be above every number recorded
    /// before. The caller keeps the record below [`MAX_SENT_RECORDS`]
    /// (see [`is_full`](Self::is_full)).
    pub(crate) fn push(&mut self, pn: u64, packet: SentPacket) {
        debug_assert!(self.pns.back().is_none_or(|&last| last < pn));
        debug_assert!(!self.is_full(), "the sent-packet record overflows");
        self.bytes_in_flight += u64::from(packet.size);
        self.count += 1;
        self.pns.push_back(pn);
        self.ring.push_back(Record {
            packet: Some(packet),
            skip: 0,
        });
    }

    /// Removes and returns packet `pn` if it is outstanding.
    #[cfg(test)]
    pub(crate) fn take(&mut self, pn: u64) -> Option<SentPacket> {
        let mut out = Vec::new();
        self.take_range(pn, pn, &mut out);
        out.pop().map(|(_, p)| p)
    }

    /// Empties slot `i` (outstanding) into a hole.
    fn take_at(&mut self, i: usize) -> (u64, SentPacket) {
        let record = &mut self.ring[i];
        let packet = record.packet.take().expect("an outstanding slot");
        record.skip = 1;
        self.bytes_in_flight -= u64::from(packet.size);
        self.count -= 1;
        (self.pns[i], packet)
    }

    /// The first outstanding slot at or after `i` (the ring's length if
    /// none), jumping over holes and halving the jumps it follows.
    fn next_outstanding(&mut self, mut i: usize) -> usize {
        loop {
            let Some(record) = self.ring.get(i) else {
                return self.ring.len();
            };
            self.visited += 1;
            if record.packet.is_some() {
                return i;
            }
            let next = i + record.skip as usize;
            if let Some(after) = self.ring.get(next).filter(|r| r.packet.is_none()) {
                // Path halving: this hole now jumps over the next one too.
                let skip = after.skip;
                self.ring[i].skip += skip;
            }
            i += self.ring[i].skip as usize;
        }
    }

    /// Drops the holes at the front of the ring.
    fn compact(&mut self) {
        while let Some(front) = self.ring.front() {
            if front.packet.is_some() {
                break;
            }
            // Every slot the front hole jumps over is a hole too.
            let n = (front.skip as usize).min(self.ring.len());
            self.ring.drain(..n);
            self.pns.drain(..n);
        }
        if self.ring.is_empty() && self.ring.capacity() > 4096 {
            self.ring.shrink_to(64);
            self.pns.shrink_to(64);
        }
    }

    /// Removes every outstanding packet numbered within `lo..=hi` and hands it
    /// to `out`, in order. Costs a binary search plus the slots looked at
    /// (see the module docs), never the width of the range.
    pub(crate) fn take_range(&mut self, lo: u64, hi: u64, out: &mut Vec<(u64, SentPacket)>) {
        self.visited += 1;
        let (Some(&first), Some(&last)) = (self.pns.front(), self.pns.back()) else {
            return;
        };
        if hi < lo || hi < first || lo > last {
            return;
        }
        let start = if lo <= first {
            0
        } else {
            self.pns.partition_point(|&pn| pn < lo)
        };
        if self.pns.get(start).is_none_or(|&pn| pn > hi) {
            // Nothing recorded in the range: the records are not touched.
            return;
        }
        let mut i = self.next_outstanding(start);
        while self.pns.get(i).is_some_and(|&pn| pn <= hi) {
            out.push(self.take_at(i));
            i = self.next_outstanding(i + 1);
        }
        if start < i && i - start > 1 {
            // Everything from `start` to `i` is a hole now: one jump over it.
            self.ring[start].skip = (i - start) as u32;
        }
        self.compact();
    }

    /// Removes the packets declared lost: in packet-number order up to
    /// `largest_acked`, every packet `packet_threshold` or more below it or
    /// sent at or before `lost_before`. Both rules pick a prefix (packets are
    /// numbered in sending order), so the scan stops at the first survivor,
    /// whose send time plus `loss_delay` is returned: when it will be lost by
    /// time unless acknowledged first.
    pub(crate) fn take_lost(
        &mut self,
        largest_acked: u64,
        packet_threshold: u64,
        lost_before: Option<Instant>,
        loss_delay: Duration,
        out: &mut Vec<(u64, SentPacket)>,
    ) -> Option<Instant> {
        let mut loss_time = None;
        let mut i = self.next_outstanding(0);
        while let Some(record) = self.ring.get(i) {
            let pn = self.pns[i];
            if pn > largest_acked {
                break;
            }
            let packet = record.packet.as_ref().expect("an outstanding slot");
            let by_time = lost_before.is_some_and(|b| packet.time_sent <= b);
            let by_count = largest_acked >= pn.saturating_add(packet_threshold);
            if !(by_time || by_count) {
                loss_time = Some(packet.time_sent + loss_delay);
                break;
            }
            out.push(self.take_at(i));
            i = self.next_outstanding(i + 1);
        }
        self.compact();
        loss_time
    }

    /// The lowest outstanding packet number.
    #[cfg(test)]
    pub(crate) fn first_pn(&self) -> Option<u64> {
        self.pns.front().copied()
    }

    pub(crate) fn get(&self, pn: u64) -> Option<&SentPacket> {
        let (&first, &last) = (self.pns.front()?, self.pns.back()?);
        if pn < first || pn > last {
            return None;
        }
        let i = self.pns.partition_point(|&p| p < pn);
        if self.pns.get(i) != Some(&pn) {
            return None;
        }
        self.ring.get(i)?.packet.as_ref()
    }

    /// All outstanding packets in packet-number order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &SentPacket)> + '_ {
        self.pns
            .iter()
            .zip(&self.ring)
            .filter_map(|(&pn, r)| r.packet.as_ref().map(|p| (pn, p)))
    }

    /// When the oldest outstanding packet was sent.
    pub(crate) fn oldest_time_sent(&self) -> Option<Instant> {
        // The front is never a hole (`compact`).
        self.ring.front()?.packet.as_ref().map(|p| p.time_sent)
    }

    pub(crate) fn bytes_in_flight(&self) -> u64 {
        self.bytes_in_flight
    }

    pub(crate) fn has_ack_eliciting_in_flight(&self) -> bool {
        self.count > 0
    }
}

/// The bounds of spec §10.3.
impl SentPackets {
    /// Slots held (outstanding packets and holes).
    pub(crate) fn slots(&self) -> usize {
        self.ring.len()
    }

    /// Bytes the ring holds allocated.
    pub(crate) fn memory(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<Record>()
            + self.pns.capacity() * std::mem::size_of::<u64>()
    }

    /// No new ack-eliciting packet but a probe may be recorded.
    pub(crate) fn blocks_sending(&self) -> bool {
        self.ring.len() >= SEND_BLOCK_RECORDS
    }

    /// Nothing more may be recorded.
    pub(crate) fn is_full(&self) -> bool {
        self.ring.len() >= MAX_SENT_RECORDS
    }

    /// Slots looked at and ranges located by acknowledgments and loss
    /// detection so far: the CPU a peer's ACKs cost, counted.
    pub(crate) fn visited(&self) -> u64 {
        self.visited
    }
}

#[cfg(any(test, fuzzing, feature = "test-hooks"))]
impl SentPackets {
    /// Panics unless the ring is within its bound and consistent: numbers
    /// increasing, the front outstanding, every jump over holes only, the
    /// counts matching.
    pub(crate) fn assert_invariants(&self) {
        assert!(
            self.ring.len() <= MAX_SENT_RECORDS,
            "sent-packet record over its bound"
        );
        assert!(
            self.ring.front().is_none_or(|r| r.packet.is_some()),
            "a hole at the front"
        );
        let (mut count, mut bytes) = (0, 0);
        assert_eq!(self.pns.len(), self.ring.len(), "one number per slot");
        for (i, r) in self.ring.iter().enumerate() {
            if let Some(next) = self.pns.get(i + 1) {
                assert!(self.pns[i] < *next, "packet numbers out of order");
            }
            match &r.packet {
                Some(p) => {
                    count += 1;
                    bytes += u64::from(p.size);
                }
                None => {
                    let to = i + r.skip as usize;
                    assert!(
                        r.skip >= 1 && to <= self.ring.len(),
                        "a jump out of the ring"
                    );
                    assert!(
                        self.ring.range(i + 1..to).all(|r| r.packet.is_none()),
                        "a jump over an outstanding packet"
                    );
                }
            }
        }
        assert_eq!(count, self.count, "outstanding count");
        assert_eq!(bytes, self.bytes_in_flight, "bytes in flight");
    }
}

/// Idle memory (see `idle.rs`).
impl SentPackets {
    /// No packet outstanding.
    pub(crate) fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    pub(crate) fn holds_buffer(&self) -> bool {
        self.ring.capacity() > 0
    }

    /// Frees the ring if it is empty.
    pub(crate) fn release_buffer(&mut self) {
        if self.ring.is_empty() {
            self.ring = VecDeque::new();
            self.pns = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes per slot: the record and its packet number.
    const SLOT_BYTES: usize = std::mem::size_of::<Record>() + std::mem::size_of::<u64>();

    const MS: Duration = Duration::from_millis(1);

    fn packet(t: Instant, size: u16) -> SentPacket {
        SentPacket {
            time_sent: t,
            size,
            app_limited: false,
            stream: StreamChunks::default(),
            max_data: false,
            ack_frequency: false,
            delivery: PacketDelivery::idle(),
        }
    }

    fn pns(v: &[(u64, SentPacket)]) -> Vec<u64> {
        v.iter().map(|(pn, _)| *pn).collect()
    }

    #[test]
    fn taking_packets_tracks_bytes_in_flight_and_compacts() {
        let t = Instant::now();
        let mut s = SentPackets::new();
        for pn in 10..15 {
            s.push(pn, packet(t, 100));
        }
        assert_eq!(s.bytes_in_flight(), 500);
        assert!(s.take(12).is_some());
        assert!(s.take(12).is_none(), "a packet is acknowledged once");
        assert!(s.take(9).is_none());
        assert!(s.take(u64::MAX).is_none());
        s.take(10);
        s.take(11);
        assert_eq!(s.first_pn(), Some(13));
        assert_eq!(s.iter().map(|(pn, _)| pn).collect::<Vec<_>>(), vec![13, 14]);
        assert_eq!(s.bytes_in_flight(), 200);
    }

    #[test]
    fn unrecorded_numbers_leave_gaps_that_are_skipped() {
        let t = Instant::now();
        let mut s = SentPackets::new();
        s.push(3, packet(t, 100));
        s.push(6, packet(t, 100)); // 4 and 5 were ACK-only
        let mut out = Vec::new();
        s.take_range(0, u64::MAX, &mut out);
        assert_eq!(pns(&out), vec![3, 6]);
        assert!(!s.has_ack_eliciting_in_flight());
        assert_eq!(s.bytes_in_flight(), 0);
        s.take_range(u64::MAX - 1, u64::MAX, &mut out);
        s.take_range(5, 2, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn loss_takes_the_prefix_below_the_threshold_or_older_than_the_delay() {
        let t0 = Instant::now();
        let mut s = SentPackets::new();
        for pn in 0..10u64 {
            s.push(pn, packet(t0 + MS * pn as u32, 100));
        }
        s.take(8); // acknowledged
        let mut out = Vec::new();
        // Packet threshold 3 below largest acked 8: 0..=5 lost; 6 survives and
        // is lost by time at its send time + the delay.
        let at = s.take_lost(8, 3, None, 50 * MS, &mut out);
        assert_eq!(pns(&out), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(at, Some(t0 + 56 * MS));
        // By time: everything sent at or before t0 + 6 ms.
        out.clear();
        let at = s.take_lost(8, 3, Some(t0 + 6 * MS), 50 * MS, &mut out);
        assert_eq!(pns(&out), vec![6]);
        assert_eq!(at, Some(t0 + 57 * MS));
        assert_eq!(s.iter().map(|(pn, _)| pn).collect::<Vec<_>>(), vec![7, 9]);
    }

    #[test]
    fn a_range_over_numbers_never_recorded_costs_one_search() {
        let t = Instant::now();
        let mut s = SentPackets::new();
        // One outstanding packet, a million ACK-only packets, another one.
        s.push(0, packet(t, 100));
        s.push(1_000_001, packet(t, 100));
        let mut out = Vec::new();
        let before = s.visited();
        for _ in 0..1000 {
            s.take_range(1, 1_000_000, &mut out);
        }
        assert!(out.is_empty());
        assert!(s.visited() - before <= 2 * 1000, "{}", s.visited() - before);
        assert_eq!(s.slots(), 2, "ACK-only packets take no slot");
    }

    #[test]
    fn repeated_ranges_over_holes_cross_them_in_a_few_steps() {
        let t = Instant::now();
        let mut s = SentPackets::new();
        for pn in 0..10_000 {
            s.push(pn, packet(t, 100));
        }
        let mut out = Vec::new();
        // Every odd packet, one range each: 5000 holes behind packet 0.
        for pn in (1..10_000).step_by(2) {
            s.take_range(pn, pn, &mut out);
        }
        assert_eq!(out.len(), 5000);
        // Then every packet but the oldest, over and over.
        let before = s.visited();
        s.take_range(1, 9_999, &mut out);
        assert_eq!(out.len(), 5000 + 4999);
        let first = s.visited() - before;
        assert!(first <= 2 * 4999 + 5000 + 2, "{first}");
        let before = s.visited();
        for _ in 0..1000 {
            s.take_range(1, 9_999, &mut out);
            s.take_range(5_000, 6_000, &mut out);
        }
        let repeated = s.visited() - before;
        assert!(
            repeated <= 2000 * 4,
            "2000 empty ranges cost {repeated} steps"
        );
        assert_eq!(s.slots(), 10_000, "the oldest keeps the holes behind it");
        assert_eq!(s.iter().map(|(pn, _)| pn).collect::<Vec<_>>(), vec![0]);
        s.take_range(0, 0, &mut out);
        assert!(s.is_empty(), "acknowledging the oldest drops every hole");
    }

    #[test]
    fn the_record_tells_when_it_is_full() {
        let t = Instant::now();
        let mut s = SentPackets::new();
        for pn in 0..MAX_SENT_RECORDS as u64 {
            assert!(!s.is_full());
            assert_eq!(s.blocks_sending(), pn >= SEND_BLOCK_RECORDS as u64);
            s.push(2 * pn, packet(t, 100));
        }
        assert!(s.is_full());
        assert_eq!(s.memory(), MAX_SENT_RECORDS * SLOT_BYTES);
        let mut out = Vec::new();
        s.take_range(2, u64::MAX, &mut out);
        assert!(s.is_full(), "holes behind the oldest packet count");
        s.take_range(0, 0, &mut out);
        assert!(s.is_empty() && !s.is_full());
    }

    /// The spec's memory figure (§10.3: 16 384 slots, 2.125 MiB) rests on
    /// this size (112 bytes before delivery-rate samples added 24).
    #[test]
    fn a_record_is_at_most_136_bytes() {
        const { assert!(SLOT_BYTES <= 136) };
    }

    mod model {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        #[derive(Debug, Clone)]
        enum Op {
            /// Send this many packets, skipping this many numbers before each.
            Send(u8, u8),
            Ack(u64, u64),
            Lose(u64, u64),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (1u8..20, 0u8..3).prop_map(|(n, gap)| Op::Send(n, gap)),
                (0u64..400, 0u64..40).prop_map(|(lo, len)| Op::Ack(lo, lo + len)),
                (0u64..400, 0u64..4).prop_map(|(l, th)| Op::Lose(l, th)),
            ]
        }

        proptest! {
            #[test]
            fn the_record_agrees_with_a_map(ops in proptest::collection::vec(op(), 1..200)) {
                let t = Instant::now();
                let mut s = SentPackets::new();
                let mut model: BTreeMap<u64, u16> = BTreeMap::new();
                let mut next = 0u64;
                let mut out = Vec::new();
                for op in ops {
                    out.clear();
                    match op {
                        Op::Send(n, gap) => for _ in 0..n {
                            next += u64::from(gap);
                            let size = 50 + (next % 7) as u16;
                            s.push(next, packet(t, size));
                            model.insert(next, size);
                            next += 1;
                        },
                        Op::Ack(lo, hi) => {
                            s.take_range(lo, hi, &mut out);
                            let want: Vec<u64> = model.range(lo..=hi).map(|(pn, _)| *pn).collect();
                            for pn in &want { model.remove(pn); }
                            prop_assert_eq!(pns(&out), want);
                        }
                        Op::Lose(largest, threshold) => {
                            s.take_lost(largest, threshold, None, MS, &mut out);
                            let mut want = Vec::new();
                            for (&pn, _) in model.range(..=largest) {
                                if largest >= pn + threshold { want.push(pn) } else { break }
                            }
                            for pn in &want { model.remove(pn); }
                            prop_assert_eq!(pns(&out), want);
                        }
                    }
                    let outstanding: Vec<u64> = s.iter().map(|(pn, _)| pn).collect();
                    prop_assert_eq!(&outstanding, &model.keys().copied().collect::<Vec<_>>());
                    prop_assert_eq!(s.bytes_in_flight(), model.values().map(|&b| u64::from(b)).sum::<u64>());
                    prop_assert_eq!(s.has_ack_eliciting_in_flight(), !model.is_empty());
                    prop_assert_eq!(s.first_pn(), model.keys().next().copied());
                    for pn in next.saturating_sub(50)..next + 2 {
                        prop_assert_eq!(s.get(pn).map(|p| p.size), model.get(&pn).copied());
                    }
                }
            }
        }
    }
}
