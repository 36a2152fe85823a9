//! The `srudp` binary through real Linux NATs: network namespaces joined
//! by veth pairs, nftables masquerade on the routers (see `netns`). Each
//! case pipes at least 8 MiB each way between `srudp listen` and
//! `srudp connect` and checks every byte, and the reported path.
//!
//! Needs root, iproute2, nftables and conntrack (`.ci/run` installs them).
//! Without root the tests fail with a clear message, unless
//! `SRUDP_SKIP_NETNS=1`, which skips them (and says so).

mod netns;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netns::{Nat, NatKind, Node, Topology};

const SRUDP: &str = env!("CARGO_BIN_EXE_srudp");
const MIB: usize = 1 << 20;
const WAIT: Duration = Duration::from_secs(90);
const RDV_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

/// `Some(topology)`, or `None` when skipping was asked for; panics with the
/// reason when the machine cannot run these tests.
fn topology(test: &str) -> Option<Topology> {
    if netns::skip_requested(test) {
        return None;
    }
    if let Err(why) = netns::check_environment() {
        panic!("{test}: {why}");
    }
    Some(Topology::new().expect("building the topology"))
}

/// A process killed on drop.
struct Running(Option<Child>);

impl Running {
    fn take(&mut self) -> Child {
        self.0.take().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Starts the rendezvous (with a second port) on `node`; returns it, its
/// `--via` string, and a channel of its later stderr lines (unused).
fn start_rendezvous(t: &Topology, node: &Node) -> (Running, String) {
    start_rendezvous_with(t, node, &[])
}

/// [`start_rendezvous`] with more arguments.
fn start_rendezvous_with(t: &Topology, node: &Node, extra: &[&str]) -> (Running, String) {
    let mut child = node
        .command(SRUDP)
        .args(["rendezvous", "--bind", &format!("{}:4433", node.ip)])
        .args(extra)
        .args(["--second-port", "4434", "--key"])
        .arg(rdv_key(t))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the rendezvous printed its --via line");
    (Running(Some(child)), line.trim().to_string())
}

/// One key for the rendezvous across restarts, in the topology's scratch
/// directory.
fn rdv_key(t: &Topology) -> PathBuf {
    let path = t.scratch_path("rdv.key");
    if !path.exists() {
        let out = Command::new(SRUDP)
            .args(["keygen", "--out"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success() || path.exists());
    }
    path
}

/// A peer process with stdin fed from `input` (in two halves with a hook
/// between them) and stdout and stderr collected.
struct Peer {
    child: Running,
    writer: Option<thread::JoinHandle<()>>,
    stdout: mpsc::Receiver<Vec<u8>>,
    stderr: mpsc::Receiver<String>,
    stderr_lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn spawn_peer(mut command: Command, input: Vec<u8>, pause: mpsc::Receiver<()>) -> Peer {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let half = input.len() / 2;
        let _ = stdin.write_all(&input[..half]);
        // Wait for the go-ahead (or for the test to give up).
        let _ = pause.recv_timeout(WAIT);
        let _ = stdin.write_all(&input[half..]);
    });
    let mut out = child.stdout.take().unwrap();
    let (otx, stdout) = mpsc::channel();
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        let _ = otx.send(v);
    });
    let err = child.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (etx, stderr) = mpsc::channel();
    let shared = lines.clone();
    thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            shared.lock().unwrap().push(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        let _ = etx.send(all);
    });
    Peer {
        child: Running(Some(child)),
        writer: Some(writer),
        stdout,
        stderr,
        stderr_lines: lines,
    }
}

