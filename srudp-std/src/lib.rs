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
//! * Errors are [`std::io::Error`]s with a meaningful kind — `TimedOut`
//!   (idle or handshake timeout), `ConnectionRefused`, `ConnectionReset` (the
//!   peer aborted), `BrokenPipe` (writing after shutdown), `NotConnected`
//!   (using a closed stream or endpoint), `WouldBlock` (a read/write/accept
//!   timeout you set passed) — whose source is an [`Error`]; [`close_reason`]
//!   extracts the srudp [`CloseReason`].
//! * Nothing panics on misuse, and dropping never blocks forever: a dropped
//!   stream delivers what was written in the background (bounded by its
//!   close timeout); the driver thread stops and is joined when the last
//!   endpoint handle and stream are gone, or at once with [`Endpoint::close`].
//!
//! ## How the driver works
//!
//! The driver thread owns the socket and is the only caller of srudp-proto's
//! inputs. It sleeps in the OS poller (epoll, kqueue or IOCP, through `mio`)
//! until the earliest of: a datagram arrives, the protocol's next deadline
//! (`poll_timeout`) passes, or the application acts — a command (write,
//! read, close…) is applied under the endpoint's lock and then wakes the
//! driver, which sends what the command produced. There is no polling tick:
//! an idle endpoint uses no CPU until a keepalive is due. The adapter holds
//! no protocol logic: it moves datagrams, time and commands into srudp-proto
//! and events out.
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

mod driver;
mod endpoint;
mod error;
mod rendezvous_client;
mod socket;
mod state;
mod stream;

pub use endpoint::Endpoint;
pub use error::{close_reason, Error};
pub use srudp_net::host_candidates;
pub use stream::Stream;

pub use srudp_proto;
pub use srudp_proto::{
    AcceptPolicy, CloseReason, ConnectOptions, ConnectionStats, EndpointConfig, EndpointStats,
    HandshakePattern, Keypair, PathKind, PublicKey, TicketSecret, TransportConfig,
};

/// Rendezvous: registering an endpoint, reaching peers by key or name, the
/// relay, NAT behaviour (spec §11). See [`Endpoint::bind_with_rendezvous`].
/// The server runs elsewhere (for example `srudp-tokio`'s
/// `RendezvousServer` or the `srudp` command).
pub mod rendezvous {
    pub use crate::rendezvous_client::RendezvousStatus;
    pub use srudp_proto::rendezvous::{
        ClientConfig, ErrorCode, Name, NatBehavior, NatFiltering, NatMapping, RendezvousError,
        Ticket, TicketError,
    };
}
