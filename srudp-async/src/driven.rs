//! [`DrivenEndpoint`]: what an adapter's driver drives — the protocol
//! endpoint alone, or the endpoint inside a [`RendezvousClient`] (which then
//! takes its place in the calling contract: inputs, transmits, events and
//! deadlines all go through the client).
//!
//! Every adapter (tokio, async-std, std) needs exactly this switch; it has
//! no IO and no clock of its own, so it lives here once.

use std::net::SocketAddr;
use std::time::Instant;

use srudp_proto::rendezvous::{ClientEvent, RendezvousClient};
use srudp_proto::{ConnectionHandle, Endpoint, Transmit};

/// The endpoint a driver drives: plain, or behind a rendezvous client.
///
/// Drive it like an [`Endpoint`] (`handle_datagram`, `handle_timeout`,
/// `poll_transmit`, `poll_timeout`, `poll_event`); its events are
/// [`ClientEvent`]s either way (a plain endpoint's are all
/// [`ClientEvent::Connection`]). Per-connection calls (read, write, close…)
/// go to [`endpoint_mut`](Self::endpoint_mut).
#[derive(Debug)]
pub(crate) enum DrivenEndpoint {
    /// An endpoint without rendezvous (boxed like the client, so that both
    /// variants are a pointer).
    Plain(Box<Endpoint>),
    /// An endpoint inside a rendezvous client. Once `stopped`
    /// ([`stop_rendezvous`](Self::stop_rendezvous)), the client is left
    /// behind for good and its endpoint is driven as a plain one.
    Rendezvous {
        /// The client, which owns the endpoint.
        client: Box<RendezvousClient>,
        /// The application left the rendezvous.
        stopped: bool,
    },
}

