//! Endpoint and connection configuration, built once and shared (`Arc`).

use std::sync::Arc;
use std::time::Duration;

use crate::congestion::{ControllerFactory, CubicFactory};
use crate::crypto::{Cipher, HandshakePattern};
use crate::keys::{Keypair, PublicKey};

/// Per-connection protocol parameters.
///
/// Two profiles are provided; start from one and adjust:
///
/// * [`TransportConfig::default`] — **throughput**: bulk transfer over the
///   Internet. CUBIC with HyStart++, pacing, delayed acknowledgments (every
///   second packet or 25 ms), RFC 9002 loss thresholds (3 packets, 9/8 RTT).
/// * [`TransportConfig::low_latency`] — **interactive** traffic (games,
///   remote shells, chat): small messages that must arrive soon, rather than
///   many bytes per second. See its documentation for the trade-offs.
///
/// Every field is validated by [`TransportConfig::validate`] when an
/// endpoint is created. Each field's documentation gives its default (the
/// throughput profile's value).
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Close the connection after this long without receiving an authenticated packet.
    /// Default: 30 s.
    pub idle_timeout: Duration,
    /// Send a PING after this long without sending anything ack-eliciting,
    /// which keeps NAT mappings alive. A connection uses at most a third of
    /// its negotiated idle timeout (the smaller of both sides', spec §6.8),
    /// so the default 15 s becomes 10 s against a 30 s idle timeout.
    /// `None` disables keepalives.
    /// Default: `Some(15 s)`.
    pub keepalive_interval: Option<Duration>,
    /// Give up a handshake (and its hole punching) after this long.
    /// Default: 10 s.
    pub handshake_timeout: Duration,
    /// First gap between two rounds of handshake/punch probes; doubles each round.
    /// Default: 250 ms.
    pub handshake_retry_initial: Duration,
    /// Largest gap between two rounds of handshake/punch probes.
    /// Default: 1 s.
    pub handshake_retry_max: Duration,
    /// Gap between two probes of one round, sent to different candidate addresses.
    /// Default: 2 ms.
    pub punch_probe_spacing: Duration,
    /// Hop limit (IPv4 TTL, IPv6 hop limit) of the **opening** knocks: the
    /// ones sent ahead of a coordinated start (spec §4.4). Enough to open
    /// our own NAT's mapping toward the peer, not enough to reach the
    /// peer's NAT, so they never leave a conntrack entry there that would
    /// make its masquerade pick another port for the peer. `None` sends
    /// them with the socket's own hop limit.
    /// Default: `Some(2)` (our host, then our NAT router).
    pub punch_opening_hop_limit: Option<u8>,
    /// RTT assumed before the first sample (RFC 9002 uses 333 ms).
    /// Default: 333 ms.
    pub initial_rtt: Duration,
    /// How long a receiver may delay an acknowledgment (advertised to the peer).
    /// Default: 25 ms.
    pub max_ack_delay: Duration,
    /// Acknowledge at once after this many ack-eliciting packets, unless
    /// the peer asks for another number (ACK_FREQUENCY, spec §6.2).
    /// Default: 2.
    pub ack_eliciting_threshold: u32,
    /// As a sender, the most ack-eliciting packets we ask the peer to wait
    /// for before acknowledging (ACK_FREQUENCY, spec §6.2): we ask for one
    /// ACK per eighth of the congestion window, at least 2 and at most
    /// this, or one per quarter RTT. Fewer ACKs cost both sides less CPU
    /// per byte in bulk transfer. 0 sends no request (the peer then uses its
    /// own `ack_eliciting_threshold`). At most 255.
    /// Default: 10.
    pub ack_frequency_threshold: u32,
    /// Packets this far below the largest acknowledged are lost (RFC 9002: 3).
    /// Default: 3.
    pub packet_threshold: u64,
    /// A packet sent this many RTTs before the newest acknowledged one is lost (RFC 9002: 9/8).
    /// Default: 1.125 (9/8).
    pub time_threshold: f64,
    /// Timer granularity (RFC 9002: 1 ms).
    /// Default: 1 ms.
    pub granularity: Duration,
    /// Longest gap between two probe timeouts after exponential backoff, so a
    /// long outage still sees several probes before the idle timeout.
    /// Default: 4 s.
    pub max_probe_timeout: Duration,
    /// Bytes the application may have written but not yet had acknowledged.
    /// Default: 4 MiB.
    pub send_buffer: u64,
    /// Initial flow-control window: bytes the peer may send beyond what the
    /// application has read. Advertised in the handshake. It is a promise,
    /// not an allocation: memory is used only by data that arrives, and
    /// `max_buffered_bytes` bounds that whatever the window. It must cover
    /// what a sender has in flight when its first loss leaves a hole: at
    /// 1 MiB a BBR sender at 100 Mbit/s × 50 ms stopped for want of credit
    /// right after its startup (80 ms; `goodput`, 0 % loss: 0.8975 of the
    /// link at 1 MiB, 0.9015 at 4 MiB).
    /// Default: 4 MiB.
    pub receive_window: u64,
    /// Largest flow-control window auto-tuning may grow to, and so the most
    /// stream bytes a connection buffers for the application (spec §6.4).
    /// The window doubles whenever the peer uses half of it in less than
    /// two round trips; a path needs about twice its bandwidth-delay product
    /// (e.g. 2.5 MB for 100 Mbit/s × 100 ms) to be filled.
    /// Default: 16 MiB.
    pub max_receive_window: u64,
    /// Most stream bytes the receiver buffers beyond the first byte still
    /// missing (spec §6.3). An authenticated packet carrying data further
    /// ahead is dropped unacknowledged, as if lost; the peer resends it.
    /// Default: 16 MiB.
    pub max_reorder_distance: u64,
    /// Most memory the receiving stream may hold: unread and out-of-order
    /// bytes, plus [`FRAGMENT_OVERHEAD`](crate::connection::FRAGMENT_OVERHEAD)
    /// bytes of bookkeeping per out-of-order fragment (spec §6.3). Out-of-order
    /// data beyond it is dropped like data beyond `max_reorder_distance`.
    /// Must be at least `max_receive_window`, so in-order data within the
    /// advertised window always fits.
    /// Default: 16.5 MiB (the largest window plus bookkeeping for 8192 fragments).
    pub max_buffered_bytes: u64,
    /// Builds the congestion controller of each connection: CUBIC
    /// ([`CubicFactory`]), NewReno
    /// ([`NewRenoFactory`](crate::congestion::NewRenoFactory)) or BBR
    /// ([`BbrFactory`](crate::congestion::BbrFactory), model based: keeps
    /// its rate under random loss, which CUBIC and NewReno halve at).
    /// Default: CUBIC with HyStart++ ([`CubicFactory::default`](crate::congestion::CubicFactory)).
    pub congestion: Arc<dyn ControllerFactory>,
    /// Spread ack-eliciting packets over the round trip instead of sending
    /// the congestion window in bursts (spec §7.2).
    /// Default: on.
    pub pacing: bool,
    /// Redundant bundling for thin streams (spec §6.3): when at most this many
    /// sent bytes are still unacknowledged, each packet of new data carries
    /// them again in front of it, so a lost packet is repaired by the next
    /// one instead of after loss detection. 0 disables it. Costs wire bytes
    /// (each unacknowledged byte travels about once per packet sent within a
    /// round trip); useless for bulk transfer, where the window holds far more.
    /// Default: 0 (off).
    pub bundle_unacked_bytes: u64,
    /// How long a closing connection lingers to answer retransmissions, in PTOs.
    /// Default: 3.
    pub close_linger_ptos: u32,
    /// Largest UDP payload we accept and send, announced in the handshake
    /// (spec §4.3). Above the base of 1200 bytes, a direct path is probed
    /// for room for Data packets up to the smaller of both sides' values
    /// (path MTU discovery, spec §6.9): fewer, larger packets move the same
    /// bytes with less overhead and less CPU. 1200 turns the discovery off.
    /// Within 1200..=[`MAX_UDP_PAYLOAD_SIZE`](crate::MAX_UDP_PAYLOAD_SIZE).
    /// Default: 1472 (an Ethernet MTU of 1500 over IPv4; 1452 over IPv6).
    pub max_udp_payload: usize,
    /// How long after a finished path MTU search, or a fall back to 1200
    /// bytes, the search runs again (spec §6.9).
    /// Default: 10 min.
    pub mtu_research_interval: Duration,
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
            punch_opening_hop_limit: Some(2),
            initial_rtt: Duration::from_millis(333),
            max_ack_delay: Duration::from_millis(25),
            ack_eliciting_threshold: 2,
            ack_frequency_threshold: 10,
            packet_threshold: 3,
            time_threshold: 9.0 / 8.0,
            granularity: Duration::from_millis(1),
            max_probe_timeout: Duration::from_secs(4),
            send_buffer: 4 << 20,
            receive_window: 4 << 20,
            max_receive_window: 16 << 20,
            max_reorder_distance: 16 << 20,
            // The largest window plus room for the bookkeeping of 8192
            // fragments: twice what a full 4 MiB of full-size out-of-order
            // frames needs.
            max_buffered_bytes: (16 << 20) + (512 << 10),
            congestion: Arc::new(CubicFactory::default()),
            pacing: true,
            bundle_unacked_bytes: 0,
            close_linger_ptos: 3,
            max_udp_payload: crate::wire::MAX_UDP_PAYLOAD_SIZE,
            mtu_research_interval: Duration::from_secs(600),
        }
    }
}

