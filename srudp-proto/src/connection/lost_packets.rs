//! Packets recently declared lost, kept for a while to notice when the peer
//! acknowledges one after all: the loss was spurious (reordering, a delay
//! spike), its retransmission was wasted, and if every loss of a recovery
//! episode was spurious the window reduction it caused is undone
//! (RFC 4015-style, as Linux does; spec §6.5).
//!
//! Packet numbers are never reused, so an acknowledgment of a number declared
//! lost proves the *original* arrived: no timestamps or DSACK are needed to
//! tell it from the retransmission.
//!
//! A recovery episode starts with a loss of a packet sent after the previous
//! episode started (the same rule that decides when the congestion controller
//! reduces its window). It is *real* as soon as one of its lost packets
//! expires from this record without having been acknowledged.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::sent_packets::SentPacket;

/// Most lost packets remembered; the oldest are forgotten (as real losses) beyond.
const MAX_RECORDS: usize = 8192;

#[derive(Debug)]
struct Record {
    pn: u64,
    packet: SentPacket,
    declared: Instant,
    episode: u64,
}

#[derive(Debug, Clone, Copy)]
struct Episode {
    id: u64,
    start: Instant,
    /// Lost packets of this episode neither acknowledged nor expired.
    unresolved: u32,
    /// One of its packets really was lost (expired unacknowledged).
    real: bool,
    /// The reduction was undone already.
    undone: bool,
}

/// What an acknowledgment of a packet declared lost means.
#[derive(Debug)]
pub(crate) struct SpuriousLoss {
    pub(crate) packet: SentPacket,
    /// Every loss of the latest episode proved spurious: undo its reduction.
    pub(crate) undo: bool,
}

#[derive(Debug, Default)]
pub(crate) struct LostPackets {
    /// In packet-number order (losses are declared in that order).
    records: VecDeque<Record>,
    episode: Option<Episode>,
    next_episode: u64,
}

impl LostPackets {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A loss-detection pass declared packets lost, the newest sent at
    /// `newest_sent`. Returns whether this starts a new recovery episode
    /// (always for persistent congestion).
    pub(crate) fn begin_pass(
        &mut self,
        now: Instant,
        newest_sent: Instant,
        persistent: bool,
    ) -> bool {
        let same = self.episode.is_some_and(|e| newest_sent <= e.start);
        if same && !persistent {
            return false;
        }
        self.next_episode += 1;
        self.episode = Some(Episode {
            id: self.next_episode,
            start: now,
            unresolved: 0,
            real: false,
            undone: false,
        });
        true
    }

