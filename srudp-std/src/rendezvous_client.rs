//! An endpoint registered at a rendezvous server: reached and reaching
//! peers by key or name, relay fallback, NAT behaviour (spec §11).
//!
//! The protocol's [`RendezvousClient`] takes the endpoint's place in the
//! driver (see [`DrivenEndpoint`](srudp_proto::rendezvous::DrivenEndpoint)); this file turns its events into what
//! blocked callers wait for: connect calls by key or name, the accept queue
//! for peers that asked for us, the registration status and the NAT test.
//! Same design as `srudp-tokio`'s `rendezvous_client`, with condition
//! variables instead of wakers.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use srudp_proto::rendezvous::{
    ClientConfig, ClientEvent, ErrorCode, NatBehavior, RendezvousClient, RendezvousError, RequestId,
};
use srudp_proto::{ConnectionHandle, EndpointConfig, PathKind, PublicKey};
use tracing::debug;

use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::state::{Conn, Signals, State};
use crate::stream::Stream;
use srudp_proto::rendezvous::DrivenEndpoint;

pub use srudp_proto::rendezvous::RendezvousStatus;

/// The adapter's side of the rendezvous client, in the shared state.
#[derive(Debug, Default)]
pub(crate) struct RendezvousState {
    status: RendezvousStatus,
    /// Connect-by-key/name calls: `None` while pending, then the outcome.
    requests: HashMap<RequestId, Option<Result<ConnectionHandle, RendezvousError>>>,
}

impl State {
    /// A peer reached through the rendezvous completed its handshake: it
    /// asked for us (then it joins the accept queue), or it answers one of
    /// our connect calls. Returns whether a connection was released.
    pub(crate) fn on_peer_connected(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        peer: PublicKey,
        request: Option<RequestId>,
        path: PathKind,
        signals: &Signals,
    ) -> bool {
        let remote = self
            .proto
            .endpoint_mut()
            .remote_address(handle)
            .unwrap_or(match path {
                PathKind::Direct(a) | PathKind::Relayed { via: a } => a,
            });
        debug!(%handle, %peer, %path, "peer connected through the rendezvous");
        let Some(request) = request else {
            return self.queue_incoming(now, handle, remote, Some(peer), &signals.accept);
        };
        let pending = self
            .rendezvous
            .as_ref()
            .is_some_and(|r| matches!(r.requests.get(&request), Some(None)));
        if !pending || self.conns.contains_key(&handle) {
            // The connect call gave up, or a second request for a peer we
            // already hold: nobody wants this one.
            if !self.conns.contains_key(&handle) {
                self.proto.endpoint_mut().release(now, handle);
                return true;
            }
            self.finish_request(
                request,
                Err(RendezvousError::Refused(ErrorCode::InvalidRequest)),
                signals,
            );
            return false;
        }
        let mut conn = Conn::new(remote, Some(peer));
        conn.established = true;
        self.conns.insert(handle, conn);
        self.finish_request(request, Ok(handle), signals);
        false
    }

    fn finish_request(
        &mut self,
        request: RequestId,
        result: Result<ConnectionHandle, RendezvousError>,
        signals: &Signals,
    ) {
        if let Some(slot @ None) = self
            .rendezvous
            .as_mut()
            .and_then(|r| r.requests.get_mut(&request))
        {
            *slot = Some(result);
            signals.rendezvous.notify_all();
        }
    }

    /// Every rendezvous event other than connections: request failures,
    /// registration, the NAT test.
    pub(crate) fn on_rendezvous_event(&mut self, event: ClientEvent, signals: &Signals) {
        if let ClientEvent::ConnectFailed {
            request,
            peer,
            error,
        } = event
        {
            debug!(?peer, "connection through the rendezvous failed: {error}");
            if let Some(r) = request {
                self.finish_request(r, Err(error), signals);
            }
            return;
        }
        let Some(rdv) = &mut self.rendezvous else {
            return;
        };
        if !rdv.status.apply(&event) {
            debug!(?event, "rendezvous event");
            return;
        }
        signals.rendezvous.notify_all();
    }
}

fn no_rendezvous() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "this endpoint was not bound with a rendezvous server (Endpoint::bind_with_rendezvous)",
    )
}

