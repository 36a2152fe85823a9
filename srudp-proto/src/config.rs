//! Endpoint and connection configuration, built once and shared (`Arc`).

use std::sync::Arc;
use std::time::Duration;

use crate::congestion::{ControllerFactory, NewRenoFactory};
use crate::crypto::HandshakePattern;
use crate::keys::{Keypair, PublicKey};

/// Per-connection protocol parameters.
///
/// Defaults suit bulk transfer over the Internet. Every field is validated by
/// [`TransportConfig::validate`] when an endpoint is created.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Close the connection after this long without receiving an authenticated packet.
    pub idle_timeout: Duration,
    /// Send a PING after this long without sending anything ack-eliciting,
    /// which keeps NAT mappings alive. `None` disables keepalives.
    pub keepalive_interval: Option<Duration>,
    /// Give up a handshake (and its hole punching) after this long.
    pub handshake_timeout: Duration,
    /// First gap between two rounds of handshake/punch probes; doubles each round.
    pub handshake_retry_initial: Duration,
    /// Largest gap between two rounds of handshake/punch probes.
    pub handshake_retry_max: Duration,
    /// Gap between two probes of one round, sent to different candidate addresses.
    pub punch_probe_spacing: Duration,
    /// RTT assumed before the first sample (RFC 9002 uses 333 ms).
    pub initial_rtt: Duration,
    /// How long a receiver may delay an acknowledgment (advertised to the peer).
    pub max_ack_delay: Duration,
    /// Acknowledge at once after this many ack-eliciting packets.
    pub ack_eliciting_threshold: u32,
    /// Packets this far below the largest acknowledged are lost (RFC 9002: 3).
    pub packet_threshold: u64,
    /// A packet sent this many RTTs before the newest acknowledged one is lost (RFC 9002: 9/8).
    pub time_threshold: f64,
    /// Timer granularity (RFC 9002: 1 ms).
    pub granularity: Duration,
    /// Longest gap between two probe timeouts after exponential backoff, so a
    /// long outage still sees several probes before the idle timeout.
    pub max_probe_timeout: Duration,
    /// Bytes the application may have written but not yet had acknowledged.
    pub send_buffer: u64,
    /// Bytes the peer may send beyond what the application has read (flow control window).
    pub receive_window: u64,
    /// Most stream bytes the receiver buffers beyond the first byte still
    /// missing (spec §6.3). An authenticated packet carrying data further
    /// ahead is dropped unacknowledged, as if lost; the peer resends it.
    pub max_reorder_distance: u64,
    /// Most memory the receiving stream may hold: unread and out-of-order
    /// bytes, plus [`FRAGMENT_OVERHEAD`](crate::connection::FRAGMENT_OVERHEAD)
    /// bytes of bookkeeping per out-of-order fragment (spec §6.3). Out-of-order
    /// data beyond it is dropped like data beyond `max_reorder_distance`.
    /// Must be at least `receive_window`, so in-order data always fits.
    pub max_buffered_bytes: u64,
    /// Builds the congestion controller of each connection.
    pub congestion: Arc<dyn ControllerFactory>,
    /// How long a closing connection lingers to answer retransmissions, in PTOs.
    pub close_linger_ptos: u32,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            idle_timeout: Duration::from_secs(30),
            keepalive_interval: Some(Duration::from_secs(15)),
            handshake_timeout: Duration::from_secs(10),
            handshake_retry_initial: Duration::from_millis(250),
            handshake_retry_max: Duration::from_secs(1),
            punch_probe_spacing: Duration::from_millis(2),
            initial_rtt: Duration::from_millis(333),
            max_ack_delay: Duration::from_millis(25),
            ack_eliciting_threshold: 2,
            packet_threshold: 3,
            time_threshold: 9.0 / 8.0,
            granularity: Duration::from_millis(1),
            max_probe_timeout: Duration::from_secs(4),
            send_buffer: 4 << 20,
            receive_window: 4 << 20,
            max_reorder_distance: 4 << 20,
            // The window plus room for the bookkeeping of 8192 fragments:
            // twice what a full window of full-size out-of-order frames needs.
            max_buffered_bytes: (4 << 20) + (512 << 10),
            congestion: Arc::new(NewRenoFactory::default()),
            close_linger_ptos: 3,
        }
    }
}

