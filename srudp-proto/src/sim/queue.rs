//! One direction of a link: what happens to a packet crossing it.
//!
//! A [`Link`] has two directions; each [`LinkDirection`] applies the link's
//! [`LinkConfig`] to packets, in the order documented there, and keeps the
//! direction's state: its random stream, its Gilbert–Elliott loss state and
//! its transmit queue ([`TxQueue`]).
//!
//! A rate-limited link direction sends one packet at a time; a packet that
//! arrives while the transmitter is busy waits, first in first out, behind the
//! packets already there. Waiting packets are bounded in bytes: a packet that
//! would push the waiting bytes above the bound is dropped (tail drop). The
//! packet currently being serialised no longer counts as waiting, so an idle
//! link always accepts a packet, whatever the bound.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::link::{LinkConfig, LossModel, DUPLICATE_DELAY};
use super::rng::SimRng;

/// One packet admitted to the transmitter.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// When serialisation of this packet starts.
    start: Instant,
    /// When its last bit has left the transmitter.
    finish: Instant,
    /// Its size in bytes.
    size: usize,
}

/// The transmit queue of one link direction.
#[derive(Debug, Clone, Default)]
pub(crate) struct TxQueue {
    /// Admitted packets whose serialisation has not finished, in FIFO order.
    slots: VecDeque<Slot>,
    /// Sum of `slots[..].size`.
    bytes: usize,
}

impl TxQueue {
    /// Offers a packet of `size` bytes to the transmitter at `now`.
    ///
    /// Returns when its last bit has been sent, or `None` if it is dropped
    /// because the waiting bytes would exceed `limit` (or the finish time is
    /// too far in the future to be represented). `bandwidth_bps` must be
    /// non-zero; a zero rate is handled by the caller.
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        size: usize,
        bandwidth_bps: u64,
        limit: Option<usize>,
    ) -> Option<Instant> {
        self.retire(now);
        let start = match self.slots.back() {
            Some(last) if last.finish > now => last.finish,
            _ => now,
        };
        if start > now {
            if let Some(limit) = limit {
                if self.waiting_bytes(now).saturating_add(size) > limit {
                    return None;
                }
            }
        }
        let finish = start.checked_add(serialisation_delay(size, bandwidth_bps))?;
        self.slots.push_back(Slot {
            start,
            finish,
            size,
        });
        self.bytes = self.bytes.saturating_add(size);
        Some(finish)
    }

    /// Forgets packets whose serialisation finished by `now`.
    fn retire(&mut self, now: Instant) {
        while let Some(front) = self.slots.front() {
            if front.finish > now {
                break;
            }
            self.bytes = self.bytes.saturating_sub(front.size);
            self.slots.pop_front();
        }
    }

    /// Bytes waiting behind the packet in service at `now`.
    fn waiting_bytes(&self, now: Instant) -> usize {
        match self.slots.front() {
            Some(front) if front.start <= now => self.bytes.saturating_sub(front.size),
            _ => self.bytes,
        }
    }
}

/// Time to clock `size` bytes onto a link of `bandwidth_bps` bits per second,
/// rounded up to the nanosecond (saturating; zero rate gives `Duration::MAX`).
pub(crate) fn serialisation_delay(size: usize, bandwidth_bps: u64) -> Duration {
    if bandwidth_bps == 0 {
        return Duration::MAX;
    }
    let bits = (size as u128).saturating_mul(8);
    let nanos = bits
        .saturating_mul(1_000_000_000)
        .div_ceil(u128::from(bandwidth_bps));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Why a link direction dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkDrop {
    /// The link is down (or has zero bandwidth).
    Down,
    /// The payload exceeds the MTU.
    Mtu,
    /// The transmit queue was full.
    QueueOverflow,
    /// Random loss (or an arrival time beyond what `Instant` can represent).
    Loss,
}

/// What became of a packet that made it across a link direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Crossing {
    /// When it arrives at the far end.
    pub(crate) arrival: Instant,
    /// When its duplicate arrives, if it was duplicated.
    pub(crate) duplicate: Option<Instant>,
    /// Whether a bit of the payload was flipped.
    pub(crate) corrupted: bool,
}

/// A link: its configuration and its two directions.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub(crate) config: LinkConfig,
    /// Away from the host or NAT owning the link (towards NAT or internet).
    outward: LinkDirection,
    /// Towards the host or NAT owning the link.
    inward: LinkDirection,
}

/// Which direction of a link a packet takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    /// Away from the link's owner.
    Outward,
    /// Towards the link's owner.
    Inward,
}

impl Link {
    /// A link whose directions draw from streams forked off `rng`.
    pub(crate) fn new(config: LinkConfig, rng: &mut SimRng) -> Self {
        let outward = LinkDirection::new(rng.fork());
        let inward = LinkDirection::new(rng.fork());
        Link {
            config,
            outward,
            inward,
        }
    }

    /// Sends `payload` across one direction at `now`.
    pub(crate) fn cross(
        &mut self,
        direction: Direction,
        now: Instant,
        payload: &mut [u8],
    ) -> Result<Crossing, LinkDrop> {
        let state = match direction {
            Direction::Outward => &mut self.outward,
            Direction::Inward => &mut self.inward,
        };
        state.cross(&self.config, now, payload)
    }
}

/// The state of one direction of a link.
#[derive(Debug, Clone)]
struct LinkDirection {
    rng: SimRng,
    queue: TxQueue,
    /// Gilbert–Elliott state: `true` while in the bad state.
    in_bad_state: bool,
    /// When the last packet through this direction would have arrived with
    /// only latency and in-order jitter: the earliest such time for the next
    /// one, so that in-order jitter never reorders.
    in_order_floor: Option<Instant>,
}

