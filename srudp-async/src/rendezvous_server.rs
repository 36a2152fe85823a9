//! A rendezvous and relay server on tokio (spec §11): the protocol's
//! [`srudp_proto::rendezvous::RendezvousServer`] driven by one task over
//! its main UDP socket, for NAT behaviour tests a second one, and, with a
//! stream carrier (spec §12), TCP connections as further paths
//! ([`crate::stream_paths`]).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use srudp_proto::rendezvous::{self as proto, ServerConfig, ServerEvent, ServerStats};
use srudp_proto::MAX_DATAGRAM_SIZE;
use srudp_proto::{EndpointConfig, PublicKey};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{debug, info, trace};

use srudp_net::socket::{self, canonical, Family};

use crate::stream_paths::{
    Routed, StreamCarrierConfig, StreamCarrierStats, StreamPaths, StreamPathsHandle,
};

/// Receive buffer: longer datagrams are not ours and arrive truncated.
const RECV_BUF: usize = 2048;
/// Datagrams received in a row before the server sends what it owes.
const RECV_BATCH: usize = 64;

/// A rendezvous and relay server running on the current tokio runtime.
///
/// Peers register at it (by key, optionally with a name), ask it to be
/// introduced to each other, punch through their NATs at the moment it
/// coordinates, fall back to its relay when no direct path works (the relay
/// forwards end-to-end encrypted datagrams it can neither read nor forge),
/// and test their NAT's behaviour against its second port.
///
/// The server runs until [`shutdown`](RendezvousServer::shutdown) or until
/// this handle is dropped.
///
/// ```no_run
/// # async fn example() -> std::io::Result<()> {
/// use srudp_async::rendezvous::ServerConfig;
/// use srudp_async::{EndpointConfig, Keypair, RendezvousServer};
///
/// let server = RendezvousServer::bind(
///     "0.0.0.0:4433".parse().unwrap(),
///     EndpointConfig::new(Keypair::generate_from_os()),
///     ServerConfig::default(),
///     Some(4434), // a second port, for NAT behaviour tests
/// )?;
/// println!("clients use {}@{}", server.public_key(), server.local_addr());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RendezvousServer {
    shared: Arc<ServerShared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The state machine and what the handle reports, shared by the server's
/// task, its stream connections' tasks and the handle.
#[derive(Debug)]
pub(crate) struct ServerShared {
    server: Mutex<proto::RendezvousServer>,
    local_addr: SocketAddr,
    alt_addr: Option<SocketAddr>,
    public_key: PublicKey,
    stream: Option<StreamPathsHandle>,
}

impl ServerShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, proto::RendezvousServer> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RendezvousServer {
    /// Binds the server's UDP socket to `addr` and, with `second_port`, a
    /// second socket on the same IP and that port (0: any free port) for
    /// NAT behaviour tests — and beside it a send-only third socket on any
    /// free port, the source of their unsolicited filtering probes (spec
    /// §11.7) — then starts serving on the current tokio
    /// runtime (which needs IO and time enabled).
    ///
    /// Clients are told the second socket's address as
    /// [`ServerConfig::alt_address`] when it is set (give the address they
    /// reach, for a server behind a port forward or bound to `0.0.0.0`), or
    /// else as the bound address. Errors: a bind fails, the configuration
    /// is invalid (`InvalidInput`), no tokio runtime (`Other`).
    pub fn bind(
        addr: SocketAddr,
        endpoint_config: EndpointConfig,
        config: ServerConfig,
        second_port: Option<u16>,
    ) -> io::Result<RendezvousServer> {
        RendezvousServer::bind_inner(addr, endpoint_config, config, second_port, None)
    }

    /// [`bind`](Self::bind), and also listens for the stream carrier (spec
    /// §12) on TCP, on the same IP address and `carrier.port`: clients
    /// whose UDP is blocked reach the server, and its relay, over TCP. Each
    /// TCP connection is a path to one client, within the limits of
    /// [`StreamCarrierConfig`]. Clients learn the port from the
    /// rendezvous address (`KEY@HOST:PORT/tcp:TCPPORT`, spec §3.2).
    pub fn bind_with_stream_carrier(
        addr: SocketAddr,
        endpoint_config: EndpointConfig,
        config: ServerConfig,
        second_port: Option<u16>,
        carrier: StreamCarrierConfig,
    ) -> io::Result<RendezvousServer> {
        RendezvousServer::bind_inner(addr, endpoint_config, config, second_port, Some(carrier))
    }