/// A configuration value is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl TransportConfig {
    /// Checks that every value is usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError(m.to_string()));
        if self.idle_timeout < Duration::from_millis(10) {
            return bad("idle_timeout must be at least 10 ms");
        }
        if let Some(k) = self.keepalive_interval {
            if k.is_zero() {
                return bad("keepalive_interval must not be zero (use None to disable)");
            }
        }
        if self.handshake_timeout.is_zero() || self.handshake_retry_initial.is_zero() {
            return bad("handshake_timeout and handshake_retry_initial must be positive");
        }
        if self.handshake_retry_max < self.handshake_retry_initial {
            return bad("handshake_retry_max must be at least handshake_retry_initial");
        }
        if self.initial_rtt.is_zero()
            || self.granularity.is_zero()
            || self.max_probe_timeout.is_zero()
        {
            return bad("initial_rtt, granularity and max_probe_timeout must be positive");
        }
        if self.max_ack_delay > Duration::from_secs(16) {
            return bad("max_ack_delay must be at most 16 s");
        }
        if self.ack_eliciting_threshold == 0 || self.packet_threshold == 0 {
            return bad("ack_eliciting_threshold and packet_threshold must be at least 1");
        }
        if !(self.time_threshold >= 1.0 && self.time_threshold <= 4.0) {
            return bad("time_threshold must be within 1.0..=4.0");
        }
        if self.send_buffer < crate::wire::MAX_STREAM_PAYLOAD as u64 {
            return bad("send_buffer must hold at least one frame (1024 bytes)");
        }
        if self.receive_window < crate::wire::MAX_STREAM_PAYLOAD as u64
            || self.receive_window > (1 << 40)
        {
            return bad("receive_window must be within 1024 bytes..=1 TiB");
        }
        if self.max_reorder_distance < crate::wire::MAX_STREAM_PAYLOAD as u64 {
            return bad("max_reorder_distance must hold at least one frame (1024 bytes)");
        }
        if self.max_buffered_bytes < self.receive_window {
            return bad("max_buffered_bytes must be at least receive_window");
        }
        Ok(())
    }
}

/// Who may open a connection to this endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptPolicy {
    /// Refuse every incoming handshake (a client-only endpoint). Refused
    /// initiators get an authenticated refusal, not silence.
    RefuseAll,
    /// Accept any initiator that knows our public key (NK or IK).
    AcceptAll,
    /// Accept only IK initiators whose static key is listed.
    AcceptKeys(Vec<PublicKey>),
}

/// When a responder demands a cookie before it does any handshake work
/// (spec §4.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieMode {
    /// While under load: when initiations arrive faster than half the
    /// handshake capacity, or half the pending-handshake slots are taken.
    #[default]
    UnderLoad,
    /// For every initiation: one more round trip per handshake, and no
    /// handshake work for a source that has not proven it receives.
    Always,
    /// Never; initiations beyond the capacity are simply dropped. For
    /// measurements only: a flood of spoofed initiations then crowds out
    /// genuine ones.
    Never,
}

/// Configuration of an [`Endpoint`](crate::Endpoint).
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// This endpoint's static identity.
    pub keypair: Keypair,
    /// Seed of the endpoint's random generator; `None` seeds it from the OS.
    /// Fix it in tests: one seed, one trace.
    pub rng_seed: Option<u64>,
    /// Who may connect to us.
    pub accept: AcceptPolicy,
    /// Parameters of every connection of this endpoint.
    pub transport: Arc<TransportConfig>,
    /// Handshake pattern used by [`Endpoint::connect`](crate::Endpoint::connect)
    /// unless the request says otherwise.
    pub default_pattern: HandshakePattern,
    /// Most connections (in any state) this endpoint holds at once.
    pub max_connections: usize,
    /// Most responder handshakes not yet confirmed by the initiator.
    pub max_pending_handshakes: usize,
    /// Handshake capacity: most initiations per second this endpoint runs
    /// through Noise (its Diffie-Hellman work) as a responder, with a burst
    /// of one second's worth. More are dropped (spec §4.8).
    pub handshake_rate: u32,
    /// When to demand a cookie from initiators.
    pub cookie_mode: CookieMode,
}

impl EndpointConfig {
    /// A configuration with defaults for `keypair`, accepting every initiator.
    pub fn new(keypair: Keypair) -> Self {
        EndpointConfig {
            keypair,
            rng_seed: None,
            accept: AcceptPolicy::AcceptAll,
            transport: Arc::new(TransportConfig::default()),
            default_pattern: HandshakePattern::NK,
            max_connections: 100_000,
            max_pending_handshakes: 4096,
            handshake_rate: 1000,
            cookie_mode: CookieMode::UnderLoad,
        }
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.transport.validate()?;
        if self.max_connections == 0 {
            return Err(ConfigError("max_connections must be at least 1".into()));
        }
        if self.handshake_rate == 0 {
            return Err(ConfigError("handshake_rate must be at least 1".into()));
        }
        Ok(())
    }
}
