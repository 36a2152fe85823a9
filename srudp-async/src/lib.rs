//! # srudp-async — srudp on async Rust: tokio, async-std, smol
//!
//! srudp gives two programs, possibly both behind NATs, an encrypted,
//! reliable, congestion-controlled byte stream over UDP. This crate runs the
//! protocol ([`srudp_proto`]) on a UDP socket of an async runtime: an
//! [`Endpoint`] binds one socket, opens connections with
//! [`Endpoint::connect`] (naming the peer's public key and candidate
//! addresses) and accepts them with [`Endpoint::accept`]; each connection is
//! a [`Stream`] that implements tokio's `AsyncRead` and `AsyncWrite`
//! (feature `tokio`) and the futures-io traits async-std and smol use
//! (feature `futures-io`, on with `async-io`), so `tokio::io::copy`,
//! `tokio_util::codec::Framed`, `futures::io::copy` and the like work on it.
//! `srudp-tokio` and `srudp-async-std` are this crate with one feature on.
//!
//! ```
//! use srudp_async::{Endpoint, EndpointConfig, Keypair};
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
//!
//! ## Exiting cleanly
//!
//! Finish each stream (`shutdown().await`, or drop it: a dropped stream
//! finishes in the background) or [`Endpoint::close`] the endpoint, then
//! `endpoint.wait_idle().await`, then return from `main`. `wait_idle`
//! returns once the application's connections are over — about one round
//! trip after the last close when peers are alive, at once when there are
//! none; a rendezvous registration does not hold it. A program that
//! returns without this loses nothing silently: when its runtime drops the
//! driver, the driver sends at once what the streams still had queued
//! (their data, and the end of those the application finished or dropped)
//! and a CLOSE for every connection, so each peer reads to end-of-stream
//! if all of it arrives, and otherwise learns within one round trip that
//! the connection was closed ([`CloseReason::PeerClose`], reason
//! `"endpoint closed"`) instead of waiting for its idle timeout. A driver on
//! a thread of its own does the same when the process exits (on Unix,
//! through an exit hook, waiting at most half a second). Only a crashed
//! process or a lost path leaves a peer to its idle timeout.
//!
//! ## How it runs
//!
//! Each endpoint has one [`Driver`]: the future that owns the UDP socket
//! and drives the protocol state machine (no protocol logic lives here). It
//! sleeps until a datagram arrives, the protocol's next deadline passes, or
//! the application acts — an idle endpoint costs no CPU — and sends and
//! receives many datagrams per system call (`recvmmsg`, UDP GSO/GRO where
//! the OS has them). Streams and the endpoint share the state machine
//! behind a mutex held only for the moment of a call, never across an
//! await or a system call.
//!
//! The driver ends by itself when the [`Endpoint`] (all its clones), every
//! [`Stream`] and every pending [`Connecting`] are gone and every connection
//! has closed; dropped streams first finish gracefully in the background
//! (bounded by the idle timeout). After [`Endpoint::close`] it ends once every
//! connection has drained; [`Endpoint::wait_idle`] waits for that.
//!
//! ## Which runtime runs the driver
//!
//! [`Endpoint::bind`] and [`Endpoint::bind_with_rendezvous`] pick it:
//! called inside a tokio runtime (feature `tokio`), the driver is a task of
//! that runtime (which needs IO and time enabled); otherwise (feature
//! `async-io`) it runs on async-io's reactor on a thread of its own, named
//! `srudp-driver`, so it works under async-std, smol or no executor at all.
//! [`Endpoint::bind_with_driver`] returns the async-io driver for you to
//! spawn on your executor (`smol::spawn(driver).detach()`), and
//! [`Endpoint::bind_with_runtime`] makes the driver for any [`Runtime`]:
//! [`runtime::Tokio`], [`runtime::AsyncIo`], or your own (implement its
//! socket and timer, see [`runtime`]). `Endpoint::bind_on_thread`
//! (feature `thread`, on with `async-io`) runs the driver on a thread of
//! its own that waits in an OS poller of its own, whatever runtime the
//! caller is in: no executor and no shared reactor between the driver and
//! anyone else; srudp-std runs on it.
//!
//! ## Cancellation safety
//!
//! Safe to use as `select!` branches and to drop at any await point:
//! [`Endpoint::accept`], [`Endpoint::wait_idle`], and on a [`Stream`]:
//! `read`, `read_buf`, `write`, finishing (tokio's `shutdown`, futures-io's
//! `close`) and the `poll_*` methods. [`Endpoint::connect`] returns a
//! [`Connecting`] future that is `Unpin`: poll `&mut connecting` in a loop to
//! keep one attempt across iterations; dropping it aborts the attempt. As
//! with any stream, `read_exact`, `read_to_end` and `write_all` are not
//! cancellation safe.
//!
//! ## Errors
//!
//! Every error is a `std::io::Error` with a meaningful kind: `TimedOut` (idle
//! or handshake timeout), `ConnectionReset` (the peer aborted; the srudp
//! [`CloseReason`] is the error's source), `ConnectionRefused`,
//! `ConnectionAborted` (closed locally), `BrokenPipe` (writing after
//! finishing), `NotConnected` (the endpoint is closed, or its driver
//! stopped with its runtime), `InvalidInput` (bad arguments or
//! configuration). See [`stream_error`]; [`close_reason`] reads the srudp
//! [`CloseReason`] back out of an error ([`rendezvous_error`],
//! [`connect_error`] and [`driver_stopped`] their causes).
#![warn(missing_docs)]

