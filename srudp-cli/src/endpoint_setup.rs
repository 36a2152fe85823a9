//! Endpoints as the commands use them: registered at a rendezvous (who may
//! connect, under which name), announced with a ticket, connected with a
//! deadline, and closed so the peer hears why.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use srudp_tokio::rendezvous::{ClientConfig, RendezvousAddr, RendezvousConnecting, Ticket};
use srudp_tokio::{
    AcceptPolicy, Endpoint, EndpointConfig, PortMapping, PortMappingState, Stream, TicketSecret,
};

use crate::failure::Failure;
use crate::keys;
use crate::resolve::{default_bind, resolve_rendezvous, Rendezvous};
use crate::signals::{self, Tracked};

/// How long to wait for the rendezvous server to take our registration
/// before calling it unreachable.
pub(crate) const REGISTER_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a connect through the rendezvous may take in all.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a registered endpoint waits for its gateway's port mapping
/// before going on without it (a gateway that speaks PCP or NAT-PMP answers
/// within a LAN round trip, a UPnP-IGD one within a few when it refuses
/// those; a mapping granted later, say after PCP and NAT-PMP went
/// unanswered, still registers, and its line is printed then).
pub(crate) const PORT_MAPPING_WAIT: Duration = Duration::from_millis(500);

/// Whether registered endpoints ask their gateway for a port mapping (on
/// unless `--no-port-mapping`).
static PORT_MAPPING: AtomicBool = AtomicBool::new(true);