/// Where a call of the calling contract goes.
enum Target<'a> {
    Endpoint(&'a mut Endpoint),
    Client(&'a mut RendezvousClient),
}

impl DrivenEndpoint {
    /// An endpoint without rendezvous.
    pub(crate) fn plain(endpoint: Endpoint) -> DrivenEndpoint {
        DrivenEndpoint::Plain(Box::new(endpoint))
    }

    /// An endpoint inside a rendezvous client.
    pub(crate) fn rendezvous(client: RendezvousClient) -> DrivenEndpoint {
        DrivenEndpoint::Rendezvous {
            client: Box::new(client),
            stopped: false,
        }
    }

    fn target(&mut self) -> Target<'_> {
        match self {
            DrivenEndpoint::Plain(e) => Target::Endpoint(e),
            DrivenEndpoint::Rendezvous {
                client,
                stopped: true,
            } => Target::Endpoint(client.endpoint_mut()),
            DrivenEndpoint::Rendezvous {
                client,
                stopped: false,
            } => Target::Client(client),
        }
    }

    /// The protocol endpoint.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        match self {
            DrivenEndpoint::Plain(e) => e,
            DrivenEndpoint::Rendezvous { client, .. } => client.endpoint(),
        }
    }

    /// The protocol endpoint, for per-connection calls.
    pub(crate) fn endpoint_mut(&mut self) -> &mut Endpoint {
        match self {
            DrivenEndpoint::Plain(e) => e,
            DrivenEndpoint::Rendezvous { client, .. } => client.endpoint_mut(),
        }
    }

    /// The rendezvous client, unless there is none or it was stopped.
    pub(crate) fn client(&self) -> Option<&RendezvousClient> {
        match self {
            DrivenEndpoint::Rendezvous {
                client,
                stopped: false,
            } => Some(client),
            _ => None,
        }
    }

    /// The rendezvous client, unless there is none or it was stopped, for
    /// requests (connect by key or name, NAT detection).
    pub(crate) fn client_mut(&mut self) -> Option<&mut RendezvousClient> {
        match self.target() {
            Target::Client(c) => Some(c),
            Target::Endpoint(_) => None,
        }
    }

    /// Stops the rendezvous client, if any: its link to the server is
    /// closed (the CLOSE goes out with the next transmits), and nothing
    /// reconnects or refreshes anymore. The endpoint is driven as a plain
    /// one from now on.
    pub(crate) fn stop_rendezvous(&mut self, now: Instant) {
        if let DrivenEndpoint::Rendezvous {
            client,
            stopped: stopped @ false,
        } = self
        {
            *stopped = true;
            if let Some(link) = client.server_link() {
                client
                    .endpoint_mut()
                    .close(now, link, 0, b"endpoint closed");
            }
        }
    }

    /// The rendezvous link of a running client, which is not the
    /// application's.
    pub(crate) fn server_link(&self) -> Option<ConnectionHandle> {
        self.client().and_then(RendezvousClient::server_link)
    }

    /// See [`Endpoint::handle_datagram_in_place`]: a data packet is opened
    /// in `datagram` itself, whose bytes are unspecified afterwards.
    pub(crate) fn handle_datagram_in_place(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &mut [u8],
    ) {
        match self.target() {
            Target::Client(c) => c.handle_datagram_in_place(now, from, datagram),
            Target::Endpoint(e) => e.handle_datagram_in_place(now, from, datagram),
        }
    }

    /// See [`Endpoint::handle_timeout`].
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match self.target() {
            Target::Client(c) => c.handle_timeout(now),
            Target::Endpoint(e) => e.handle_timeout(now),
        }
    }

    /// See [`Endpoint::poll_transmit`]: buffers of
    /// [`MAX_UDP_PAYLOAD_SIZE`](srudp_proto::MAX_UDP_PAYLOAD_SIZE) (at least
    /// [`MAX_DATAGRAM_SIZE`](srudp_proto::MAX_DATAGRAM_SIZE), which keeps
    /// every datagram at the base size).
    pub(crate) fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        match self.target() {
            Target::Client(c) => c.poll_transmit(now, buf),
            Target::Endpoint(e) => e.poll_transmit(now, buf),
        }
    }

    /// See [`Endpoint::poll_timeout`].
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.client() {
            Some(c) => c.poll_timeout(),
            None => self.endpoint().poll_timeout(),
        }
    }

    /// The next event: the endpoint's own, or the client's (which wraps the
    /// endpoint's application events as [`ClientEvent::Connection`]).
    pub(crate) fn poll_event(&mut self) -> Option<ClientEvent> {
        match self.target() {
            Target::Client(c) => c.poll_event(),
            Target::Endpoint(e) => e
                .poll_event()
                .map(|(handle, event)| ClientEvent::Connection { handle, event }),
        }
    }

    /// Connections of the application (the rendezvous link not counted).
    pub(crate) fn application_connection_count(&self) -> usize {
        let all = self.endpoint().connection_count();
        all - usize::from(self.server_link().is_some() && all > 0)
    }

    /// Connections not over yet (see `Endpoint::unfinished_connection_count`),
    /// the live rendezvous link not counted: it is not the application's.
    /// A link closed by `stop_rendezvous` counts until the server answered
    /// its CLOSE (one round trip), so that a closed endpoint's server has
    /// heard it leave — its name is free — when `wait_idle` returns.
    pub(crate) fn unfinished_application_connections(&self) -> usize {
        let endpoint = self.endpoint();
        let link_unfinished = self.server_link().is_some_and(|l| !endpoint.is_over(l));
        endpoint
            .unfinished_connection_count()
            .saturating_sub(usize::from(link_unfinished))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use srudp_proto::rendezvous::ClientConfig;
    use srudp_proto::{EndpointConfig, Keypair, Rng};

    fn endpoint(seed: u64) -> Endpoint {
        let mut config = EndpointConfig::new(Keypair::generate(&mut Rng::from_seed(seed)));
        config.rng_seed = Some(seed);
        Endpoint::new(config).unwrap()
    }

    fn server() -> (srudp_proto::PublicKey, SocketAddr) {
        let key = Keypair::generate(&mut Rng::from_seed(99)).public();
        (key, "192.0.2.7:4433".parse().unwrap())
    }

    #[test]
    fn a_plain_endpoint_has_no_client_and_its_events_are_connection_events() {
        let mut driven = DrivenEndpoint::plain(endpoint(1));
        let now = Instant::now();
        assert!(driven.client().is_none() && driven.server_link().is_none());
        let (key, addr) = server();
        driven.endpoint_mut().connect(now, key, &[addr]).unwrap();
        let mut buf = [0u8; srudp_proto::MAX_DATAGRAM_SIZE];
        let t = driven
            .poll_transmit(now, &mut buf)
            .expect("the handshake goes out");
        assert_eq!(t.destination, addr);
        assert_eq!(driven.application_connection_count(), 1);
        driven.stop_rendezvous(now);
        assert_eq!(
            driven.application_connection_count(),
            1,
            "stopping is a no-op"
        );
        // A handshake that never gets an answer ends in a Closed event,
        // wrapped as a connection event.
        let mut now = now;
        let mut closed = false;
        for _ in 0..1000 {
            while driven.poll_transmit(now, &mut buf).is_some() {}
            while let Some(event) = driven.poll_event() {
                assert!(matches!(event, ClientEvent::Connection { .. }), "{event:?}");
                closed |= matches!(
                    event,
                    ClientEvent::Connection {
                        event: srudp_proto::Event::Closed { .. },
                        ..
                    }
                );
            }
            match driven.poll_timeout() {
                Some(t) if !closed => {
                    now = t;
                    driven.handle_timeout(now);
                }
                _ => break,
            }
        }
        assert!(closed, "the unanswered handshake timed out");
    }

    #[test]
    fn a_rendezvous_client_links_to_its_server_and_stopping_it_closes_that_link() {
        let now = Instant::now();
        let (key, addr) = server();
        let client = RendezvousClient::new(now, endpoint(2), ClientConfig::new(key, addr)).unwrap();
        let mut driven = DrivenEndpoint::rendezvous(client);
        driven.handle_timeout(now);
        let mut buf = [0u8; srudp_proto::MAX_DATAGRAM_SIZE];
        let t = driven
            .poll_transmit(now, &mut buf)
            .expect("the client dials its server");
        assert_eq!(t.destination, addr);
        assert!(driven.server_link().is_some());
        assert_eq!(
            driven.application_connection_count(),
            0,
            "the server link is not the application's"
        );
        driven.stop_rendezvous(now);
        assert!(driven.client().is_none() && driven.server_link().is_none());
        while driven.poll_transmit(now, &mut buf).is_some() {}
        // Long after every reconnect backoff: nothing dials the server again.
        let later = now + std::time::Duration::from_secs(600);
        driven.handle_timeout(later);
        assert!(
            driven.poll_transmit(later, &mut buf).is_none(),
            "a stopped client does not reconnect"
        );
    }
}
