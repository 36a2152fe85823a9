//! Persistent congestion (RFC 9002 §7.6, spec §6.5).
//!
//! The path is persistently congested when two ack-eliciting packets are
//! declared lost, sent further apart than the persistent-congestion period,
//! with no packet sent between them acknowledged, and both sent after the
//! first RTT sample (before it, the PTO runs on a guess). The losses may be
//! declared in several detection passes, so the current run of losses is
//! carried across them: it is broken by an acknowledgment of a packet inside
//! it, or of one between it and the next loss.

use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
pub(crate) struct LossRun {
    /// Send time of the first eligible loss of the run.
    start: Option<Instant>,
    /// Number of the last packet declared lost in the run.
    last_pn: Option<u64>,
    /// Smallest acknowledged number above `last_pn`: a later loss above it is
    /// not contiguous with the run.
    barrier: Option<u64>,
}

impl LossRun {
    /// Packet `pn`, sent at `sent`, was declared lost; `eligible` when it is
    /// ack-eliciting and was sent after the first RTT sample. Returns whether
    /// the run now spans more than `period`: persistent congestion.
    pub(crate) fn on_lost(
        &mut self,
        pn: u64,
        sent: Instant,
        eligible: bool,
        period: Duration,
    ) -> bool {
        if self.barrier.is_some_and(|b| b < pn) || self.last_pn.is_some_and(|l| pn <= l) {
            self.start = None;
        }
        self.barrier = None;
        self.last_pn = Some(pn);
        if !eligible {
            return false;
        }
        match self.start {
            None => {
                self.start = Some(sent);
                false
            }
            Some(start) => sent.saturating_duration_since(start) > period,
        }
    }

    /// Packet `pn` was acknowledged (including one declared lost before).
    pub(crate) fn on_acked(&mut self, pn: u64) {
        match self.last_pn {
            Some(last) if pn <= last => *self = LossRun::default(),
            Some(_) => self.barrier = Some(self.barrier.map_or(pn, |b| b.min(pn))),
            None => {}
        }
    }

    /// Persistent congestion was declared: start over.
    pub(crate) fn reset(&mut self) {
        *self = LossRun::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn two_losses_spanning_the_period_are_persistent_congestion() {
        let t0 = Instant::now();
        let period = 300 * MS;
        let mut run = LossRun::default();
        assert!(!run.on_lost(10, t0, true, period));
        assert!(!run.on_lost(11, t0 + 100 * MS, true, period));
        // Exactly the period is not more than it.
        assert!(!run.on_lost(12, t0 + 300 * MS, true, period));
        assert!(run.on_lost(13, t0 + 301 * MS, true, period));
    }

    #[test]
    fn the_run_continues_across_passes_and_over_unacknowledged_gaps() {
        let t0 = Instant::now();
        let period = 300 * MS;
        let mut run = LossRun::default();
        assert!(!run.on_lost(10, t0, true, period));
        // 11–14 were ACK-only packets (never acknowledged); a packet above
        // the run acknowledged later does not break it for losses below it.
        run.on_acked(40);
        assert!(run.on_lost(15, t0 + 400 * MS, true, period));
    }

    #[test]
    fn an_acknowledgment_in_between_breaks_the_run() {
        let t0 = Instant::now();
        let period = 300 * MS;
        let mut run = LossRun::default();
        run.on_lost(10, t0, true, period);
        run.on_acked(12);
        assert!(!run.on_lost(15, t0 + 400 * MS, true, period), "12 arrived");
        assert!(
            run.on_lost(16, t0 + 701 * MS, true, period),
            "a new run from 15"
        );
        // A packet of the run acknowledged after all (spurious loss) ends it.
        let mut run = LossRun::default();
        run.on_lost(10, t0, true, period);
        run.on_lost(11, t0 + 100 * MS, true, period);
        run.on_acked(10);
        assert!(!run.on_lost(12, t0 + 400 * MS, true, period));
    }

    #[test]
    fn only_eligible_packets_start_or_end_the_run() {
        let t0 = Instant::now();
        let period = 300 * MS;
        let mut run = LossRun::default();
        // Sent before the first RTT sample: does not start the run.
        assert!(!run.on_lost(1, t0, false, period));
        assert!(!run.on_lost(2, t0 + 50 * MS, true, period));
        assert!(!run.on_lost(3, t0 + 340 * MS, false, period));
        assert!(run.on_lost(4, t0 + 351 * MS, true, period));
    }
}
