//! A rendezvous server as clients name it (`KEY@HOST:PORT`, what
//! `srudp rendezvous` prints), parsed by clap and resolved when used.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use srudp_tokio::PublicKey;

use crate::failure::Failure;

/// `KEY@HOST:PORT`, parsed but not resolved.
#[derive(Debug, Clone)]
pub(crate) struct RendezvousAddr {
    pub(crate) key: PublicKey,
    pub(crate) host: String,
}

impl FromStr for RendezvousAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<RendezvousAddr, String> {
        let (key, host) = s.trim().split_once('@').ok_or_else(|| {
            format!(
                "invalid rendezvous {s:?}: expected KEY@HOST:PORT as printed by `srudp rendezvous`"
            )
        })?;
        let key: PublicKey = key
            .parse()
            .map_err(|e| format!("invalid rendezvous key in {s:?}: {e}"))?;
        Ok(RendezvousAddr {
            key,
            host: host.to_string(),
        })
    }
}

impl fmt::Display for RendezvousAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.key, self.host)
    }
}

/// A rendezvous server, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Rendezvous {
    pub(crate) key: PublicKey,
    pub(crate) addr: SocketAddr,
}

impl RendezvousAddr {
    /// Resolves the host.
    pub(crate) async fn resolve(&self) -> Result<Rendezvous, Failure> {
        Ok(Rendezvous {
            key: self.key,
            addr: resolve(&self.host).await?,
        })
    }
}

/// Parses and resolves `KEY@HOST:PORT` (from a ticket).
pub(crate) async fn resolve_rendezvous(s: &str) -> Result<Rendezvous, Failure> {
    let addr: RendezvousAddr = s.parse().map_err(Failure::msg)?;
    addr.resolve().await
}

/// Resolves `HOST:PORT` to its first address.
pub(crate) async fn resolve(host: &str) -> Result<SocketAddr, Failure> {
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
