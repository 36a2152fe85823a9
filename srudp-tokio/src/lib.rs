//! # srudp-tokio — srudp on tokio
//!
//! srudp gives two programs, possibly both behind NATs, an encrypted,
//! reliable, congestion-controlled byte stream over UDP. This crate runs the
//! protocol ([`srudp_proto`]) on a tokio UDP socket: an [`Endpoint`] binds one
//! socket, opens connections with [`Endpoint::connect`] (naming the peer's
//! public key and candidate addresses) and accepts them with
//! [`Endpoint::accept`]; each connection is a [`Stream`] that implements
//! `tokio::io::AsyncRead` and `AsyncWrite`, so `tokio::io::copy`,
//! `tokio::io::split` and `tokio_util::codec::Framed` work on it.
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
//!
//! ## How it runs
//!
//! [`Endpoint::bind`] spawns one driver task per endpoint. It owns the UDP
//! socket and drives the protocol state machine (no protocol logic lives
//! here); it sleeps until a datagram arrives, the protocol's next deadline
//! passes, or the application acts — an idle endpoint costs no CPU. Streams
//! and the endpoint share the state machine behind a mutex held only for
//! the moment of a call, never across an await.
//!
//! The driver ends by itself when the [`Endpoint`] (all its clones), every
//! [`Stream`] and every pending [`Connecting`] are gone and every connection
//! has closed; dropped streams first finish gracefully in the background
//! (bounded by the idle timeout). After [`Endpoint::close`] it ends once every
//! connection has drained; [`Endpoint::wait_idle`] waits for that.
//!
//! ## Cancellation safety
//!
//! Safe to use as `select!` branches and to drop at any await point:
//! [`Endpoint::accept`], [`Endpoint::wait_idle`], and on a [`Stream`]:
//! `read`, `read_buf`, `write`, `shutdown` (and the `poll_*` methods).
//! [`Endpoint::connect`] returns a [`Connecting`] future that is `Unpin`:
//! poll `&mut connecting` in a loop to keep one attempt across iterations;
//! dropping it aborts the attempt. As with any tokio IO type, `read_exact`,
//! `read_to_end` and `write_all` are not cancellation safe.
//!
//! ## Errors
//!
//! Every error is a `std::io::Error` with a meaningful kind: `TimedOut` (idle
//! or handshake timeout), `ConnectionReset` (the peer aborted; the srudp
//! [`CloseReason`] is the error's source), `ConnectionRefused`,
//! `ConnectionAborted` (closed locally), `BrokenPipe` (writing after
//! `shutdown`), `NotConnected` (the endpoint is closed), `InvalidInput`
//! (bad arguments or configuration). See [`srudp_proto::stream_error`].
#![warn(missing_docs)]

mod endpoint;
mod rendezvous_client;
mod rendezvous_server;
mod runtime;
mod socket;
mod stream;

pub use endpoint::{Connecting, Endpoint};
pub use rendezvous_server::RendezvousServer;
pub use srudp_net::host_candidates;
pub use srudp_proto::{
    AcceptPolicy, CloseReason, ConnectOptions, ConnectionStats, EndpointConfig, HandshakePattern,
    Keypair, PathKind, PublicKey, StreamError, TicketSecret, TransportConfig,
};
pub use stream::{PathWatcher, Stream};

/// Rendezvous: registering an endpoint, reaching peers by key or name, the
/// relay, NAT behaviour (spec §11), and the server
/// ([`RendezvousServer`]).
pub mod rendezvous {
    pub use crate::rendezvous_client::{RendezvousConnecting, RendezvousStatus};
    pub use crate::rendezvous_server::RendezvousServer;
    pub use srudp_proto::rendezvous::{
        ClientConfig, ErrorCode, Name, NatBehavior, NatFiltering, NatMapping, RateLimit,
        RendezvousError, ServerConfig, ServerEvent, ServerStats, Ticket, TicketError,
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn handles_can_move_between_tasks_and_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<super::Endpoint>();
        send_sync::<super::Stream>();
        send_sync::<super::Connecting>();
    }
}
