//! What the driver drives: the protocol endpoint alone, or the endpoint
//! inside a rendezvous client (which then takes its place in the calling
//! contract: inputs, transmits, events and deadlines all go through it).
//!
//! It dereferences to the [`Endpoint`] for the per-connection calls (read,
//! write, close, stats…). Its own `handle_datagram`, `handle_timeout`,
//! `poll_transmit`, `poll_timeout` and `poll_event` take precedence over the
//! endpoint's (inherent methods before `Deref`), so the driver's calling
//! contract always goes through the client when there is one.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

use srudp_proto::rendezvous::{ClientEvent, RendezvousClient};
use srudp_proto::{Endpoint, Transmit};

/// The endpoint, plain or behind a rendezvous client. Exactly one of the
/// two fields is set.
#[derive(Debug)]
pub(crate) struct Machine {
    plain: Option<Endpoint>,
    client: Option<Box<RendezvousClient>>,
}

impl Machine {
    pub(crate) fn plain(endpoint: Endpoint) -> Machine {
        Machine {
            plain: Some(endpoint),
            client: None,
        }
    }

    pub(crate) fn rendezvous(client: RendezvousClient) -> Machine {
        Machine {
            plain: None,
            client: Some(Box::new(client)),
        }
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        match (&self.client, &self.plain) {
            (Some(c), _) => c.endpoint(),
            (None, Some(e)) => e,
            (None, None) => unreachable!("a Machine always holds an endpoint"),
        }
    }

    pub(crate) fn endpoint_mut(&mut self) -> &mut Endpoint {
        match (&mut self.client, &mut self.plain) {
            (Some(c), _) => c.endpoint_mut(),
            (None, Some(e)) => e,
            (None, None) => unreachable!("a Machine always holds an endpoint"),
        }
    }

    pub(crate) fn client(&self) -> Option<&RendezvousClient> {
        self.client.as_deref()
    }

    pub(crate) fn client_mut(&mut self) -> Option<&mut RendezvousClient> {
        self.client.as_deref_mut()
    }

    /// Stops the rendezvous client, if any: its link to the server is
    /// closed, and nothing reconnects or refreshes anymore.
    pub(crate) fn stop_rendezvous(&mut self, now: Instant) {
        if let Some(client) = self.client.take() {
            let link = client.server_link();
            let mut endpoint = client.into_endpoint();
            if let Some(link) = link {
                endpoint.close(now, link, 0, b"endpoint closed");
            }
            self.plain = Some(endpoint);
        }
    }

    pub(crate) fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        match &mut self.client {
            Some(c) => c.handle_datagram(now, from, datagram),
            None => self.endpoint_mut().handle_datagram(now, from, datagram),
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match &mut self.client {
            Some(c) => c.handle_timeout(now),
            None => self.endpoint_mut().handle_timeout(now),
        }
    }

    pub(crate) fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        match &mut self.client {
            Some(c) => c.poll_transmit(now, buf),
            None => self.endpoint_mut().poll_transmit(now, buf),
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match &self.client {
            Some(c) => c.poll_timeout(),
            None => self.endpoint().poll_timeout(),
        }
    }

    /// The next event: the endpoint's own, or the client's (which wraps the
    /// endpoint's application events as [`ClientEvent::Connection`]).
    pub(crate) fn poll_event(&mut self) -> Option<ClientEvent> {
        match &mut self.client {
            Some(c) => c.poll_event(),
            None => self
                .endpoint_mut()
                .poll_event()
                .map(|(handle, event)| ClientEvent::Connection { handle, event }),
        }
    }
}

impl Deref for Machine {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        self.endpoint()
    }
}

impl DerefMut for Machine {
    fn deref_mut(&mut self) -> &mut Endpoint {
        self.endpoint_mut()
    }
}
