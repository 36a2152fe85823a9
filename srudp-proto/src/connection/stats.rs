//! Counters of one connection, for applications and benchmarks, and the
//! bookkeeping of what limits the sender (spec §7.4).

use std::time::{Duration, Instant};

/// What a connection did so far: `Stream::stats` in the runtime adapters
/// (srudp-async, srudp-std), [`Endpoint::stats`](crate::Endpoint::stats)`(handle)`
/// on the sans-IO endpoint.
///
/// The `*_time` counters run up to the connection's latest input, timer or
/// `poll_transmit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Datagrams sent (any kind).
    pub packets_sent: u64,
    /// Authenticated datagrams received.
    pub packets_received: u64,
    /// Packets declared lost (packet or time threshold, spec §6.5).
    pub packets_lost: u64,
    /// Packets sent that carried stream data sent before (after a loss or a probe timeout).
    pub packets_retransmitted: u64,
    /// Packets declared lost that the peer acknowledged later: their data was
    /// retransmitted for nothing (reordering or a delay spike, not loss).
    pub packets_spuriously_lost: u64,
    /// Bytes sent on the wire.
    pub bytes_sent: u64,
    /// Bytes of authenticated datagrams received.
    pub bytes_received: u64,
    /// Stream bytes sent for the first time.
    pub stream_bytes_sent: u64,
    /// Stream bytes sent again after a loss or probe.
    pub stream_bytes_retransmitted: u64,
    /// Unacknowledged stream bytes sent again along with new data, ahead of
    /// any loss (redundant bundling, [`TransportConfig::bundle_unacked_bytes`](crate::TransportConfig::bundle_unacked_bytes)).
    pub stream_bytes_bundled: u64,
    /// Stream bytes the peer acknowledged, in order from the start: delivered.
    pub stream_bytes_acked: u64,
    /// Stream bytes received in order from the peer (ready for, or already
    /// given to, the application).
    pub stream_bytes_received: u64,
    /// Stream bytes received that had arrived before (the peer retransmitted needlessly).
    pub stream_bytes_duplicate: u64,
    /// Datagrams dropped because they failed to authenticate.
    pub dropped_unauthenticated: u64,
    /// Datagrams dropped as replays (packet number already seen or too old).
    pub dropped_replayed: u64,
    /// Authenticated packets left unacknowledged because some of their
    /// stream data lay beyond `max_reorder_distance` or `max_buffered_bytes`
    /// (that data was discarded, the packet's other frames were used).
    pub dropped_over_limit: u64,
    /// HandshakeInits sent (punch probes to candidates that answered or
    /// were trusted).
    pub handshake_probes_sent: u64,
    /// Knocks sent to candidates that had not answered yet (spec §4.4).
    pub knocks_sent: u64,
    /// Probe timeouts that fired.
    pub pto_count: u64,
    /// Ack-eliciting packets the peer acknowledged (each counted once).
    pub packets_acked: u64,
    /// Ranges in the ACK frames received (spec §9.4.3).
    pub ack_ranges_received: u64,
    /// The work acknowledgments and loss detection cost, counted: ranges
    /// located (one binary search each) plus sent-packet records looked at.
    /// Bounded by a small multiple of `packets_acked + packets_lost +
    /// ack_ranges_received`, whatever ranges the peer sends (spec §10.3).
    pub ack_work: u64,
    /// Slots the sent-packet record holds now: packets in flight, plus the
    /// holes behind the oldest one (at most 16 384, spec §10.3).
    pub sent_records: u64,
    /// Bytes the sent-packet record holds allocated (at most 2.125 MiB).
    pub sent_record_bytes: u64,
    /// Window reductions (one per recovery episode).
    pub congestion_events: u64,
    /// Window reductions undone because all their losses proved spurious.
    pub congestion_events_undone: u64,
    /// Times persistent congestion collapsed the window (RFC 9002 §7.6).
    pub persistent_congestion_events: u64,
    /// Path MTU probes sent (spec §6.9).
    pub mtu_probes_sent: u64,
    /// Path MTU probes declared lost: candidate sizes the path may not
    /// carry (not congestion).
    pub mtu_probes_lost: u64,
    /// Times packets larger than 1200 bytes stopped passing and the size
    /// fell back to 1200 (spec §6.9).
    pub mtu_black_holes: u64,
    /// The largest Data packet the current path takes now, in bytes: 1200
    /// until path MTU discovery finds room for more (spec §6.9).
    pub max_datagram_size: u64,
    /// Smoothed round-trip time.
    pub srtt: Duration,
    /// Round-trip time variance.
    pub rttvar: Duration,
    /// Smallest round-trip time seen.
    pub min_rtt: Duration,
    /// Congestion window in bytes.
    pub cwnd: u64,
    /// Slow-start threshold in bytes (`u64::MAX` before the first loss).
    pub ssthresh: u64,
    /// Bytes in flight.
    pub bytes_in_flight: u64,
    /// The flow-control limit the peer gave us (absolute stream offset).
    pub peer_max_data: u64,
    /// Our current receive window (grows by auto-tuning up to the configured cap).
    pub receive_window: u64,
    /// Time the sender had nothing to send (the application did not write enough).
    pub app_limited_time: Duration,
    /// Time the sender had data but the congestion window was full.
    pub cwnd_limited_time: Duration,
    /// Time the sender had data and window but waited for the pacer.
    pub pacing_limited_time: Duration,
    /// Time the sender had data but the peer's flow-control limit held it back.
    pub flow_limited_time: Duration,
}