impl Endpoint {
    /// Binds a UDP socket to `addr` like [`bind`](Endpoint::bind), and
    /// registers the endpoint at the rendezvous server named by
    /// `rendezvous` (its key and address, and the name to register under),
    /// over the same socket. The registration is kept alive and renewed by
    /// itself after the server is lost.
    ///
    /// When `rendezvous.host_candidates` is empty, it is filled with
    /// [`host_candidates`](crate::host_candidates) of the bound address
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
        Endpoint::bind_machine(addr, config, move |endpoint, local| {
            let mut rendezvous = rendezvous;
            if rendezvous.host_candidates.is_empty() {
                rendezvous.host_candidates = crate::host_candidates(local);
            }
            let client = RendezvousClient::new(Instant::now(), endpoint, rendezvous)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            Ok(DrivenEndpoint::rendezvous(client))
        })
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
        self.rendezvous_request(|client, now| client.connect_by_key(now, peer))
    }

    /// [`connect_by_key`](Endpoint::connect_by_key) for the peer registered
    /// under `name`.
    pub fn connect_by_name(&self, name: &str) -> io::Result<Stream> {
        self.rendezvous_request(|client, now| client.connect_by_name(now, name))
    }

    fn rendezvous_request(
        &self,
        f: impl FnOnce(&mut RendezvousClient, Instant) -> Result<RequestId, RendezvousError>,
    ) -> io::Result<Stream> {
        let shared = self.shared();
        let mut state = shared.lock();
        if let Some(e) = state.stopped_error() {
            return Err(e.into());
        }
        let client = state.proto.client_mut().ok_or_else(no_rendezvous)?;
        let request = f(client, Instant::now()).map_err(io::Error::from)?;
        if let Some(rdv) = &mut state.rendezvous {
            rdv.requests.insert(request, None);
        }
        shared.wake_driver(&mut state);
        // Bounded: the client ends every request (answer, error or timeout).
        loop {
            if let Some(e) = state.stopped_error() {
                if let Some(rdv) = &mut state.rendezvous {
                    rdv.requests.remove(&request);
                }
                return Err(e.into());
            }
            let outcome = state
                .rendezvous
                .as_mut()
                .and_then(|r| r.requests.remove(&request));
            match outcome {
                Some(Some(Ok(handle))) => {
                    drop(state);
                    return Ok(Stream::new(self.inner().clone(), handle));
                }
                Some(Some(Err(e))) => return Err(io::Error::from(e)),
                Some(None) => {
                    if let Some(rdv) = &mut state.rendezvous {
                        rdv.requests.insert(request, None);
                    }
                }
                None => return Err(io::Error::other("unknown rendezvous request")),
            }
            (state, _) = shared.wait(&shared.signals.rendezvous, state, None);
        }
    }

    /// Where the endpoint stands with its rendezvous server; `None` for an
    /// endpoint bound without one.
    pub fn rendezvous_status(&self) -> Option<RendezvousStatus> {
        self.shared().lock().rendezvous.as_ref().map(|r| r.status)
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
        self.wait_rendezvous(timeout, |s| match (s.registered, s.observed, s.refused) {
            (true, Some(observed), _) => Some(Ok(observed)),
            (_, _, Some(code)) => Some(Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                RendezvousError::Refused(code),
            ))),
            _ => None,
        })
    }

    /// The NAT behaviour as tested through the rendezvous server (its
    /// second port, spec §11.7): runs a test once registered if none ran
    /// yet, then blocks for the result, at most `timeout`. Without a second
    /// port on the server, the mapping and filtering come back `Unknown`.
    pub fn nat_behavior(&self, timeout: Option<Duration>) -> io::Result<NatBehavior> {
        let shared = self.shared();
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = shared.lock();
        loop {
            if let Some(e) = state.stopped_error() {
                return Err(e.into());
            }
            let status = state.rendezvous.as_ref().ok_or_else(no_rendezvous)?.status;
            if let Some(nat) = status.nat {
                return Ok(nat);
            }
            if status.registered {
                if let Some(c) = state.proto.client_mut() {
                    if c.detect_nat(Instant::now()) {
                        shared.wake_driver(&mut state);
                    }
                }
            }
            let timed_out;
            (state, timed_out) = shared.wait(&shared.signals.rendezvous, state, deadline);
            if timed_out {
                return Err(Error::WaitTimeout.into());
            }
        }
    }

    fn wait_rendezvous<T>(
        &self,
        timeout: Option<Duration>,
        ready: impl Fn(RendezvousStatus) -> Option<io::Result<T>>,
    ) -> io::Result<T> {
        let shared = self.shared();
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = shared.lock();
        loop {
            if let Some(e) = state.stopped_error() {
                return Err(e.into());
            }
            let status = state.rendezvous.as_ref().ok_or_else(no_rendezvous)?.status;
            if let Some(result) = ready(status) {
                return result;
            }
            let timed_out;
            (state, timed_out) = shared.wait(&shared.signals.rendezvous, state, deadline);
            if timed_out {
                return Err(Error::WaitTimeout.into());
            }
        }
    }
}
