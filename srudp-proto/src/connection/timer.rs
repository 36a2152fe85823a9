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
}

const COUNT: usize = 10;
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
];

#[derive(Debug, Default, Clone)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; COUNT],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    pub(crate) fn is_set(&self, timer: Timer) -> bool {
        self.deadlines[timer as usize].is_some()
    }

    /// When `timer` is due, if armed.
    #[cfg(test)]
    pub(crate) fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Removes and returns a timer that has expired at `now`, earliest first.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = ALL
            .iter()
            .copied()
            .filter(|t| self.deadlines[*t as usize].is_some_and(|d| d <= now))
            .min_by_key(|t| self.deadlines[*t as usize])?;
        self.deadlines[timer as usize] = None;
        Some(timer)
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [None; COUNT];
    }
}