impl Peer {
    /// Waits until a stderr line satisfies `f`.
    fn wait_line(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            if let Some(l) = self.stderr_lines.lock().unwrap().iter().find(|l| f(l)) {
                return l.clone();
            }
            assert!(
                started.elapsed() < WAIT,
                "no {what} line: {:?}",
                self.lines()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn lines(&self) -> Vec<String> {
        self.stderr_lines.lock().unwrap().clone()
    }

    /// Waits for the process to exit; returns stdout and stderr.
    fn finish(mut self) -> (bool, Vec<u8>, String) {
        let mut child = self.child.take();
        let (tx, rx) = mpsc::channel();
        let pid = child.id();
        thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = rx.recv_timeout(WAIT).unwrap_or_else(|_| {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("srudp (pid {pid}) did not finish: {:?}", self.lines())
        });
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        let out = self.stdout.recv_timeout(WAIT).unwrap_or_default();
        let err = self.stderr.recv_timeout(WAIT).unwrap_or_default();
        (status.map(|s| s.success()).unwrap_or(false), out, err)
    }
}

/// A connected pair: `listen` on `a`, `connect TICKET` on `b`, each piping
/// `size` bytes; the halves of their input wait for `go` signals.
struct Pair {
    listener: Peer,
    connector: Peer,
    go: Vec<mpsc::Sender<()>>,
    sent: (Vec<u8>, Vec<u8>),
}

fn pair(via: &str, a: &Node, b: &Node, size: usize) -> Pair {
    pair_with(via, a, b, size, || {})
}

/// [`pair`], running `before_connect` once the listener registered and
/// before the connector starts.
fn pair_with(via: &str, a: &Node, b: &Node, size: usize, before_connect: impl FnOnce()) -> Pair {
    let ticket_file = std::env::temp_dir().join(format!("{}.ticket", a.netns));
    let _ = std::fs::remove_file(&ticket_file);
    let (sa, sb) = (payload(1, size), payload(2, size));
    let (ga, pa) = mpsc::channel();
    let (gb, pb) = mpsc::channel();
    let mut cmd = a.command(SRUDP);
    cmd.args(["-v", "listen", "--via", via, "--ticket-file"])
        .arg(&ticket_file);
    let listener = spawn_peer(cmd, sa.clone(), pa);
    let started = Instant::now();
    let ticket = loop {
        if let Ok(t) = std::fs::read_to_string(&ticket_file) {
            if t.ends_with('\n') {
                break t.trim().to_string();
            }
        }
        assert!(
            started.elapsed() < WAIT,
            "no ticket: {:?}",
            listener.lines()
        );
        thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_file(&ticket_file);
    before_connect();
    let mut cmd = b.command(SRUDP);
    cmd.args(["-v", "connect", &ticket]);
    let connector = spawn_peer(cmd, sb.clone(), pb);
    Pair {
        listener,
        connector,
        go: vec![ga, gb],
        sent: (sa, sb),
    }
}

impl Pair {
    /// The first `path:` lines of both sides.
    fn paths(&self) -> (String, String) {
        let p = |l: &str| l.starts_with("path: ");
        (
            self.listener.wait_line("path", p),
            self.connector.wait_line("path", p),
        )
    }

    fn release_second_halves(&self) {
        for g in &self.go {
            let _ = g.send(());
        }
    }

    /// Lets the transfer finish and checks every byte both ways; returns
    /// both stderrs.
    fn check(self) -> (String, String) {
        self.release_second_halves();
        let (sa, sb) = self.sent;
        let l = thread::spawn(move || self.listener.finish());
        let (c_ok, c_out, c_err) = self.connector.finish();
        let (l_ok, l_out, l_err) = l.join().unwrap();
        assert!(l_ok, "listener failed: {l_err}");
        assert!(c_ok, "connector failed: {c_err}");
        assert!(
            l_out == sb,
            "listener got {} of {} bytes, or wrong ones",
            l_out.len(),
            sb.len()
        );
        assert!(
            c_out == sa,
            "connector got {} of {} bytes, or wrong ones",
            c_out.len(),
            sa.len()
        );
        (l_err, c_err)
    }
}

fn two_nats(t: &mut Topology, a: NatKind, b: NatKind) -> (Node, Node, Nat, Nat) {
    let mut nat_a = t
        .add_nat("nata", Ipv4Addr::new(203, 0, 113, 21), [192, 168, 1], a)
        .unwrap();
    let mut nat_b = t
        .add_nat("natb", Ipv4Addr::new(203, 0, 113, 22), [192, 168, 2], b)
        .unwrap();
    let ha = t.add_host_behind(&mut nat_a, "a").unwrap();
    let hb = t.add_host_behind(&mut nat_b, "b").unwrap();
    (ha, hb, nat_a, nat_b)
}

#[test]
fn both_behind_port_preserving_nats_connect_directly() {
    let Some(mut t) = topology("both_behind_port_preserving_nats_connect_directly") else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let (a, b, _na, _nb) = two_nats(&mut t, NatKind::PortPreserving, NatKind::PortPreserving);
    let (_server, via) = start_rendezvous(&t, &rdv);
    let pair = pair(&via, &a, &b, 8 * MIB);
    let (pl, pc) = pair.paths();
    assert!(pl.starts_with("path: direct 203.0.113.22:"), "{pl}");
    assert!(pc.starts_with("path: direct 203.0.113.21:"), "{pc}");
    pair.check();
}

#[test]
fn a_listener_whose_router_drops_all_udp_connects_through_the_relay_over_tcp() {
    let Some(mut t) =
        topology("a_listener_whose_router_drops_all_udp_connects_through_the_relay_over_tcp")
    else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let (a, b, na, _nb) = two_nats(&mut t, NatKind::PortPreserving, NatKind::PortPreserving);
    t.block_udp_from_lan(&na).unwrap();
    let (_server, via) = start_rendezvous_with(&t, &rdv, &["--tcp-port", "4443"]);
    assert!(via.ends_with(&format!("@{RDV_IP}:4433/tcp:4443")), "{via}");
    let pair = pair(&via, &a, &b, 8 * MIB);
    let (pl, pc) = pair.paths();
    assert_eq!(pl, format!("path: relayed via {RDV_IP}:4433 (tcp)"));
    assert_eq!(pc, format!("path: relayed via {RDV_IP}:4433"));
    pair.check();
}

#[test]
fn both_peers_behind_routers_that_drop_all_udp_connect_through_the_relay_over_tcp() {
    let Some(mut t) =
        topology("both_peers_behind_routers_that_drop_all_udp_connect_through_the_relay_over_tcp")
    else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let (a, b, na, nb) = two_nats(&mut t, NatKind::PortPreserving, NatKind::Symmetric);
    t.block_udp_from_lan(&na).unwrap();
    t.block_udp_from_lan(&nb).unwrap();
    let (_server, via) = start_rendezvous_with(&t, &rdv, &["--tcp-port", "4443"]);
    let pair = pair(&via, &a, &b, 8 * MIB);
    let (pl, pc) = pair.paths();
    assert_eq!(pl, format!("path: relayed via {RDV_IP}:4433 (tcp)"));
    assert_eq!(pc, format!("path: relayed via {RDV_IP}:4433 (tcp)"));
    pair.check();
}

#[test]
fn both_peers_behind_routers_that_drop_all_udp_connect_through_the_relay_over_tls() {
    let Some(mut t) =
        topology("both_peers_behind_routers_that_drop_all_udp_connect_through_the_relay_over_tls")
    else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let (a, b, na, nb) = two_nats(&mut t, NatKind::PortPreserving, NatKind::Symmetric);
    t.block_udp_from_lan(&na).unwrap();
    t.block_udp_from_lan(&nb).unwrap();
    let (_server, via) = start_rendezvous_with(&t, &rdv, &["--tcp-port", "443", "--tls"]);
    assert!(via.ends_with(&format!("@{RDV_IP}:4433/tls:443")), "{via}");
    let pair = pair(&via, &a, &b, 8 * MIB);
    let (pl, pc) = pair.paths();
    assert_eq!(pl, format!("path: relayed via {RDV_IP}:4433 (tcp)"));
    assert_eq!(pc, format!("path: relayed via {RDV_IP}:4433 (tcp)"));
    pair.check();
}

#[test]
fn a_udp_block_lifted_mid_transfer_moves_the_connection_to_a_direct_path_without_losing_a_byte() {
    let Some(mut t) = topology("a_udp_block_lifted_mid_transfer") else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let mut na = t
        .add_nat(
            "nata",
            Ipv4Addr::new(203, 0, 113, 21),
            [192, 168, 1],
            NatKind::PortPreserving,
        )
        .unwrap();
    let a = t.add_host_behind(&mut na, "a").unwrap();
    // A public peer: once UDP passes again, A's probes reach it and its
    // answers come back through A's NAT.
    let b = t
        .add_public_host("b", Ipv4Addr::new(203, 0, 113, 40))
        .unwrap();
    t.block_udp_from_lan(&na).unwrap();
    let (_server, via) = start_rendezvous_with(&t, &rdv, &["--tcp-port", "4443"]);
    // 16 MiB each way through the relay's 2 MiB/s: the transfer outlasts
    // the peers' direct probes (every 5 s, spec §11.6).
    let pair = pair(&via, &a, &b, 16 * MIB);
    let (pl, pc) = pair.paths();
    assert_eq!(pl, format!("path: relayed via {RDV_IP}:4433 (tcp)"));
    assert_eq!(pc, format!("path: relayed via {RDV_IP}:4433"));
    t.lift_udp_block(&na).unwrap();
    let direct = |l: &str| l.starts_with("path: direct ");
    pair.listener.wait_line("direct path", direct);
    pair.connector.wait_line("direct path", direct);
    let (listener_err, _) = pair.check();
    let paths: Vec<&str> = listener_err
        .lines()
        .filter(|l| l.starts_with("path: "))
        .collect();
    assert!(
        paths.first().is_some_and(|p| p.ends_with("(tcp)"))
            && paths.last().is_some_and(|p| direct(p)),
        "relayed over TCP, then direct: {paths:?}"
    );
}

/// The HTTP proxy of [`a_listener_whose_network_lets_only_its_proxy_out_connects_through_it`].
const PROXY_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 30);

/// Starts a real tinyproxy on `node`, port 8888, with basic
/// authentication (alice:s3cret) and CONNECT allowed to port 443 only;
/// returns it once it accepts connections, and its log's path.
fn start_tinyproxy(t: &Topology, node: &Node) -> (Running, PathBuf) {
    let ok = Command::new("tinyproxy")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "tinyproxy is needed (Debian package tinyproxy; .ci/run installs it)"
    );
    let log = t.scratch_path("tinyproxy.log");
    let conf = t.scratch_path("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port 8888\nListen {}\nTimeout 600\nMaxClients 64\nAllow 0.0.0.0/0\n\
             BasicAuth alice s3cret\nConnectPort 443\nLogLevel Info\nLogFile \"{}\"\n",
            node.ip,
            log.display()
        ),
    )
    .unwrap();
    let child = node
        .command("tinyproxy")
        .args(["-d", "-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    let started = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Accepting connections")) {
        assert!(started.elapsed() < WAIT, "tinyproxy did not start");
        thread::sleep(Duration::from_millis(20));
    }
    (running, log)
}

