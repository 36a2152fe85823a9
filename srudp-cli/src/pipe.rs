//! `srudp listen` and `srudp connect`: one connection, stdin to the peer
//! and the peer to stdout, with half-close.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use srudp_tokio::rendezvous::RendezvousAddr;
use srudp_tokio::{
    AcceptPolicy, ConnectOptions, Endpoint, EndpointConfig, HandshakePattern, PublicKey, Stream,
    TransportConfig,
};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::cli::{ConnectArgs, ListenArgs};
use crate::congestion_choice;
use crate::endpoint_setup::{
    announce, connect_ticket, connect_within, fail_and_linger, linger, registered_endpoint,
    Admission, Announcement, CliEndpoint,
};
use crate::failure::Failure;
use crate::keys;
use crate::reports::{report_paths, report_registrations};
use crate::resolve::{default_bind, resolve, resolve_rendezvous};

/// How long both sides of `--direct` have to start.
const DIRECT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// `srudp listen`.
pub(crate) async fn listen(args: ListenArgs) -> Result<(), Failure> {
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
    let registrations = report_registrations(&endpoint);
    let (stream, _, _) = endpoint.accept().await?;
    // One peer per ticket: nobody else gets in from now on.
    endpoint.set_accept_policy(AcceptPolicy::RefuseAll);
    let result = pipe(&endpoint, stream).await;
    registrations.abort();
    result
}

/// `srudp connect`, in the mode its arguments choose (clap requires one).
pub(crate) async fn connect(args: ConnectArgs) -> Result<(), Failure> {
    let key = args.key.as_deref();
    if let Some(direct) = &args.direct {
        // clap enforces `--direct` with `--peer-key`.
        let peer_key = args.peer_key.as_deref().unwrap_or_default();
        connect_direct(direct, peer_key, key, args.bind).await
    } else if let (Some(via), Some(name)) = (&args.via, &args.name) {
        connect_by_name(via, name, args.peer_key.as_deref(), key, args.bind).await
    } else if let Some(ticket) = &args.ticket {
        let (endpoint, stream) = connect_ticket(ticket, key, args.bind).await?;
        pipe(&endpoint, stream).await
    } else {
        Err(Failure::msg(
            "connect needs a TICKET, --via RDV --name NAME, or --direct HOST:PORT --peer-key KEY",
        ))
    }
}

/// `srudp connect --via RDV --name NAME [--peer-key KEY]`.
pub(crate) async fn connect_by_name(
    via: &RendezvousAddr,
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
        ..congestion_choice::transport()
    });
    let endpoint = CliEndpoint::new(
        Endpoint::bind(bind, config)
            .map_err(|e| Failure::msg(format!("cannot bind {bind}: {e}")))?,
    );
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
        let failure = Failure::connection("connection failed", &e);
        return Err(fail_and_linger(endpoint, &stream, failure).await);
    }
    drop(stream);
    linger(endpoint).await;
    Ok(())
}
