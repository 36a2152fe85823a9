//! Counters of one connection, for applications and benchmarks.

use std::time::Duration;

/// What a connection did so far. Read with [`Endpoint::stats`](crate::Endpoint::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Datagrams sent (any kind).
    pub packets_sent: u64,
    /// Authenticated datagrams received.
    pub packets_received: u64,
    /// Packets declared lost.
    pub packets_lost: u64,
    /// Bytes sent on the wire.
    pub bytes_sent: u64,
    /// Bytes of authenticated datagrams received.
    pub bytes_received: u64,
    /// Stream bytes sent for the first time.
    pub stream_bytes_sent: u64,
    /// Stream bytes sent again after a loss or probe.
    pub stream_bytes_retransmitted: u64,
    /// Datagrams dropped because they failed to authenticate.
    pub dropped_unauthenticated: u64,
    /// Datagrams dropped as replays (packet number already seen or too old).
    pub dropped_replayed: u64,
    /// Authenticated packets dropped unacknowledged because their stream
    /// data lay beyond `max_reorder_distance` or `max_buffered_bytes`.
    pub dropped_over_limit: u64,
    /// Handshake or punch probes sent.
    pub handshake_probes_sent: u64,
    /// Probe timeouts that fired.
    pub pto_count: u64,
    /// Smoothed round-trip time.
    pub srtt: Duration,
    /// Round-trip time variance.
    pub rttvar: Duration,
    /// Smallest round-trip time seen.
    pub min_rtt: Duration,
    /// Congestion window in bytes.
    pub cwnd: u64,
    /// Bytes in flight.
    pub bytes_in_flight: u64,
}
