//! A minimal NAT-PMP (RFC 6886) and PCP (RFC 6887) server for the NAT
//! tests, run on a NAT router: it grants UDP mappings by installing real
//! nftables rules in the router's namespace (DNAT of the external port to
//! the client, SNAT of the client's port to the external one, ahead of the
//! masquerade), deletes them on lifetime 0 or expiry.
//!
//! Debian's miniupnpd (UPnP-IGD, NAT-PMP, PCP over nftables) would be the
//! real thing, but it refuses to run with an external address in a reserved
//! range ("ext_ip contains reserved / private address"), and the tests use
//! documentation ranges only. This server's parsing is its own (not the
//! client's codec in srudp-async), and `natpmpc` checks it as an independent
//! client (`nat.rs`).
//!
//! It can play a gateway that restarts ([`PortMappingServer::restart`]):
//! its mappings and their rules are gone, its epoch counts from 0 again,
//! and it may announce it (PCP's ANNOUNCE and NAT-PMP's public address,
//! multicast to 224.0.0.1:5350 on the LAN), or give other ports from then
//! on; and a gateway that answers late.
//!
//! It runs on a thread of the test process that entered the router's
//! network namespace (`setns`), so nothing is left behind when the test
//! ends: dropping the [`PortMappingServer`] stops it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::upnp_server::{self, UpnpSockets};
use super::{enter_netns, in_ns, Nat};

/// Which protocols the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocols {
    PcpAndNatPmp,
    NatPmpOnly,
    Upnp { permanent_only: bool },
}

fn clone_error(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

/// The longest lease granted, in seconds.
const MAX_LIFETIME: u32 = 7200;
/// Where external ports are allocated when the suggested one is taken.
const FIRST_FREE_PORT: u16 = 40000;
/// Where a gateway restarted with [`Restart::OtherPorts`] allocates every
/// external port (below Linux's ephemeral range, so never the one it gave
/// before).
pub const OTHER_PORTS_FROM: u16 = 20000;

/// How a gateway restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Silently: its clients find out from its epoch.
    Silent,
    /// Announcing it to 224.0.0.1:5350 (RFC 6887 §14.1.3, RFC 6886
    /// §3.2.1).
    Announced,
    /// Silently, giving other external ports than the suggested ones from
    /// then on (from [`OTHER_PORTS_FROM`]).
    OtherPorts,
}

/// A mapping in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The LAN host and its port.
    pub client: SocketAddr,
    /// The external port on the router's WAN address.
    pub external_port: u16,
    /// `"nat-pmp"`, `"pcp"` or `"upnp"`.
    pub protocol: &'static str,
    /// How many requests granted it: 1, plus one per renewal.
    pub grants: u32,
    /// The lifetime granted last, in seconds.
    pub lifetime: u32,
    expires: Instant,
    nonce: [u8; 12],
}

/// The running server; stops on drop (its rules stay until the namespace
/// goes).
#[derive(Debug)]
pub struct PortMappingServer {
    stop: Arc<AtomicBool>,
    leases: Arc<Mutex<Vec<Lease>>>,
    thread: Option<JoinHandle<()>>,
    /// The server's state, shared with its thread (to restart it).
    server: Server,
    /// Its PCP/NAT-PMP socket (LAN address, port 5351), to announce from.
    socket: Option<UdpSocket>,
}

impl PortMappingServer {
    /// Starts serving NAT-PMP and PCP on `nat`'s LAN address, port 5351.
    pub fn start(nat: &Nat) -> io::Result<PortMappingServer> {
        PortMappingServer::start_with(nat, Protocols::PcpAndNatPmp, MAX_LIFETIME)
    }

    /// Starts serving UPnP-IGD only (SSDP on port 1900, the description and
    /// SOAP control on HTTP port 5000, see `upnp_server`); nothing listens
    /// on 5351, so PCP and NAT-PMP requests are refused (port unreachable).
    pub fn start_upnp_only(nat: &Nat) -> io::Result<PortMappingServer> {
        PortMappingServer::start_with(
            nat,
            Protocols::Upnp {
                permanent_only: false,
            },
            MAX_LIFETIME,
        )
    }

