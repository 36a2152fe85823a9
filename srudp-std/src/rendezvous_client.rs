//! An endpoint registered at a rendezvous server: reached and reaching
//! peers by key or name, relay fallback, NAT behaviour (spec §11) — the
//! blocking faces of srudp-async's rendezvous client.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

#[cfg(doc)]
use srudp_proto::rendezvous::RendezvousError;
use srudp_proto::rendezvous::{ClientConfig, NatBehavior};
use srudp_proto::{EndpointConfig, PublicKey};

use crate::block::block_on;
use crate::endpoint::Endpoint;
use crate::stream::Stream;

pub use srudp_async::rendezvous::RendezvousStatus;
use srudp_async::PortMapping;

impl Endpoint {
    /// Binds a UDP socket to `addr` like [`bind`](Endpoint::bind), and
    /// registers the endpoint at the rendezvous server named by
    /// `rendezvous` (its key and address, and the name to register under),
    /// over the same socket. The registration is kept alive and renewed by
    /// itself after the server is lost.
    ///
    /// When `rendezvous.host_candidates` is empty, it is filled with
    /// [`host_candidates`](fn@crate::host_candidates) of the bound address
    /// (the machine's own addresses with the endpoint's port), so peers on
    /// the same LAN connect directly.
    ///
    /// Peers that ask the server for us arrive through
    /// [`accept`](Endpoint::accept); we reach peers with
    /// [`connect_by_key`](Endpoint::connect_by_key) and
    /// [`connect_by_name`](Endpoint::connect_by_name).
    ///
    /// ```no_run
    /// # fn example(server_key: srudp_std::PublicKey) -> std::io::Result<()> {
    /// use srudp_std::rendezvous::ClientConfig;
    /// use srudp_std::{Endpoint, EndpointConfig, Keypair};
    ///
    /// let mut rendezvous = ClientConfig::new(server_key, "192.0.2.7:4433".parse().unwrap());
    /// rendezvous.name = Some("laptop".parse().unwrap());
    /// let endpoint = Endpoint::bind_with_rendezvous(
    ///     "0.0.0.0:0",
    ///     EndpointConfig::new(Keypair::generate_from_os()),
    ///     rendezvous,
    /// )?;
    /// let observed = endpoint.wait_registered(None)?;
    /// let (stream, _, peer) = endpoint.accept()?;
    /// # Ok(()) }
    /// ```
    pub fn bind_with_rendezvous<A: ToSocketAddrs>(
        addr: A,
        config: EndpointConfig,
        rendezvous: ClientConfig,
    ) -> io::Result<Endpoint> {
        Endpoint::bind_machine(addr, config, Some(rendezvous))
    }

    /// Asks the rendezvous server to introduce us to the peer registered
    /// with key `peer`, and blocks until a path — direct if the NATs allow,
    /// else through the server's relay — completed the handshake (IK both
    /// ways: the peer proves its key).
    ///
    /// Errors: `NotFound` ("peer not registered") quickly when no such peer
    /// is registered; `HostUnreachable` when the server cannot be reached,
    /// `TimedOut` when it does not answer or no path worked; `InvalidInput`
    /// for our own key or an endpoint without rendezvous; `NotConnected`
    /// once the endpoint is closed. The [`RendezvousError`] is the source.
    pub fn connect_by_key(&self, peer: PublicKey) -> io::Result<Stream> {
        let stream = block_on(None, self.inner().connect_by_key(peer))?;
        Ok(Stream::new(stream, self.inner().local_addr()))
    }

    /// [`connect_by_key`](Endpoint::connect_by_key) for the peer registered
    /// under `name`.
    pub fn connect_by_name(&self, name: &str) -> io::Result<Stream> {
        let stream = block_on(None, self.inner().connect_by_name(name))?;
        Ok(Stream::new(stream, self.inner().local_addr()))
    }

    /// Where the endpoint stands with its rendezvous server; `None` for an
    /// endpoint bound without one.
    pub fn rendezvous_status(&self) -> Option<RendezvousStatus> {
        self.inner().rendezvous_status()
    }

    /// Blocks until the rendezvous server holds our registration, and
    /// returns our address as the server observes it; gives up with
    /// `WouldBlock` after `timeout` (`None`: no limit; the client retries
    /// with backoff).
    ///
    /// Errors: `PermissionDenied` when the server refused the registration
    /// (for example the name is taken), `InvalidInput` without rendezvous,
    /// `NotConnected` once the endpoint is closed.
    pub fn wait_registered(&self, timeout: Option<Duration>) -> io::Result<SocketAddr> {
        block_on(timeout, self.inner().wait_registered())
    }

    /// The NAT behaviour as tested through the rendezvous server (its
    /// second port, spec §11.7): runs a test once registered if none ran
    /// yet, then blocks for the result, at most `timeout`. Without a second
    /// port on the server, the mapping and filtering come back `Unknown`.
    pub fn nat_behavior(&self, timeout: Option<Duration>) -> io::Result<NatBehavior> {
        block_on(timeout, self.inner().nat_behavior())
    }

    /// Asks the gateway for a port mapping of this endpoint's socket (PCP,
    /// else NAT-PMP, else UPnP-IGD) and keeps it while the returned handle lives: see
    /// srudp-async's `Endpoint::map_port`. The mapped address becomes a
    /// registered host candidate.
    pub fn map_port(&self) -> PortMapping {
        self.inner().map_port()
    }
}
