//! Telling that a gateway restarted (and so lost our mapping) from the
//! epoch its PCP and NAT-PMP messages carry: the seconds since its mapping
//! state began. Between two messages, that count must advance about as our
//! own clock did; if it goes back, or drifts too far, the gateway's state
//! is new and the mapping has to be requested again.
//!
//! The tolerances are the RFCs':
//! - PCP (RFC 6887 §8.5): the epoch may go back by at most one second
//!   (reordered answers); then with `client_delta` our elapsed time and
//!   `server_delta` the epoch's, the state is lost if
//!   `client_delta + 2 < server_delta - server_delta / 16` or
//!   `server_delta + 2 < client_delta - client_delta / 16`.
//! - NAT-PMP (RFC 6886 §3.6): the state is lost if the epoch is more than
//!   two seconds below the last one plus 7/8 of our elapsed time.

use std::time::Instant;

/// Which RFC's rule judges an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EpochRule {
    /// RFC 6887 §8.5.
    Pcp,
    /// RFC 6886 §3.6.
    NatPmp,
}

/// What an epoch says of the gateway's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EpochCheck {
    /// The first epoch heard from this gateway.
    First,
    /// The gateway's state continues: our mapping is in force.
    Continuous,
    /// The gateway's state began anew (it restarted): our mapping is lost.
    Reset,
}

/// The last epoch heard from one gateway, and when.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GatewayEpoch {
    last: Option<(Instant, u32)>,
}

impl GatewayEpoch {
    /// Judges `epoch`, received at `now`, by `rule` against the last one,
    /// and keeps it as the last one (whatever the verdict: after a reset,
    /// the new state is the one to follow).
    pub(crate) fn observe(&mut self, now: Instant, epoch: u32, rule: EpochRule) -> EpochCheck {
        let Some((then, previous)) = self.last.replace((now, epoch)) else {
            return EpochCheck::First;
        };
        // In milliseconds, so that sub-second client time counts.
        let client_delta =
            i64::try_from(now.saturating_duration_since(then).as_millis()).unwrap_or(i64::MAX / 2);
        let server_delta = (i64::from(epoch) - i64::from(previous)) * 1000;
        let lost = match rule {
            EpochRule::Pcp => {
                server_delta < -1000
                    || client_delta + 2000 < server_delta - server_delta / 16
                    || server_delta + 2000 < client_delta - client_delta / 16
            }
            EpochRule::NatPmp => server_delta + 2000 < client_delta * 7 / 8,
        };
        if lost {
            EpochCheck::Reset
        } else {
            EpochCheck::Continuous
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Two epochs `seconds` apart on our clock: the verdict on the second.
    fn judge(rule: EpochRule, first: u32, seconds: f64, second: u32) -> EpochCheck {
        let t0 = Instant::now();
        let mut e = GatewayEpoch::default();
        assert_eq!(e.observe(t0, first, rule), EpochCheck::First);
        e.observe(t0 + Duration::from_secs_f64(seconds), second, rule)
    }

    use EpochCheck::{Continuous, Reset};
    use EpochRule::{NatPmp, Pcp};

    #[test]
    fn pcp_an_epoch_that_keeps_time_is_continuous() {
        assert_eq!(judge(Pcp, 1000, 60.0, 1060), Continuous);
        // The epoch counts whole seconds: 59.9 s may read as 59 or 60.
        assert_eq!(judge(Pcp, 1000, 59.9, 1059), Continuous);
        assert_eq!(judge(Pcp, 1000, 0.2, 1000), Continuous);
    }

    #[test]
    fn pcp_the_epoch_may_go_back_one_second_but_not_two() {
        // Reordered answers: one second back is tolerated…
        assert_eq!(judge(Pcp, 1000, 0.5, 999), Continuous);
        // …two are a restart, however little time passed.
        assert_eq!(judge(Pcp, 1000, 0.5, 998), Reset);
        // A restarted gateway counts from 0 again.
        assert_eq!(judge(Pcp, 1000, 30.0, 3), Reset);
    }

    #[test]
    fn pcp_an_epoch_that_lags_our_clock_beyond_the_tolerance_is_a_reset() {
        // client_delta 3600 s: the epoch must advance at least
        // 3600 - 3600/16 - 2 = 3373 s.
        assert_eq!(judge(Pcp, 0, 3600.0, 3373), Continuous);
        assert_eq!(judge(Pcp, 0, 3600.0, 3372), Reset);
        // Our clock 100 s, the server's 10 s: it restarted 10 s ago while
        // its epoch was still below ours — only the lag tells.
        assert_eq!(judge(Pcp, 5, 100.0, 15), Reset);
    }

    #[test]
    fn pcp_an_epoch_that_runs_ahead_of_our_clock_beyond_the_tolerance_is_a_reset() {
        // client_delta 60 s: server_delta - server_delta/16 may be at most
        // 62, so a server_delta of 66 (66 - 4 = 62) passes, 67 does not.
        assert_eq!(judge(Pcp, 100, 60.0, 166), Continuous);
        assert_eq!(judge(Pcp, 100, 60.0, 167), Reset);
    }

    #[test]
    fn nat_pmp_the_epoch_must_reach_seven_eighths_of_our_time_less_two_seconds() {
        // 80 s on our clock: at least 1000 + 70 - 2 = 1068.
        assert_eq!(judge(NatPmp, 1000, 80.0, 1068), Continuous);
        assert_eq!(judge(NatPmp, 1000, 80.0, 1067), Reset);
        // 1 s: at least 1000 + 0.875 - 2 = 998.875.
        assert_eq!(judge(NatPmp, 1000, 1.0, 999), Continuous);
        assert_eq!(judge(NatPmp, 1000, 1.0, 998), Reset);
        // RFC 6886 says nothing of an epoch running ahead.
        assert_eq!(judge(NatPmp, 1000, 80.0, 5000), Continuous);
        assert_eq!(judge(NatPmp, 1000, 80.0, 4), Reset);
    }

    #[test]
    fn after_a_reset_the_new_epoch_is_the_one_followed() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut e = GatewayEpoch::default();
        assert_eq!(e.observe(t0, 500, Pcp), EpochCheck::First);
        assert_eq!(e.observe(t0 + s(10), 510, Pcp), Continuous);
        assert_eq!(e.observe(t0 + s(20), 2, Pcp), Reset);
        assert_eq!(e.observe(t0 + s(30), 12, Pcp), Continuous);
        // An announcement repeated with the same epoch a second later is
        // no new reset.
        assert_eq!(e.observe(t0 + s(31), 12, NatPmp), Continuous);
    }
}
