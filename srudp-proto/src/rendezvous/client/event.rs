//! What a [`RendezvousClient`](super::RendezvousClient) reports.

use std::net::SocketAddr;

use super::RendezvousError;
use crate::rendezvous::message::{ErrorCode, Name, RequestId};
use crate::rendezvous::{GroupId, NatBehavior};
use crate::{CloseReason, ConnectionHandle, Event, PathKind, PublicKey};

/// What happened, drained with [`RendezvousClient::poll_event`](super::RendezvousClient::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// An event of an application connection: any connection of the
    /// endpoint but the rendezvous link, once the application knows its
    /// handle (after [`PeerConnected`](Self::PeerConnected) for connections
    /// made through the rendezvous).
    Connection {
        /// The connection.
        handle: ConnectionHandle,
        /// What happened.
        event: Event,
    },
    /// We are registered; `observed` is our address as the server sees it.
    /// Reported on every (re-)registration over a new link and when the
    /// observed address changes.
    Registered {
        /// Our server-reflexive address.
        observed: SocketAddr,
    },
    /// The server refused our registration (the link stays up; the client
    /// retries at every refresh).
    RegistrationRefused {
        /// Why.
        code: ErrorCode,
    },
    /// The link to the server was lost; the client reconnects and
    /// re-registers by itself.
    Disconnected {
        /// Why.
        reason: CloseReason,
    },
    /// A connection to a peer through the rendezvous is up: one we asked for
    /// (`request` is set) or one a peer asked for (`request` is `None`: the
    /// application accepts it by using the handle, or closes it).
    PeerConnected {
        /// The connection.
        handle: ConnectionHandle,
        /// The peer's authenticated key.
        peer: PublicKey,
        /// Our connect request, if we asked.
        request: Option<RequestId>,
        /// How it reaches the peer.
        path: PathKind,
    },
    /// A connection through the rendezvous failed.
    ConnectFailed {
        /// Our connect request, if we asked.
        request: Option<RequestId>,
        /// The peer, when known.
        peer: Option<PublicKey>,
        /// Why.
        error: RendezvousError,
    },
    /// A peer joined one of our groups (or was in it when we joined); it
    /// proved that it holds the group's secret.
    PeerJoined {
        /// The group ([`GroupSecret::id`](crate::rendezvous::GroupSecret::id) of the secret in
        /// [`ClientConfig::groups`](crate::rendezvous::ClientConfig::groups)).
        group: GroupId,
        /// The peer.
        peer: PublicKey,
        /// Its registered name.
        name: Option<Name>,
    },
    /// A peer left one of our groups.
    PeerLeft {
        /// The group.
        group: GroupId,
        /// The peer.
        peer: PublicKey,
    },
    /// The server announced a member of a group without a valid proof that
    /// it holds the group's secret (or for a group we are not in): the
    /// notice was dropped. Only a faulty or malicious server sends one.
    GroupNoticeRejected {
        /// The group the notice named.
        group: GroupId,
        /// The key it announced.
        peer: PublicKey,
    },
    /// The NAT behaviour test finished.
    NatDetected(NatBehavior),
}