#[test]
fn a_listener_whose_network_lets_only_its_proxy_out_connects_through_it() {
    let Some(mut t) =
        topology("a_listener_whose_network_lets_only_its_proxy_out_connects_through_it")
    else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let proxy = t.add_public_host("proxy", PROXY_IP).unwrap();
    let (a, b, na, _nb) = two_nats(&mut t, NatKind::PortPreserving, NatKind::PortPreserving);
    t.block_all_from_lan_except(&na, PROXY_IP).unwrap();
    let (_tinyproxy, log) = start_tinyproxy(&t, &proxy);
    a.set_env(
        "HTTPS_PROXY",
        &format!("http://alice:s3cret@{PROXY_IP}:8888"),
    );
    let (_server, via) = start_rendezvous_with(&t, &rdv, &["--tcp-port", "443", "--tls"]);
    let pair = pair(&via, &a, &b, 8 * MIB);
    let (pl, pc) = pair.paths();
    assert_eq!(pl, format!("path: relayed via {RDV_IP}:4433 (tcp)"));
    assert_eq!(pc, format!("path: relayed via {RDV_IP}:4433"));
    pair.check();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains(&format!("{RDV_IP}:443")),
        "the proxy carried the stream: {log}"
    );
}

#[test]
fn both_behind_symmetric_nats_connect_through_the_relay() {
    let Some(mut t) = topology("both_behind_symmetric_nats_connect_through_the_relay") else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let (a, b, _na, _nb) = two_nats(&mut t, NatKind::Symmetric, NatKind::Symmetric);
    let (_server, via) = start_rendezvous(&t, &rdv);
    let pair = pair(&via, &a, &b, 8 * MIB);
    let (pl, pc) = pair.paths();
    assert_eq!(pl, format!("path: relayed via {RDV_IP}:4433"));
    assert_eq!(pc, format!("path: relayed via {RDV_IP}:4433"));
    // End-to-end encryption: the relay forwards what it cannot read; the
    // byte check below passes only if both ends decrypted everything.
    pair.check();
}

