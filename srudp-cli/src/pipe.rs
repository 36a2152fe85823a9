//! `srudp listen` and `srudp connect`: one connection, stdin to the peer
//! and the peer to stdout, with half-close.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use srudp_tokio::rendezvous::Ticket;
use srudp_tokio::{
    AcceptPolicy, ConnectOptions, Endpoint, EndpointConfig, HandshakePattern, PublicKey, Stream,
    TicketSecret, TransportConfig,
};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::common::{
    default_bind, registered_endpoint, report_paths, report_registrations, resolve,
    resolve_rendezvous, Admission, Failure, CONNECT_TIMEOUT,
};
use crate::keys;

/// How long both sides of `--direct` have to start.
const DIRECT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Registers at the rendezvous and prints (and optionally writes) the
/// ticket that names us; returns the endpoint.
pub(crate) async fn announce(
    via: &str,
    key: Option<&Path>,
    name: Option<String>,
    ticket_file: Option<&Path>,
    bind: Option<SocketAddr>,
) -> Result<Endpoint, Failure> {
    let rdv = resolve_rendezvous(via).await?;
    // A new secret for every run: only the ticket's holder can connect. A
    // listener registered by name is open to anyone who knows the name.
    let secret = name.is_none().then(TicketSecret::generate_from_os);
    let admission = match &secret {
        Some(secret) => Admission::Ticket(secret.clone()),
        None => Admission::Open,
    };
    let endpoint = registered_endpoint(&rdv, key, name.clone(), admission, bind).await?;
    let ticket = Ticket {
        peer: endpoint.public_key(),
        secret,
        name,
        rendezvous: via.trim().to_string(),
    };
    if let Some(path) = ticket_file {
        std::fs::write(path, format!("{ticket}\n")).map_err(|e| {
            Failure::msg(format!("cannot write ticket file {}: {e}", path.display()))
        })?;
    }
    eprintln!("ticket: {ticket}");
    Ok(endpoint)
}

/// `srudp listen`.
pub(crate) async fn listen(
    via: &str,
    key: Option<&Path>,
    name: Option<String>,
    ticket_file: Option<&Path>,
    bind: Option<SocketAddr>,
) -> Result<(), Failure> {
    let endpoint = announce(via, key, name, ticket_file, bind).await?;
    let registrations = report_registrations(&endpoint);
    let (stream, _, _) = endpoint.accept().await?;
    // One peer per ticket: nobody else gets in from now on.
    endpoint.set_accept_policy(AcceptPolicy::RefuseAll);
    let result = pipe(&endpoint, stream).await;
    registrations.abort();
    result
}

/// `srudp connect TICKET`.
pub(crate) async fn connect_ticket(
    ticket: &str,
    key: Option<&Path>,
    bind: Option<SocketAddr>,
) -> Result<(), Failure> {
    let ticket: Ticket = ticket.parse().map_err(|e| Failure::msg(format!("{e}")))?;
    let rdv = resolve_rendezvous(&ticket.rendezvous).await?;
    let endpoint = registered_endpoint(&rdv, key, None, Admission::holding(&ticket), bind).await?;
    let stream = connect_within(endpoint.connect_by_key(ticket.peer)).await?;
    pipe(&endpoint, stream).await
}

/// `srudp connect --via RDV --name NAME [--peer-key KEY]`.
pub(crate) async fn connect_by_name(
    via: &str,
    name: &str,
    peer_key: Option<&str>,
    key: Option<&Path>,
    bind: Option<SocketAddr>,
) -> Result<(), Failure> {
    let pinned = peer_key.map(parse_peer_key).transpose()?;
    let rdv = resolve_rendezvous(via).await?;
    let endpoint = registered_endpoint(&rdv, key, None, Admission::ConnectOnly, bind).await?;
    let stream = connect_within(endpoint.connect_by_name(name)).await?;
    // The server maps the name to a key; the handshake authenticated that
    // key. With --peer-key, it must be the one the user pinned: nothing is
    // sent to another.
    let reached = stream.peer_public_key();
    if let Some(pinned) = pinned {
        if reached != Some(pinned) {
            stream.abort(1, b"not the pinned key");
            linger(&endpoint).await;
            return Err(Failure::msg(format!(
                "the rendezvous server maps {name:?} to key {}, not the pinned --peer-key {pinned}: not connecting",
                reached.map_or_else(|| "(none)".to_string(), |k| k.to_string())
            )));
        }
    }
    pipe(&endpoint, stream).await
}

