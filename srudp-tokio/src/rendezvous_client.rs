//! An endpoint registered at a rendezvous server: reached and reaching
//! peers by key or name, relay fallback, NAT behaviour (spec §11).
//!
//! The tokio faces of `srudp-async`'s rendezvous client, which turns the
//! protocol's rendezvous events into what the application awaits: connect
//! calls by key or name, the accept queue for peers that asked for us, the
//! registration status and the NAT test.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use srudp_proto::rendezvous::{ClientConfig, NatBehavior};
#[cfg(doc)]
use srudp_proto::rendezvous::{ErrorCode, RendezvousError};
use srudp_proto::EndpointConfig;

use crate::endpoint::Endpoint;
use crate::runtime::Tokio;
use crate::stream::Stream;

pub use srudp_async::RendezvousStatus;

/// A connection attempt through the rendezvous, started by
/// [`Endpoint::connect_by_key`] or [`Endpoint::connect_by_name`]; resolves
/// to the [`Stream`] once the server introduced us and a path (direct or
/// relayed) completed the handshake. Dropping it abandons the attempt.
pub struct RendezvousConnecting {
    inner: srudp_async::RendezvousConnecting,
}

impl std::fmt::Debug for RendezvousConnecting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Future for RendezvousConnecting {
    type Output = io::Result<Stream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Stream>> {
        Pin::new(&mut self.inner).poll(cx).map_ok(Stream::new)
    }
}

impl Endpoint {
    /// Binds a UDP socket to `addr` like [`bind`](Endpoint::bind), and
    /// registers the endpoint at the rendezvous server named by
    /// `rendezvous` (its key and address, and the name to register under),
    /// over the same socket. The registration is kept alive and renewed by
    /// itself after the server is lost (a restart, a NAT that forgot us).
    ///
    /// When `rendezvous.host_candidates` is empty, it is filled with
    /// [`host_candidates`](crate::host_candidates()) of the bound address:
    /// the machine's own addresses with the endpoint's port, offered to
    /// peers besides the address the server observes (so peers on the same
    /// LAN connect directly).
    ///
    /// Peers that ask the server for us arrive through
    /// [`accept`](Endpoint::accept); we reach peers with
    /// [`connect_by_key`](Endpoint::connect_by_key) and
    /// [`connect_by_name`](Endpoint::connect_by_name). Plain
    /// [`connect`](Endpoint::connect) still works.
    ///
    /// ```no_run
    /// # async fn example(server_key: srudp_tokio::PublicKey) -> std::io::Result<()> {
    /// use srudp_tokio::rendezvous::ClientConfig;
    /// use srudp_tokio::{Endpoint, EndpointConfig, Keypair};
    ///
    /// let mut rendezvous = ClientConfig::new(server_key, "192.0.2.7:4433".parse().unwrap());
    /// rendezvous.name = Some("laptop".parse().unwrap());
    /// let endpoint = Endpoint::bind_with_rendezvous(
    ///     "0.0.0.0:0".parse().unwrap(),
    ///     EndpointConfig::new(Keypair::generate_from_os()),
    ///     rendezvous,
    /// )?;
    /// let observed = endpoint.wait_registered().await?;
    /// let (stream, _, peer) = endpoint.accept().await?;
    /// # Ok(()) }
    /// ```
    pub fn bind_with_rendezvous(
        addr: SocketAddr,
        config: EndpointConfig,
        rendezvous: ClientConfig,
    ) -> io::Result<Endpoint> {
        Endpoint::start(|| {
            srudp_async::Endpoint::bind_with_rendezvous::<Tokio>(addr, config, rendezvous)
        })
    }

    /// Asks the rendezvous server to introduce us to the peer registered
    /// with key `peer`; the returned future resolves to the stream once a
    /// path — direct if the NATs allow, else through the server's relay —
    /// completed the handshake (IK both ways: the peer proves its key, so a
    /// lying server cannot impersonate it).
    ///
    /// Errors: `NotFound` ("peer not registered") quickly when no such peer
    /// is registered; `HostUnreachable` when the server cannot be reached,
    /// `TimedOut` when it does not answer or no path worked; `InvalidInput`
    /// for our own key or an endpoint without rendezvous. The
    /// [`RendezvousError`] is the error's source.
    pub fn connect_by_key(&self, peer: srudp_proto::PublicKey) -> RendezvousConnecting {
        RendezvousConnecting {
            inner: self.inner().connect_by_key(peer),
        }
    }

    /// [`connect_by_key`](Endpoint::connect_by_key) for the peer registered
    /// under `name`.
    pub fn connect_by_name(&self, name: &str) -> RendezvousConnecting {
        RendezvousConnecting {
            inner: self.inner().connect_by_name(name),
        }
    }

    /// Where the endpoint stands with its rendezvous server; `None` for an
    /// endpoint bound without one.
    pub fn rendezvous_status(&self) -> Option<RendezvousStatus> {
        self.inner().rendezvous_status()
    }

    /// Waits until the rendezvous status differs from `known`, and returns
    /// the new one: registrations, re-registrations after a lost server,
    /// refusals, a new observed address, the NAT test's result.
    ///
    /// Cancellation safe. Errors: `InvalidInput` without rendezvous,
    /// `NotConnected` once the endpoint is closed.
    pub async fn rendezvous_changed(
        &self,
        known: RendezvousStatus,
    ) -> io::Result<RendezvousStatus> {
        self.inner().rendezvous_changed(known).await
    }

    /// Waits until the rendezvous server holds our registration, and
    /// returns our address as the server observes it. There is no deadline
    /// (the client retries with backoff): wrap it in a timeout to report an
    /// unreachable server.
    ///
    /// Errors: `PermissionDenied` when the server refused the registration
    /// (for example the name is taken; the source is the [`ErrorCode`]'s
    /// description), `InvalidInput` without rendezvous, `NotConnected` once
    /// the endpoint is closed.
    pub async fn wait_registered(&self) -> io::Result<SocketAddr> {
        self.inner().wait_registered().await
    }

    /// The NAT behaviour as tested through the rendezvous server (its
    /// second port, spec §11.7): runs a test if none ran yet, then waits for
    /// the result. Without a second port on the server, the mapping and
    /// filtering come back `Unknown`.
    pub async fn nat_behavior(&self) -> io::Result<NatBehavior> {
        self.inner().nat_behavior().await
    }
}