impl TransportConfig {
    /// The throughput profile: the [`Default`].
    pub fn throughput() -> Self {
        Self::default()
    }

    /// A profile for interactive traffic: small messages that must arrive
    /// soon (it is what the `latency` benchmark measures).
    ///
    /// Compared with the default it:
    ///
    /// * acknowledges every ack-eliciting packet at once (threshold 1,
    ///   `max_ack_delay` 2 ms), so the sender learns of a loss as early as
    ///   possible — at the cost of one ACK packet per data packet;
    /// * declares a packet lost when 2 later ones were acknowledged instead
    ///   of 3, and after 1 RTT instead of 9/8 — earlier retransmission, at the
    ///   cost of more spurious retransmissions on paths that reorder
    ///   (spurious window reductions are undone, the wasted bytes are not);
    /// * starts from a 100 ms RTT guess instead of 333 ms and caps probe
    ///   backoff at 1 s instead of 4 s, so probe timeouts come sooner —
    ///   more probes during a long outage;
    /// * bundles up to 1 KiB of unacknowledged data into every packet of
    ///   new data ([`bundle_unacked_bytes`](Self::bundle_unacked_bytes)): a
    ///   lost message arrives with the next one, without waiting a round
    ///   trip for loss detection — at the cost of sending small messages
    ///   several times (about RTT / message interval times each);
    /// * names CUBIC ([`CubicFactory`]) itself, so it stays on CUBIC if the
    ///   default becomes BBR: an application-limited flow gives BBR a model
    ///   of a few packets, and its window then holds back a message behind a
    ///   loss (`latency`, seeds 1–5, maximum delay: CUBIC 178–234 ms, BBR
    ///   187–466 ms against KCP's 392 ms).
    ///
    /// Throughput on a clean path is about the same; on a lossy or
    /// reordering path it trades bandwidth for delay.
    pub fn low_latency() -> Self {
        TransportConfig {
            initial_rtt: Duration::from_millis(100),
            max_ack_delay: Duration::from_millis(2),
            ack_eliciting_threshold: 1,
            ack_frequency_threshold: 0,
            packet_threshold: 2,
            time_threshold: 1.0,
            max_probe_timeout: Duration::from_secs(1),
            bundle_unacked_bytes: 1024,
            congestion: Arc::new(CubicFactory::default()),
            ..Self::default()
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
        if self.punch_opening_hop_limit == Some(0) {
            return bad("punch_opening_hop_limit must be at least 1");
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
        if self.ack_frequency_threshold > 255 {
            return bad("ack_frequency_threshold must be at most 255");
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
        if self.max_receive_window < self.receive_window || self.max_receive_window > (1 << 40) {
            return bad("max_receive_window must be within receive_window..=1 TiB");
        }
        if self.max_reorder_distance < crate::wire::MAX_STREAM_PAYLOAD as u64 {
            return bad("max_reorder_distance must hold at least one frame (1024 bytes)");
        }
        if self.max_buffered_bytes < self.max_receive_window {
            return bad("max_buffered_bytes must be at least max_receive_window");
        }
        if !(crate::wire::MAX_DATAGRAM_SIZE..=crate::wire::MAX_UDP_PAYLOAD_SIZE)
            .contains(&self.max_udp_payload)
        {
            return bad("max_udp_payload must be within 1200..=1472");
        }
        if self.mtu_research_interval.is_zero() {
            return bad("mtu_research_interval must be positive");
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
    /// Accept only initiators (NK or IK) that prove they hold this ticket
    /// secret (spec §4.9), and prove it to them in return. Others get an
    /// authenticated refusal that says a ticket is required. A ticket is a
    /// capability: whoever was given it may connect while this policy is
    /// set — set another one once the ticket's connection arrived to make it
    /// one-time (as `srudp listen` does).
    Ticket(crate::TicketSecret),
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

/// Configuration of an endpoint: srudp-proto's [`Endpoint`](crate::Endpoint)
/// and every runtime adapter's endpoint, which runs one.
///
/// [`EndpointConfig::new`] takes the one value without a default, the
/// keypair; each other field's documentation gives its default.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// This endpoint's static identity.
    pub keypair: Keypair,
    /// Seed of the endpoint's random generator; `None` seeds it from the OS.
    /// Fix it in tests: one seed, one trace.
    /// Default: `None`.
    pub rng_seed: Option<u64>,
    /// Who may connect to us.
    /// Default: [`AcceptPolicy::AcceptAll`].
    pub accept: AcceptPolicy,
    /// Parameters of every connection of this endpoint.
    /// Default: [`TransportConfig::default`].
    pub transport: Arc<TransportConfig>,
    /// Handshake pattern `connect` uses unless the request says otherwise
    /// ([`ConnectOptions::pattern`](crate::ConnectOptions::pattern)).
    /// Default: [`HandshakePattern::NK`].
    pub default_pattern: HandshakePattern,
    /// The AEAD cipher `connect` proposes (spec §4.1). ChaCha20-Poly1305,
    /// the default, is portable and fast everywhere; [`Cipher::fastest_here`]
    /// picks AES-GCM where the CPU has AES instructions. A responder that
    /// does not accept it refuses the connection
    /// ([`CloseReason::Refused`](crate::CloseReason::Refused)).
    /// Default: [`Cipher::ChaChaPoly`].
    pub cipher: Cipher,
    /// The ciphers this endpoint accepts as a responder. An initiation
    /// proposing another is answered with a refusal.
    /// Default: [`Cipher::ALL`] (both).
    pub accepted_ciphers: Vec<Cipher>,
    /// Most connections (in any state) this endpoint holds at once.
    /// Default: 100 000.
    pub max_connections: usize,
    /// Most responder handshakes not yet confirmed by the initiator.
    /// Default: 4096.
    pub max_pending_handshakes: usize,
    /// Handshake capacity: most initiations per second this endpoint runs
    /// through Noise (its Diffie-Hellman work) as a responder, with a burst
    /// of one second's worth. More are dropped (spec §4.8).
    ///
    /// The default, 1000, bounds what a flood of initiations can take: a
    /// responder's handshake costs about 0.2 ms of CPU (BENCHMARKS.md,
    /// `connections`), so about a fifth of one core, the rest staying with
    /// established connections. Raise it where bursts of genuine connects
    /// are expected: beyond it initiators wait and retransmit.
    /// Default: 1000 per second.
    pub handshake_rate: u32,
    /// When to demand a cookie from initiators.
    /// Default: [`CookieMode::UnderLoad`].
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
            cipher: Cipher::ChaChaPoly,
            accepted_ciphers: Cipher::ALL.to_vec(),
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
        if self.accepted_ciphers.is_empty() {
            return Err(ConfigError(
                "accepted_ciphers must name at least one cipher".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// The public fields of `struct_name` in `source` whose doc comment has
    /// no "Default:" line, except those listed in `required` (the values a
    /// constructor takes).
    pub(crate) fn fields_without_a_documented_default(
        source: &str,
        struct_name: &str,
        required: &[&str],
    ) -> Vec<String> {
        let start = source
            .find(&format!("pub struct {struct_name} {{"))
            .expect("the struct is in the source");
        let mut missing = Vec::new();
        let mut documented = false;
        for line in source[start..].lines().skip(1) {
            let line = line.trim();
            if line == "}" {
                break;
            }
            if line.starts_with("/// Default:") {
                documented = true;
            } else if let Some(field) = line.strip_prefix("pub ") {
                let name = field.split(':').next().unwrap_or_default();
                if !documented && !required.contains(&name) {
                    missing.push(name.to_string());
                }
                documented = false;
            }
        }
        missing
    }

    #[test]
    fn every_transport_and_endpoint_field_documents_its_default() {
        let source = include_str!("config.rs");
        let transport = fields_without_a_documented_default(source, "TransportConfig", &[]);
        assert!(
            transport.is_empty(),
            "no `/// Default:` line: {transport:?}"
        );
        let endpoint = fields_without_a_documented_default(source, "EndpointConfig", &["keypair"]);
        assert!(endpoint.is_empty(), "no `/// Default:` line: {endpoint:?}");
        // The check itself notices a missing line.
        let undocumented = "pub struct S {\n    /// A.\n    pub a: u8,\n}\n";
        assert_eq!(
            fields_without_a_documented_default(undocumented, "S", &[]),
            ["a"]
        );
    }

    /// Each field's documentation states its default; this holds them to
    /// it. The destructuring is exhaustive: a new field does not compile
    /// here until its documented default is checked too.
    #[test]
    fn every_transport_default_is_the_one_its_documentation_states() {
        let TransportConfig {
            idle_timeout,
            keepalive_interval,
            handshake_timeout,
            handshake_retry_initial,
            handshake_retry_max,
            punch_probe_spacing,
            punch_opening_hop_limit,
            initial_rtt,
            max_ack_delay,
            ack_eliciting_threshold,
            ack_frequency_threshold,
            packet_threshold,
            time_threshold,
            granularity,
            max_probe_timeout,
            send_buffer,
            receive_window,
            max_receive_window,
            max_reorder_distance,
            max_buffered_bytes,
            congestion,
            pacing,
            bundle_unacked_bytes,
            close_linger_ptos,
            max_udp_payload,
            mtu_research_interval,
        } = TransportConfig::default();
        assert_eq!(idle_timeout, Duration::from_secs(30));
        assert_eq!(keepalive_interval, Some(Duration::from_secs(15)));
        assert_eq!(handshake_timeout, Duration::from_secs(10));
        assert_eq!(handshake_retry_initial, Duration::from_millis(250));
        assert_eq!(handshake_retry_max, Duration::from_secs(1));
        assert_eq!(punch_probe_spacing, Duration::from_millis(2));
        assert_eq!(punch_opening_hop_limit, Some(2));
        assert_eq!(initial_rtt, Duration::from_millis(333));
        assert_eq!(max_ack_delay, Duration::from_millis(25));
        assert_eq!(ack_eliciting_threshold, 2);
        assert_eq!(ack_frequency_threshold, 10);
        assert_eq!(packet_threshold, 3);
        assert_eq!(time_threshold, 1.125);
        assert_eq!(granularity, Duration::from_millis(1));
        assert_eq!(max_probe_timeout, Duration::from_secs(4));
        assert_eq!(send_buffer, 4 * MIB);
        assert_eq!(receive_window, 4 * MIB);
        assert_eq!(max_receive_window, 16 * MIB);
        assert_eq!(max_reorder_distance, 16 * MIB);
        assert_eq!(max_buffered_bytes, 16 * MIB + MIB / 2);
        assert_eq!(
            format!("{congestion:?}"),
            format!("{:?}", CubicFactory::default())
        );
        assert!(pacing);
        assert_eq!(bundle_unacked_bytes, 0);
        assert_eq!(close_linger_ptos, 3);
        assert_eq!(max_udp_payload, 1472);
        assert_eq!(mtu_research_interval, Duration::from_secs(600));
    }

    #[test]
    fn the_low_latency_profile_runs_cubic() {
        assert_eq!(
            format!("{:?}", TransportConfig::low_latency().congestion),
            format!("{:?}", CubicFactory::default())
        );
    }

    #[test]
    fn every_endpoint_default_is_the_one_its_documentation_states() {
        let mut rng = crate::Rng::from_seed(1);
        let keypair = Keypair::generate(&mut rng);
        let EndpointConfig {
            keypair: kept,
            rng_seed,
            accept,
            transport,
            default_pattern,
            cipher,
            accepted_ciphers,
            max_connections,
            max_pending_handshakes,
            handshake_rate,
            cookie_mode,
        } = EndpointConfig::new(keypair.clone());
        assert_eq!(kept.public(), keypair.public());
        assert_eq!(rng_seed, None);
        assert_eq!(accept, AcceptPolicy::AcceptAll);
        assert_eq!(
            format!("{transport:?}"),
            format!("{:?}", TransportConfig::default())
        );
        assert_eq!(default_pattern, HandshakePattern::NK);
        assert_eq!(cipher, Cipher::ChaChaPoly);
        assert_eq!(accepted_ciphers, Cipher::ALL);
        assert_eq!(max_connections, 100_000);
        assert_eq!(max_pending_handshakes, 4096);
        assert_eq!(handshake_rate, 1000);
        assert_eq!(cookie_mode, CookieMode::UnderLoad);
    }
}