#[test]
fn one_symmetric_and_one_port_preserving_nat_connect_and_report_the_path() {
    let Some(mut t) = topology("one_symmetric_one_port_preserving") else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let (a, b, _na, _nb) = two_nats(&mut t, NatKind::Symmetric, NatKind::PortPreserving);
    let (_server, via) = start_rendezvous(&t, &rdv);
    let pair = pair(&via, &a, &b, 8 * MIB);
    let (pl, pc) = pair.paths();
    for p in [&pl, &pc] {
        assert!(
            p.starts_with("path: direct 203.0.113.")
                || p == &format!("path: relayed via {RDV_IP}:4433"),
            "{p}"
        );
    }
    println!("listener {pl}; connector {pc}");
    pair.check();
}

#[test]
fn both_behind_the_same_nat_connect_directly_over_lan_addresses() {
    let Some(mut t) = topology("both_behind_the_same_nat") else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let mut nat = t
        .add_nat(
            "nat",
            Ipv4Addr::new(203, 0, 113, 21),
            // A private LAN: the rendezvous server forwards only private,
            // link-local and ULA host candidates (spec §11.4).
            [192, 168, 1],
            NatKind::PortPreserving,
        )
        .unwrap();
    let a = t.add_host_behind(&mut nat, "a").unwrap();
    let b = t.add_host_behind(&mut nat, "b").unwrap();
    let (_server, via) = start_rendezvous(&t, &rdv);
    let pair = pair(&via, &a, &b, 8 * MIB);
    let (pl, pc) = pair.paths();
    assert!(pl.starts_with(&format!("path: direct {}:", b.ip)), "{pl}");
    assert!(pc.starts_with(&format!("path: direct {}:", a.ip)), "{pc}");
    pair.check();
}

