//! Port mapping: asking the gateway to forward a port of its public address
//! to the endpoint's socket (PCP, RFC 6887, else NAT-PMP, RFC 6886, else
//! UPnP-IGD, see `port_mapping_upnp`), so that
//! peers reach us directly even behind a NAT that maps every destination to
//! a new port (a symmetric NAT), where punching alone fails.
//!
//! [`Endpoint::map_port`] starts it; the mapped external address becomes a
//! host candidate registered at the rendezvous (spec §11.4), so peers
//! introduced from then on punch toward it. The lease is asked for two hours
//! at most, renewed at half its lifetime, and deleted (lifetime 0) when the
//! [`PortMapping`] is closed or dropped — a leaked lease would keep the
//! port forwarded after we are gone.
//!
//! A gateway that restarts loses its mappings. PCP and NAT-PMP gateways
//! tell it by their epoch (see `port_mapping_epoch`), which the thread
//! checks in every answer, in a probe every [`EPOCH_PROBE`] between
//! renewals, and in the announcements a restarted gateway multicasts (see
//! `port_mapping_announce`): on a restart it requests the same mapping
//! again at once, and a new external address becomes a candidate like the
//! first one.
//!
//! It runs on a thread of its own with a blocking socket, so it works the
//! same under tokio, async-io or no runtime at all. Only IPv4 endpoints map,
//! through the default route's gateway (from `/proc/net/route`, so on Linux;
//! elsewhere, and for IPv6 sockets, the mapping reports
//! [`PortMappingState::Unavailable`]); a socket bound to loopback asks
//! nobody.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use crate::endpoint::Endpoint;
use crate::port_mapping_announce::Announcements;
use crate::port_mapping_epoch::{EpochCheck, EpochRule, GatewayEpoch};
use crate::port_mapping_gateway::default_gateway;
use crate::port_mapping_upnp::{Igd, UpnpFailure};
use crate::port_mapping_wire::{self as wire, Announcement, Granted, WireError};
use crate::shared::Shared;

/// The longest lease we ask for: two hours (leases without end are a known
/// way to leak forwarded ports).
pub const MAX_LEASE: Duration = Duration::from_secs(2 * 60 * 60);
/// How long each protocol is given: three tries, 250, 500 and 1000 ms apart
/// (RFC 6886 §3.1's first steps, cut short: a gateway that speaks the
/// protocol answers in a LAN round trip).
const TRIES: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];
/// How long a deletion is given when closing.
const DELETE_TRIES: [Duration; 2] = [Duration::from_millis(250), Duration::from_millis(500)];
/// The shortest wait before renewing, whatever lifetime the gateway grants.
const MIN_RENEW: Duration = Duration::from_secs(5);
/// How often a PCP or NAT-PMP gateway is asked for its epoch between
/// renewals (one small exchange on the LAN), so that a restart it does not
/// announce is noticed within this long rather than at the next renewal.
pub const EPOCH_PROBE: Duration = Duration::from_secs(30);
/// The shortest time between two requests made because the gateway said
/// it restarted (announcements can be forged by the LAN, and come in
/// bursts).
const MIN_REMAP_INTERVAL: Duration = Duration::from_secs(2);
/// How often the thread looks up from the announcement socket to see
/// whether it was asked to stop.
const STOP_POLL: Duration = Duration::from_millis(250);

/// Which protocol the gateway granted the mapping with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMappingProtocol {
    /// Port Control Protocol (RFC 6887).
    Pcp,
    /// NAT Port Mapping Protocol (RFC 6886).
    NatPmp,
    /// UPnP Internet Gateway Device (WANIPConnection's AddPortMapping).
    Upnp,
}

impl fmt::Display for PortMappingProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortMappingProtocol::Pcp => "pcp",
            PortMappingProtocol::NatPmp => "nat-pmp",
            PortMappingProtocol::Upnp => "upnp",
        })
    }
}

/// A mapping the gateway granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappedPort {
    /// The protocol that worked.
    pub protocol: PortMappingProtocol,
    /// The public address and port that forward to our socket.
    pub external: SocketAddr,
    /// How long the current lease lasts (renewed at half of it).
    pub lifetime: Duration,
}