/// Why the sender is not sending right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendLimit {
    App,
    Cwnd,
    Pacing,
    Flow,
}

/// Accumulates the time spent in each [`SendLimit`]: the limit seen when
/// `poll_transmit` last stopped holds until it stops again.
#[derive(Debug, Default, Clone)]
pub(crate) struct LimitClock {
    current: Option<(SendLimit, Instant)>,
}

impl LimitClock {
    /// The sender stopped at `now` because of `limit`.
    pub(crate) fn set(&mut self, now: Instant, limit: SendLimit, stats: &mut ConnectionStats) {
        self.settle(now, stats);
        self.current = Some((limit, now));
    }

    /// Stops counting (the connection is closing).
    pub(crate) fn stop(&mut self, now: Instant, stats: &mut ConnectionStats) {
        self.settle(now, stats);
        self.current = None;
    }

    fn settle(&mut self, now: Instant, stats: &mut ConnectionStats) {
        if let Some((limit, since)) = self.current {
            let elapsed = now.saturating_duration_since(since);
            let counter = match limit {
                SendLimit::App => &mut stats.app_limited_time,
                SendLimit::Cwnd => &mut stats.cwnd_limited_time,
                SendLimit::Pacing => &mut stats.pacing_limited_time,
                SendLimit::Flow => &mut stats.flow_limited_time,
            };
            *counter += elapsed;
            self.current = Some((limit, now));
        }
    }

    /// The counters as of `now`, including the limit still in force.
    pub(crate) fn snapshot(&self, now: Instant, stats: &ConnectionStats) -> ConnectionStats {
        let mut s = stats.clone();
        let mut clock = self.clone();
        clock.settle(now, &mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_collects_the_time_until_the_next_one() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut stats = ConnectionStats::default();
        let mut clock = LimitClock::default();
        clock.set(t0, SendLimit::Pacing, &mut stats);
        clock.set(t0 + 3 * ms, SendLimit::Pacing, &mut stats);
        clock.set(t0 + 5 * ms, SendLimit::Cwnd, &mut stats);
        clock.set(t0 + 9 * ms, SendLimit::App, &mut stats);
        let s = clock.snapshot(t0 + 20 * ms, &stats);
        assert_eq!(s.pacing_limited_time, 5 * ms);
        assert_eq!(s.cwnd_limited_time, 4 * ms);
        assert_eq!(s.app_limited_time, 11 * ms);
        clock.set(t0 + 21 * ms, SendLimit::Flow, &mut stats);
        clock.stop(t0 + 30 * ms, &mut stats);
        assert_eq!(stats.flow_limited_time, 9 * ms);
        assert_eq!(clock.snapshot(t0 + 99 * ms, &stats), stats);
    }
}
