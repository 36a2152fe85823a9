//! Shared scaffolding for the loopback tests: configurations with fixed
//! keys, deterministic payloads and an echo server.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use srudp_proto::Rng;
use srudp_tokio::{Endpoint, EndpointConfig, Keypair, Stream, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A configuration whose key and randomness come from `seed`.
pub fn config(seed: u64) -> EndpointConfig {
    config_with(seed, TransportConfig::default())
}

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

pub fn v4() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// `[::1]:0`, or `None` (with a message) when IPv6 loopback cannot be bound here.
pub fn v6() -> Option<SocketAddr> {
    let addr: SocketAddr = "[::1]:0".parse().unwrap();
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

/// Accepts connections forever and echoes each one back until the peer
/// finishes, then finishes too (`tokio::io::split` + `tokio::io::copy`).
pub fn spawn_echo_server(endpoint: Endpoint) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((stream, _, _)) = endpoint.accept().await {
            tokio::spawn(async move {
                let (mut reader, mut writer) = tokio::io::split(stream);
                if tokio::io::copy(&mut reader, &mut writer).await.is_ok() {
                    let _ = writer.shutdown().await;
                }
            });
        }
    })
}

/// Sends `data` through an echoing stream while reading the echo back;
/// returns what came back.
pub async fn echo_through(stream: Stream, data: &[u8]) -> io::Result<Vec<u8>> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let send = async {
        writer.write_all(data).await?;
        writer.shutdown().await
    };
    let receive = async {
        let mut back = Vec::with_capacity(data.len());
        reader.read_to_end(&mut back).await?;
        Ok(back)
    };
    let ((), back) = tokio::try_join!(send, receive)?;
    Ok(back)
}

/// Fails the test instead of hanging when `f` takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not finish within {limit:?}"),
    }
}
