//! Rendezvous: peers find each other by key or name through a server they
//! both reach, punch through their NATs at a coordinated moment, fall back to
//! the server's relay when no direct path works, and learn how their NATs
//! behave (spec §11).
//!
//! * [`RendezvousServer`] wraps the server's [`Endpoint`](crate::Endpoint)
//!   (and optionally a second socket for NAT tests).
//! * [`RendezvousClient`] wraps a peer's endpoint: the same socket talks to
//!   the server and to peers, so the address the server observes is the one
//!   peers punch toward.
//! * [`RendezvousAddr`] is the server's `KEY@HOST:PORT` as users give it,
//!   and [`Ticket`] the one word a listener hands to a peer.
//!
//! Both are sans-IO and are driven like an endpoint: datagrams and timeouts
//! in, datagrams, events and the next deadline out (see each type's docs).
//! Every hop is authenticated: a client proves its key to the server with
//! IK; introduced peers open their connection with IK to the key the server
//! named, so a lying server can misdirect or drop traffic but impersonate no
//! one; relayed datagrams stay end-to-end encrypted.
//!
//! [`message`] is the wire format of the messages on the client–server
//! connection; its parser is exposed for fuzzing.

mod address;
mod candidate_filter;
mod client;
mod group;
pub mod message;
mod nat;
mod registry;
mod relay_table;
mod server;
mod source;
mod stream;
mod ticket;

pub use crate::token_bucket::RateLimit;
pub use address::{RendezvousAddr, RendezvousAddrError, MAX_RENDEZVOUS_ADDR_LEN};
pub use client::{ClientConfig, ClientEvent, RendezvousClient, RendezvousError};
pub use group::{
    GroupId, GroupMembership, GroupSecret, GroupSecretError, MemberProof, GROUP_SECRET_LEN,
};
pub use message::{
    ErrorCode, Message, MessageError, Name, RequestId, Target, MAX_MESSAGE_CANDIDATES,
};
pub use nat::{NatBehavior, NatFiltering, NatMapping};
pub use server::{RendezvousServer, ServerConfig, ServerEvent, ServerStats};
pub use source::SourcePrefix;
pub use ticket::{Ticket, TicketError};

/// Application close codes on client–server connections (spec §11.2).
pub mod close_code {
    /// A malformed rendezvous message.
    pub const MALFORMED_MESSAGE: u32 = 1;
    /// The same key registered again over another connection.
    pub const REPLACED: u32 = 2;
    /// The peer did not read its messages; the backlog overflowed.
    pub const BACKLOG: u32 = 3;
}
