//! # srudp-tokio — srudp on tokio
//!
//! [`srudp_async`] with its `tokio` feature: an [`Endpoint`] bound inside
//! a tokio runtime runs its driver as a task of that runtime, and a
//! [`Stream`] implements `tokio::io::AsyncRead` and `AsyncWrite`, so
//! `tokio::io::copy`, `tokio::io::split` and `tokio_util::codec::Framed`
//! work on it. The rendezvous and relay server is [`RendezvousServer`].
//! Everything — the calling contract, cancellation safety, the error kinds —
//! is documented once, in [`srudp_async`].
//!
//! ```
//! use srudp_tokio::{Endpoint, EndpointConfig, Keypair};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let server = Endpoint::bind("127.0.0.1:0".parse().unwrap(),
//!                            EndpointConfig::new(Keypair::generate_from_os()))?;
//! let client = Endpoint::bind("127.0.0.1:0".parse().unwrap(),
//!                            EndpointConfig::new(Keypair::generate_from_os()))?;
//!
//! let connecting = client.connect(server.public_key(), &[server.local_addr()]);
//! let (mut stream, _addr, _peer_key) = server.accept().await?;
//! let mut to_server = connecting.await?;
//!
//! to_server.write_all(b"hello").await?;
//! to_server.shutdown().await?; // graceful: returns once the server has everything
//! let mut received = Vec::new();
//! stream.read_to_end(&mut received).await?;
//! assert_eq!(received, b"hello");
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub use srudp_async::*;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::rendezvous::{ClientConfig, GroupSecret};
    use crate::{
        Cipher, ConfigError, CookieMode, EndpointConfig, Keypair, SecretKey, TransportConfig,
    };

    /// Every type a configuration names is reachable from this crate: a
    /// user needs no direct dependency on srudp-proto.
    #[test]
    fn a_full_configuration_is_written_with_this_crates_names_alone() {
        let keypair = Keypair::from_secret(SecretKey::from_bytes([1; 32]));
        let config = EndpointConfig {
            cipher: Cipher::AesGcm,
            cookie_mode: CookieMode::Always,
            transport: TransportConfig {
                idle_timeout: Duration::ZERO,
                ..TransportConfig::default()
            }
            .into(),
            ..EndpointConfig::new(keypair.clone())
        };
        let refused: ConfigError = config.validate().unwrap_err();
        assert!(refused.to_string().contains("idle_timeout"), "{refused}");

        let mut rendezvous = ClientConfig::new(keypair.public(), "192.0.2.7:4433".parse().unwrap());
        rendezvous.groups.push(GroupSecret::from_bytes([2; 32]));
        assert!(rendezvous.validate().is_ok());
        // The sans-IO crate itself is re-exported too.
        assert_eq!(crate::srudp_proto::MAX_DATAGRAM_SIZE, 1200);
    }
}