/// Awaits a connect through the rendezvous, with a deadline and a clear error.
pub(crate) async fn connect_within(
    connecting: srudp_tokio::rendezvous::RendezvousConnecting,
) -> Result<Stream, Failure> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(Failure::msg(format!("cannot connect to the peer: {e}"))),
        Err(_) => Err(Failure::msg(format!(
            "cannot connect to the peer: no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// `srudp connect --direct HOST:PORT --peer-key KEY`.
pub(crate) async fn connect_direct(
    direct: &str,
    peer_key: &str,
    key: Option<&Path>,
    bind: Option<SocketAddr>,
) -> Result<(), Failure> {
    let peer = parse_peer_key(peer_key)?;
    let remote = resolve(direct).await?;
    let bind = bind.unwrap_or_else(|| default_bind(remote, remote.port()));
    let mut config = EndpointConfig::new(keys::load_or_generate(key)?);
    // Both sides connect at once (spec §4.5): with IK each proves its key,
    // so only the peer named by --peer-key can be the connection, and
    // nobody else may connect to us at all.
    config.default_pattern = HandshakePattern::IK;
    config.accept = AcceptPolicy::AcceptKeys(vec![peer]);
    config.transport = Arc::new(TransportConfig {
        handshake_timeout: DIRECT_HANDSHAKE_TIMEOUT,
        ..TransportConfig::default()
    });
    let endpoint = Endpoint::bind(bind, config)
        .map_err(|e| Failure::msg(format!("cannot bind {bind}: {e}")))?;
    eprintln!(
        "waiting for {remote} (our key {}, on {})",
        endpoint.public_key(),
        endpoint.local_addr()
    );
    let stream = endpoint
        .connect_with(ConnectOptions {
            peer,
            candidates: vec![remote],
            pattern: Some(HandshakePattern::IK),
            ticket: None,
        })
        .await
        .map_err(|e| Failure::msg(format!("cannot connect to {remote}: {e}")))?;
    pipe(&endpoint, stream).await
}

/// Parses `--peer-key`.
fn parse_peer_key(peer_key: &str) -> Result<PublicKey, Failure> {
    peer_key
        .trim()
        .parse()
        .map_err(|e| Failure::msg(format!("invalid --peer-key: {e}")))
}

/// Copies stdin to the peer (then finishes our direction) and the peer to
/// stdout, reporting the path; returns once our data is acknowledged and
/// the peer finished too.
async fn pipe(endpoint: &Endpoint, stream: Stream) -> Result<(), Failure> {
    let paths = report_paths(&stream);
    let (mut from_peer, mut to_peer) = tokio::io::split(stream);
    let up = async {
        let mut stdin = tokio::io::stdin();
        tokio::io::copy(&mut stdin, &mut to_peer).await?;
        to_peer.shutdown().await?;
        Ok::<_, io::Error>(())
    };
    let down = async {
        let mut stdout = BufWriter::with_capacity(256 << 10, tokio::io::stdout());
        tokio::io::copy(&mut from_peer, &mut stdout).await?;
        stdout.flush().await?;
        Ok::<_, io::Error>(())
    };
    let result = tokio::try_join!(up, down);
    paths.abort();
    let stream = from_peer.unsplit(to_peer);
    if let Err(e) = result {
        let failure = Failure::msg(format!("connection failed: {e}"));
        return Err(fail_and_linger(endpoint, &stream, failure).await);
    }
    drop(stream);
    linger(endpoint).await;
    Ok(())
}

/// The application close code with which the CLI ends a connection it
/// cannot go on with (a local failure such as a closed stdout); the reason
/// is the message the user sees.
pub(crate) const FAILURE_CODE: u32 = 1;

/// Tells the peer why we give up (unless the connection is already over,
/// e.g. closed by the peer), lingers so it hears it, and hands the failure
/// back for the user.
pub(crate) async fn fail_and_linger(
    endpoint: &Endpoint,
    stream: &Stream,
    failure: Failure,
) -> Failure {
    if stream.close_reason().is_none() {
        stream.abort(FAILURE_CODE, failure.to_string().as_bytes());
    }
    linger(endpoint).await;
    failure
}

/// How long the CLI waits at most for its connections to finish closing:
/// the closing period of spec §6.6 (max(3 × PTO, 12 s)), so a peer that
/// missed our CLOSE can still hear it when it next sends (its keepalive
/// comes within a third of the idle timeout). A peer that answers our
/// CLOSE ends the wait after a round trip and a short drain.
const CLOSING_PERIOD: Duration = Duration::from_secs(12);

/// Closes the endpoint and keeps it running while its connections are in
/// `Closing` or `Draining` (spec §6.6), for at most [`CLOSING_PERIOD`].
pub(crate) async fn linger(endpoint: &Endpoint) {
    endpoint.close();
    let _ = tokio::time::timeout(CLOSING_PERIOD, endpoint.wait_idle()).await;
}