impl LinkDirection {
    /// A fresh direction drawing randomness from `rng`.
    fn new(rng: SimRng) -> Self {
        LinkDirection {
            rng,
            queue: TxQueue::default(),
            in_bad_state: false,
            in_order_floor: None,
        }
    }

    /// Sends `payload` across this direction at `now` under `config`,
    /// corrupting it in place if the link decides so.
    fn cross(
        &mut self,
        config: &LinkConfig,
        now: Instant,
        payload: &mut [u8],
    ) -> Result<Crossing, LinkDrop> {
        if !config.up || config.bandwidth_bps == Some(0) {
            return Err(LinkDrop::Down);
        }
        if config.mtu.is_some_and(|mtu| payload.len() > mtu) {
            return Err(LinkDrop::Mtu);
        }
        let sent = match config.bandwidth_bps {
            Some(bps) => self
                .queue
                .admit(now, payload.len(), bps, config.queue_bytes)
                .ok_or(LinkDrop::QueueOverflow)?,
            None => now,
        };
        if self.lose(&config.loss) {
            return Err(LinkDrop::Loss);
        }
        let corrupted = !payload.is_empty() && self.rng.chance(config.corrupt);
        if corrupted {
            let bit = self.rng.below((payload.len() as u64).saturating_mul(8));
            payload[(bit / 8) as usize] ^= 1 << (bit % 8);
        }
        // Latency and in-order jitter; `None` if beyond what `Instant` holds
        // (a loss, reported once every draw for this packet has been made).
        let mut in_order = sent.checked_add(config.latency);
        if !config.in_order_jitter.is_zero() {
            let extra = self.rng.duration_below(config.in_order_jitter);
            in_order = in_order
                .and_then(|t| t.checked_add(extra))
                .map(|t| self.in_order_floor.map_or(t, |floor| t.max(floor)));
            if in_order.is_some() {
                self.in_order_floor = in_order;
            }
        }
        let mut delay = Duration::ZERO;
        if !config.jitter.is_zero() {
            delay = delay.saturating_add(self.rng.duration_below(config.jitter));
        }
        if self.rng.chance(config.reorder) {
            delay = delay.saturating_add(config.reorder_delay);
        }
        let arrival = in_order
            .and_then(|t| t.checked_add(delay))
            .ok_or(LinkDrop::Loss)?;
        let duplicate = if self.rng.chance(config.duplicate) {
            arrival.checked_add(DUPLICATE_DELAY)
        } else {
            None
        };
        Ok(Crossing {
            arrival,
            duplicate,
            corrupted,
        })
    }

    /// Steps the loss model for one packet; `true` if it is lost.
    fn lose(&mut self, model: &LossModel) -> bool {
        match *model {
            LossModel::None => {
                self.in_bad_state = false;
                false
            }
            LossModel::Bernoulli(p) => {
                self.in_bad_state = false;
                self.rng.chance(p)
            }
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_in_good,
                loss_in_bad,
            } => {
                let flip = if self.in_bad_state {
                    p_bad_to_good
                } else {
                    p_good_to_bad
                };
                if self.rng.chance(flip) {
                    self.in_bad_state = !self.in_bad_state;
                }
                let p = if self.in_bad_state {
                    loss_in_bad
                } else {
                    loss_in_good
                };
                self.rng.chance(p)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn serialisation_delay_is_size_over_rate() {
        assert_eq!(serialisation_delay(1000, 1_000_000), 8 * MS);
        assert_eq!(serialisation_delay(0, 1), Duration::ZERO);
        assert_eq!(
            serialisation_delay(1, 3),
            Duration::from_nanos(2_666_666_667)
        );
        assert_eq!(serialisation_delay(1, 0), Duration::MAX);
        assert_eq!(
            serialisation_delay(usize::MAX, 1),
            Duration::from_nanos(u64::MAX)
        );
    }

    #[test]
    fn packets_queue_fifo_behind_each_other() {
        let t0 = Instant::now();
        let mut q = TxQueue::default();
        assert_eq!(q.admit(t0, 1000, 1_000_000, None), Some(t0 + 8 * MS));
        assert_eq!(q.admit(t0, 1000, 1_000_000, None), Some(t0 + 16 * MS));
        // After the queue drained, a packet starts immediately.
        let later = t0 + 100 * MS;
        assert_eq!(q.admit(later, 500, 1_000_000, None), Some(later + 4 * MS));
    }

    #[test]
    fn bound_counts_waiting_bytes_only() {
        let t0 = Instant::now();
        let mut q = TxQueue::default();
        // An idle link accepts even a packet larger than the bound.
        assert!(q.admit(t0, 1000, 8000, Some(0)).is_some());
        // Busy link and no room: dropped.
        assert!(q.admit(t0, 1, 8000, Some(0)).is_none());
        let mut q = TxQueue::default();
        assert!(q.admit(t0, 1000, 8000, Some(1500)).is_some()); // in service
        assert!(q.admit(t0, 1000, 8000, Some(1500)).is_some()); // waits: 1000
        assert!(q.admit(t0, 1000, 8000, Some(1500)).is_none()); // 2000 > 1500
        assert!(q.admit(t0, 500, 8000, Some(1500)).is_some()); // 1500 fits
                                                               // One second later the first packet is gone, the second in service.
        let t1 = t0 + Duration::from_secs(1);
        assert!(q.admit(t1, 1000, 8000, Some(1500)).is_some()); // waits: 1500
    }
}