    fn bind_inner(
        addr: SocketAddr,
        endpoint_config: EndpointConfig,
        mut config: ServerConfig,
        second_port: Option<u16>,
        carrier: Option<StreamCarrierConfig>,
    ) -> io::Result<RendezvousServer> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            io::Error::other(
                "srudp_async::RendezvousServer::bind must be called within a tokio runtime",
            )
        })?;
        let invalid = |e| io::Error::new(io::ErrorKind::InvalidInput, e);
        let endpoint = srudp_proto::Endpoint::new(endpoint_config).map_err(invalid)?;
        let public_key = endpoint.public_key();
        let (main, family) = socket::bind(addr)?;
        let local_addr = main.local_addr()?;
        let alt = match second_port {
            Some(port) => {
                let (alt, alt_family) = socket::bind(SocketAddr::new(addr.ip(), port))?;
                let alt_addr = alt.local_addr()?;
                let (filter, _) = socket::bind(SocketAddr::new(addr.ip(), 0))?;
                config.alt_address.get_or_insert(canonical(alt_addr));
                Some((alt, alt_family, alt_addr, filter))
            }
            None => None,
        };
        let server =
            proto::RendezvousServer::new(Instant::now(), endpoint, config).map_err(invalid)?;
        let _enter = runtime.enter();
        let stream = match carrier {
            Some(carrier) => Some(StreamPaths::bind(local_addr.ip(), carrier)?),
            None => None,
        };
        let shared = Arc::new(ServerShared {
            server: Mutex::new(server),
            local_addr,
            alt_addr: alt.as_ref().map(|a| a.2),
            public_key,
            stream: stream.as_ref().map(StreamPaths::handle),
        });
        let main = UdpSocket::from_std(main)?;
        let alt = match alt {
            Some((s, f, _, filter)) => Some(NatTestSockets {
                alt: UdpSocket::from_std(s)?,
                filter: UdpSocket::from_std(filter)?,
                family: f,
            }),
            None => None,
        };
        let (stop, stopped) = watch::channel(false);
        let tcp = stream.as_ref().map(StreamPaths::local_addr);
        let task = runtime.spawn(serve(shared.clone(), (main, family), alt, stream, stopped));
        info!(%local_addr, alt = ?shared.alt_addr, ?tcp, key = %public_key, "rendezvous server listening");
        Ok(RendezvousServer {
            shared,
            stop,
            task: Some(task),
        })
    }

    /// The main socket's address (what clients put in their configuration).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The second socket's address, when there is one.
    pub fn alt_addr(&self) -> Option<SocketAddr> {
        self.shared.alt_addr
    }

    /// The stream carrier's TCP address, when the server has one.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.shared
            .stream
            .as_ref()
            .map(StreamPathsHandle::local_addr)
    }

    /// The stream carrier's counters and open connections, when the
    /// server has one.
    pub fn stream_carrier_stats(&self) -> Option<StreamCarrierStats> {
        self.shared.stream.as_ref().map(StreamPathsHandle::stats)
    }

    /// The server's public key (what clients put in their configuration).
    pub fn public_key(&self) -> PublicKey {
        self.shared.public_key
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        self.shared.lock().stats().clone()
    }

    /// Registrations held now.
    pub fn registration_count(&self) -> usize {
        self.shared.lock().registration_count()
    }

    /// Relay sessions allotted now (offers not counted).
    pub fn relay_count(&self) -> usize {
        self.shared.lock().relay_count()
    }

    /// Whether `key` is registered, and at which observed address.
    pub fn registered_address(&self, key: &PublicKey) -> Option<SocketAddr> {
        self.shared.lock().registered_address(key)
    }

    /// Stops serving and waits until the sockets are closed (so the port
    /// can be bound again at once). Clients see the server go silent.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RendezvousServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The sockets of NAT tests: the second socket, which receives the
/// clients' mapping probes, and the filter socket, which only sends the
/// unsolicited filtering probes (both of one family, on one IP).
struct NatTestSockets {
    alt: UdpSocket,
    filter: UdpSocket,
    family: Family,
}

/// The server's task: receive on both sockets, run timers, send what the
/// server owes, until told to stop.
async fn serve(
    shared: Arc<ServerShared>,
    (main, family): (UdpSocket, Family),
    alt: Option<NatTestSockets>,
    mut stream: Option<StreamPaths>,
    mut stopped: watch::Receiver<bool>,
) {
    serve_until_stopped(&shared, (main, family), alt, &mut stream, &mut stopped).await;
    if let Some(stream) = &mut stream {
        stream.shutdown().await;
    }
}

