//! Counters of a [`RendezvousServer`](super::RendezvousServer).

/// Counters, for operators and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Register requests accepted (including refreshes).
    pub registrations: u64,
    /// Introductions made.
    pub introductions: u64,
    /// Connect requests for an unknown peer.
    pub peer_unknown: u64,
    /// Requests refused by the per-client rate limit.
    pub rate_limited: u64,
    /// Requests refused by a per-source quota or rate (registrations,
    /// introductions, NAT tests).
    pub source_limited: u64,
    /// Datagrams relayed.
    pub relayed_datagrams: u64,
    /// Bytes relayed.
    pub relayed_bytes: u64,
    /// Relay datagrams dropped by the pair or client rate limit.
    pub relay_rate_limited: u64,
    /// Relay datagrams dropped: malformed, unknown session, unknown sender or
    /// absent peer, or a full queue.
    pub relay_dropped: u64,
    /// Relay datagrams dropped because their offered session could not be
    /// allotted (`max_relays` reached, or the sender's source at its quota).
    pub relay_refused: u64,
    /// Client connections closed for malformed messages or backlog overflow.
    pub clients_dropped: u64,
    /// NAT tests started.
    pub nat_tests: u64,
}
