//! Resolving the servers and peers the user names: a rendezvous server
//! (`KEY@HOST:PORT`, parsed by the library's [`RendezvousAddr`]) and a
//! plain `HOST:PORT`, with tokio's resolver.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use srudp_tokio::rendezvous::{RendezvousAddr, StreamTransport};
use srudp_tokio::PublicKey;

use crate::failure::Failure;
use crate::proxy;

/// A rendezvous server, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Rendezvous {
    pub(crate) key: PublicKey,
    pub(crate) addr: SocketAddr,
    /// Its stream carrier (spec §12), on the same IP address, if it has one.
    pub(crate) tcp: Option<SocketAddr>,
    /// How to open the stream carrier: TLS, a proxy (spec §12.6).
    pub(crate) transport: StreamTransport,
}

/// Resolves a rendezvous server's host (an IP address needs no lookup).
pub(crate) async fn resolve_rendezvous(via: &RendezvousAddr) -> Result<Rendezvous, Failure> {
    let addr = match via.socket_addr() {
        Some(addr) => addr,
        None => first_address(&format!("{}:{}", via.host(), via.port())).await?,
    };
    let mut transport = StreamTransport::default();
    transport.tls = via.tls();
    transport.host_name = via.socket_addr().is_none().then(|| via.host().to_string());
    transport.proxy = proxy::for_host(via.host());
    Ok(Rendezvous {
        key: via.key(),
        addr,
        tcp: via.tcp_port().map(|port| SocketAddr::new(addr.ip(), port)),
        transport,
    })
}

/// Resolves `HOST:PORT` to its first address.
pub(crate) async fn resolve(host: &str) -> Result<SocketAddr, Failure> {
    first_address(host).await
}

async fn first_address(host: &str) -> Result<SocketAddr, Failure> {
    tokio::net::lookup_host(host)
        .await
        .map_err(|e| Failure::msg(format!("cannot resolve {host:?}: {e}")))?
        .next()
        .ok_or_else(|| Failure::msg(format!("{host:?} has no address")))
}

/// The local address to bind when talking to `remote`: loopback for a
/// loopback server (everything stays on this host), else any address of
/// its family.
pub(crate) fn default_bind(remote: SocketAddr, port: u16) -> SocketAddr {
    let ip = match remote.ip() {
        ip if ip.is_loopback() => ip,
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, port)
}
