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
use crate::port_mapping_gateway::default_gateway;
use crate::port_mapping_upnp::{Igd, UpnpFailure};
use crate::port_mapping_wire::{self as wire, Granted, WireError};
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

#[derive(Debug)]
struct Inner {
    state: PortMappingState,
    stop: bool,
}

impl Control {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, state: PortMappingState) {
        self.lock().state = state;
        self.changed.notify_all();
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
    /// `nat-pmp …`, `upnp …`). A UPnP-IGD gateway that takes only leases
    /// without end gets one (see `port_mapping_upnp`): it is deleted on
    /// close like the others, but outlives a process that is killed.
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
        let control = Arc::new(Control {
            inner: Mutex::new(Inner {
                state: PortMappingState::Trying,
                stop: false,
            }),
            changed: Condvar::new(),
        });
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
    let mut expires = Instant::now() + lease.mapped.lifetime;
    let mut renew_at = Instant::now() + (lease.mapped.lifetime / 2).max(MIN_RENEW);
    loop {
        if control.sleep_until(renew_at) {
            break;
        }
        let external = lease.mapped.external;
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
                if renewed.mapped.external != external {
                    info!(old = %external, "port mapping moved");
                }
                lease = renewed;
                expires = now + lease.mapped.lifetime;
                renew_at = now + (lease.mapped.lifetime / 2).max(MIN_RENEW);
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
                renew_at = now + ((expires - now) / 2).max(MIN_RENEW);
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
                let ip = self.exchange(stop, &wire::nat_pmp_address_request(), &TRIES, |b| {
                    wire::parse_nat_pmp_address_answer(b)
                })?;
                let request = wire::nat_pmp_map_request(internal, external, lifetime);
                let g = self.exchange(stop, &request, &TRIES, |b| {
                    wire::parse_nat_pmp_map_answer(b, internal)
                })?;
                (g, IpAddr::V4(ip))
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
                    },
                    granted.external.ip(),
                )
            }
        };
        let (
            Granted {
                external_port,
                lifetime,
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
        })
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
