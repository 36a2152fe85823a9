//! # srudp-async-std — srudp for async-std and smol
//!
//! [`srudp_async`] with its `async-io` feature: an [`Endpoint`] runs its
//! driver on async-io's reactor — the one async-std and smol run on — on a
//! thread of its own ([`Endpoint::bind`]) or on your executor
//! ([`Endpoint::bind_with_driver`]), and a [`Stream`] implements the
//! `futures-io` `AsyncRead` and `AsyncWrite` traits, so `futures::io::copy`,
//! `split`, and async-std's and smol's `io` helpers work on it. Everything —
//! the calling contract, cancellation safety, the error kinds — is
//! documented once, in [`srudp_async`].
//!
//! **Why async-io and not async-std.** async-std is discontinued upstream
//! (advisory RUSTSEC-2025-0052; its maintainers point to smol). This crate
//! is built on the pieces async-std itself runs on — `async-io` for the
//! socket and timers, the `futures-io` traits — so one crate serves
//! async-std and smol users alike, and it does not depend on async-std.
//!
//! ```
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//! use srudp_async_std::{Endpoint, EndpointConfig, Keypair};
//!
//! # fn main() -> std::io::Result<()> {
//! smol::block_on(async {
//!     let server = Endpoint::bind("127.0.0.1:0".parse().unwrap(),
//!                                EndpointConfig::new(Keypair::generate_from_os()))?;
//!     let client = Endpoint::bind("127.0.0.1:0".parse().unwrap(),
//!                                EndpointConfig::new(Keypair::generate_from_os()))?;
//!
//!     let connecting = client.connect(server.public_key(), &[server.local_addr()]);
//!     let (mut stream, _addr, _peer_key) = server.accept().await?;
//!     let mut to_server = connecting.await?;
//!
//!     to_server.write_all(b"hello").await?;
//!     to_server.close().await?; // graceful: returns once the server has everything
//!     let mut received = Vec::new();
//!     stream.read_to_end(&mut received).await?;
//!     assert_eq!(received, b"hello");
//!     Ok(())
//! })
//! # }
//! ```
#![warn(missing_docs)]

pub use srudp_async::*;
