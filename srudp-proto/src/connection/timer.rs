//! A connection's timers: a small enum and a fixed table; the next deadline
//! is the minimum of the table.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Nothing authenticated arrived for the idle timeout.
    Idle = 0,
    /// Loss detection: time-threshold loss or probe timeout.
    LossDetection = 1,
    /// A delayed ACK is due.
    Ack = 2,
    /// Send a PING to keep NAT mappings alive.
    Keepalive = 3,
    /// Next punch / handshake probe.
    Punch = 4,
    /// Give up the handshake.
    Handshake = 5,
    /// End of the closing/draining period.
    Close = 6,
    /// Give up validating a new path.
    PathValidation = 7,
    /// The pacer lets the next ack-eliciting packet leave (spec §7.2).
    Pacing = 8,
    /// A quiet connection frees its empty buffers (see `idle.rs`).
    IdleRelease = 9,
    /// An unconfirmed responder nudges the initiator (see `confirm_nudges.rs`).
    ConfirmNudge = 10,
}

const COUNT: usize = 11;
const ALL: [Timer; COUNT] = [
    Timer::Idle,
    Timer::LossDetection,
    Timer::Ack,
    Timer::Keepalive,
    Timer::Punch,
    Timer::Handshake,
    Timer::Close,
    Timer::PathValidation,
    Timer::Pacing,
    Timer::IdleRelease,
    Timer::ConfirmNudge,
];

#[derive(Debug, Default, Clone)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; COUNT],
    /// The earliest of `deadlines`, kept up to date by every change: the
    /// endpoint asks for it after every datagram, and a burst of packets
    /// re-arms the same timers to the same instants.
    earliest: Option<Instant>,
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        let old = self.deadlines[timer as usize].replace(at);
        if old == Some(at) {
            return;
        }
        if self.earliest.is_none_or(|e| at <= e) {
            self.earliest = Some(at);
        } else if old == self.earliest {
            // The earliest moved later: another may be earliest now.
            self.recompute_earliest();
        }
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        let old = self.deadlines[timer as usize].take();
        if old.is_some() && old == self.earliest {
            self.recompute_earliest();
        }
    }

    pub(crate) fn is_set(&self, timer: Timer) -> bool {
        self.deadlines[timer as usize].is_some()
    }

    /// When `timer` is due, if armed.
    pub(crate) fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.earliest
    }

    fn recompute_earliest(&mut self) {
        self.earliest = self.deadlines.iter().flatten().min().copied();
    }

    /// Removes and returns a timer that has expired at `now`, earliest first.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        if self.earliest.is_none_or(|e| e > now) {
            return None;
        }
        let timer = ALL
            .iter()
            .copied()
            .filter(|t| self.deadlines[*t as usize].is_some_and(|d| d <= now))
            .min_by_key(|t| self.deadlines[*t as usize])?;
        self.stop(timer);
        Some(timer)
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [None; COUNT];
        self.earliest = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    /// One change to a table: set a timer (index, milliseconds), stop one,
    /// pop what expired at a time, or stop all.
    #[derive(Debug, Clone)]
    enum Change {
        Set(usize, u64),
        Stop(usize),
        PopExpired(u64),
        StopAll,
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            6 => (0..COUNT, 0..50u64).prop_map(|(t, ms)| Change::Set(t, ms)),
            2 => (0..COUNT).prop_map(Change::Stop),
            2 => (0..50u64).prop_map(Change::PopExpired),
            1 => Just(Change::StopAll),
        ]
    }

    proptest! {
        #[test]
        fn the_next_deadline_is_always_the_earliest_armed_timer(
            changes in proptest::collection::vec(change(), 0..200)
        ) {
            let t0 = Instant::now();
            let ms = |m: u64| t0 + Duration::from_millis(m);
            let mut table = TimerTable::default();
            for c in changes {
                match c {
                    Change::Set(t, m) => table.set(ALL[t], ms(m)),
                    Change::Stop(t) => table.stop(ALL[t]),
                    Change::PopExpired(m) => {
                        let before: Vec<Option<Instant>> = table.deadlines.to_vec();
                        if let Some(t) = table.pop_expired(ms(m)) {
                            let due = before[t as usize].expect("an armed timer");
                            prop_assert!(due <= ms(m));
                            prop_assert!(before.iter().flatten().all(|&d| d > ms(m) || d >= due));
                        } else {
                            prop_assert!(before.iter().flatten().all(|&d| d > ms(m)));
                        }
                    }
                    Change::StopAll => table.stop_all(),
                }
                let naive = table.deadlines.iter().flatten().min().copied();
                prop_assert_eq!(table.next(), naive, "after {:?}", c);
            }
        }
    }
}
