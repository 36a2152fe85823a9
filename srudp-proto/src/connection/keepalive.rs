//! The keepalive interval, tied to the negotiated idle timeout (spec §6.8).
//!
//! A keepalive PING only helps if it (and the peer's ACK) arrives before
//! either side's idle timer fires. Each side uses the smaller of both idle
//! timeouts, so a keepalive configured for our own idle timeout may be far
//! too slow for the peer's: the interval is capped at a third of the
//! negotiated idle timeout, which leaves room for two lost PINGs. A peer
//! cannot push it below [`MIN_KEEPALIVE_INTERVAL`] by announcing a tiny
//! idle timeout, so it can make us send at most a few PINGs per second.

use std::time::{Duration, Instant};

use super::timer::Timer;
use super::Connection;

/// The shortest keepalive interval the peer's idle timeout can impose.
pub(crate) const MIN_KEEPALIVE_INTERVAL: Duration = Duration::from_millis(100);

/// The keepalive interval for a configured interval and the negotiated
/// idle timeout: the configured one, but at most a third of the idle
/// timeout (and not below [`MIN_KEEPALIVE_INTERVAL`] on that account).
pub(crate) fn effective_keepalive(configured: Duration, idle_timeout: Duration) -> Duration {
    configured.min((idle_timeout / 3).max(MIN_KEEPALIVE_INTERVAL))
}

impl Connection {
    /// Arms the keepalive timer one interval after `now` (nothing if
    /// keepalives are disabled).
    pub(super) fn arm_keepalive(&mut self, now: Instant) {
        if let Some(k) = self.config.keepalive_interval {
            let k = effective_keepalive(k, self.idle_timeout);
            self.timers.set(Timer::Keepalive, now + k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn the_default_keepalive_stays_under_the_default_idle_timeout() {
        assert_eq!(effective_keepalive(s(15), s(30)), Duration::from_secs(10));
    }

    #[test]
    fn a_peer_announcing_three_seconds_brings_the_keepalive_to_one_second() {
        assert_eq!(effective_keepalive(s(15), s(3)), s(1));
    }

    #[test]
    fn a_shorter_configured_keepalive_is_kept() {
        assert_eq!(
            effective_keepalive(Duration::from_millis(250), s(30)),
            Duration::from_millis(250)
        );
        assert_eq!(
            effective_keepalive(Duration::from_millis(20), Duration::from_millis(30)),
            Duration::from_millis(20)
        );
    }

    #[test]
    fn a_tiny_announced_idle_timeout_cannot_force_a_ping_flood() {
        assert_eq!(
            effective_keepalive(s(15), Duration::from_millis(1)),
            MIN_KEEPALIVE_INTERVAL
        );
    }
}
