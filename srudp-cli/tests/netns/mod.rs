//! Real NAT topologies for tests: Linux network namespaces joined by veth
//! pairs, with nftables masquerade on the NAT routers.
//!
//! ```text
//!                      ┌──── <p>-inet: a router (203.0.113.0/24, proxy ARP) ────┐
//!   public host ──wan──┤                                                        ├──wan── NAT router ──lan bridge── hosts
//!   203.0.113.x        └────────────────────────────────────────────────────────┘        203.0.113.y   192.168.n.1/24 192.168.n.x
//! ```
//!
//! The internet is one **router** hop, as between any two real NATs: every
//! node sees 203.0.113.0/24 as on-link, and the internet namespace answers
//! its ARP requests (proxy ARP) and forwards between them, decrementing the
//! TTL. So a datagram sent with a TTL of 2 from a LAN host opens its own
//! NAT's mapping and dies one hop later, before the peer's NAT.
//!
//! Every namespace name starts with a prefix unique to the process and the
//! topology, so parallel test runs never collide; dropping the [`Topology`]
//! deletes every namespace it made (and with them every interface). Public
//! addresses are in a documentation range; LANs use private ranges, as real
//! LANs do (a rendezvous server forwards only private host candidates). Needs root, `ip` (iproute2), `nft`
//! (nftables) and `conntrack` (conntrack-tools).
#![allow(dead_code, unreachable_pub)]

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

mod port_mapping_server;
mod upnp_server;
pub use port_mapping_server::{Lease, PortMappingServer, Restart, OTHER_PORTS_FROM};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// How a NAT router maps and filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Plain masquerade: keeps the source port when it can (endpoint-independent
    /// mapping in practice) and lets in only replies to what went out
    /// (address-and-port-dependent filtering); an input firewall drops
    /// unsolicited packets addressed to the router itself.
    PortPreserving,
    /// Plain masquerade as [`NatKind::PortPreserving`], but **no input
    /// firewall**: an unsolicited packet to the router is delivered to the
    /// router itself (and answered with an ICMP error), and its conntrack
    /// entry stays. A punch that arrives before the LAN host's own first
    /// packet toward the sender therefore makes masquerade pick another
    /// port for that host (a conntrack collision), as on many real routers.
    PortPreservingNoInputFirewall,
    /// Masquerade with random ports (`masquerade random`): every new
    /// destination gets a new external port (a symmetric NAT).
    Symmetric,
    /// `masquerade fully-random`: like [`NatKind::Symmetric`], with the
    /// port chosen by a full random draw.
    FullyRandom,
}

impl NatKind {
    /// The nftables masquerade statement.
    fn masquerade(self) -> &'static str {
        match self {
            NatKind::PortPreserving | NatKind::PortPreservingNoInputFirewall => "masquerade",
            NatKind::Symmetric => "masquerade random",
            NatKind::FullyRandom => "masquerade fully-random",
        }
    }

    /// Whether the router drops unsolicited packets addressed to itself.
    fn input_firewall(self) -> bool {
        !matches!(self, NatKind::PortPreservingNoInputFirewall)
    }
}

/// Why the environment cannot run namespace tests.
pub fn check_environment() -> Result<(), String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("cannot run `id`: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("network-namespace tests need root (run as root, or set SRUDP_SKIP_NETNS=1 to skip them)".into());
    }
    for tool in ["ip", "nft", "conntrack"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success());
        if !matches!(found, Ok(true)) {
            return Err(format!(
                "`{tool}` is missing: install iproute2, nftables and conntrack (.ci/run does)"
            ));
        }
    }
    Ok(())
}

/// Whether namespace tests should be skipped (`SRUDP_SKIP_NETNS=1`), printing why.
pub fn skip_requested(test: &str) -> bool {
    if std::env::var("SRUDP_SKIP_NETNS").as_deref() == Ok("1") {
        eprintln!("{test}: skipped (SRUDP_SKIP_NETNS=1)");
        return true;
    }
    false
}

/// A node of the topology: one network namespace.
#[derive(Debug, Clone)]
pub struct Node {
    /// The namespace's name.
    pub netns: String,
    /// Its main IPv4 address (unspecified on an IPv6-only node).
    pub ip: Ipv4Addr,
    /// Its global IPv6 address, on IPv6 nodes.
    pub ip6: Option<Ipv6Addr>,
}