mod carrier_proxy;
mod carrier_tls;
mod client_carrier;
mod driven;
mod driver;
mod endpoint;
mod error;
#[cfg(feature = "thread")]
mod exit_hook;
mod io_traits;
mod port_mapping;
mod port_mapping_announce;
mod port_mapping_epoch;
mod port_mapping_gateway;
mod port_mapping_upnp;
mod port_mapping_upnp_wire;
mod port_mapping_wire;
mod rendezvous_client;
#[cfg(feature = "tokio")]
mod rendezvous_server;
mod rendezvous_status;
pub mod runtime;
mod shared;
mod spare_sockets;
mod spawn;
mod stream;
pub mod stream_error;
#[cfg(feature = "tokio")]
mod stream_paths;
mod stream_table;

pub use driver::Driver;
pub use endpoint::{Connecting, Endpoint};
pub use error::{close_reason, connect_error, driver_stopped, rendezvous_error};
pub use port_mapping::{
    MappedPort, PortMapping, PortMappingProtocol, PortMappingState, EPOCH_PROBE, MAX_LEASE,
};
#[cfg(feature = "tokio")]
pub use rendezvous_server::RendezvousServer;
pub use runtime::{AsyncTimer, AsyncUdpSocket, Runtime};
pub use spare_sockets::{MAX_SPARE_SOCKETS, SPARE_IDLE};
pub use srudp_net::batch::{Inbox, Outbox, UdpBatch, MAX_DATAGRAM};
pub use srudp_net::host_candidates;
pub use srudp_proto;
pub use srudp_proto::{
    AcceptPolicy, Cipher, CloseReason, ConfigError, ConnectOptions, ConnectionStats, CookieMode,
    EndpointConfig, EndpointStats, HandshakePattern, Keypair, PathKind, PublicKey, SecretKey,
    TicketSecret, TransportConfig,
};
pub use stream::{PathWatcher, Stream};
pub use stream_error::{DriverStopped, StreamError};

/// Rendezvous: registering an endpoint, reaching peers by key or name, the
/// relay, NAT behaviour (spec §11), and (feature `tokio`) the server.
pub mod rendezvous {
    #[cfg(feature = "tokio")]
    pub use crate::carrier_tls::{CarrierTls, CarrierTlsError};
    pub use crate::carrier_tls::{CARRIER_ALPN, IP_LITERAL_SERVER_NAME};
    pub use crate::rendezvous_client::RendezvousConnecting;
    #[cfg(feature = "tokio")]
    pub use crate::rendezvous_server::RendezvousServer;
    pub use crate::rendezvous_status::RendezvousStatus;
    #[cfg(feature = "tokio")]
    pub use crate::stream_paths::{StreamCarrierConfig, StreamCarrierStats};
    pub use srudp_proto::rendezvous::{
        ClientConfig, ErrorCode, GroupSecret, Name, NatBehavior, NatFiltering, NatMapping,
        RateLimit, RendezvousAddr, RendezvousAddrError, RendezvousError, ServerConfig, ServerEvent,
        ServerStats, Ticket, TicketError,
    };
    pub use srudp_proto::stream_carrier::{HttpProxy, HttpProxyError, StreamTransport};
}

#[cfg(test)]
mod tests {
    #[test]
    fn handles_can_move_between_tasks_and_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<super::Endpoint>();
        send_sync::<super::Stream>();
        send_sync::<super::Connecting>();
        send_sync::<super::rendezvous::RendezvousConnecting>();
    }
}
