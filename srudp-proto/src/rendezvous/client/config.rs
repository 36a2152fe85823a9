//! What a [`RendezvousClient`](super::RendezvousClient) is configured with.

use std::net::SocketAddr;
use std::time::Duration;

use crate::rendezvous::message::{Name, MAX_GROUPS, MAX_MESSAGE_CANDIDATES};
use crate::rendezvous::GroupSecret;
use crate::stream_carrier::{FallbackConfig, StreamTransport};
use crate::{ConfigError, PublicKey};

/// Configuration of the rendezvous client: what an endpoint registered at a
/// rendezvous server uses to stay registered and reach peers by key or name.
///
/// [`ClientConfig::new`] takes the two values without a default, the
/// server's key and address; each other field's documentation gives its
/// default.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The rendezvous server's static key.
    pub server_key: PublicKey,
    /// The rendezvous server's address (also its relay).
    pub server_addr: SocketAddr,
    /// The name to register under, if any.
    /// Default: `None`.
    pub name: Option<Name>,
    /// Groups to join, each by its shared secret (at most 4): the client is
    /// told when peers that hold the same secret register or leave. The
    /// server sees only each group's id, never the secret; see
    /// [`GroupSecret`] and spec §11.3.
    /// Default: none.
    pub groups: Vec<GroupSecret>,
    /// This host's own addresses (LAN, IPv4 and IPv6) with the endpoint's
    /// port, offered to peers besides the address the server observes. At
    /// most 15.
    /// Default: none.
    pub host_candidates: Vec<SocketAddr>,
    /// A ticket (spec §4.9) that every connection opened by an introduction
    /// carries: this client proves it holds the secret, and a peer that
    /// does not prove it in return gets no connection. A listener that
    /// hands out a ticket sets it (and [`AcceptPolicy::Ticket`](crate::AcceptPolicy::Ticket)
    /// on its endpoint), and so does the ticket's holder when it connects:
    /// then the rendezvous server, which knows both keys, cannot connect to
    /// either in the other's name, nor can anyone else it introduces.
    /// Default: `None`.
    pub ticket: Option<crate::TicketSecret>,
    /// How often to refresh the registration (the server may ask for more often).
    /// Default: 15 s.
    pub refresh_interval: Duration,
    /// How long to wait for the server to answer a registration before
    /// taking the link for dead and reconnecting.
    /// Default: 5 s.
    pub reply_timeout: Duration,
    /// First delay before reconnecting to the server; doubles up to
    /// `reconnect_max` while attempts fail.
    /// Default: 1 s.
    pub reconnect_initial: Duration,
    /// Longest delay between two reconnection attempts.
    /// Default: 30 s.
    pub reconnect_max: Duration,
    /// How long a connect request waits for the server's answer.
    /// Default: 10 s.
    pub request_timeout: Duration,
    /// While something waits for the server (an answer to a connect
    /// request, the Introduce for a connection held for it, an introduced
    /// connection not connected yet, which may need the relay), the link is
    /// pinged this often: if our NAT gave us
    /// another port, the server follows us there at once (spec §6.7) instead
    /// of at the next keepalive, and what it was sending reaches us.
    /// Default: 1 s.
    pub waiting_ping_interval: Duration,
    /// When no direct path answered this long after punching started, punch
    /// through the server's relay too (spec §11.5).
    /// Default: 3 s.
    pub relay_fallback: Duration,
    /// How long after the coordinated start an introduced connection waits,
    /// at most, for the server's word that the peer opened its NAT toward
    /// us (PeerOpened, spec §11.4) before punching all the way anyway: only
    /// opening knocks (spec §4.4) go out until then. It bounds the wait for
    /// a peer or a server that predates PeerOpened.
    /// Default: 1 s.
    pub opened_wait: Duration,
    /// How long after the coordinated start an introduced connection keeps
    /// punching while the peer has not yet acted on its own Introduce (no
    /// PeerOpened: the server is still reaching it, say after the peer's NAT
    /// gave it another port). Once PeerOpened arrives the handshake timeout
    /// counts from then (from `opened_wait` after the start at the
    /// earliest), within this bound (spec §11.4).
    /// Default: 30 s.
    pub introduction_timeout: Duration,
    /// While a connection is relayed, probe the peer's direct candidates
    /// this often (spec §11.6).
    /// Default: 5 s.
    pub direct_probe_interval: Duration,
    /// Rounds of direct probes before giving up on a direct path.
    /// Default: 12.
    pub direct_probe_rounds: u32,
    /// How often a direct connection that has a relay checks that its path
    /// still answers; after two probe timeouts with nothing received it
    /// moves to the relay and asks the server for a fresh introduction, to
    /// punch a new direct path (spec §11.6).
    /// Default: 1 s.
    pub path_check_interval: Duration,
    /// Run a NAT behaviour test after the first registration (spec §11.7).
    /// Default: `true`.
    pub detect_nat: bool,
    /// How long the NAT test waits for the server's unsolicited probe.
    /// Default: 500 ms.
    pub nat_filter_wait: Duration,
    /// How long the NAT test waits for the server to see our probe.
    /// Default: 3 s.
    pub nat_probe_timeout: Duration,
    /// Connect requests outstanding at once.
    /// Default: 64.
    pub max_pending_requests: usize,
    /// Most bytes of messages held for the server (written into the
    /// connection and not yet acknowledged, plus queued beyond it).
    /// Default: 64 KiB.
    pub max_backlog: usize,
    /// How long an incoming connection whose initiator says it comes from an
    /// introduction waits for our own Introduce of that peer (lost, or late)
    /// before it is reported as an ordinary incoming connection (spec §11.4).
    /// Default: 10 s.
    pub introduction_hold: Duration,
    /// Incoming introduced connections held at once; beyond, they are
    /// reported as ordinary incoming connections at once (spec §11.4).
    /// Default: 32.
    pub max_held_introductions: usize,
    /// Seed of the client's randomness (reconnection jitter); `None` seeds
    /// from the OS.
    /// Default: `None`.
    pub rng_seed: Option<u64>,
    /// The server's stream carrier (its TCP address, spec §12), when it has
    /// one: the adapter falls back to it when UDP goes unanswered, and
    /// datagrams to `server_addr` then travel on it (spec §12.5). The
    /// client itself is unchanged: the carrier is a property of the path.
    /// Default: `None`.
    pub stream_carrier: Option<SocketAddr>,
    /// How the adapter opens the stream carrier: TLS, an HTTP proxy (spec
    /// §12.6).
    /// Default: [`StreamTransport::default`] (plain TCP, straight to the server).
    pub stream_transport: StreamTransport,
    /// When the adapter moves the server link to the stream carrier.
    /// Default: [`FallbackConfig::default`] (after 1 s without an answer
    /// over UDP; 5 s between attempts).
    pub stream_fallback: FallbackConfig,
}