impl Node {
    /// A command that runs `program` inside this node's namespace (with
    /// the variables [`Node::set_env`] gave the node).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns, program]);
        if let Some(vars) = NODE_ENV.lock().unwrap().get(&self.netns) {
            c.envs(vars.iter().map(|(k, v)| (k, v)));
        }
        c
    }

    /// Every later [`Node::command`] of this node (and its clones) runs
    /// with `key=value` in its environment (`HTTPS_PROXY`, say).
    pub fn set_env(&self, key: &str, value: &str) {
        NODE_ENV
            .lock()
            .unwrap()
            .entry(self.netns.clone())
            .or_default()
            .push((key.to_string(), value.to_string()));
    }
}

/// The environment [`Node::set_env`] gave each namespace (names are unique
/// to the process and topology).
static NODE_ENV: std::sync::Mutex<std::collections::BTreeMap<String, Vec<(String, String)>>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Moves this thread into network namespace `netns` (the rest of the
/// process stays where it is).
pub fn enter_netns(netns: &str) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(format!("/run/netns/{netns}"))?;
    // SAFETY: setns takes a file descriptor we own, open for the call's
    // duration, and changes only the calling thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether an unsolicited UDP datagram sent from `from`'s namespace to
/// `to` (an address of node `receiver`) arrives there: a receiver thread in
/// `receiver`'s namespace listens on `to` while a sender thread in `from`'s
/// sends three datagrams.
pub fn unsolicited_udp_arrives(from: &Node, receiver: &Node, to: std::net::SocketAddr) -> bool {
    use std::net::UdpSocket;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let rx_ns = receiver.netns.clone();
    let listener = std::thread::spawn(move || -> io::Result<bool> {
        enter_netns(&rx_ns)?;
        let socket = UdpSocket::bind(to)?;
        socket.set_read_timeout(Some(Duration::from_secs(1)))?;
        let _ = ready_tx.send(());
        let mut buf = [0u8; 16];
        Ok(socket.recv(&mut buf).is_ok())
    });
    if ready_rx.recv().is_err() {
        panic!("receiver: {:?}", listener.join());
    }
    let tx_ns = from.netns.clone();
    let sender = std::thread::spawn(move || -> io::Result<()> {
        enter_netns(&tx_ns)?;
        let any: std::net::SocketAddr = if to.is_ipv6() {
            "[::]:0".parse().unwrap()
        } else {
            "0.0.0.0:0".parse().unwrap()
        };
        let socket = UdpSocket::bind(any)?;
        for _ in 0..3 {
            socket.send_to(b"unsolicited", to)?;
        }
        Ok(())
    });
    sender
        .join()
        .unwrap()
        .expect("sending the unsolicited datagrams");
    listener.join().unwrap().expect("receiving")
}

/// A NAT router and its LAN.
#[derive(Debug, Clone)]
pub struct Nat {
    /// The router's namespace and public (WAN) address.
    pub router: Node,
    lan_prefix: [u8; 3],
    hosts: u8,
}

impl Nat {
    /// The router's LAN address (the hosts' gateway).
    pub fn lan_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(
            self.lan_prefix[0],
            self.lan_prefix[1],
            self.lan_prefix[2],
            1,
        )
    }
}

/// A set of namespaces and a scratch directory, deleted on drop.
#[derive(Debug)]
pub struct Topology {
    prefix: String,
    scratch: PathBuf,
    inet: String,
    namespaces: Vec<String>,
    ports: u32,
}

fn run(args: &[&str]) -> io::Result<Output> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

fn in_ns(ns: &str, args: &[&str]) -> io::Result<Output> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    run(&full)
}

impl Topology {
    /// An empty internet (a router in its own namespace, 203.0.113.0/24).
    pub fn new() -> io::Result<Topology> {
        check_environment().map_err(io::Error::other)?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // SRUDP_NETNS_TAG (optional) tells whose namespaces these are.
        let tag = std::env::var("SRUDP_NETNS_TAG").unwrap_or_default();
        let prefix = format!("srudp{tag}{}-{n}", std::process::id());
        let inet = format!("{prefix}-inet");
        let scratch = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&scratch)?;
        let mut t = Topology {
            prefix,
            scratch,
            inet: inet.clone(),
            namespaces: Vec::new(),
            ports: 0,
        };
        t.add_namespace(&inet)?;
        in_ns(&inet, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        // The source of its ICMP errors (time exceeded).
        in_ns(
            &inet,
            &["ip", "addr", "add", "203.0.113.254/32", "dev", "lo"],
        )?;
        Ok(t)
    }