#[test]
fn a_flushed_nat_mapping_mid_transfer_migrates_without_losing_a_byte() {
    let Some(mut t) = topology("a_flushed_nat_mapping_mid_transfer") else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let (a, b, na, _nb) = two_nats(&mut t, NatKind::PortPreserving, NatKind::PortPreserving);
    let (_server, via) = start_rendezvous(&t, &rdv);
    let pair = pair(&via, &a, &b, 8 * MIB);
    let (pl, pc) = pair.paths();
    assert!(pl.starts_with("path: direct 203.0.113.22:"), "{pl}");
    assert!(
        !pc.contains("203.0.113.21:20"),
        "before the rebind, A maps to an ephemeral port: {pc}"
    );
    // The first halves are in flight or delivered; A's NAT forgets its
    // mappings and maps to other ports from now on.
    thread::sleep(Duration::from_millis(500));
    t.rebind_nat(&na, "20000-20999").unwrap();
    let (_, connector_err) = pair.check();
    let moved = connector_err
        .lines()
        .filter(|l| l.starts_with("path: "))
        .any(|l| l.contains("203.0.113.21:20") || l.starts_with("path: relayed"));
    assert!(
        moved,
        "the connector saw the listener move: {connector_err}"
    );
}

#[test]
fn direct_peers_survive_the_rendezvous_stopping_and_re_register_when_it_returns() {
    let Some(mut t) = topology("rendezvous_stop_and_restart") else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let (a, b, _na, _nb) = two_nats(&mut t, NatKind::PortPreserving, NatKind::PortPreserving);
    let (mut server, via) = start_rendezvous(&t, &rdv);
    let pair = pair(&via, &a, &b, 8 * MIB);
    let (pl, _) = pair.paths();
    assert!(pl.starts_with("path: direct"), "{pl}");
    let mut stopped = server.take();
    let _ = stopped.kill();
    let _ = stopped.wait();
    // The peers notice the server is gone, and keep their connection.
    pair.listener.wait_line("lost rendezvous", |l| {
        l.contains("rendezvous: lost the server")
    });
    let (_server, via2) = start_rendezvous(&t, &rdv);
    assert_eq!(via, via2, "same key, same address");
    pair.listener.wait_line("re-registration", |l| {
        l.contains("rendezvous: registered again")
    });
    pair.check();
}

