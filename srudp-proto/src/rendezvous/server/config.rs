//! What a [`RendezvousServer`](super::RendezvousServer) is configured with.

use std::net::SocketAddr;
use std::time::Duration;

use crate::rendezvous::RateLimit;
use crate::wire::MAX_DATAGRAM_SIZE;
use crate::ConfigError;

/// Configuration of a rendezvous and relay server. Each field's
/// documentation gives its default ([`ServerConfig::default`]).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How often clients should refresh their registration (told to them).
    /// Default: 15 s.
    pub refresh_interval: Duration,
    /// A registration not refreshed for this long is dropped.
    /// Default: 45 s.
    pub registration_expiry: Duration,
    /// Most registrations held.
    /// Default: 10 000.
    pub max_registrations: usize,
    /// Most registrations held for clients from one source (an IPv4
    /// address or an IPv6 /64): one host with many keys cannot fill the
    /// server.
    /// Default: 64.
    pub max_registrations_per_source: usize,
    /// Most members of one group.
    /// Default: 256.
    pub max_group_members: usize,
    /// Most relay sessions allotted at once (one per pair that relays).
    /// Default: 1024.
    pub max_relays: usize,
    /// Most relay sessions allotted for introductions one source asked for
    /// (the caller pays for the relays of the pairs it asked to meet).
    /// Default: 16.
    pub max_relays_per_source: usize,
    /// Most relay sessions offered by introductions and not yet used.
    /// Default: 16 384.
    pub max_relay_offers: usize,
    /// Most relay sessions offered by introductions one source asked for.
    /// Default: 256.
    pub max_relay_offers_per_source: usize,
    /// A relay session (offered or allotted) unused for this long is released.
    /// Default: 30 s.
    pub relay_idle_timeout: Duration,
    /// Bytes per second one pair may relay (both directions together).
    /// Default: 2 MiB/s, burst 512 KiB.
    pub relay_pair_rate: RateLimit,
    /// Bytes per second one client may relay (all its pairs together).
    /// Default: 4 MiB/s, burst 1 MiB.
    pub relay_client_rate: RateLimit,
    /// Requests (Register, Connect, NatTest) per second from one client.
    /// Default: 5 per second, burst 20.
    pub request_rate: RateLimit,
    /// Introductions (Connect requests) per second from one source, all its
    /// clients together.
    /// Default: 10 per second, burst 40.
    pub introduction_rate_per_source: RateLimit,
    /// NAT tests per second from one source, all its clients together.
    /// Default: 2 per second, burst 10.
    pub nat_test_rate_per_source: RateLimit,
    /// Slack added to the coordinated start of an introduction (spec §11.4).
    /// Default: 30 ms.
    pub start_margin: Duration,
    /// A second socket address for NAT behaviour tests (spec §11.7), on a
    /// different port and ideally a different IP than the main socket. The
    /// runtime adapters' servers bind it themselves; on the sans-IO
    /// [`RendezvousServer`](super::RendezvousServer), bind it and feed what
    /// arrives there to its `handle_alt_datagram`.
    /// Default: `None`.
    pub alt_address: Option<SocketAddr>,
    /// How long a NAT test waits for the client's probe.
    /// Default: 10 s.
    pub nat_test_lifetime: Duration,
    /// Most bytes of messages held for one client — written into its
    /// connection and not yet acknowledged, plus queued beyond it — before the
    /// server gives up on that client (closes it, code 3).
    /// Default: 256 KiB.
    pub max_backlog: usize,
    /// Relayed datagrams queued for sending at once; more are dropped.
    /// Default: 1024.
    pub max_relay_queue: usize,
    /// Seed of the server's randomness (relay sessions, NAT tokens); `None`
    /// seeds from the OS.
    /// Default: `None`.
    pub rng_seed: Option<u64>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            refresh_interval: Duration::from_secs(15),
            registration_expiry: Duration::from_secs(45),
            max_registrations: 10_000,
            max_registrations_per_source: 64,
            max_group_members: 256,
            max_relays: 1024,
            max_relays_per_source: 16,
            max_relay_offers: 16 * 1024,
            max_relay_offers_per_source: 256,
            relay_idle_timeout: Duration::from_secs(30),
            relay_pair_rate: RateLimit::new(2 << 20, 512 << 10),
            relay_client_rate: RateLimit::new(4 << 20, 1 << 20),
            request_rate: RateLimit::new(5, 20),
            introduction_rate_per_source: RateLimit::new(10, 40),
            nat_test_rate_per_source: RateLimit::new(2, 10),
            start_margin: Duration::from_millis(30),
            alt_address: None,
            nat_test_lifetime: Duration::from_secs(10),
            // Room for the largest burst an honest Register causes: one
            // PeerJoined per member of each of its 4 groups (168 kB with
            // 256-member groups), and far below the 4 MiB send buffer.
            max_backlog: 256 << 10,
            max_relay_queue: 1024,
            rng_seed: None,
        }
    }
}