    /// [`start_upnp_only`](PortMappingServer::start_upnp_only), granting
    /// leases of at most `max_lifetime` seconds (AddPortMapping does not
    /// say so; GetSpecificPortMappingEntry does).
    pub fn start_upnp_with_max_lifetime(
        nat: &Nat,
        max_lifetime: u32,
    ) -> io::Result<PortMappingServer> {
        PortMappingServer::start_with(
            nat,
            Protocols::Upnp {
                permanent_only: false,
            },
            max_lifetime,
        )
    }

    /// [`start_upnp_only`](PortMappingServer::start_upnp_only), as an IGD
    /// 1 gateway that takes only leases without end: any other lease
    /// duration is refused with UPnP error 725.
    pub fn start_upnp_permanent_leases_only(nat: &Nat) -> io::Result<PortMappingServer> {
        PortMappingServer::start_with(
            nat,
            Protocols::Upnp {
                permanent_only: true,
            },
            MAX_LIFETIME,
        )
    }

    /// [`start`](PortMappingServer::start), granting leases of at most
    /// `max_lifetime` seconds (to see them renewed).
    pub fn start_with_max_lifetime(nat: &Nat, max_lifetime: u32) -> io::Result<PortMappingServer> {
        PortMappingServer::start_with(nat, Protocols::PcpAndNatPmp, max_lifetime)
    }

    /// Starts serving NAT-PMP only, as an older gateway does: a PCP
    /// request gets NAT-PMP's "unsupported version" answer (RFC 6887 §9).
    pub fn start_nat_pmp_only(nat: &Nat) -> io::Result<PortMappingServer> {
        PortMappingServer::start_with(nat, Protocols::NatPmpOnly, MAX_LIFETIME)
    }

    /// [`start_nat_pmp_only`](PortMappingServer::start_nat_pmp_only),
    /// sending every answer `late` after the request (the mapping itself is
    /// made at once): a client that waits for each of its three answers
    /// (PCP's refusal, NAT-PMP's address and mapping) is mapped after three
    /// times `late`.
    pub fn start_nat_pmp_only_answering_late(
        nat: &Nat,
        late: Duration,
    ) -> io::Result<PortMappingServer> {
        let server = PortMappingServer::start_nat_pmp_only(nat)?;
        server
            .server
            .answer_delay_ms
            .store(late.as_millis() as u64, Ordering::Relaxed);
        Ok(server)
    }

    /// Plays a gateway that restarts: every mapping and its rules are
    /// gone, the epoch counts from 0 again, and it announces it or gives
    /// other ports from then on, as `how` says.
    pub fn restart(&self, how: Restart) {
        *self.server.started.lock().unwrap() = Instant::now();
        self.server
            .other_ports
            .store(how == Restart::OtherPorts, Ordering::Relaxed);
        self.server.remove(|_| true);
        if how == Restart::Announced {
            let socket = self.socket.as_ref().expect("a PCP/NAT-PMP server");
            let to = (Ipv4Addr::new(224, 0, 0, 1), 5350);
            let epoch = self.server.epoch().to_be_bytes();
            // PCP's ANNOUNCE: an answer (R bit), result 0, the new epoch.
            let mut pcp = [0u8; 24];
            pcp[0] = 2;
            pcp[1] = 0x80;
            pcp[8..12].copy_from_slice(&epoch);
            // NAT-PMP's public address announcement.
            let mut nat_pmp = vec![0, 128, 0, 0];
            nat_pmp.extend_from_slice(&epoch);
            nat_pmp.extend_from_slice(&self.server.wan.octets());
            let announce: &[u8] = if self.server.pcp { &pcp } else { &nat_pmp };
            socket
                .send_to(announce, to)
                .expect("announcing to 224.0.0.1:5350");
        }
    }