/// Issue 18: routers without an input firewall keep a conntrack entry for
/// an unsolicited punch addressed to them, and masquerade then gives the
/// LAN host another port toward that peer. Opening knocks with a small hop
/// limit (spec §4.4) open each NAT before the other side's punches arrive,
/// so the peers still connect directly.
#[test]
fn port_preserving_nats_without_input_firewall_connect_directly() {
    let Some(mut t) = topology("port_preserving_nats_without_input_firewall") else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let (a, b, _na, _nb) = two_nats(
        &mut t,
        NatKind::PortPreservingNoInputFirewall,
        NatKind::PortPreservingNoInputFirewall,
    );
    let (_server, via) = start_rendezvous(&t, &rdv);
    let pair = pair(&via, &a, &b, MIB);
    let (pl, pc) = pair.paths();
    assert!(pl.starts_with("path: direct 203.0.113.22:"), "{pl}");
    assert!(pc.starts_with("path: direct 203.0.113.21:"), "{pc}");
    pair.check();
}

/// As above, with the two introductions far apart: the listener's router
/// drops what the rendezvous sends it while the connector starts, so the
/// listener's Introduce comes one or more retransmissions (hundreds of ms)
/// after the connector's (the hold ends 300 ms after the connector
/// registered), and the connector's punches reach the listener's
/// router long before the listener opened it. The connector sends only
/// opening knocks until the server tells it the listener opened its NAT
/// (spec §4.4, §11.4).
#[test]
fn port_preserving_nats_without_input_firewall_connect_directly_with_introductions_far_apart() {
    let Some(mut t) = topology("port_preserving_nats_without_input_firewall_far_apart") else {
        return;
    };
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let (a, b, na, _) = two_nats(
        &mut t,
        NatKind::PortPreservingNoInputFirewall,
        NatKind::PortPreservingNoInputFirewall,
    );
    let (_server, via) = start_rendezvous(&t, &rdv);
    let pair = pair_with(&via, &a, &b, MIB, || t.hold_from(&na, RDV_IP).unwrap());
    // The connector registers, then asks for the introduction at once.
    pair.connector.wait_line("registration", |l| {
        l.contains("registered at the rendezvous server")
    });
    t.release_later(&na, Duration::from_millis(300))();
    let (pl, pc) = pair.paths();
    assert!(pl.starts_with("path: direct 203.0.113.22:"), "{pl}");
    assert!(pc.starts_with("path: direct 203.0.113.21:"), "{pc}");
    pair.check();
}

/// `srudp nat-check` behind `nat`'s router: its `mapping:` and
/// `filtering:` lines.
fn nat_check(t: &mut Topology, kind: NatKind) -> (String, String) {
    let rdv = t.add_public_host("rdv", RDV_IP).unwrap();
    let mut nat = t
        .add_nat("nat", Ipv4Addr::new(203, 0, 113, 21), [192, 168, 1], kind)
        .unwrap();
    let host = t.add_host_behind(&mut nat, "h").unwrap();
    let (_server, via) = start_rendezvous(t, &rdv);
    let out = host
        .command(SRUDP)
        .args(["nat-check", "--via", &via])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "nat-check failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |prefix: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line: {stdout}"))
            .to_string()
    };
    (line("mapping: "), line("filtering: "))
}

/// Issue 18: `nat-check` reports each NAT's mapping and filtering, also
/// behind a router with no input firewall, where the server's unsolicited
/// filtering probe leaves a conntrack entry (spec §11.7: it comes from a
/// third server socket, so it cannot clash with the mapping probes).
#[test]
fn nat_check_reports_mapping_and_filtering_of_each_masquerade() {
    for (kind, mapping) in [
        (NatKind::PortPreserving, "mapping: endpoint-independent"),
        (
            NatKind::PortPreservingNoInputFirewall,
            "mapping: endpoint-independent",
        ),
        (NatKind::Symmetric, "mapping: endpoint-dependent"),
        (NatKind::FullyRandom, "mapping: endpoint-dependent"),
    ] {
        let Some(mut t) = topology("nat_check_reports_mapping_and_filtering") else {
            return;
        };
        let (m, f) = nat_check(&mut t, kind);
        assert!(m.starts_with(mapping), "{kind:?}: {m}");
        assert!(f.starts_with("filtering: filtered"), "{kind:?}: {f}");
    }
}