impl ServerConfig {
    /// The most message bytes one Register can make the server send its
    /// client at once: a PeerJoined per other member of each of its groups,
    /// and the answer.
    pub fn largest_register_burst(&self) -> usize {
        use crate::rendezvous::message::{MAX_FRAME_LEN, MAX_GROUPS, MAX_NAME_LEN};
        // length, type, group id, key, name, proof.
        const PEER_JOINED: usize = 2 + 1 + 32 + 32 + 1 + MAX_NAME_LEN + 32;
        MAX_GROUPS * self.max_group_members.saturating_sub(1) * PEER_JOINED + MAX_FRAME_LEN
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError(m.to_string()));
        if self.refresh_interval.is_zero() || self.refresh_interval.as_secs() > u64::from(u16::MAX)
        {
            return bad("refresh_interval must be within 1 ms..=65535 s");
        }
        if self.registration_expiry <= self.refresh_interval
            || self.registration_expiry.as_secs() > u64::from(u16::MAX)
        {
            return bad("registration_expiry must exceed refresh_interval and be at most 65535 s");
        }
        if self.max_registrations == 0
            || self.max_registrations_per_source == 0
            || self.max_group_members == 0
        {
            return bad("max_registrations, max_registrations_per_source and max_group_members must be at least 1");
        }
        if self.introduction_rate_per_source.burst == 0 || self.nat_test_rate_per_source.burst == 0
        {
            return bad("per-source rate bursts must be at least 1");
        }
        if self.relay_pair_rate.burst < MAX_DATAGRAM_SIZE as u64
            || self.relay_client_rate.burst < MAX_DATAGRAM_SIZE as u64
        {
            return bad("relay bursts must hold one datagram (1200 bytes)");
        }
        if self.request_rate.burst == 0 {
            return bad("request_rate.burst must be at least 1");
        }
        if self.start_margin > Duration::from_secs(10) {
            return bad("start_margin must be at most 10 s");
        }
        if self.max_backlog < self.largest_register_burst() {
            return bad("max_backlog must hold the notices one Register can cause (4 groups × max_group_members PeerJoined, 164 bytes each, plus one message)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::fields_without_a_documented_default;

    #[test]
    fn every_server_field_documents_its_default() {
        let missing =
            fields_without_a_documented_default(include_str!("config.rs"), "ServerConfig", &[]);
        assert!(missing.is_empty(), "no `/// Default:` line: {missing:?}");
    }

    /// Each field's documentation states its default; this holds them to
    /// it (exhaustively: a new field does not compile here until checked).
    #[test]
    fn every_server_default_is_the_one_its_documentation_states() {
        let ServerConfig {
            refresh_interval,
            registration_expiry,
            max_registrations,
            max_registrations_per_source,
            max_group_members,
            max_relays,
            max_relays_per_source,
            max_relay_offers,
            max_relay_offers_per_source,
            relay_idle_timeout,
            relay_pair_rate,
            relay_client_rate,
            request_rate,
            introduction_rate_per_source,
            nat_test_rate_per_source,
            start_margin,
            alt_address,
            nat_test_lifetime,
            max_backlog,
            max_relay_queue,
            rng_seed,
        } = ServerConfig::default();
        assert_eq!(refresh_interval, Duration::from_secs(15));
        assert_eq!(registration_expiry, Duration::from_secs(45));
        assert_eq!(max_registrations, 10_000);
        assert_eq!(max_registrations_per_source, 64);
        assert_eq!(max_group_members, 256);
        assert_eq!(max_relays, 1024);
        assert_eq!(max_relays_per_source, 16);
        assert_eq!(max_relay_offers, 16_384);
        assert_eq!(max_relay_offers_per_source, 256);
        assert_eq!(relay_idle_timeout, Duration::from_secs(30));
        assert_eq!(relay_pair_rate, RateLimit::new(2 << 20, 512 << 10));
        assert_eq!(relay_client_rate, RateLimit::new(4 << 20, 1 << 20));
        assert_eq!(request_rate, RateLimit::new(5, 20));
        assert_eq!(introduction_rate_per_source, RateLimit::new(10, 40));
        assert_eq!(nat_test_rate_per_source, RateLimit::new(2, 10));
        assert_eq!(start_margin, Duration::from_millis(30));
        assert_eq!(alt_address, None);
        assert_eq!(nat_test_lifetime, Duration::from_secs(10));
        assert_eq!(max_backlog, 256 << 10);
        assert_eq!(max_relay_queue, 1024);
        assert_eq!(rng_seed, None);
    }

    #[test]
    fn the_backlog_holds_the_notices_of_any_honest_register() {
        let config = ServerConfig::default();
        assert!(config.validate().is_ok());
        // 4 groups of 256: 255 PeerJoined of at most 164 bytes each.
        assert_eq!(config.largest_register_burst(), 4 * 255 * 164 + 1026);
        assert!(config.largest_register_burst() <= config.max_backlog);
        let small = ServerConfig {
            max_backlog: 64 << 10,
            ..ServerConfig::default()
        };
        assert!(small.validate().is_err());
        let small_groups = ServerConfig {
            max_backlog: 64 << 10,
            max_group_members: 64,
            ..ServerConfig::default()
        };
        assert!(small_groups.validate().is_ok());
    }
}