impl ClientConfig {
    /// Defaults for a server with this key and address.
    pub fn new(server_key: PublicKey, server_addr: SocketAddr) -> ClientConfig {
        ClientConfig {
            server_key,
            server_addr,
            name: None,
            groups: Vec::new(),
            host_candidates: Vec::new(),
            ticket: None,
            refresh_interval: Duration::from_secs(15),
            reply_timeout: Duration::from_secs(5),
            reconnect_initial: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            waiting_ping_interval: Duration::from_secs(1),
            relay_fallback: Duration::from_secs(3),
            opened_wait: Duration::from_secs(1),
            introduction_timeout: Duration::from_secs(30),
            direct_probe_interval: Duration::from_secs(5),
            direct_probe_rounds: 12,
            path_check_interval: Duration::from_secs(1),
            detect_nat: true,
            nat_filter_wait: Duration::from_millis(500),
            nat_probe_timeout: Duration::from_secs(3),
            max_pending_requests: 64,
            max_backlog: 64 << 10,
            introduction_hold: Duration::from_secs(10),
            max_held_introductions: 32,
            rng_seed: None,
            stream_carrier: None,
            stream_transport: StreamTransport::default(),
            stream_fallback: FallbackConfig::default(),
        }
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError(m.to_string()));
        if self.groups.len() > MAX_GROUPS {
            return bad("at most 4 groups");
        }
        for (i, g) in self.groups.iter().enumerate() {
            if self.groups[..i].iter().any(|h| h.id() == g.id()) {
                return bad("the same group secret is listed twice");
            }
        }
        if self.host_candidates.len() > MAX_MESSAGE_CANDIDATES {
            return bad("at most 15 host candidates");
        }
        if self.refresh_interval.is_zero()
            || self.reply_timeout.is_zero()
            || self.reconnect_initial.is_zero()
            || self.request_timeout.is_zero()
            || self.waiting_ping_interval.is_zero()
            || self.direct_probe_interval.is_zero()
            || self.path_check_interval.is_zero()
        {
            return bad("refresh_interval, reply_timeout, reconnect_initial, request_timeout, waiting_ping_interval, direct_probe_interval and path_check_interval must be positive");
        }
        if self.reconnect_max < self.reconnect_initial {
            return bad("reconnect_max must be at least reconnect_initial");
        }
        if self.max_pending_requests == 0 {
            return bad("max_pending_requests must be at least 1");
        }
        if self.max_backlog < crate::rendezvous::message::MAX_FRAME_LEN {
            return bad("max_backlog must hold one message (1026 bytes)");
        }
        if self.stream_fallback.retry.is_zero() {
            return bad("stream_fallback.retry must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::fields_without_a_documented_default;

    #[test]
    fn every_client_field_documents_its_default() {
        let missing = fields_without_a_documented_default(
            include_str!("config.rs"),
            "ClientConfig",
            &["server_key", "server_addr"],
        );
        assert!(missing.is_empty(), "no `/// Default:` line: {missing:?}");
    }

    /// Each field's documentation states its default; this holds them to
    /// it (exhaustively: a new field does not compile here until checked).
    #[test]
    fn every_client_default_is_the_one_its_documentation_states() {
        let key = PublicKey([7; 32]);
        let addr: SocketAddr = "192.0.2.7:4433".parse().unwrap();
        let ClientConfig {
            server_key,
            server_addr,
            name,
            groups,
            host_candidates,
            ticket,
            refresh_interval,
            reply_timeout,
            reconnect_initial,
            reconnect_max,
            request_timeout,
            waiting_ping_interval,
            relay_fallback,
            opened_wait,
            introduction_timeout,
            direct_probe_interval,
            direct_probe_rounds,
            path_check_interval,
            detect_nat,
            nat_filter_wait,
            nat_probe_timeout,
            max_pending_requests,
            max_backlog,
            introduction_hold,
            max_held_introductions,
            rng_seed,
            stream_carrier,
            stream_transport,
            stream_fallback,
        } = ClientConfig::new(key, addr);
        assert_eq!(stream_carrier, None);
        assert_eq!(stream_transport, StreamTransport::default());
        assert!(!stream_transport.tls && stream_transport.proxy.is_none());
        assert_eq!(stream_fallback, FallbackConfig::default());
        assert_eq!(stream_fallback.delay, Duration::from_secs(1));
        assert_eq!(stream_fallback.retry, Duration::from_secs(5));
        assert_eq!((server_key, server_addr), (key, addr));
        assert_eq!(name, None);
        assert!(groups.is_empty());
        assert!(host_candidates.is_empty());
        assert!(ticket.is_none());
        assert_eq!(refresh_interval, Duration::from_secs(15));
        assert_eq!(reply_timeout, Duration::from_secs(5));
        assert_eq!(reconnect_initial, Duration::from_secs(1));
        assert_eq!(reconnect_max, Duration::from_secs(30));
        assert_eq!(request_timeout, Duration::from_secs(10));
        assert_eq!(waiting_ping_interval, Duration::from_secs(1));
        assert_eq!(relay_fallback, Duration::from_secs(3));
        assert_eq!(opened_wait, Duration::from_secs(1));
        assert_eq!(introduction_timeout, Duration::from_secs(30));
        assert_eq!(direct_probe_interval, Duration::from_secs(5));
        assert_eq!(direct_probe_rounds, 12);
        assert_eq!(path_check_interval, Duration::from_secs(1));
        assert!(detect_nat);
        assert_eq!(nat_filter_wait, Duration::from_millis(500));
        assert_eq!(nat_probe_timeout, Duration::from_secs(3));
        assert_eq!(max_pending_requests, 64);
        assert_eq!(max_backlog, 64 << 10);
        assert_eq!(introduction_hold, Duration::from_secs(10));
        assert_eq!(max_held_introductions, 32);
        assert_eq!(rng_seed, None);
    }
}
