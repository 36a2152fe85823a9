//! # srudp-async — the runtime-agnostic core of srudp's async adapters
//!
//! `srudp-tokio` and `srudp-async-std` run the protocol ([`srudp_proto`]) the
//! same way; only the socket, the timer and where the driver runs differ.
//! This crate holds what they share, generic over a small [`Runtime`] trait:
//!
//! * [`Endpoint`] — binds the socket, connects, accepts, closes; with a
//!   rendezvous server also registration, connecting by key or name and
//!   the NAT test ([`Endpoint::bind_with_rendezvous`]).
//! * [`Driver`] — the future that owns the socket and drives the protocol:
//!   it receives a batch of datagrams, feeds them to the state machine
//!   under the shared lock, and sends what it produced (many datagrams per
//!   system call: `recvmmsg`, UDP GSO/GRO where the OS has them); it sleeps until a
//!   datagram, the next deadline or the application wakes it.
//! * [`Stream`] — one connection's bytes, as `poll_read` / `poll_write` /
//!   `poll_finish` on plain buffers and a `Context`, which each adapter
//!   turns into its runtime's IO traits.
//!
//! Applications use an adapter: the adapters' crate docs hold the calling
//! contract (cancellation safety, error kinds, when the driver ends).
//!
//! ## Writing an adapter
//!
//! Implement [`Runtime`] for a marker type: its [`AsyncUdpSocket`] (poll
//! readiness, then try a batched receive or send without blocking, with the
//! re-exported [`UdpBatch`], [`Inbox`] and [`Outbox`]) and [`AsyncTimer`]
//! (reset to a deadline). [`Endpoint::bind`] returns the endpoint and its
//! [`Driver<R>`]; spawn the driver on the runtime (it must be polled for
//! anything to move, and dropping it stops the endpoint). Wrap the
//! [`Endpoint`], [`Connecting`] and [`Stream`] in the adapter's public
//! types and implement the runtime's IO traits on its stream with
//! [`Stream::poll_read`], [`Stream::poll_write`] and [`Stream::poll_finish`]
//! (flushing has nothing to do: written bytes are already the protocol's).
//!
//! Every handle shares the state machine behind one mutex, held for the
//! moment of a call and never across an await or a system call; no
//! protocol logic lives here.
#![warn(missing_docs)]

mod driver;
mod endpoint;
mod rendezvous_client;
mod runtime;
mod shared;
mod stream;

pub use driver::Driver;
pub use endpoint::{Connecting, Endpoint};
pub use rendezvous_client::{RendezvousConnecting, RendezvousStatus};
pub use runtime::{AsyncTimer, AsyncUdpSocket, Runtime};
/// srudp-net's batched IO, which an [`AsyncUdpSocket`] runs on its socket.
pub use srudp_net::batch::{Inbox, Outbox, UdpBatch};
pub use stream::{PathWatcher, Stream};
