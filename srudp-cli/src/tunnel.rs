//! `srudp expose` and `srudp forward`: a TCP service carried over srudp,
//! one srudp connection per TCP connection, until stopped.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use srudp_tokio::rendezvous::Ticket;
use srudp_tokio::Stream;
use tokio::net::{TcpListener, TcpStream};

use crate::cli::{ExposeArgs, ForwardArgs};
use crate::endpoint_setup::{
    announce, connect_within, linger, registered_endpoint, Admission, Announcement, CliEndpoint,
    FAILURE_CODE,
};
use crate::failure::Failure;
use crate::rendezvous_addr::{resolve_rendezvous, RendezvousAddr};
use crate::reports::{path_line, report_registrations};
use crate::splice::{splice, Moved};

/// The TCP service of `srudp expose`: `tcp://HOST:PORT`.
#[derive(Debug, Clone)]
pub(crate) struct TcpTarget(String);

impl FromStr for TcpTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<TcpTarget, String> {
        let rest = s
            .strip_prefix("tcp://")
            .ok_or_else(|| format!("invalid service {s:?}: expected tcp://HOST:PORT"))?;
        let port = rest
            .rsplit_once(':')
            .and_then(|(host, port)| (!host.is_empty()).then_some(port))
            .ok_or_else(|| format!("invalid service {s:?}: expected tcp://HOST:PORT"))?;
        port.parse::<u16>()
            .map_err(|_| format!("invalid service {s:?}: {port:?} is not a port"))?;
        Ok(TcpTarget(rest.to_string()))
    }
}

impl fmt::Display for TcpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp://{}", self.0)
    }
}

/// The log line that ends a connection.
fn closed_line(n: u64, result: &Result<Moved, Failure>) -> String {
    match result {
        Ok(moved) => format!(
            "connection {n} closed: {} bytes to the peer, {} bytes from it",
            moved.to_peer, moved.from_peer
        ),
        Err(e) => format!("connection {n} closed: {e}"),
    }
}

/// `srudp expose tcp://HOST:PORT --via RDV`.
pub(crate) async fn expose(args: ExposeArgs) -> Result<(), Failure> {
    let endpoint = announce(
        &args.registration.via,
        Announcement {
            key: args.identity.key.as_deref(),
            name: args.name,
            ticket_file: args.registration.ticket_file.as_deref(),
            bind: args.identity.bind,
        },
    )
    .await?;
    eprintln!("exposing {} until stopped", args.target);
    let _registrations = report_registrations(&endpoint);
    let allowed = Arc::new(args.allow);
    let target = Arc::new(args.target);
    let mut count = 0u64;
    loop {
        let (stream, from, key) = endpoint.accept().await?;
        count += 1;
        let n = count;
        let who = key.map_or_else(|| from.to_string(), |k| k.to_string());
        if !allowed.is_empty() && !key.is_some_and(|k| allowed.contains(&k)) {
            eprintln!("connection {n} from {who}: refused (not in --allow)");
            stream.abort(FAILURE_CODE, b"not allowed: the key is not in --allow");
            continue;
        }
        eprintln!(
            "connection {n} from {who}: open ({})",
            path_line(stream.path())
        );
        let target = target.clone();
        tokio::spawn(async move {
            let result = serve(stream, &target).await;
            eprintln!("{}", closed_line(n, &result));
        });
    }
}

/// One exposed connection: the TCP service, spliced with the stream.
async fn serve(stream: Stream, target: &TcpTarget) -> Result<Moved, Failure> {
    let tcp = match TcpStream::connect(&target.0).await {
        Ok(tcp) => tcp,
        Err(e) => {
            let failure = Failure::msg(format!("cannot connect to {target}: {e}"));
            stream.abort(FAILURE_CODE, failure.to_string().as_bytes());
            return Err(failure);
        }
    };
    let (_stream, result) = splice(stream, tcp).await;
    result
}

/// Whom `srudp forward` connects to.
#[derive(Debug, Clone)]
enum Exposed {
    Ticket(Ticket),
    Name { via: RendezvousAddr, name: String },
}

impl Exposed {
    /// One new endpoint and connection for one TCP connection.
    async fn connect(
        &self,
        key: Option<&std::path::Path>,
    ) -> Result<(CliEndpoint, Stream), Failure> {
        match self {
            Exposed::Ticket(ticket) => {
                crate::endpoint_setup::connect_ticket(ticket, key, None).await
            }
            Exposed::Name { via, name } => {
                let rdv = via.resolve().await?;
                let endpoint =
                    registered_endpoint(&rdv, key, None, Admission::ConnectOnly, None).await?;
                let stream = connect_within(endpoint.connect_by_name(name)).await?;
                Ok((endpoint, stream))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Exposed::Ticket(t) => format!("key {}", t.peer),
            Exposed::Name { name, .. } => format!("name {name:?}"),
        }
    }
}

/// `srudp forward --listen ADDR TICKET`.
pub(crate) async fn forward(args: ForwardArgs) -> Result<(), Failure> {
    let exposed = match (args.ticket, args.via, args.name) {
        (Some(ticket), _, _) => {
            // Fail now, not at the first TCP connection, on a bad server.
            resolve_rendezvous(&ticket.rendezvous).await?;
            Exposed::Ticket(ticket)
        }
        (None, Some(via), Some(name)) => Exposed::Name { via, name },
        _ => {
            return Err(Failure::msg(
                "forward needs a TICKET or --via RDV --name NAME",
            ))
        }
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::msg(format!("cannot listen on {}: {e}", args.listen)))?;
    let local: SocketAddr = listener.local_addr()?;
    eprintln!(
        "forwarding tcp://{local} to {} until stopped",
        exposed.describe()
    );
    let exposed = Arc::new(exposed);
    let key = Arc::new(args.key);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    loop {
        let (tcp, from) = listener.accept().await?;
        let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
        let (exposed, key) = (exposed.clone(), key.clone());
        tokio::spawn(async move {
            let result = match exposed.connect(key.as_deref()).await {
                Ok((endpoint, stream)) => {
                    eprintln!(
                        "connection {n} from {from}: open ({})",
                        path_line(stream.path())
                    );
                    let (stream, result) = splice(stream, tcp).await;
                    drop(stream);
                    let line = closed_line(n, &result);
                    eprintln!("{line}");
                    linger(&endpoint).await;
                    return;
                }
                Err(e) => Err::<Moved, Failure>(e),
            };
            eprintln!("connection {n} from {from}: {}", closed_line(n, &result));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_tcp_host_and_port() {
        assert_eq!(
            "tcp://127.0.0.1:22".parse::<TcpTarget>().unwrap().0,
            "127.0.0.1:22"
        );
        assert_eq!(
            "tcp://[::1]:8080".parse::<TcpTarget>().unwrap().0,
            "[::1]:8080"
        );
        for bad in [
            "127.0.0.1:22",
            "udp://h:1",
            "tcp://:22",
            "tcp://h",
            "tcp://h:99999",
        ] {
            assert!(bad.parse::<TcpTarget>().is_err(), "{bad}");
        }
    }
}