impl fmt::Display for MappedPort {
    /// `nat-pmp 203.0.113.1:40001`, as the CLI prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.protocol, self.external)
    }
}

/// Where a port mapping stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortMappingState {
    /// Asking the gateway.
    Trying,
    /// The gateway forwards a port to us.
    Mapped(MappedPort),
    /// No mapping: why (no gateway, no protocol answered, refused, or
    /// the lease could not be renewed).
    Unavailable(String),
}

/// A port mapping of an endpoint's socket, kept while this lives: renewed
/// in the background, deleted by [`close`](PortMapping::close) or on drop
/// (which waits for the gateway's answer: at most about a second for PCP
/// and NAT-PMP, two for UPnP-IGD).
#[derive(Debug)]
pub struct PortMapping {
    control: Arc<Control>,
    worker: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Control {
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl Control {
    /// Trying, not stopped, nobody told yet.
    fn new() -> Control {
        Control {
            inner: Mutex::new(Inner {
                state: PortMappingState::Trying,
                stop: false,
                on_mapped: None,
                reported: None,
            }),
            changed: Condvar::new(),
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: PortMappingState,
    stop: bool,
    /// Told of each new mapping.
    on_mapped: Option<OnMapped>,
    /// The protocol and address `on_mapped` was last told of.
    reported: Option<(PortMappingProtocol, SocketAddr)>,
}

/// A function told of each new mapping (see [`PortMapping::on_mapped`]).
#[derive(Clone)]
struct OnMapped(Arc<dyn Fn(MappedPort) + Send + Sync>);

impl fmt::Debug for OnMapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnMapped")
    }
}

impl Inner {
    /// The function to call and what to tell it, when the mapping in force
    /// is not the one it was last told of.
    fn unreported(&mut self) -> Option<(OnMapped, MappedPort)> {
        let (PortMappingState::Mapped(mapped), Some(f)) = (&self.state, &self.on_mapped) else {
            return None;
        };
        let now = Some((mapped.protocol, mapped.external));
        if self.reported == now {
            return None;
        }
        self.reported = now;
        Some((f.clone(), *mapped))
    }
}

impl Control {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, state: PortMappingState) {
        let report = {
            let mut inner = self.lock();
            inner.state = state;
            inner.unreported()
        };
        self.changed.notify_all();
        if let Some((f, mapped)) = report {
            (f.0)(mapped);
        }
    }

    fn stopping(&self) -> bool {
        self.lock().stop
    }

    /// Sleeps until `deadline` or until asked to stop; true when asked.
    fn sleep_until(&self, deadline: Instant) -> bool {
        let mut inner = self.lock();
        loop {
            if inner.stop {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            inner = self
                .changed
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl PortMapping {
    /// Where the mapping stands now.
    pub fn state(&self) -> PortMappingState {
        self.control.lock().state.clone()
    }

    /// Blocks until the first answer is in (mapped or unavailable) or
    /// `timeout` passed; returns the state then. At most about 5 s when
    /// no gateway answers (PCP, NAT-PMP, then an SSDP search); a UPnP-IGD
    /// gateway that answers the search but stalls its HTTP may take a few
    /// seconds more (each exchange is cut at 2 s).
    pub fn wait_settled(&self, timeout: Duration) -> PortMappingState {
        let deadline = Instant::now() + timeout;
        let mut inner = self.control.lock();
        while inner.state == PortMappingState::Trying {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            inner = self
                .control
                .changed
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        inner.state.clone()
    }

    /// Calls `f` whenever a mapping is obtained or moves to another
    /// protocol or external address (say after the gateway restarted),
    /// not on renewals that keep it: at once if one is in force already,
    /// later on the mapping's thread (so `f` should be quick). The CLI
    /// prints its `port mapping: pcp 203.0.113.1:40001` line with it.
    pub fn on_mapped(&self, f: impl Fn(MappedPort) + Send + Sync + 'static) {
        let report = {
            let mut inner = self.control.lock();
            inner.on_mapped = Some(OnMapped(Arc::new(f)));
            inner.reported = None;
            inner.unreported()
        };
        if let Some((f, mapped)) = report {
            (f.0)(mapped);
        }
    }

    /// Deletes the lease at the gateway (lifetime 0, or UPnP-IGD's
    /// DeletePortMapping) and waits for that, at most about a second (two
    /// for UPnP-IGD).
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.control.lock().stop = true;
        self.control.changed.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl Drop for PortMapping {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Endpoint {
    /// Asks the gateway of the default route to forward a public port to
    /// this endpoint's socket — PCP first, else NAT-PMP, else UPnP-IGD — on
    /// a thread of its own, and keeps the lease (at most [`MAX_LEASE`], renewed at half
    /// its lifetime) while the returned [`PortMapping`] lives. With a
    /// rendezvous, the external address becomes a registered host candidate
    /// as soon as it is granted. [`PortMapping::state`] says which protocol
    /// worked; a line is logged (`port mapping: pcp 203.0.113.1:40001`,
    /// `nat-pmp …`, `upnp …`), and [`PortMapping::on_mapped`] is told. A
    /// PCP or NAT-PMP gateway that restarts (its epoch says so, probed
    /// every [`EPOCH_PROBE`], or it announces it) is asked again at once. A
    /// UPnP-IGD gateway that takes only leases without end gets one (see
    /// `port_mapping_upnp`): it is deleted on close like the others, but
    /// outlives a process that is killed.
    ///
    /// ```no_run
    /// # fn example(endpoint: &srudp_async::Endpoint) {
    /// let mapping = endpoint.map_port();
    /// let state = mapping.wait_settled(std::time::Duration::from_secs(4));
    /// println!("{state:?}");
    /// mapping.close(); // the gateway forgets the mapping
    /// # }
    /// ```
    pub fn map_port(&self) -> PortMapping {
        let control = Arc::new(Control::new());
        let shared = Arc::downgrade(self.shared());
        let local = self.local_addr();
        let c = control.clone();
        let worker = std::thread::Builder::new()
            .name("srudp-port-mapping".into())
            .spawn(move || run(&c, &shared, local));
        let worker = match worker {
            Ok(w) => Some(w),
            Err(e) => {
                control.set(PortMappingState::Unavailable(format!(
                    "cannot start the port-mapping thread: {e}"
                )));
                None
            }
        };
        PortMapping { control, worker }
    }
}

/// A lease held at the gateway.
#[derive(Debug, Clone, Copy)]
struct Lease {
    mapped: MappedPort,
    /// Our socket's port, the mapping's internal port.
    internal: u16,
    nonce: [u8; 12],
    /// The server's epoch in the answer (none for UPnP-IGD).
    epoch: Option<u32>,
}

impl Lease {
    /// Judges the epoch of the answer that granted this lease.
    fn check_epoch(&self, epochs: &mut GatewayEpoch, now: Instant) -> Option<EpochCheck> {
        let rule = match self.mapped.protocol {
            PortMappingProtocol::Pcp => EpochRule::Pcp,
            PortMappingProtocol::NatPmp => EpochRule::NatPmp,
            PortMappingProtocol::Upnp => return None,
        };
        Some(epochs.observe(now, self.epoch?, rule))
    }
}

/// Why the worker woke.
enum Wake {
    /// Asked to stop.
    Stop,
    /// The deadline passed.
    Deadline,
    /// The gateway announced something.
    Heard(Announcement),
}

/// Waits until `deadline`, hearing the gateway's announcements when there
/// is a socket for them, and waking when asked to stop.
fn wait(control: &Control, announcements: Option<&Announcements>, deadline: Instant) -> Wake {
    let Some(announcements) = announcements else {
        return match control.sleep_until(deadline) {
            true => Wake::Stop,
            false => Wake::Deadline,
        };
    };
    loop {
        if control.stopping() {
            return Wake::Stop;
        }
        let now = Instant::now();
        if now >= deadline {
            return Wake::Deadline;
        }
        match announcements.recv_until(deadline.min(now + STOP_POLL)) {
            Ok(Some(heard)) => return Wake::Heard(heard),
            Ok(None) => {}
            Err(e) => {
                debug!("port mapping: announcements not heard: {e}");
                return wait(control, None, deadline);
            }
        }
    }
}

/// The rule that judges the epoch of what the gateway said.
fn rule_of(heard: Announcement) -> EpochRule {
    match heard {
        Announcement::Pcp { .. } => EpochRule::Pcp,
        Announcement::NatPmp(_) => EpochRule::NatPmp,
    }
}

/// Whether the gateway's answer to an epoch probe means our mapping is
/// lost or moved: its epoch says it restarted, or NAT-PMP names another
/// public address than ours.
fn lost(heard: Announcement, epochs: &mut GatewayEpoch, now: Instant, mapped: MappedPort) -> bool {
    if epochs.observe(now, heard.epoch(), rule_of(heard)) == EpochCheck::Reset {
        info!(
            epoch = heard.epoch(),
            "port mapping: the gateway restarted; mapping again"
        );
        return true;
    }
    match heard {
        Announcement::NatPmp(public) if IpAddr::V4(public.ip) != mapped.external.ip() => {
            info!(public = %public.ip, "port mapping: the gateway's address changed; mapping again");
            true
        }
        _ => false,
    }
}

/// When to map again after the gateway said it lost our mapping: now,
/// unless the last request was less than [`MIN_REMAP_INTERVAL`] ago.
fn remap_at(last_request: Instant, now: Instant) -> Instant {
    now.max(last_request + MIN_REMAP_INTERVAL)
}

/// When to request the mapping next after hearing `heard`, unsolicited, at
/// `now` (it was due at `renew_at`): as soon as [`remap_at`] allows, since
/// a gateway announces only a restart (PCP, NAT-PMP) or a new public
/// address (NAT-PMP). Its epoch becomes the one later ones are judged by.
fn announced(
    heard: Announcement,
    epochs: &mut GatewayEpoch,
    now: Instant,
    last_request: Instant,
    renew_at: Instant,
) -> Instant {
    epochs.observe(now, heard.epoch(), rule_of(heard));
    info!(
        epoch = heard.epoch(),
        "port mapping: the gateway announced a restart or a new address; mapping again"
    );
    renew_at.min(remap_at(last_request, now))
}

/// The worker: map, register the candidate, renew, delete on stop.
fn run(control: &Control, shared: &Weak<Shared>, local: SocketAddr) {
    let outcome = (|| {
        if !local.is_ipv4() {
            return Err("the endpoint's socket is IPv6; only IPv4 gateways are asked".into());
        }
        if local.ip().is_loopback() {
            // Nothing beyond this machine reaches it: no gateway to ask.
            return Err("the endpoint is bound to a loopback address".into());
        }
        let gateway = default_gateway().ok_or("no IPv4 default gateway")?;
        let socket = Gateway::connect(gateway).map_err(|e| format!("gateway {gateway}: {e}"))?;
        Ok((socket, gateway))
    })();
    let (socket, gateway) = match outcome {
        Ok(s) => s,
        Err(why) => return unavailable(control, why),
    };
    let nonce = random_nonce();
    let mut lease = match socket.map(
        &|| control.stopping(),
        nonce,
        local.port(),
        local.port(),
        None,
    ) {
        Ok(lease) => lease,
        Err(why) => return unavailable(control, format!("gateway {gateway}: {why}")),
    };
    granted(control, shared, lease.mapped);
    let mut epochs = GatewayEpoch::default();
    lease.check_epoch(&mut epochs, Instant::now());
    // Only PCP and NAT-PMP gateways announce, and have an epoch to probe.
    let announcements = match (lease.mapped.protocol, socket.client) {
        (PortMappingProtocol::Upnp, _) | (_, IpAddr::V6(_)) => None,
        (_, IpAddr::V4(client)) => Announcements::listen(gateway, client)
            .map_err(|e| debug!("port mapping: not hearing announcements: {e}"))
            .ok(),
    };
    let probes = lease.epoch.is_some();
    let mut last_request = Instant::now();
    let mut expires = last_request + lease.mapped.lifetime;
    let mut renew_at = last_request + (lease.mapped.lifetime / 2).max(MIN_RENEW);
    let mut probe_at = last_request + EPOCH_PROBE;
    loop {
        let wake_at = if probes {
            renew_at.min(probe_at)
        } else {
            renew_at
        };
        match wait(control, announcements.as_ref(), wake_at) {
            Wake::Stop => break,
            Wake::Heard(heard) => {
                let now = Instant::now();
                renew_at = announced(heard, &mut epochs, now, last_request, renew_at);
                continue;
            }
            Wake::Deadline => {}
        }
        let now = Instant::now();
        if now < renew_at {
            // Time to ask the gateway's epoch.
            probe_at = now + EPOCH_PROBE;
            match socket.epoch(&|| control.stopping(), lease.mapped.protocol) {
                Ok(Some(heard)) => {
                    if lost(heard, &mut epochs, Instant::now(), lease.mapped) {
                        renew_at = renew_at.min(remap_at(last_request, Instant::now()));
                    }
                }
                Ok(None) => {}
                Err(ExchangeError::Stopped) => break,
                Err(why) => debug!("port mapping: the gateway's epoch not read: {why}"),
            }
            continue;
        }
        let external = lease.mapped.external;
        last_request = now;
        let renewed = socket.map_with(
            &|| control.stopping(),
            lease.mapped.protocol,
            lease.nonce,
            local.port(),
            external.port(),
            Some(external.ip()),
        );
        let now = Instant::now();
        match renewed {
            Ok(renewed) => {
                if renewed.check_epoch(&mut epochs, now) == Some(EpochCheck::Reset) {
                    info!("port mapping: the gateway restarted; mapped again");
                }
                if renewed.mapped.external != external {
                    info!(old = %external, "port mapping moved");
                }
                lease = renewed;
                expires = now + lease.mapped.lifetime;
                renew_at = now + (lease.mapped.lifetime / 2).max(MIN_RENEW);
                probe_at = now + EPOCH_PROBE;
                granted(control, shared, lease.mapped);
            }
            Err(ExchangeError::Stopped) => break,
            Err(why) if now >= expires => {
                return unavailable(
                    control,
                    format!("gateway {gateway}: the lease expired, not renewed: {why}"),
                );
            }
            Err(why) => {
                debug!("port mapping not renewed yet: {why}");
                // Half the time left, but no longer than a probe period: a
                // request after a restart must not wait for half an hour.
                renew_at = now + ((expires - now) / 2).clamp(MIN_RENEW, EPOCH_PROBE);
            }
        }
    }
    match socket.delete(lease) {
        Ok(()) => info!(mapping = %lease.mapped, "port mapping deleted"),
        Err(why) => debug!(mapping = %lease.mapped, "port mapping not deleted: {why}"),
    }
}

/// Ends the worker without a lease (nothing to delete on close).
fn unavailable(control: &Control, why: String) {
    info!("port mapping: none ({why})");
    control.set(PortMappingState::Unavailable(why));
}

/// Publishes a granted mapping: state, log line, and host candidate.
fn granted(control: &Control, shared: &Weak<Shared>, mapped: MappedPort) {
    info!("port mapping: {mapped}");
    control.set(PortMappingState::Mapped(mapped));
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let mut guard = shared.lock();
    let state = &mut *guard;
    let now = state.now();
    if let Some(client) = state.machine.client_mut() {
        client.add_host_candidate(now, mapped.external);
    }
    state.wake_driver();
}

/// 12 bytes from the OS's randomness (std's hasher keys are drawn from it).
fn random_nonce() -> [u8; 12] {
    let mut nonce = [0u8; 12];
    let a = RandomState::new().build_hasher().finish().to_le_bytes();
    let b = RandomState::new().build_hasher().finish().to_le_bytes();
    nonce[..8].copy_from_slice(&a);
    nonce[8..].copy_from_slice(&b[..4]);
    nonce
}

/// Our socket toward the gateway's port-mapping port.
struct Gateway {
    socket: UdpSocket,
    /// Our address as the gateway sees it (PCP names it in requests).
    client: IpAddr,
    gateway: Ipv4Addr,
    /// The gateway's UPnP-IGD service, once found.
    igd: std::cell::OnceCell<Igd>,
}

/// Why an exchange with the gateway failed.
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("no answer")]
    NoAnswer,
    #[error("no port-mapping server (port unreachable)")]
    Refused,
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Upnp(UpnpFailure),
    #[error("stopped")]
    Stopped,
}

impl From<UpnpFailure> for ExchangeError {
    fn from(e: UpnpFailure) -> Self {
        match e {
            UpnpFailure::Stopped => ExchangeError::Stopped,
            e => ExchangeError::Upnp(e),
        }
    }
}

impl Gateway {
    fn connect(gateway: Ipv4Addr) -> io::Result<Gateway> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.connect((gateway, wire::SERVER_PORT))?;
        let client = socket.local_addr()?.ip();
        Ok(Gateway {
            socket,
            client,
            gateway,
            igd: std::cell::OnceCell::new(),
        })
    }

    /// PCP first; NAT-PMP when the gateway does not speak PCP or does not
    /// answer it; UPnP-IGD when neither works.
    fn map(
        &self,
        stop: &dyn Fn() -> bool,
        nonce: [u8; 12],
        internal: u16,
        external: u16,
        external_ip: Option<IpAddr>,
    ) -> Result<Lease, String> {
        let pcp = self.map_with(
            stop,
            PortMappingProtocol::Pcp,
            nonce,
            internal,
            external,
            external_ip,
        );
        let pcp_error = match pcp {
            Ok(lease) => return Ok(lease),
            Err(e) => e,
        };
        debug!("PCP: {pcp_error}");
        let nat_pmp = self.map_with(
            stop,
            PortMappingProtocol::NatPmp,
            nonce,
            internal,
            external,
            external_ip,
        );
        let nat_pmp_error = match nat_pmp {
            Ok(lease) => return Ok(lease),
            Err(e) => e,
        };
        debug!("NAT-PMP: {nat_pmp_error}");
        self.map_with(
            stop,
            PortMappingProtocol::Upnp,
            nonce,
            internal,
            external,
            external_ip,
        )
        .map_err(|e| format!("PCP: {pcp_error}; NAT-PMP: {nat_pmp_error}; UPnP-IGD: {e}"))
    }

    fn map_with(
        &self,
        stop: &dyn Fn() -> bool,
        protocol: PortMappingProtocol,
        nonce: [u8; 12],
        internal: u16,
        external: u16,
        external_ip: Option<IpAddr>,
    ) -> Result<Lease, ExchangeError> {
        let lifetime = MAX_LEASE.as_secs() as u32;
        let granted = match protocol {
            PortMappingProtocol::Pcp => {
                let request = wire::pcp_map_request(
                    self.client,
                    nonce,
                    internal,
                    external,
                    external_ip,
                    lifetime,
                );
                let g = self.exchange(stop, &request, &TRIES, |b| {
                    wire::parse_pcp_map_answer(b, nonce, internal)
                })?;
                let ip = g.external_ip.ok_or(WireError::NotOurs)?;
                (g, ip)
            }
            PortMappingProtocol::NatPmp => {
                let public =
                    self.exchange(stop, &wire::nat_pmp_address_request(), &TRIES, |b| {
                        wire::parse_nat_pmp_address_answer(b)
                    })?;
                let request = wire::nat_pmp_map_request(internal, external, lifetime);
                let g = self.exchange(stop, &request, &TRIES, |b| {
                    wire::parse_nat_pmp_map_answer(b, internal)
                })?;
                (g, IpAddr::V4(public.ip))
            }
            PortMappingProtocol::Upnp => {
                let IpAddr::V4(client) = self.client else {
                    return Err(ExchangeError::NoAnswer);
                };
                let igd = match self.igd.get() {
                    Some(igd) => igd,
                    None => {
                        let found = Igd::find(self.gateway, stop)?;
                        self.igd.get_or_init(|| found)
                    }
                };
                let granted = igd.map(SocketAddrV4::new(client, internal), external, stop)?;
                // A lease without end (the gateway takes no other) is
                // re-added as often as a two-hour one would be renewed.
                let secs = match granted.lease_secs {
                    0 => MAX_LEASE.as_secs() as u32,
                    s => s,
                };
                (
                    Granted {
                        external_port: granted.external.port(),
                        external_ip: Some(granted.external.ip()),
                        lifetime: secs,
                        epoch: 0,
                    },
                    granted.external.ip(),
                )
            }
        };
        let (
            Granted {
                external_port,
                lifetime,
                epoch,
                ..
            },
            ip,
        ) = granted;
        if lifetime == 0 || external_port == 0 || ip.is_unspecified() {
            return Err(WireError::Refused(0).into());
        }
        Ok(Lease {
            mapped: MappedPort {
                protocol,
                external: SocketAddr::new(ip, external_port),
                lifetime: Duration::from_secs(lifetime.into()).min(MAX_LEASE),
            },
            internal,
            nonce,
            epoch: (protocol != PortMappingProtocol::Upnp).then_some(epoch),
        })
    }

    /// Asks a PCP gateway (ANNOUNCE) or a NAT-PMP one (its public address)
    /// for its epoch; `None` for UPnP-IGD, which has none.
    fn epoch(
        &self,
        stop: &dyn Fn() -> bool,
        protocol: PortMappingProtocol,
    ) -> Result<Option<Announcement>, ExchangeError> {
        Ok(Some(match protocol {
            PortMappingProtocol::Pcp => {
                let request = wire::pcp_announce_request(self.client);
                let epoch = self.exchange(stop, &request, &TRIES, wire::parse_pcp_announce)?;
                Announcement::Pcp { epoch }
            }
            PortMappingProtocol::NatPmp => {
                let request = wire::nat_pmp_address_request();
                Announcement::NatPmp(self.exchange(
                    stop,
                    &request,
                    &TRIES,
                    wire::parse_nat_pmp_address_answer,
                )?)
            }
            PortMappingProtocol::Upnp => return Ok(None),
        }))
    }

    /// Deletes the lease (lifetime 0).
    fn delete(&self, lease: Lease) -> Result<(), ExchangeError> {
        let internal = lease.internal;
        let external = lease.mapped.external;
        match lease.mapped.protocol {
            PortMappingProtocol::Pcp => {
                let request = wire::pcp_map_request(
                    self.client,
                    lease.nonce,
                    internal,
                    external.port(),
                    Some(external.ip()),
                    0,
                );
                self.exchange(&|| false, &request, &DELETE_TRIES, |b| {
                    wire::parse_pcp_map_answer(b, lease.nonce, internal).map(drop)
                })
            }
            PortMappingProtocol::NatPmp => {
                let request = wire::nat_pmp_map_request(internal, 0, 0);
                self.exchange(&|| false, &request, &DELETE_TRIES, |b| {
                    wire::parse_nat_pmp_map_answer(b, internal).map(drop)
                })
            }
            PortMappingProtocol::Upnp => {
                let igd = self.igd.get().ok_or(ExchangeError::NoAnswer)?;
                Ok(igd.delete(external.port())?)
            }
        }
    }

    /// Sends `request` and waits for an answer `parse` accepts, sending
    /// again after each of `tries`. Answers that are not ours (another
    /// nonce, garbage) are skipped; a refusal ends the exchange.
    fn exchange<T>(
        &self,
        stop: &dyn Fn() -> bool,
        request: &[u8],
        tries: &[Duration],
        parse: impl Fn(&[u8]) -> Result<T, WireError>,
    ) -> Result<T, ExchangeError> {
        let mut buf = [0u8; wire::MAX_ANSWER_LEN];
        for wait in tries {
            if stop() {
                return Err(ExchangeError::Stopped);
            }
            self.socket.send(request).map_err(refused)?;
            let deadline = Instant::now() + *wait;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                self.socket.set_read_timeout(Some(deadline - now))?;
                let n = match self.socket.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(refused(e)),
                };
                match parse(&buf[..n]) {
                    Ok(v) => return Ok(v),
                    Err(e @ (WireError::UnsupportedVersion | WireError::Refused(_))) => {
                        return Err(e.into())
                    }
                    Err(e) => debug!("port mapping: skipped an answer: {e}"),
                }
            }
        }
        Err(ExchangeError::NoAnswer)
    }
}

fn refused(e: io::Error) -> ExchangeError {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        ExchangeError::Refused
    } else {
        ExchangeError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port_mapping_wire::PublicAddress;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn mapped(port: u16) -> MappedPort {
        MappedPort {
            protocol: PortMappingProtocol::Pcp,
            external: SocketAddr::from(([203, 0, 113, 1], port)),
            lifetime: MAX_LEASE,
        }
    }

    #[test]
    fn on_mapped_hears_each_new_mapping_once_and_not_the_renewals() {
        let mapping = PortMapping {
            control: Arc::new(Control::new()),
            worker: None,
        };
        let heard = Arc::new(Mutex::new(Vec::new()));
        // Granted before anyone listens: told at once.
        mapping.control.set(PortMappingState::Mapped(mapped(40000)));
        let h = heard.clone();
        mapping.on_mapped(move |m| h.lock().unwrap().push(m.external.port()));
        assert_eq!(*heard.lock().unwrap(), [40000]);
        // A renewal that keeps the address (another lifetime): not told.
        let mut renewed = mapped(40000);
        renewed.lifetime = Duration::from_secs(60);
        mapping.control.set(PortMappingState::Mapped(renewed));
        // The gateway restarted and gave another port: told.
        mapping.control.set(PortMappingState::Mapped(mapped(40001)));
        mapping.control.set(PortMappingState::Mapped(mapped(40001)));
        assert_eq!(*heard.lock().unwrap(), [40000, 40001]);
    }

    #[test]
    fn a_probed_epoch_tells_a_restart_and_nat_pmp_a_public_address_change() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut epochs = GatewayEpoch::default();
        let pcp = |epoch| Announcement::Pcp { epoch };
        assert!(!lost(pcp(100), &mut epochs, t0, mapped(40000)));
        assert!(!lost(pcp(110), &mut epochs, t0 + s(10), mapped(40000)));
        // Restarted: the epoch counts from 0 again.
        assert!(lost(pcp(0), &mut epochs, t0 + s(20), mapped(40000)));
        // Asked again a second later: the new state continues.
        assert!(!lost(pcp(1), &mut epochs, t0 + s(21), mapped(40000)));
        // NAT-PMP names another public address, its epoch continuous.
        let moved = Announcement::NatPmp(PublicAddress {
            ip: Ipv4Addr::new(198, 51, 100, 7),
            epoch: 11,
        });
        assert!(lost(moved, &mut epochs, t0 + s(31), mapped(40000)));
        let same = Announcement::NatPmp(PublicAddress {
            ip: Ipv4Addr::new(203, 0, 113, 1),
            epoch: 12,
        });
        assert!(!lost(same, &mut epochs, t0 + s(32), mapped(40000)));
    }

    #[test]
    fn an_announcement_maps_again_at_once() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut epochs = GatewayEpoch::default();
        let heard = Announcement::Pcp { epoch: 0 };
        // Last request 10 s ago, next renewal in an hour: now.
        let at = announced(heard, &mut epochs, t0 + s(10), t0, t0 + s(3600));
        assert_eq!(at, t0 + s(10));
    }

    /// Attacker test: a LAN host forging the gateway's announcements
    /// (from its address and port) gets at most one request to the gateway
    /// per `MIN_REMAP_INTERVAL`.
    #[test]
    fn forged_announcements_cannot_make_us_request_more_than_every_two_seconds() {
        let t0 = Instant::now();
        let mut epochs = GatewayEpoch::default();
        let requests = AtomicUsize::new(0);
        let mut last_request = t0;
        let mut next_request = t0 + MAX_LEASE;
        for i in 0..1000u32 {
            // 1000 forged announcements in 10 s.
            let now = t0 + Duration::from_millis(u64::from(i) * 10);
            if now >= next_request {
                requests.fetch_add(1, Ordering::Relaxed);
                last_request = now;
                next_request = now + MAX_LEASE;
            }
            let forged = Announcement::Pcp {
                epoch: i % 2 * 5000,
            };
            next_request = announced(forged, &mut epochs, now, last_request, next_request);
        }
        let n = requests.load(Ordering::Relaxed);
        assert!((4..=5).contains(&n), "{n} requests in 10 s");
    }
}
