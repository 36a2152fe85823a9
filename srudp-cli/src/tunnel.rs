//! `srudp expose` and `srudp forward`: a TCP service carried over srudp,
//! one srudp connection per TCP connection, until stopped.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use srudp_tokio::Stream;
use tokio::net::{TcpListener, TcpStream};

use crate::cli::{ExposeArgs, ForwardArgs};
use crate::endpoint_setup::{
    announce, connect_within, registered_endpoint, Admission, Announcement, FAILURE_CODE,
};
use crate::failure::Failure;
use crate::reports::{report_registrations, stream_path_line};
use crate::resolve::resolve_rendezvous;
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
            stream_path_line(&stream)
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
    Key(srudp_tokio::PublicKey),
    Name(String),
}

/// `srudp forward --listen ADDR TICKET`: one endpoint, registered once;
/// one srudp connection per accepted TCP connection.
pub(crate) async fn forward(args: ForwardArgs) -> Result<(), Failure> {
    let (rdv, admission, exposed) = match (args.ticket, args.via, args.name) {
        (Some(ticket), _, _) => (
            resolve_rendezvous(&ticket.rendezvous).await?,
            Admission::holding(&ticket),
            Exposed::Key(ticket.peer),
        ),
        (None, Some(via), Some(name)) => (
            resolve_rendezvous(&via).await?,
            Admission::ConnectOnly,
            Exposed::Name(name),
        ),
        _ => {
            return Err(Failure::msg(
                "forward needs a TICKET or --via RDV --name NAME",
            ))
        }
    };
    let endpoint = registered_endpoint(&rdv, args.key.as_deref(), None, admission, None).await?;
    let _registrations = report_registrations(&endpoint);
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::msg(format!("cannot listen on {}: {e}", args.listen)))?;
    let local: SocketAddr = listener.local_addr()?;
    let shown = match &exposed {
        Exposed::Key(key) => format!("key {key}"),
        Exposed::Name(name) => format!("name {name:?}"),
    };
    eprintln!("forwarding tcp://{local} to {shown} until stopped");
    let mut count = 0u64;
    loop {
        let (tcp, from) = listener.accept().await?;
        count += 1;
        let n = count;
        let connecting = match &exposed {
            Exposed::Key(key) => endpoint.connect_by_key(*key),
            Exposed::Name(name) => endpoint.connect_by_name(name),
        };
        tokio::spawn(async move {
            match connect_within(connecting).await {
                Ok(stream) => {
                    eprintln!(
                        "connection {n} from {from}: open ({})",
                        stream_path_line(&stream)
                    );
                    let (_stream, result) = splice(stream, tcp).await;
                    eprintln!("{}", closed_line(n, &result));
                }
                Err(e) => eprintln!("connection {n} from {from}: {e}"),
            }
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