/// Turns port mapping on or off for every endpoint this process registers.
pub(crate) fn set_port_mapping(on: bool) {
    PORT_MAPPING.store(on, Ordering::Relaxed);
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

/// An endpoint of the command, told of signals (see [`signals`]) while it
/// lives, with the port mapping it holds (deleted at the gateway when the
/// endpoint is dropped).
pub(crate) struct CliEndpoint {
    pub(crate) endpoint: Endpoint,
    _tracked: Tracked,
    port_mapping: Option<PortMapping>,
}

impl CliEndpoint {
    pub(crate) fn new(endpoint: Endpoint) -> CliEndpoint {
        let tracked = signals::track(&endpoint);
        CliEndpoint {
            endpoint,
            _tracked: tracked,
            port_mapping: None,
        }
    }
}

impl CliEndpoint {
    /// Where this endpoint's port mapping stands once it settled (mapped
    /// or unavailable), waiting at most `wait`; `None` with
    /// `--no-port-mapping`.
    pub(crate) async fn settled_port_mapping_state(
        &self,
        wait: Duration,
    ) -> Option<PortMappingState> {
        let mapping = self.port_mapping.as_ref()?;
        Some(settle(mapping, wait).await)
    }
}

/// Waits at most `wait` for `mapping`'s first answer; its state then.
async fn settle(mapping: &PortMapping, wait: Duration) -> PortMappingState {
    let started = Instant::now();
    while mapping.state() == PortMappingState::Trying && started.elapsed() < wait {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    mapping.state()
}

/// Asks the gateway for a port mapping of `endpoint`'s socket, printing
/// `port mapping: pcp ADDR` (or `nat-pmp`, `upnp`) whenever one is
/// obtained or moves (a gateway that answers late, or restarted and gave
/// another port), from the mapping's thread, delaying nothing.
fn map_port(endpoint: &Endpoint) -> PortMapping {
    let mapping = endpoint.map_port();
    mapping.on_mapped(|mapped| eprintln!("port mapping: {mapped}"));
    mapping
}

/// Waits at most [`PORT_MAPPING_WAIT`] for `mapping`'s first answer (its
/// line is printed by [`map_port`]'s callback), so that a mapping a gateway
/// grants at once is registered before we go on.
async fn settle_port_mapping(mapping: &PortMapping) {
    match settle(mapping, PORT_MAPPING_WAIT).await {
        PortMappingState::Mapped(_) => {}
        other => tracing::info!(?other, "no port mapping yet"),
    }
}

impl std::ops::Deref for CliEndpoint {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.endpoint
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
) -> Result<CliEndpoint, Failure> {
    let keypair = keys::load_or_generate(key)?;
    let mut config = EndpointConfig::new(keypair);
    config.transport = Arc::new(crate::congestion_choice::transport());
    let mut client = ClientConfig::new(rdv.key, rdv.addr);
    // Where UDP goes unanswered, the link falls back to TCP (spec §12.5).
    client.stream_carrier = rdv.tcp;
    client.stream_transport = rdv.transport.clone();
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
    let mut endpoint = CliEndpoint::new(endpoint);
    if PORT_MAPPING.load(Ordering::Relaxed) {
        endpoint.port_mapping = Some(map_port(&endpoint));
    }
    match tokio::time::timeout(REGISTER_TIMEOUT, endpoint.wait_registered()).await {
        Ok(Ok(observed)) => {
            tracing::info!(%observed, "registered at the rendezvous server");
            if let Some(mapping) = &endpoint.port_mapping {
                settle_port_mapping(mapping).await;
            }
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

/// What a command that waits for peers registers with.
#[derive(Debug, Clone, Default)]
pub(crate) struct Announcement<'a> {
    pub(crate) key: Option<&'a Path>,
    pub(crate) name: Option<String>,
    pub(crate) ticket_file: Option<&'a Path>,
    pub(crate) bind: Option<SocketAddr>,
}

/// Registers at the rendezvous and prints (and optionally writes) the
/// ticket that names us; returns the endpoint.
pub(crate) async fn announce(
    via: &RendezvousAddr,
    how: Announcement<'_>,
) -> Result<CliEndpoint, Failure> {
    let rdv = resolve_rendezvous(via).await?;
    // A new secret for every run: only the ticket's holder can connect. A
    // listener registered by name is open to anyone who knows the name.
    let secret = how.name.is_none().then(TicketSecret::generate_from_os);
    let admission = match &secret {
        Some(secret) => Admission::Ticket(secret.clone()),
        None => Admission::Open,
    };
    let endpoint =
        registered_endpoint(&rdv, how.key, how.name.clone(), admission, how.bind).await?;
    let ticket = Ticket {
        peer: endpoint.public_key(),
        secret,
        name: how.name,
        rendezvous: via.clone(),
    };
    if let Some(path) = how.ticket_file {
        std::fs::write(path, format!("{ticket}\n")).map_err(|e| {
            Failure::msg(format!("cannot write ticket file {}: {e}", path.display()))
        })?;
    }
    eprintln!("ticket: {ticket}");
    Ok(endpoint)
}

/// Registers without admitting anyone and connects to the ticket's peer.
pub(crate) async fn connect_ticket(
    ticket: &Ticket,
    key: Option<&Path>,
    bind: Option<SocketAddr>,
) -> Result<(CliEndpoint, Stream), Failure> {
    let rdv = resolve_rendezvous(&ticket.rendezvous).await?;
    let endpoint = registered_endpoint(&rdv, key, None, Admission::holding(ticket), bind).await?;
    let stream = connect_within(endpoint.connect_by_key(ticket.peer)).await?;
    Ok((endpoint, stream))
}

/// Awaits a connect through the rendezvous, with a deadline and a clear error.
pub(crate) async fn connect_within(connecting: RendezvousConnecting) -> Result<Stream, Failure> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(Failure::msg(format!("cannot connect to the peer: {e}"))),
        Err(_) => Err(Failure::msg(format!(
            "cannot connect to the peer: no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
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
        linger(endpoint).await;
    } else {
        // The connection is over already (the peer closed it, or it timed
        // out): nobody is left to miss our CLOSE but the rendezvous server.
        endpoint.close();
        let _ = tokio::time::timeout(SHORT_LINGER, endpoint.wait_idle()).await;
    }
    failure
}

/// How long a command whose connection the peer ended waits for its other
/// connections (the rendezvous link) to close.
const SHORT_LINGER: Duration = Duration::from_millis(500);

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
