//! What the async adapters' loopback tests start from: configurations whose
//! keys and randomness come from a seed, short timeouts for tests that wait
//! for connections to end, loopback addresses, deterministic payloads and
//! the impaired path of the bad-path tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use srudp_proto::{EndpointConfig, Keypair, Rng, TransportConfig};

use crate::Impairment;

/// A configuration whose key and randomness come from `seed`.
pub fn config(seed: u64) -> EndpointConfig {
    config_with(seed, TransportConfig::default())
}

/// [`config`] with `transport`.
pub fn config_with(seed: u64, transport: TransportConfig) -> EndpointConfig {
    let mut config = EndpointConfig::new(Keypair::generate(&mut Rng::from_seed(seed)));
    config.rng_seed = Some(seed ^ 0x5eed);
    config.transport = Arc::new(transport);
    config
}

/// Short timeouts and a short closing linger (a loopback-sized initial
/// RTT keeps the PTO-based linger short too), for tests that wait for
/// connections to end.
pub fn quick_transport() -> TransportConfig {
    TransportConfig {
        initial_rtt: Duration::from_millis(20),
        idle_timeout: Duration::from_millis(1000),
        keepalive_interval: Some(Duration::from_millis(250)),
        handshake_timeout: Duration::from_millis(1000),
        max_probe_timeout: Duration::from_millis(100),
        ..TransportConfig::default()
    }
}

/// `127.0.0.1:0`.
pub fn v4() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// `[::1]:0`, or `None` (with a message) when IPv6 loopback cannot be bound here.
pub fn v6() -> Option<SocketAddr> {
    let addr = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0));
    match std::net::UdpSocket::bind(addr) {
        Ok(_) => Some(addr),
        Err(e) => {
            println!("skipped: cannot bind IPv6 loopback [::1]: {e}");
            None
        }
    }
}

/// Deterministic pseudo-random bytes.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Rng::from_seed(seed).fill(&mut v);
    v
}

/// The bad path every adapter's impaired-path test crosses: 2% loss, 2%
/// duplicates, 3% reordering, 2 ms delay with 0.5 ms jitter, drawn from `seed`.
pub fn bad_path(seed: u64) -> Impairment {
    Impairment {
        seed,
        drop: 0.02,
        duplicate: 0.02,
        reorder: 0.03,
        delay: Duration::from_millis(2),
        jitter: Duration::from_micros(500),
    }
}