    fn start_with(
        nat: &Nat,
        protocols: Protocols,
        max_lifetime: u32,
    ) -> io::Result<PortMappingServer> {
        let router = nat.router.netns.clone();
        let wan = nat.router.ip;
        let lan = nat.lan_ip();
        // Forward what our DNAT rules let in (the router's forward policy
        // is drop for anything new from the WAN).
        in_ns(
            &router,
            &[
                "nft",
                "insert",
                "rule",
                "ip",
                "filter",
                "fwd_filter",
                "ct",
                "status",
                "dnat",
                "accept",
            ],
        )?;
        let stop = Arc::new(AtomicBool::new(false));
        let leases = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (s, l) = (stop.clone(), leases.clone());
        let shared = Server {
            pcp: protocols == Protocols::PcpAndNatPmp,
            max_lifetime,
            router,
            wan,
            started: Arc::new(Mutex::new(Instant::now())),
            leases: l,
            answer_delay_ms: Arc::new(AtomicU64::new(0)),
            other_ports: Arc::new(AtomicBool::new(false)),
        };
        let server = shared.clone();
        let thread = std::thread::spawn(move || {
            if let Protocols::Upnp { permanent_only } = protocols {
                let sockets = enter_netns(&server.router).and_then(|()| UpnpSockets::bind(lan));
                let _ = ready_tx.send(sockets.as_ref().map(|_| None).map_err(clone_error));
                if let Ok(sockets) = sockets {
                    upnp_server::serve(&server, &sockets, permanent_only, &s);
                }
                return;
            }
            let socket = enter_netns(&server.router).and_then(|()| {
                let socket = UdpSocket::bind((lan, 5351))?;
                socket.set_read_timeout(Some(Duration::from_millis(100)))?;
                Ok(socket)
            });
            let socket = match socket {
                Ok(socket) => {
                    let _ = ready_tx.send(socket.try_clone().map(Some));
                    socket
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let mut server = server;
            server.serve(&socket, &s);
        });
        let socket = ready_rx
            .recv()
            .map_err(|_| io::Error::other("the port-mapping server thread died"))??;
        Ok(PortMappingServer {
            stop,
            leases,
            thread: Some(thread),
            server: shared,
            socket,
        })
    }

    /// The mappings in force now.
    pub fn leases(&self) -> Vec<Lease> {
        self.leases.lock().unwrap().clone()
    }
}

impl Drop for PortMappingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Server {
    /// Whether PCP is spoken (else NAT-PMP only).
    pcp: bool,
    /// The longest lease granted, in seconds.
    pub(super) max_lifetime: u32,
    router: String,
    pub(super) wan: Ipv4Addr,
    /// When the server's state began (its epoch counts from there).
    started: Arc<Mutex<Instant>>,
    pub(super) leases: Arc<Mutex<Vec<Lease>>>,
    /// How long each PCP/NAT-PMP answer waits before it is sent.
    answer_delay_ms: Arc<AtomicU64>,
    /// Whether suggested ports are ignored (see [`Restart::OtherPorts`]).
    other_ports: Arc<AtomicBool>,
}

impl Server {
    fn serve(&mut self, socket: &UdpSocket, stop: &AtomicBool) {
        let mut buf = [0u8; 1100];
        while !stop.load(Ordering::Relaxed) {
            self.expire();
            let (n, from) = match socket.recv_from(&mut buf) {
                Ok(r) => r,
                Err(_) => continue,
            };
            let SocketAddr::V4(from4) = from else {
                continue;
            };
            let answer = match buf[..n].first() {
                Some(0) => self.nat_pmp(*from4.ip(), &buf[..n]),
                Some(2) if self.pcp => self.pcp(*from4.ip(), &buf[..n]),
                Some(_) if !self.pcp && n >= 2 => {
                    let mut out = vec![0, buf[1] | 0x80, 0, 1];
                    out.extend_from_slice(&self.epoch().to_be_bytes());
                    Some(out)
                }
                Some(_) if n >= 2 => Some(pcp_error(&buf[..n], 1, self.epoch())),
                _ => None,
            };
            let Some(answer) = answer else {
                continue;
            };
            match self.answer_delay_ms.load(Ordering::Relaxed) {
                0 => {
                    let _ = socket.send_to(&answer, from);
                }
                late => {
                    let Ok(socket) = socket.try_clone() else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(late));
                        let _ = socket.send_to(&answer, from);
                    });
                }
            }
        }
    }

    fn epoch(&self) -> u32 {
        self.started.lock().unwrap().elapsed().as_secs() as u32
    }

    fn nat_pmp(&mut self, client: Ipv4Addr, b: &[u8]) -> Option<Vec<u8>> {
        let op = *b.get(1)?;
        let mut out = vec![0, op | 0x80, 0, 0];
        out.extend_from_slice(&self.epoch().to_be_bytes());
        match op {
            0 => out.extend_from_slice(&self.wan.octets()),
            1 if b.len() >= 12 => {
                let internal = u16::from_be_bytes([b[4], b[5]]);
                let suggested = u16::from_be_bytes([b[6], b[7]]);
                let lifetime =
                    u32::from_be_bytes([b[8], b[9], b[10], b[11]]).min(self.max_lifetime);
                let client = SocketAddr::from((client, internal));
                let external = if lifetime == 0 {
                    self.remove(|l| l.client == client);
                    0
                } else {
                    self.grant(client, suggested, lifetime, "nat-pmp", [0; 12])?
                };
                out.extend_from_slice(&internal.to_be_bytes());
                out.extend_from_slice(&external.to_be_bytes());
                out.extend_from_slice(&lifetime.to_be_bytes());
            }
            // TCP mappings and other opcodes: unsupported opcode.
            _ => out[3] = 5,
        }
        Some(out)
    }

    fn pcp(&mut self, client: Ipv4Addr, b: &[u8]) -> Option<Vec<u8>> {
        if b.len() < 24 || b[1] & 0x80 != 0 {
            return None;
        }
        if b[1] == 0 {
            // ANNOUNCE: the header back, result 0, with the epoch.
            return Some(pcp_error(b, 0, self.epoch()));
        }
        if b[1] != 1 {
            return Some(pcp_error(b, 4, self.epoch())); // UNSUPP_OPCODE
        }
        if b.len() < 60 {
            return Some(pcp_error(b, 3, self.epoch())); // MALFORMED_REQUEST
        }
        if b[8..24] != client.to_ipv6_mapped().octets() {
            return Some(pcp_error(b, 12, self.epoch())); // ADDRESS_MISMATCH
        }
        if b[36] != 17 {
            return Some(pcp_error(b, 9, self.epoch())); // UNSUPP_PROTOCOL
        }
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&b[24..36]);
        let lifetime = u32::from_be_bytes([b[4], b[5], b[6], b[7]]).min(self.max_lifetime);
        let internal = u16::from_be_bytes([b[40], b[41]]);
        let suggested = u16::from_be_bytes([b[42], b[43]]);
        let client_addr = SocketAddr::from((client, internal));
        let external = if lifetime == 0 {
            self.remove(|l| l.client == client_addr && l.nonce == nonce);
            suggested
        } else {
            self.grant(client_addr, suggested, lifetime, "pcp", nonce)?
        };
        let mut out = b[..60].to_vec();
        out[1] |= 0x80;
        out[2] = 0;
        out[3] = 0;
        out[4..8].copy_from_slice(&lifetime.to_be_bytes());
        out[8..12].copy_from_slice(&self.epoch().to_be_bytes());
        out[12..24].fill(0);
        out[42..44].copy_from_slice(&external.to_be_bytes());
        out[44..60].copy_from_slice(&self.wan.to_ipv6_mapped().octets());
        Some(out)
    }

    /// Grants (or renews) `client`'s mapping for `lifetime` seconds (0: without end): the suggested external port
    /// when free, else the first free one from 40000. None when the rules
    /// could not be installed (no answer then).
    pub(super) fn grant(
        &self,
        client: SocketAddr,
        suggested: u16,
        lifetime: u32,
        protocol: &'static str,
        nonce: [u8; 12],
    ) -> Option<u16> {
        // Lifetime 0 (UPnP-IGD only; the others delete with it): no end.
        let expires = Instant::now()
            + match lifetime {
                0 => Duration::from_secs(100 * 365 * 24 * 3600),
                s => Duration::from_secs(s.into()),
            };
        let mut leases = self.leases.lock().unwrap();
        if let Some(l) = leases.iter_mut().find(|l| l.client == client) {
            l.expires = expires;
            l.nonce = nonce;
            l.grants += 1;
            l.lifetime = lifetime;
            return Some(l.external_port);
        }
        let taken = |p: u16| leases.iter().any(|l| l.external_port == p);
        let external = if self.other_ports.load(Ordering::Relaxed) {
            (OTHER_PORTS_FROM..=u16::MAX).find(|p| !taken(*p))?
        } else if suggested != 0 && !taken(suggested) {
            suggested
        } else {
            (FIRST_FREE_PORT..=u16::MAX).find(|p| !taken(*p))?
        };
        leases.push(Lease {
            client,
            external_port: external,
            protocol,
            grants: 1,
            lifetime,
            expires,
            nonce,
        });
        let rules = self.rules(&leases);
        drop(leases);
        self.apply(&rules).ok()?;
        Some(external)
    }

    pub(super) fn remove(&self, f: impl Fn(&Lease) -> bool) {
        let mut leases = self.leases.lock().unwrap();
        let before = leases.len();
        leases.retain(|l| !f(l));
        if leases.len() != before {
            let rules = self.rules(&leases);
            drop(leases);
            let _ = self.apply(&rules);
        }
    }

    pub(super) fn expire(&self) {
        let now = Instant::now();
        self.remove(|l| l.expires <= now);
    }

    /// The `ip portmap` table for `leases`, replacing the previous one.
    fn rules(&self, leases: &[Lease]) -> String {
        let mut pre = String::new();
        let mut post = String::new();
        for l in leases {
            let IpAddr::V4(ip) = l.client.ip() else {
                continue;
            };
            let (port, ext, wan) = (l.client.port(), l.external_port, self.wan);
            pre.push_str(&format!(
                "  iifname \"wan\" udp dport {ext} dnat to {ip}:{port}\n"
            ));
            post.push_str(&format!(
                "  oifname \"wan\" ip saddr {ip} udp sport {port} snat to {wan}:{ext}\n"
            ));
        }
        format!(
            "table ip portmap\ndelete table ip portmap\ntable ip portmap {{\n \
             chain pre {{\n  type nat hook prerouting priority -100;\n{pre} }}\n \
             chain post {{\n  type nat hook postrouting priority 50;\n{post} }}\n}}\n"
        )
    }

    fn apply(&self, rules: &str) -> io::Result<()> {
        let path = std::env::temp_dir().join(format!("{}-portmap.nft", self.router));
        std::fs::write(&path, rules)?;
        let applied = in_ns(&self.router, &["nft", "-f", &path.to_string_lossy()]);
        let _ = std::fs::remove_file(&path);
        applied.map(drop)
    }
}

/// A PCP error answer to request `b` (its first 24 bytes' layout), or with
/// code 0 the answer to an ANNOUNCE.
fn pcp_error(b: &[u8], code: u8, epoch: u32) -> Vec<u8> {
    let mut out = vec![0u8; 24];
    out[0] = 2;
    out[1] = b.get(1).copied().unwrap_or(0) | 0x80;
    out[3] = code;
    out[8..12].copy_from_slice(&epoch.to_be_bytes());
    out
}
