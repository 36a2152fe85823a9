//! # srudp-std — srudp with blocking calls and a background thread
//!
//! srudp gives two programs, possibly both behind NATs, an encrypted,
//! reliable, ordered byte stream over UDP. This crate runs the protocol
//! ([`srudp_proto`]) on a real UDP socket for ordinary blocking programs: no
//! async runtime, just `connect`, `accept`, `send_all`, `recv`, `close` —
//! the calls a user of the Python srudp `SecureReliableSocket` knows — and
//! `std::io::Read`/`Write`.
//!
//! ## The calling contract
//!
//! * [`Endpoint::bind`] binds one UDP socket (IPv4, IPv6, or dual-stack
//!   `[::]`) and starts **one driver thread** for it. Every connection of
//!   the endpoint, opened or accepted, shares that socket.
//! * Peers are named by their [`PublicKey`]. [`Endpoint::connect`] takes the
//!   peer's key and one or more candidate addresses, punches all of them and
//!   blocks until the connection is established. **Both sides may call
//!   `connect` toward each other at once** (hole punching): exactly one
//!   connection results and each side's `connect` returns it.
//! * [`Endpoint::accept`] blocks until a peer connects, and yields the
//!   [`Stream`], the peer's address and — when the peer authenticated with
//!   the IK pattern — its key. Who may connect is the [`AcceptPolicy`] of
//!   the [`EndpointConfig`].
//! * A [`Stream`] is a `TcpStream`-like byte stream. Writes block while the
//!   send buffer is full (backpressure); reads block until data arrives and
//!   return `0` after the peer finished. [`Stream::shutdown`] finishes our
//!   direction, [`Stream::close`] finishes it and waits until the peer
//!   acknowledged every byte, [`Stream::abort`] ends the connection with a
//!   code. Read/write timeouts are per stream.
//! * Every call is thread-safe (`&self`); clone an [`Endpoint`] or
//!   [`Stream::try_clone`] to use it from several threads.
//! * Errors are [`std::io::Error`]s whose kinds are the same in every srudp
//!   adapter — `TimedOut` (idle or handshake timeout), `ConnectionRefused`,
//!   `ConnectionReset` (the peer aborted), `ConnectionAborted` (a stream
//!   this side ended: [`Stream::abort`], [`Stream::close`],
//!   [`Endpoint::close`]), `BrokenPipe` (writing after shutdown),
//!   `NotConnected` (`accept` or `connect` on a closed endpoint) — plus `WouldBlock` when a read, write or
//!   accept timeout you set passed ([`Error`] holds the blocking-only
//!   conditions); [`close_reason`] extracts the srudp [`CloseReason`].
//! * Nothing panics on misuse, and dropping never blocks: a dropped stream
//!   delivers what was written in the background (closed abruptly if the
//!   peer has not finished within the idle timeout); a dropped or closed
//!   endpoint lingers in the background until its peers have heard the
//!   close. Before the program exits, [`Endpoint::wait_idle`] waits for that.
//!
//! ## How it runs
//!
//! This crate is a thin blocking layer over `srudp-async`, the core every
//! srudp adapter shares: the endpoint's driver (which owns the socket and
//! drives srudp-proto's state machine) runs on a thread of its own, named
//! `srudp-driver`, which waits in an OS poller of its own (srudp-async's
//! `Endpoint::bind_on_thread`); every blocking call parks the calling
//! thread on the same futures the async adapters await, with the timeouts
//! you set, until the driver thread wakes it.
//! The driver sleeps until the earliest of: a datagram arrives, the
//! protocol's next deadline passes, or the application acts. There is no
//! polling tick: an idle endpoint uses no CPU until a keepalive is due.
//! Because that thread waits on the endpoint's one socket, it opens no
//! spare sockets for the hard-NAT round (srudp-proto's
//! `Transmit::spare_sockets` hint, spec §4.4): it sends that knock once
//! from its socket. A symmetric NAT facing an endpoint-independent one
//! then stays on the relay with srudp-std, where the tokio and async-std
//! adapters find a direct path.
//!
//! ## Example
//!
//! ```
//! use std::io::{Read, Write};
//! use srudp_std::{Endpoint, EndpointConfig, Keypair};
//!
//! # fn main() -> std::io::Result<()> {
//! let server = Endpoint::bind("127.0.0.1:0", EndpointConfig::new(Keypair::generate_from_os()))?;
//! let (key, addr) = (server.public_key(), server.local_addr()?);
//! let echo = std::thread::spawn(move || -> std::io::Result<()> {
//!     let (mut stream, _peer_addr, _peer_key) = server.accept()?;
//!     let mut request = Vec::new();
//!     stream.read_to_end(&mut request)?; // until the client shuts down
//!     stream.write_all(&request)?;
//!     stream.close() // waits until the client has every byte
//! });
//!
//! let client = Endpoint::bind("127.0.0.1:0", EndpointConfig::new(Keypair::generate_from_os()))?;
//! let mut stream = client.connect(key, &[addr])?;
//! stream.write_all(b"hello srudp")?;
//! stream.shutdown()?;
//! let mut reply = Vec::new();
//! stream.read_to_end(&mut reply)?;
//! assert_eq!(reply, b"hello srudp");
//! stream.close()?;
//! echo.join().unwrap()?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod block;
mod endpoint;
mod error;
mod rendezvous_client;
mod stream;

pub use endpoint::Endpoint;
pub use error::{close_reason, connect_error, driver_stopped, rendezvous_error, Error};
pub use srudp_async::host_candidates;
pub use stream::Stream;

pub use srudp_async::{DriverStopped, StreamError};
pub use srudp_async::{
    MappedPort, PortMapping, PortMappingProtocol, PortMappingState, EPOCH_PROBE, MAX_LEASE,
};
pub use srudp_proto;
pub use srudp_proto::{
    AcceptPolicy, Cipher, CloseReason, ConfigError, ConnectOptions, ConnectionStats, CookieMode,
    EndpointConfig, EndpointStats, HandshakePattern, Keypair, PathKind, PublicKey, SecretKey,
    TicketSecret, TransportConfig,
};

/// Rendezvous: registering an endpoint, reaching peers by key or name, the
/// relay, NAT behaviour (spec §11). See [`Endpoint::bind_with_rendezvous`].
/// The server runs elsewhere (for example srudp-async's `RendezvousServer`
/// or the `srudp` command).
pub mod rendezvous {
    pub use crate::rendezvous_client::RendezvousStatus;
    pub use srudp_proto::rendezvous::{
        ClientConfig, ErrorCode, GroupSecret, Name, NatBehavior, NatFiltering, NatMapping,
        RendezvousAddr, RendezvousAddrError, RendezvousError, Ticket, TicketError,
    };
}
