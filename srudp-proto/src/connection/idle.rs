//! Giving memory back while a connection is quiet.
//!
//! A connection's buffers grow with its traffic (the send and receive
//! buffers up to their windows, the sent-packet ring, the acknowledgment
//! scratch lists, the event queue) and are reused while traffic flows, so
//! a transfer allocates nothing per packet. An idle connection needs none
//! of them: once it has been quiet — nothing in flight, nothing buffered
//! either way, no event waiting — for [`IDLE_RELEASE_DELAY`], every empty
//! buffer is freed, and the next traffic allocates afresh. A connection
//! exchanging a message now and then pays at most a few allocations per
//! delay, never per packet of a transfer.

use std::time::{Duration, Instant};

use super::timer::Timer;
use super::{Connection, State};

/// How long a connection stays quiet before its empty buffers are freed.
pub(crate) const IDLE_RELEASE_DELAY: Duration = Duration::from_secs(1);

impl Connection {
    /// Nothing in flight, nothing buffered to send or to read, no event
    /// waiting: no buffer holds anything.
    fn is_quiet(&self) -> bool {
        matches!(self.state, State::Established)
            && self.sent.bytes_in_flight() == 0
            && self.sent.is_empty()
            && self.send.is_idle()
            && self.recv.is_idle()
            && self.events.is_empty()
            && !self.readable_first
            && self.path_responses.is_empty()
    }

    /// The endpoint found nothing to send: if the connection is quiet and
    /// holds buffers, arm the timer that frees them.
    pub(crate) fn on_nothing_to_send(&mut self, now: Instant) {
        if self.timers.is_set(Timer::IdleRelease) || !self.is_quiet() || !self.holds_idle_buffers()
        {
            return;
        }
        self.timers
            .set(Timer::IdleRelease, now + IDLE_RELEASE_DELAY);
    }

    /// The release timer fired: free the buffers if still quiet (if not,
    /// the next quiet moment arms it again).
    pub(crate) fn on_idle_release_timeout(&mut self) {
        if self.is_quiet() {
            self.release_idle_buffers();
        }
    }

    /// Whether any buffer that a quiet connection does not need is allocated.
    pub(crate) fn holds_idle_buffers(&self) -> bool {
        self.acked_scratch.capacity() > 0
            || self.spurious_scratch.capacity() > 0
            || self.events.capacity() > 0
            || self.path_responses.capacity() > 0
            || self.sent.holds_buffer()
            || self.lost.holds_buffer()
            || self.send.holds_buffer()
            || self.recv.holds_buffer()
    }

    fn release_idle_buffers(&mut self) {
        self.acked_scratch = Vec::new();
        self.spurious_scratch = Vec::new();
        self.events.shrink_to_fit();
        self.path_responses.shrink_to_fit();
        self.sent.release_buffer();
        self.lost.release_buffer();
        self.send.release_buffer();
        self.recv.release_buffer();
    }
}