    /// A path in this topology's scratch directory (removed on drop).
    pub fn scratch_path(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    fn add_namespace(&mut self, name: &str) -> io::Result<()> {
        run(&["ip", "netns", "add", name])?;
        self.namespaces.push(name.to_string());
        in_ns(name, &["ip", "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Plugs namespace `ns` into the internet router with interface `wan` at `ip`.
    fn attach_to_internet(&mut self, ns: &str, ip: Ipv4Addr) -> io::Result<()> {
        self.ports += 1;
        let port = format!("p{}", self.ports);
        run(&[
            "ip", "link", "add", "wan", "netns", ns, "type", "veth", "peer", "name", &port,
            "netns", &self.inet,
        ])?;
        in_ns(&self.inet, &["ip", "link", "set", &port, "up"])?;
        // Proxy ARP answers for every address behind the router. Linux
        // delays each proxied reply by a random 0..proxy_delay (0.8 s by
        // default): every first contact between two nodes would then cost
        // up to 1.6 s of ARP, a stall no real internet has, and enough to
        // lose the 1 s UDP-before-TCP race of spec 12.5 at random.
        in_ns(
            &self.inet,
            &[
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{port}.proxy_arp=1"),
                &format!("net.ipv4.neigh.{port}.proxy_delay=0"),
            ],
        )?;
        in_ns(
            &self.inet,
            &["ip", "route", "add", &format!("{ip}/32"), "dev", &port],
        )?;
        in_ns(
            ns,
            &["ip", "addr", "add", &format!("{ip}/24"), "dev", "wan"],
        )?;
        in_ns(ns, &["ip", "link", "set", "wan", "up"])?;
        Ok(())
    }

    /// A host directly on the internet.
    pub fn add_public_host(&mut self, name: &str, ip: Ipv4Addr) -> io::Result<Node> {
        let ns = format!("{}-{name}", self.prefix);
        self.add_namespace(&ns)?;
        self.attach_to_internet(&ns, ip)?;
        Ok(Node {
            netns: ns,
            ip,
            ip6: None,
        })
    }

    /// A NAT router with public address `wan_ip` and the LAN `lan_prefix.0/24`
    /// (the router is `.1`).
    pub fn add_nat(
        &mut self,
        name: &str,
        wan_ip: Ipv4Addr,
        lan_prefix: [u8; 3],
        kind: NatKind,
    ) -> io::Result<Nat> {
        let ns = format!("{}-{name}", self.prefix);
        self.add_namespace(&ns)?;
        self.attach_to_internet(&ns, wan_ip)?;
        in_ns(&ns, &["ip", "link", "add", "lan", "type", "bridge"])?;
        let lan_ip = Ipv4Addr::new(lan_prefix[0], lan_prefix[1], lan_prefix[2], 1);
        in_ns(
            &ns,
            &["ip", "addr", "add", &format!("{lan_ip}/24"), "dev", "lan"],
        )?;
        in_ns(&ns, &["ip", "link", "set", "lan", "up"])?;
        in_ns(&ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        // With an input firewall, the router drops unsolicited packets
        // addressed to itself before conntrack confirms them: a punch that
        // arrives before the LAN host's own first packet leaves no trace.
        // Without one (`PortPreservingNoInputFirewall`), it leaves a
        // conntrack entry that makes masquerade pick another port for that
        // host: what punching has to survive on many real routers.
        let masquerade = kind.masquerade();
        let input = if kind.input_firewall() {
            " chain in_filter {\n  type filter hook input priority 0; policy drop;\n  iifname != \"wan\" accept\n  ct state established,related accept\n }\n"
        } else {
            ""
        };
        let rules = format!(
            "table ip nat {{\n chain nat_out {{\n  type nat hook postrouting priority 100;\n  oifname \"wan\" {masquerade}\n }}\n}}\n\
             table ip filter {{\n chain fwd_filter {{\n  type filter hook forward priority 0; policy drop;\n  iifname \"lan\" accept\n  ct state established,related accept\n }}\n{input}}}\n"
        );
        let path = std::env::temp_dir().join(format!("{ns}.nft"));
        std::fs::write(&path, rules)?;
        let applied = in_ns(&ns, &["nft", "-f", &path.to_string_lossy()]);
        let _ = std::fs::remove_file(&path);
        applied?;
        Ok(Nat {
            router: Node {
                netns: ns,
                ip: wan_ip,
                ip6: None,
            },
            lan_prefix,
            hosts: 1,
        })
    }

    /// A host on `nat`'s LAN; returns it with its private address.
    /// A new namespace `name` whose `eth0` is port `h<n>` of `router`'s
    /// LAN bridge; returns the namespace (addresses are the caller's).
    fn add_lan_host(
        &mut self,
        router: &Node,
        n: impl std::fmt::Display,
        name: &str,
    ) -> io::Result<String> {
        let ns = format!("{}-{name}", self.prefix);
        self.add_namespace(&ns)?;
        let port = format!("h{n}");
        run(&[
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            &ns,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &router.netns,
        ])?;
        in_ns(
            &router.netns,
            &["ip", "link", "set", &port, "master", "lan"],
        )?;
        in_ns(&router.netns, &["ip", "link", "set", &port, "up"])?;
        Ok(ns)
    }

    pub fn add_host_behind(&mut self, nat: &mut Nat, name: &str) -> io::Result<Node> {
        nat.hosts += 1;
        let ip = Ipv4Addr::new(
            nat.lan_prefix[0],
            nat.lan_prefix[1],
            nat.lan_prefix[2],
            nat.hosts * 10,
        );
        let ns = self.add_lan_host(&nat.router, nat.hosts, name)?;
        in_ns(
            &ns,
            &["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
        )?;
        in_ns(&ns, &["ip", "link", "set", "eth0", "up"])?;
        let gw = Ipv4Addr::new(nat.lan_prefix[0], nat.lan_prefix[1], nat.lan_prefix[2], 1);
        in_ns(
            &ns,
            &["ip", "route", "add", "default", "via", &gw.to_string()],
        )?;
        Ok(Node {
            netns: ns,
            ip,
            ip6: None,
        })
    }

    /// Simulates a NAT rebinding: the router starts mapping to ports from
    /// `ports` (e.g. `40000-40999`) and forgets every UDP mapping
    /// (`conntrack -D`), so the next outbound packet of every flow leaves
    /// from a new external port.
    pub fn rebind_nat(&self, nat: &Nat, ports: &str) -> io::Result<()> {
        in_ns(
            &nat.router.netns,
            &["nft", "flush", "chain", "ip", "nat", "nat_out"],
        )?;
        in_ns(
            &nat.router.netns,
            &[
                "nft",
                "add",
                "rule",
                "ip",
                "nat",
                "nat_out",
                "oifname",
                "wan",
                "meta",
                "l4proto",
                "udp",
                "masquerade",
                "to",
                &format!(":{ports}"),
            ],
        )?;
        self.flush_nat(nat)
    }

    /// Makes `nat`'s router forward no UDP from its LAN, as networks that
    /// block UDP do (TCP still passes, masqueraded).
    /// Sets the MTU of `nat`'s WAN link, both ends (a tunnel or a PPPoE
    /// uplink): larger packets do not pass either way (with DF set, which
    /// srudp's sockets set, routers drop them instead of fragmenting).
    pub fn set_wan_mtu(&self, nat: &Nat, mtu: u16) -> io::Result<()> {
        let mtu = mtu.to_string();
        in_ns(
            &nat.router.netns,
            &["ip", "link", "set", "wan", "mtu", &mtu],
        )?;
        // The internet router's end: the port its route to the WAN address uses.
        let route = in_ns(
            &self.inet,
            &["ip", "route", "get", &nat.router.ip.to_string()],
        )?;
        let route = String::from_utf8_lossy(&route.stdout);
        let port = route
            .split_whitespace()
            .skip_while(|w| *w != "dev")
            .nth(1)
            .ok_or_else(|| io::Error::other(format!("no route to the NAT: {route}")))?;
        in_ns(&self.inet, &["ip", "link", "set", port, "mtu", &mtu])?;
        Ok(())
    }

    pub fn block_udp_from_lan(&self, nat: &Nat) -> io::Result<()> {
        in_ns(
            &nat.router.netns,
            &[
                "nft",
                "insert",
                "rule",
                "ip",
                "filter",
                "fwd_filter",
                "iifname",
                "lan",
                "meta",
                "l4proto",
                "udp",
                "drop",
            ],
        )?;
        Ok(())
    }

    /// Ends [`Topology::block_udp_from_lan`] on `nat`: its router forwards
    /// UDP from its LAN again.
    pub fn lift_udp_block(&self, nat: &Nat) -> io::Result<()> {
        let out = in_ns(
            &nat.router.netns,
            &["nft", "-a", "list", "chain", "ip", "filter", "fwd_filter"],
        )?;
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        let handle = listing
            .lines()
            .find(|l| l.contains("l4proto udp drop"))
            .and_then(|l| l.rsplit_once("# handle "))
            .map(|(_, h)| h.trim().to_string())
            .ok_or_else(|| io::Error::other(format!("no UDP block in {listing}")))?;
        in_ns(
            &nat.router.netns,
            &[
                "nft",
                "delete",
                "rule",
                "ip",
                "filter",
                "fwd_filter",
                "handle",
                &handle,
            ],
        )?;
        Ok(())
    }

    /// Makes `nat`'s router forward nothing from its LAN but to `only`
    /// (an HTTP proxy, say), as networks that allow only their proxy out do.
    pub fn block_all_from_lan_except(&self, nat: &Nat, only: Ipv4Addr) -> io::Result<()> {
        in_ns(
            &nat.router.netns,
            &[
                "nft",
                "insert",
                "rule",
                "ip",
                "filter",
                "fwd_filter",
                "iifname",
                "lan",
                "ip",
                "daddr",
                "!=",
                &only.to_string(),
                "drop",
            ],
        )?;
        Ok(())
    }

    /// `nat`'s router drops every packet from `ip` it would forward to its
    /// LAN, until [`Topology::release_later`]'s closure runs.
    pub fn hold_from(&self, nat: &Nat, ip: Ipv4Addr) -> io::Result<()> {
        let rules = format!(
            "table ip hold {{\n chain hold_fwd {{\n  type filter hook forward priority -10;\n  ip saddr {ip} drop\n }}\n}}\n"
        );
        let path = self.scratch.join(format!("{}-hold.nft", nat.router.netns));
        std::fs::write(&path, rules)?;
        in_ns(&nat.router.netns, &["nft", "-f", &path.to_string_lossy()])?;
        Ok(())
    }

    /// A closure that waits `after`, then ends [`Topology::hold_from`] on
    /// `nat` (to run on another thread).
    pub fn release_later(&self, nat: &Nat, after: Duration) -> impl FnOnce() + Send + 'static {
        let ns = nat.router.netns.clone();
        move || {
            std::thread::sleep(after);
            let _ = in_ns(&ns, &["nft", "delete", "table", "ip", "hold"]);
        }
    }

    /// Deletes every UDP conntrack entry of `nat`: its mappings are forgotten.
    pub fn flush_nat(&self, nat: &Nat) -> io::Result<()> {
        // conntrack exits 1 when nothing matched: not an error here.
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &nat.router.netns,
                "conntrack",
                "-D",
                "-p",
                "udp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        Ok(())
    }
}

/// A stateful IPv6 firewall router (no NAT) and its LAN
/// `2001:db8:<lan>::/64` of global addresses: it forwards everything from
/// its LAN and, from the internet, only what belongs to a flow its LAN
/// opened (`ct state established,related`); new inbound packets are dropped.
#[derive(Debug, Clone)]
pub struct Firewall6 {
    /// The router's namespace and WAN address.
    pub router: Node,
    lan: u16,
    hosts: u16,
}

impl Topology {
    /// Plugs `ns` into the internet router over IPv6: link `k` is
    /// `2001:db8:ffff:k::/64`, the internet router `::1`, `ns` `::2`, with
    /// its default route via `::1`. Returns `ns`'s address.
    fn attach_to_internet6(&mut self, ns: &str) -> io::Result<Ipv6Addr> {
        self.ports += 1;
        let k = self.ports;
        let port = format!("p{k}");
        let here = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, k as u16, 0, 0, 0, 2);
        let there = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, k as u16, 0, 0, 0, 1);
        run(&[
            "ip", "link", "add", "wan", "netns", ns, "type", "veth", "peer", "name", &port,
            "netns", &self.inet,
        ])?;
        in_ns(
            &self.inet,
            &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
        )?;
        in_ns(
            &self.inet,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{there}/64"),
                "dev",
                &port,
                "nodad",
            ],
        )?;
        in_ns(&self.inet, &["ip", "link", "set", &port, "up"])?;
        in_ns(
            ns,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{here}/64"),
                "dev",
                "wan",
                "nodad",
            ],
        )?;
        in_ns(ns, &["ip", "link", "set", "wan", "up"])?;
        in_ns(
            ns,
            &[
                "ip",
                "-6",
                "route",
                "add",
                "default",
                "via",
                &there.to_string(),
            ],
        )?;
        Ok(here)
    }

    /// A host directly on the IPv6 internet.
    pub fn add_public_host6(&mut self, name: &str) -> io::Result<Node> {
        let ns = format!("{}-{name}", self.prefix);
        self.add_namespace(&ns)?;
        let ip = self.attach_to_internet6(&ns)?;
        Ok(Node {
            netns: ns,
            ip: Ipv4Addr::UNSPECIFIED,
            ip6: Some(ip),
        })
    }

    /// A stateful IPv6 firewall with the LAN `2001:db8:<lan>::/64` (the
    /// router is `::1`).
    pub fn add_firewall6(&mut self, name: &str, lan: u16) -> io::Result<Firewall6> {
        let ns = format!("{}-{name}", self.prefix);
        self.add_namespace(&ns)?;
        let wan = self.attach_to_internet6(&ns)?;
        in_ns(
            &self.inet,
            &[
                "ip",
                "-6",
                "route",
                "add",
                &format!("2001:db8:{lan:x}::/64"),
                "via",
                &wan.to_string(),
            ],
        )?;
        in_ns(&ns, &["ip", "link", "add", "lan", "type", "bridge"])?;
        in_ns(
            &ns,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("2001:db8:{lan:x}::1/64"),
                "dev",
                "lan",
                "nodad",
            ],
        )?;
        in_ns(&ns, &["ip", "link", "set", "lan", "up"])?;
        in_ns(&ns, &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])?;
        let rules = "table ip6 filter {\n chain fwd_filter {\n  type filter hook forward priority 0; policy drop;\n  iifname \"lan\" accept\n  ct state established,related accept\n }\n chain in_filter {\n  type filter hook input priority 0; policy drop;\n  iifname != \"wan\" accept\n  ct state established,related accept\n  meta l4proto ipv6-icmp accept\n }\n}\n";
        let path = std::env::temp_dir().join(format!("{ns}.nft"));
        std::fs::write(&path, rules)?;
        let applied = in_ns(&ns, &["nft", "-f", &path.to_string_lossy()]);
        let _ = std::fs::remove_file(&path);
        applied?;
        Ok(Firewall6 {
            router: Node {
                netns: ns,
                ip: Ipv4Addr::UNSPECIFIED,
                ip6: Some(wan),
            },
            lan,
            hosts: 1,
        })
    }

    /// A host on `fw`'s LAN, with the global address `2001:db8:<lan>::<n>0`.
    pub fn add_host_behind6(&mut self, fw: &mut Firewall6, name: &str) -> io::Result<Node> {
        fw.hosts += 1;
        let ip = Ipv6Addr::new(0x2001, 0xdb8, fw.lan, 0, 0, 0, 0, fw.hosts * 0x10);
        let ns = self.add_lan_host(&fw.router, fw.hosts, name)?;
        in_ns(
            &ns,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{ip}/64"),
                "dev",
                "eth0",
                "nodad",
            ],
        )?;
        in_ns(&ns, &["ip", "link", "set", "eth0", "up"])?;
        let gw = Ipv6Addr::new(0x2001, 0xdb8, fw.lan, 0, 0, 0, 0, 1);
        in_ns(
            &ns,
            &[
                "ip",
                "-6",
                "route",
                "add",
                "default",
                "via",
                &gw.to_string(),
            ],
        )?;
        Ok(Node {
            netns: ns,
            ip: Ipv4Addr::UNSPECIFIED,
            ip6: Some(ip),
        })
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}
