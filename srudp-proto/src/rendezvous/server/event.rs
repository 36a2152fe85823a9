//! What a [`RendezvousServer`](super::RendezvousServer) reports to its operator.

use std::net::SocketAddr;

use crate::rendezvous::message::Name;
use crate::{ConnectionHandle, PublicKey, RelaySessionId};

/// Something an operator may want to log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A key registered (first time, or from a new connection).
    Registered {
        /// The client's key.
        key: PublicKey,
        /// Its name.
        name: Option<Name>,
        /// Its observed address.
        observed: SocketAddr,
    },
    /// A registration ended (unregistered, expired or its connection closed).
    Unregistered {
        /// The client's key.
        key: PublicKey,
    },
    /// Two peers were introduced.
    Introduced {
        /// Who asked.
        caller: PublicKey,
        /// Whom.
        callee: PublicKey,
        /// The relay session offered to them, if the bounds allowed one (it
        /// is allotted when they first relay through it).
        relay: Option<RelaySessionId>,
    },
    /// A client's connection was closed for sending a malformed message or
    /// not reading its messages.
    ClientDropped {
        /// The connection.
        handle: ConnectionHandle,
        /// Why.
        reason: String,
    },
}