    /// Remembers packet `pn`, declared lost at `now` in the current episode.
    pub(crate) fn record(&mut self, now: Instant, pn: u64, packet: SentPacket) {
        debug_assert!(self.records.back().is_none_or(|r| r.pn < pn));
        let episode = match &mut self.episode {
            Some(e) => {
                e.unresolved += 1;
                e.id
            }
            None => 0,
        };
        self.records.push_back(Record {
            pn,
            packet,
            declared: now,
            episode,
        });
        if self.records.len() > MAX_RECORDS {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some(r) = self.records.pop_front() {
            if let Some(e) = &mut self.episode {
                if e.id == r.episode {
                    e.unresolved -= 1;
                    e.real = true;
                }
            }
        }
    }

    /// Forgets packets declared lost more than `retention` ago: they were
    /// really lost.
    pub(crate) fn expire(&mut self, now: Instant, retention: Duration) {
        while self
            .records
            .front()
            .is_some_and(|r| r.declared + retention < now)
        {
            self.forget_oldest();
        }
    }

    /// The peer acknowledged every number in `lo..=hi`: hands each recorded
    /// packet among them to `out`, with whether the episode's reduction is to
    /// be undone (at most once per episode).
    pub(crate) fn take_acked(&mut self, lo: u64, hi: u64, out: &mut Vec<SpuriousLoss>) {
        let (Some(first), Some(last)) = (self.records.front(), self.records.back()) else {
            return;
        };
        if hi < first.pn || lo > last.pn {
            return;
        }
        let start = self.records.partition_point(|r| r.pn < lo);
        let end = self.records.partition_point(|r| r.pn <= hi);
        if start >= end {
            return;
        }
        for r in self.records.drain(start..end) {
            let mut undo = false;
            if let Some(e) = &mut self.episode {
                if e.id == r.episode {
                    e.unresolved -= 1;
                    if e.unresolved == 0 && !e.real && !e.undone {
                        e.undone = true;
                        undo = true;
                    }
                }
            }
            out.push(SpuriousLoss {
                packet: r.packet,
                undo,
            });
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.records.len()
    }
}

/// Idle memory (see `idle.rs`).
impl LostPackets {
    pub(crate) fn holds_buffer(&self) -> bool {
        self.records.capacity() > 0
    }

    /// Frees the records if there are none.
    pub(crate) fn release_buffer(&mut self) {
        if self.records.is_empty() {
            self.records = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::delivery_rate::PacketDelivery;
    use crate::connection::send_stream::StreamChunks;

    const MS: Duration = Duration::from_millis(1);

    fn packet(t: Instant) -> SentPacket {
        SentPacket {
            time_sent: t,
            size: 1200,
            app_limited: false,
            stream: StreamChunks::default(),
            max_data: false,
            ack_frequency: false,
            delivery: PacketDelivery::idle(),
        }
    }

    #[test]
    fn an_episode_whose_losses_are_all_acknowledged_is_undone_once() {
        let t0 = Instant::now();
        let mut l = LostPackets::new();
        assert!(l.begin_pass(t0 + 100 * MS, t0, false));
        l.record(t0 + 100 * MS, 3, packet(t0));
        l.record(t0 + 100 * MS, 5, packet(t0));
        // A later pass for packets sent before the episode began: same episode.
        assert!(!l.begin_pass(t0 + 110 * MS, t0 + 50 * MS, false));
        l.record(t0 + 110 * MS, 7, packet(t0 + 50 * MS));
        let mut out = Vec::new();
        l.take_acked(0, 4, &mut out);
        l.take_acked(6, 6, &mut out);
        assert_eq!(out.len(), 1);
        assert!(!out[0].undo, "packets 5 and 7 are still unresolved");
        l.take_acked(5, 9, &mut out);
        assert_eq!(out.iter().filter(|s| s.undo).count(), 1);
        assert!(out[2].undo, "the last one resolves the episode");
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn an_episode_with_a_real_loss_is_not_undone() {
        let t0 = Instant::now();
        let mut l = LostPackets::new();
        l.begin_pass(t0, t0, false);
        l.record(t0, 1, packet(t0));
        l.record(t0, 2, packet(t0));
        l.expire(t0 + 10 * MS, 5 * MS); // both expire: really lost
        let mut out = Vec::new();
        l.take_acked(0, 10, &mut out);
        assert!(out.is_empty());
        // A new episode, one real loss (expired) and one spurious.
        l.begin_pass(t0 + 20 * MS, t0 + 15 * MS, false);
        l.record(t0 + 20 * MS, 10, packet(t0));
        l.record(t0 + 22 * MS, 11, packet(t0));
        l.expire(t0 + 26 * MS, 5 * MS);
        l.take_acked(11, 11, &mut out);
        assert_eq!(out.len(), 1);
        assert!(!out[0].undo);
    }

    #[test]
    fn only_the_latest_episode_can_be_undone() {
        let t0 = Instant::now();
        let mut l = LostPackets::new();
        l.begin_pass(t0, t0, false);
        l.record(t0, 1, packet(t0));
        l.begin_pass(t0 + 50 * MS, t0 + 10 * MS, false);
        l.record(t0 + 50 * MS, 20, packet(t0 + 10 * MS));
        let mut out = Vec::new();
        l.take_acked(1, 1, &mut out);
        assert!(!out[0].undo, "the first episode was superseded");
        l.take_acked(20, 20, &mut out);
        assert!(out[1].undo);
    }

    #[test]
    fn the_record_is_bounded() {
        let t0 = Instant::now();
        let mut l = LostPackets::new();
        l.begin_pass(t0, t0, false);
        for pn in 0..(MAX_RECORDS as u64 + 10) {
            l.record(t0, pn, packet(t0));
        }
        assert_eq!(l.len(), MAX_RECORDS);
        let mut out = Vec::new();
        l.take_acked(0, u64::MAX, &mut out);
        assert_eq!(out.len(), MAX_RECORDS);
        assert!(
            out.iter().all(|s| !s.undo),
            "forgotten packets count as real losses"
        );
    }
}