async fn serve_until_stopped(
    shared: &Arc<ServerShared>,
    (main, family): (UdpSocket, Family),
    alt: Option<NatTestSockets>,
    stream: &mut Option<StreamPaths>,
    stopped: &mut watch::Receiver<bool>,
) {
    let mut recv = vec![0u8; RECV_BUF];
    // The base size: the server's datagrams never grow by path MTU
    // discovery (spec §6.9), which a buffer this small turns off: its
    // sockets do not set DF, so a probe could pass fragmented.
    let mut send = vec![0u8; MAX_DATAGRAM_SIZE];
    loop {
        // Send everything the server owes, then log its events.
        let deadline = {
            let mut server = shared.lock();
            let now = Instant::now();
            if server.poll_timeout().is_some_and(|t| t <= now) {
                server.handle_timeout(now);
            }
            while let Some(t) = server.poll_transmit(now, &mut send) {
                // A client on a stream path gets its datagrams there.
                if let Some(stream) = stream.as_ref() {
                    if stream.route(t.destination, &send[..t.size]) != Routed::NotStream {
                        continue;
                    }
                }
                if let Some(to) = family.destination(t.destination) {
                    // A full socket buffer drops the datagram, like the
                    // network would; the protocol recovers.
                    if let Err(e) = main.try_send_to(&send[..t.size], to) {
                        trace!(%to, "send error: {e}");
                    }
                }
            }
            if let Some(nat) = &alt {
                while let Some(t) = server.poll_filter_transmit(&mut send) {
                    if let Some(to) = nat.family.destination(t.destination) {
                        if let Err(e) = nat.filter.try_send_to(&send[..t.size], to) {
                            trace!(%to, "send error on the filter socket: {e}");
                        }
                    }
                }
            }
            while let Some(event) = server.poll_event() {
                log_event(&event);
            }
            if let Some(stream) = stream.as_mut() {
                if stream.next_sweep().is_some_and(|t| t <= now) {
                    stream.sweep(now, server.client_addresses());
                }
            }
            let sweep = stream.as_ref().and_then(StreamPaths::next_sweep);
            [server.poll_timeout(), sweep].into_iter().flatten().min()
        };
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        let alt_readable = async {
            match &alt {
                Some(nat) => nat.alt.readable().await,
                None => std::future::pending().await,
            }
        };
        let stream_event = async {
            match stream.as_mut() {
                Some(s) => s.next(shared).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stopped.changed() => {
                debug!("rendezvous server stopped");
                return;
            }
            _ = sleep => {}
            _ = stream_event => {}
            r = main.readable() => {
                if r.is_err() {
                    return;
                }
                let mut server = shared.lock();
                for _ in 0..RECV_BATCH {
                    match main.try_recv_from(&mut recv) {
                        Ok((len, from)) => {
                            server.handle_datagram(Instant::now(), canonical(from), &recv[..len]);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // ICMP errors for earlier sends: not fatal.
                        Err(e) => trace!("receive error: {e}"),
                    }
                }
            }
            r = alt_readable => {
                if r.is_err() {
                    return;
                }
                if let Some(nat) = &alt {
                    let mut server = shared.lock();
                    for _ in 0..RECV_BATCH {
                        match nat.alt.try_recv_from(&mut recv) {
                            Ok((len, from)) => server.handle_alt_datagram(
                                Instant::now(),
                                canonical(from),
                                &recv[..len],
                            ),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => trace!("receive error on the second socket: {e}"),
                        }
                    }
                }
            }
        }
    }
}

fn log_event(event: &ServerEvent) {
    match event {
        ServerEvent::Registered {
            key,
            name,
            observed,
        } => match name {
            Some(name) => info!(%key, %name, %observed, "registered"),
            None => info!(%key, %observed, "registered"),
        },
        ServerEvent::Unregistered { key } => info!(%key, "unregistered"),
        ServerEvent::Introduced {
            caller,
            callee,
            relay,
        } => info!(%caller, %callee, relay = relay.is_some(), "introduced"),
        ServerEvent::ClientDropped { handle, reason } => {
            info!(%handle, "client dropped: {reason}")
        }
        other => debug!(?other, "server event"),
    }
}
