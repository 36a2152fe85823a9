//! What the commands share: the one-line error, rendezvous strings, binding
//! endpoints, path reports, and the `rendezvous` and `nat-check` commands.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use srudp_tokio::rendezvous::{ClientConfig, ServerConfig, Ticket};
use srudp_tokio::{
    AcceptPolicy, Endpoint, EndpointConfig, PathKind, PublicKey, RendezvousServer, Stream,
    TicketSecret,
};

use crate::keys;

/// How long to wait for the rendezvous server to take our registration
/// before calling it unreachable.
pub(crate) const REGISTER_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a connect through the rendezvous may take in all.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// An error for the user: one line.
#[derive(Debug)]
pub(crate) struct Failure(String);

impl Failure {
    pub(crate) fn msg(m: impl Into<String>) -> Failure {
        Failure(m.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the message held.
        f.write_str(&self.0.replace('\n', " "))
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure(e.to_string())
    }
}

/// A rendezvous server as clients name it: `KEY@HOST:PORT`.
#[derive(Debug, Clone)]
pub(crate) struct Rendezvous {
    pub(crate) key: PublicKey,
    pub(crate) addr: SocketAddr,
}

/// Parses and resolves `KEY@HOST:PORT`.
pub(crate) async fn resolve_rendezvous(s: &str) -> Result<Rendezvous, Failure> {
    let (key, host) = s.trim().split_once('@').ok_or_else(|| {
        Failure::msg(format!(
            "invalid rendezvous {s:?}: expected KEY@HOST:PORT as printed by `srudp rendezvous`"
        ))
    })?;
    let key: PublicKey = key
        .parse()
        .map_err(|e| Failure::msg(format!("invalid rendezvous key in {s:?}: {e}")))?;
    let addr = resolve(host).await?;
    Ok(Rendezvous { key, addr })
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

/// Who may connect to a registered endpoint, and with what.
#[derive(Debug, Clone, Default)]
pub(crate) enum Admission {
    /// Nobody: we only connect out (with no ticket).
    #[default]
    ConnectOnly,
    /// We connect out with this ticket, or accept only its holder (spec §4.9).
    Ticket(TicketSecret),
    /// Anyone the server introduces (a listener registered by name).
    Open,
}

impl Admission {
    /// How the holder of `ticket` connects: proving its secret, if it has one.
    pub(crate) fn holding(ticket: &Ticket) -> Admission {
        match &ticket.secret {
            Some(secret) => Admission::Ticket(secret.clone()),
            None => Admission::ConnectOnly,
        }
    }
}

/// An endpoint registered at `rdv` (under `name`), once the server took the
/// registration.
pub(crate) async fn registered_endpoint(
    rdv: &Rendezvous,
    key: Option<&Path>,
    name: Option<String>,
    admission: Admission,
    bind: Option<SocketAddr>,
) -> Result<Endpoint, Failure> {
    let keypair = keys::load_or_generate(key)?;
    let mut config = EndpointConfig::new(keypair);
    let mut client = ClientConfig::new(rdv.key, rdv.addr);
    match admission {
        Admission::ConnectOnly => config.accept = AcceptPolicy::RefuseAll,
        Admission::Ticket(secret) => {
            config.accept = AcceptPolicy::Ticket(secret.clone());
            client.ticket = Some(secret);
        }
        Admission::Open => config.accept = AcceptPolicy::AcceptAll,
    }
    if let Some(name) = name {
        client.name = Some(name.parse().map_err(|_| {
            Failure::msg(format!(
                "invalid name {name:?}: 1-64 characters of a-z 0-9 . _ -"
            ))
        })?);
    }
    let bind = bind.unwrap_or_else(|| default_bind(rdv.addr, 0));
    let endpoint = Endpoint::bind_with_rendezvous(bind, config, client)
        .map_err(|e| Failure::msg(format!("cannot bind {bind}: {e}")))?;
    match tokio::time::timeout(REGISTER_TIMEOUT, endpoint.wait_registered()).await {
        Ok(Ok(observed)) => {
            tracing::info!(%observed, "registered at the rendezvous server");
            Ok(endpoint)
        }
        Ok(Err(e)) => Err(Failure::msg(format!(
            "the rendezvous server at {} refused our registration: {e}",
            rdv.addr
        ))),
        Err(_) => Err(Failure::msg(format!(
            "rendezvous server unreachable at {} (no answer within {}s)",
            rdv.addr,
            REGISTER_TIMEOUT.as_secs()
        ))),
    }
}

/// The `path:` line for a path.
pub(crate) fn path_line(path: PathKind) -> String {
    match path {
        PathKind::Direct(addr) => format!("path: direct {addr}"),
        PathKind::Relayed { via } => format!("path: relayed via {via}"),
    }
}

/// Prints the stream's path on stderr now and on every change, until the
/// connection ends (run it as a task).
pub(crate) fn report_paths(stream: &Stream) -> tokio::task::JoinHandle<()> {
    let watcher = stream.path_watcher();
    let mut path = watcher.path();
    eprintln!("{}", path_line(path));
    tokio::spawn(async move {
        while let Ok(new) = watcher.changed(path).await {
            path = new;
            eprintln!("{}", path_line(path));
        }
    })
}

/// Prints a line on stderr whenever the endpoint registers again at the
/// rendezvous (after losing it), so operators see it recover.
pub(crate) fn report_registrations(endpoint: &Endpoint) -> tokio::task::JoinHandle<()> {
    let endpoint = endpoint.clone();
    tokio::spawn(async move {
        let Some(mut status) = endpoint.rendezvous_status() else {
            return;
        };
        while let Ok(new) = endpoint.rendezvous_changed(status).await {
            if new.registrations > status.registrations {
                if let Some(observed) = new.observed {
                    eprintln!("rendezvous: registered again (observed {observed})");
                }
            }
            if status.registered && !new.registered {
                eprintln!("rendezvous: lost the server, reconnecting");
            }
            status = new;
        }
    })
}

/// `srudp rendezvous`.
pub(crate) async fn rendezvous(
    bind: SocketAddr,
    key: Option<&Path>,
    second_port: Option<u16>,
    advertise: Option<String>,
) -> Result<(), Failure> {
    let keypair = keys::load_or_generate(key)?;
    let mut config = ServerConfig::default();
    if let (Some(adv), Some(port)) = (&advertise, second_port) {
        let adv = resolve(adv).await?;
        config.alt_address = Some(SocketAddr::new(adv.ip(), port));
    }
    let server = RendezvousServer::bind(bind, EndpointConfig::new(keypair), config, second_port)
        .map_err(|e| Failure::msg(format!("cannot bind {bind}: {e}")))?;
    let shown = advertise.unwrap_or_else(|| server.local_addr().to_string());
    println!("{}@{}", server.public_key(), shown);
    use std::io::Write;
    let _ = std::io::stdout().flush();
    eprintln!(
        "rendezvous server on {}{}; clients use --via {}@{}",
        server.local_addr(),
        server
            .alt_addr()
            .map(|a| format!(" (NAT tests on {a})"))
            .unwrap_or_default(),
        server.public_key(),
        shown
    );
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping");
    server.shutdown().await;
    Ok(())
}

/// `srudp nat-check`.
pub(crate) async fn nat_check(via: &str, bind: Option<SocketAddr>) -> Result<(), Failure> {
    let rdv = resolve_rendezvous(via).await?;
    let endpoint = registered_endpoint(&rdv, None, None, Admission::ConnectOnly, bind).await?;
    let status = endpoint
        .rendezvous_status()
        .ok_or_else(|| Failure::msg("no rendezvous status"))?;
    if let Some(observed) = status.observed {
        println!("public address: {observed}");
    }
    let nat = tokio::time::timeout(Duration::from_secs(10), endpoint.nat_behavior())
        .await
        .map_err(|_| Failure::msg("the NAT test did not finish within 10s"))??;
    let mapping = match nat.mapping {
        srudp_tokio::rendezvous::NatMapping::NotBehindNat => "none (not behind a NAT)",
        srudp_tokio::rendezvous::NatMapping::EndpointIndependent => {
            "endpoint-independent (hole punching works)"
        }
        srudp_tokio::rendezvous::NatMapping::EndpointDependent => {
            "endpoint-dependent, symmetric (connections will likely be relayed)"
        }
        srudp_tokio::rendezvous::NatMapping::Unknown => {
            "unknown (the server has no --second-port?)"
        }
    };
    let filtering = match nat.filtering {
        srudp_tokio::rendezvous::NatFiltering::Open => "open (unsolicited packets get in)",
        srudp_tokio::rendezvous::NatFiltering::Filtered => {
            "filtered (only from addresses we sent to)"
        }
        srudp_tokio::rendezvous::NatFiltering::Unknown => "unknown",
    };
    println!("mapping: {mapping}");
    println!("filtering: {filtering}");
    endpoint.close();
    Ok(())
}
