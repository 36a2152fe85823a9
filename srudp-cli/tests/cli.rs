//! The built `srudp` binary, driven like a user would on one machine
//! (loopback only): the demo, a pipe through a rendezvous, `--direct`, a
//! file transfer, and the errors a user meets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use srudp_testkit::ArmedLossRelay;

const SRUDP: &str = env!("CARGO_BIN_EXE_srudp");
const WAIT: Duration = Duration::from_secs(60);

fn srudp() -> Command {
    Command::new(SRUDP)
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("srudp-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop (a failing test leaves nothing running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A rendezvous server on loopback and its `--via` string.
fn rendezvous() -> (Running, String) {
    rendezvous_with(&[])
}

/// A rendezvous server on loopback, run with `extra` arguments, and its
/// `--via` string.
fn rendezvous_with(extra: &[&str]) -> (Running, String) {
    let mut child = srudp()
        .args(["rendezvous", "--bind", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let via = line.trim().to_string();
    let parsed = via.parse::<srudp_tokio::rendezvous::RendezvousAddr>();
    assert!(
        parsed.is_ok(),
        "first line is KEY@HOST:PORT: {via:?}: {parsed:?}"
    );
    (Running(child), via)
}

/// `srudp connect TICKET`, its standard streams piped.
fn connect_by_ticket(ticket: &str) -> Child {
    srudp()
        .args(["connect", ticket])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
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

/// Feeds `input` to the child's stdin and collects stdout and stderr, with
/// a deadline.
fn run_with_input(mut child: Child, input: Vec<u8>, limit: Duration) -> Output {
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: sending SIGKILL to our own child process by its id.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            panic!("srudp (pid {pid}) did not finish within {limit:?}");
        }
    };
    writer.join().unwrap();
    out
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs to completion with no input; asserts a failure with one line on
/// stderr mentioning `expected`, within `limit`.
fn assert_fails(args: &[&str], expected: &str, limit: Duration) {
    let started = Instant::now();
    let child = srudp()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = run_with_input(child, Vec::new(), limit);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{args:?} must fail: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(
        err.contains(expected),
        "{args:?}: {err:?} lacks {expected:?}"
    );
    assert!(started.elapsed() < limit);
}

#[test]
fn the_demo_moves_a_small_size_each_way_with_matching_checksums() {
    let child = srudp()
        .args(["demo", "--bytes", "2MiB"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = run_with_input(child, Vec::new(), WAIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout.contains("handshake: "), "{stdout}");
    assert!(
        stdout.contains("caller -> listener: 2097152 bytes"),
        "{stdout}"
    );
    assert!(
        stdout.contains("listener -> caller: 2097152 bytes"),
        "{stdout}"
    );
    assert!(stdout.contains("retransmitted"), "{stdout}");
    assert!(stdout.contains("checksums match"), "{stdout}");
    assert!(stderr_of(&out).contains("path: direct 127.0.0.1:"));
}

#[test]
fn keygen_writes_a_private_key_file_and_prints_the_public_key() {
    let dir = TempDir::new("keygen");
    let file = dir.path("a.key");
    let out = srudp()
        .args(["keygen", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let public = String::from_utf8(out.stdout).unwrap();
    assert_eq!(public.trim().len(), 52, "{public:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Never overwrites a key.
    let again = srudp()
        .args(["keygen", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!again.status.success());
}

fn keygen(dir: &TempDir, name: &str) -> (PathBuf, String) {
    let file = dir.path(name);
    let out = srudp()
        .args(["keygen", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    (
        file,
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
    )
}

/// Starts `srudp listen` and returns it with its ticket (read from the
/// ticket file, with a deadline). The caller waits for it (run_with_input).
#[allow(clippy::zombie_processes)]
fn listen(via: &str, dir: &TempDir, extra: &[&str]) -> (Child, String) {
    let ticket_file = dir.path("ticket");
    let child = srudp()
        .args(["listen", "--via", via, "--ticket-file"])
        .arg(&ticket_file)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(&ticket_file) {
            if t.ends_with('\n') {
                return (child, t.trim().to_string());
            }
        }
        assert!(started.elapsed() < WAIT, "no ticket from srudp listen");
        thread::sleep(Duration::from_millis(20));
    }
}

fn pipe_both_ways(listener: Child, connector: Child, size: usize) {
    pipe_both_ways_on(listener, connector, size, "path: direct 127.0.0.1:");
}

/// [`pipe_both_ways`], each side printing a `path:` line that starts with
/// `path`.
fn pipe_both_ways_on(listener: Child, connector: Child, size: usize, path: &str) {
    let (a, b) = (payload(1, size), payload(2, size));
    let (a2, b2) = (a.clone(), b.clone());
    let l = thread::spawn(move || run_with_input(listener, a2, WAIT));
    let c = run_with_input(connector, b2, WAIT);
    let l = l.join().unwrap();
    assert!(l.status.success(), "listener: {}", stderr_of(&l));
    assert!(c.status.success(), "connector: {}", stderr_of(&c));
    assert!(l.stdout == b, "the listener printed the connector's bytes");
    assert!(c.stdout == a, "the connector printed the listener's bytes");
    for out in [&l, &c] {
        let stderr = stderr_of(out);
        assert!(stderr.lines().any(|l| l.starts_with(path)), "{stderr}");
        // Every endpoint here reaches its server over UDP, or only over
        // TCP: a relayed path is over the stream carrier exactly then.
        let tcp_only = !path.starts_with("path: direct");
        for line in stderr.lines().filter(|l| l.starts_with("path: relayed")) {
            assert_eq!(line.ends_with(" (tcp)"), tcp_only, "{line}");
        }
    }
}

#[test]
fn listen_and_connect_by_ticket_pipe_8_mib_each_way_byte_identical() {
    let dir = TempDir::new("ticket");
    let (_server, via) = rendezvous();
    let (listener, ticket) = listen(&via, &dir, &[]);
    let connector = connect_by_ticket(&ticket);
    pipe_both_ways(listener, connector, 8 << 20);
}

#[test]
fn connect_by_name_through_the_rendezvous() {
    let dir = TempDir::new("name");
    let (_server, via) = rendezvous();
    let (listener, _) = listen(&via, &dir, &["--name", "laptop"]);
    let connector = srudp()
        .args(["connect", "--via", &via, "--name", "laptop"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    pipe_both_ways(listener, connector, 256 << 10);
}

/// RFC 4648 base32, lowercase, no padding (the ticket's encoding).
fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let (mut out, mut acc, mut bits) = (String::new(), 0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn unbase32(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    out
}

/// The ticket without its secret: what the rendezvous server (or anyone
/// who learned the listener's key and address) can make up.
fn strip_secret(ticket: &str) -> String {
    use blake2::Digest;
    let bytes = unbase32(ticket);
    assert_eq!(bytes[0], 2, "ticket version");
    assert_eq!(bytes[33], 1, "the ticket carries a secret");
    let mut forged = bytes[..33].to_vec();
    forged.push(0);
    forged.extend_from_slice(&bytes[34 + 32..bytes.len() - 4]);
    let sum = blake2::Blake2s256::digest(&forged);
    forged.extend_from_slice(&sum[..4]);
    base32(&forged)
}

#[test]
fn a_connect_without_the_tickets_secret_is_refused_with_one_line_and_logged() {
    let dir = TempDir::new("forged");
    let (_server, via) = rendezvous();
    let (listener, ticket) = listen(&via, &dir, &[]);
    assert_fails(
        &["connect", &strip_secret(&ticket)],
        "requires a ticket",
        Duration::from_secs(30),
    );
    // The genuine holder still gets through, and the listener logged the
    // refusal.
    let connector = connect_by_ticket(&ticket);
    let (a, b) = (payload(3, 4096), payload(4, 4096));
    let b2 = b.clone();
    let l = thread::spawn(move || run_with_input(listener, a, WAIT));
    let c = run_with_input(connector, b2, WAIT);
    let l = l.join().unwrap();
    assert!(c.status.success(), "holder: {}", stderr_of(&c));
    assert!(l.status.success(), "listener: {}", stderr_of(&l));
    assert_eq!(l.stdout, b);
    assert!(
        stderr_of(&l).contains("refused a connection without a valid ticket"),
        "{}",
        stderr_of(&l)
    );
}

#[test]
fn a_name_that_maps_to_another_key_than_the_pinned_one_is_refused() {
    let dir = TempDir::new("pinned");
    let (_server, via) = rendezvous();
    let (key, _) = keygen(&dir, "listener.key");
    let (_, other) = keygen(&dir, "other.key");
    let key = key.to_str().unwrap().to_string();
    let (listener, _) = listen(&via, &dir, &["--name", "laptop", "--key", &key]);
    let _listener = Running(listener);
    assert_fails(
        &[
            "connect",
            "--via",
            &via,
            "--name",
            "laptop",
            "--peer-key",
            &other,
        ],
        "not the pinned --peer-key",
        Duration::from_secs(30),
    );
}

#[test]
fn a_key_file_others_can_read_is_refused_with_how_to_fix_it() {
    let dir = TempDir::new("keymode");
    let (key, _) = keygen(&dir, "loose.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (_server, via) = rendezvous();
        assert_fails(
            &["listen", "--via", &via, "--key", key.to_str().unwrap()],
            "chmod 600",
            Duration::from_secs(10),
        );
    }
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `srudp connect --direct 127.0.0.1:PEER --peer-key PEER_KEY` bound at
/// 127.0.0.1:BIND with the key file `key`.
fn direct_side(key: &Path, bind: u16, peer: u16, peer_key: &str) -> Child {
    srudp()
        .args(["connect", "--direct", &format!("127.0.0.1:{peer}")])
        .args([
            "--peer-key",
            peer_key,
            "--bind",
            &format!("127.0.0.1:{bind}"),
        ])
        .arg("--key")
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn direct_mode_connects_two_sides_without_a_server() {
    let dir = TempDir::new("direct");
    let (key_a, pub_a) = keygen(&dir, "a.key");
    let (key_b, pub_b) = keygen(&dir, "b.key");
    let (port_a, port_b) = (free_port(), free_port());
    let side = direct_side;
    let a = side(&key_a, port_a, port_b, &pub_b);
    let b = side(&key_b, port_b, port_a, &pub_a);
    pipe_both_ways(a, b, 1 << 20);
}

/// `connect --direct` toward B, but the address is held by an impostor M
/// who claims to be B's peer: M never becomes the connection (IK proves
/// keys, and only B's is accepted), and B, arriving later at that address,
/// does.
#[test]
fn direct_mode_is_not_answered_by_an_impostor_at_the_peers_address() {
    let dir = TempDir::new("impostor");
    let (key_a, pub_a) = keygen(&dir, "a.key");
    let (key_b, pub_b) = keygen(&dir, "b.key");
    let (key_m, _) = keygen(&dir, "m.key");
    let (port_a, port_b) = (free_port(), free_port());
    let side = direct_side;
    let a = side(&key_a, port_a, port_b, &pub_b);
    // M sits at B's address and connects to A with its own key.
    let m = side(&key_m, port_b, port_a, &pub_a);
    let m = run_with_input(m, b"impostor's bytes".to_vec(), WAIT);
    assert!(!m.status.success(), "the impostor is refused");
    assert!(stderr_of(&m).contains("refused"), "{}", stderr_of(&m));
    // The genuine B takes the address over; A, still punching, reaches it.
    let b = side(&key_b, port_b, port_a, &pub_a);
    pipe_both_ways(a, b, 64 << 10);
}

#[test]
fn send_and_receive_a_file_with_its_checksum_verified() {
    let dir = TempDir::new("file");
    let (_server, via) = rendezvous();
    let source = dir.path("report.bin");
    let data = payload(9, 3 << 20);
    std::fs::write(&source, &data).unwrap();
    let ticket_file = dir.path("ticket");
    let sender = srudp()
        .arg("send")
        .arg(&source)
        .args(["--via", &via, "--ticket-file"])
        .arg(&ticket_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sender = Running(sender);
    let started = Instant::now();
    let ticket = loop {
        if let Ok(t) = std::fs::read_to_string(&ticket_file) {
            if t.ends_with('\n') {
                break t.trim().to_string();
            }
        }
        assert!(started.elapsed() < WAIT, "no ticket from srudp send");
        thread::sleep(Duration::from_millis(20));
    };
    let out_dir = dir.path("copy");
    let target = out_dir.join("report.bin");
    let receiver = srudp()
        .args(["receive", &ticket, "--out"])
        .arg(&out_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = run_with_input(receiver, Vec::new(), WAIT);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("received 1 file, 3145728 bytes") && err.contains("sha256 ok"),
        "{err}"
    );
    assert!(
        std::fs::read(&target).unwrap() == data,
        "the copy is byte-identical"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "no partial file stays behind");
    let mut sender = sender;
    let status = sender.0.wait().unwrap();
    let mut err = String::new();
    sender
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("checksum verified"), "{err}");
}

#[test]
fn a_garbage_ticket_fails_with_one_line() {
    assert_fails(
        &["connect", "not-a-ticket"],
        "invalid ticket",
        Duration::from_secs(10),
    );
}

#[test]
fn a_malformed_rendezvous_address_fails_with_one_line_that_says_what_is_wrong() {
    // The library's parser (spec §3.2) says what is wrong, in one line.
    let key = "tuqgck43yrxmsei5yfisuupjti2vax7jujr5pb5s7a5mt57naq2q";
    for (via, why) in [
        ("192.0.2.1:4433".to_string(), "found no '@'"),
        (format!("{key}@192.0.2.1"), "found no port"),
        (
            format!("{key}@2001:db8::1:4433"),
            "IPv6 address goes in brackets",
        ),
        (
            "abc@192.0.2.1:4433".to_string(),
            "the key before '@' is invalid",
        ),
    ] {
        assert_fails(
            &["connect", "--via", &via, "--name", "x"],
            why,
            Duration::from_secs(10),
        );
    }
}

#[test]
fn a_rendezvous_with_a_tcp_port_prints_it_and_accepts_tcp_there() {
    let (_server, line) = rendezvous_with(&["--tcp-port", "0"]);
    let via: srudp_tokio::rendezvous::RendezvousAddr = line.trim().parse().unwrap();
    let tcp = via.tcp_socket_addr().expect("the address names a TCP port");
    assert!(line.ends_with(&format!("/tcp:{}", tcp.port())), "{line}");
    assert_ne!(tcp.port(), 0);
    std::net::TcpStream::connect(tcp).expect("the server listens on TCP there");
}

#[test]
fn listen_and_connect_reach_a_rendezvous_whose_udp_port_is_dead_over_its_tcp_port() {
    let (_server, line) = rendezvous_with(&["--tcp-port", "0"]);
    let via: srudp_tokio::rendezvous::RendezvousAddr = line.trim().parse().unwrap();
    let tcp = via.tcp_port().unwrap();
    // The same server named with a UDP port where nothing answers: only
    // its TCP port reaches it, as from a network that blocks UDP.
    let dead_udp = free_port();
    let via = format!("{}@127.0.0.1:{dead_udp}/tcp:{tcp}", via.key());
    let dir = TempDir::new("tcp-only");
    let (listener, ticket) = listen(&via, &dir, &[]);
    let connector = connect_by_ticket(&ticket);
    // Direct on loopback, or through the relay on the stream carriers:
    // then `path: relayed via ADDR (tcp)`.
    pipe_both_ways_on(listener, connector, 1 << 20, "path: ");
}

#[test]
fn listen_and_connect_reach_a_rendezvous_whose_udp_port_is_dead_over_its_tls_port() {
    let (_server, line) = rendezvous_with(&["--tcp-port", "0", "--tls"]);
    let via: srudp_tokio::rendezvous::RendezvousAddr = line.trim().parse().unwrap();
    assert!(via.tls(), "{line}");
    let tcp = via.tcp_port().unwrap();
    assert!(line.ends_with(&format!("/tls:{tcp}")), "{line}");
    let dead_udp = free_port();
    let via = format!("{}@127.0.0.1:{dead_udp}/tls:{tcp}", via.key());
    let dir = TempDir::new("tls-only");
    let (listener, ticket) = listen(&via, &dir, &[]);
    let connector = connect_by_ticket(&ticket);
    pipe_both_ways_on(listener, connector, 1 << 20, "path: ");
}

#[test]
fn tls_and_proxy_options_that_cannot_work_fail_with_one_line() {
    let limit = Duration::from_secs(10);
    assert_fails(
        &["rendezvous", "--bind", "127.0.0.1:0", "--tls"],
        "--tcp-port",
        limit,
    );
    assert_fails(
        &[
            "rendezvous",
            "--bind",
            "127.0.0.1:0",
            "--tcp-port",
            "0",
            "--tls",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ],
        "TLS certificate /nonexistent/cert.pem",
        limit,
    );
    assert_fails(
        &[
            "--proxy",
            "socks5://proxy:1080",
            "nat-check",
            "--via",
            "quqpacmjgctvi5elpxolipxxlig36oqney4bv5hlusuy5ku3jzva@127.0.0.1:1",
        ],
        "invalid proxy URL",
        limit,
    );
    assert_fails(
        &[
            "rendezvous",
            "--bind",
            "127.0.0.1:0",
            "--relay-rate",
            "1000",
        ],
        "--relay-rate",
        limit,
    );
    // HTTPS_PROXY is read at start: a malformed one is an error then.
    let child = srudp()
        .args([
            "nat-check",
            "--via",
            "quqpacmjgctvi5elpxolipxxlig36oqney4bv5hlusuy5ku3jzva@127.0.0.1:1",
        ])
        .env("HTTPS_PROXY", "ftp://proxy:21")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = run_with_input(child, Vec::new(), limit);
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.contains("HTTPS_PROXY: invalid proxy URL"), "{err}");
}

#[test]
fn a_rendezvous_advertising_no_port_fails_with_one_line() {
    assert_fails(
        &[
            "rendezvous",
            "--bind",
            "127.0.0.1:0",
            "--advertise",
            "rdv.example.org",
        ],
        "found no port",
        Duration::from_secs(10),
    );
}

#[test]
fn an_unknown_name_fails_quickly_with_one_line() {
    let (_server, via) = rendezvous();
    assert_fails(
        &["connect", "--via", &via, "--name", "nobody"],
        "peer not registered",
        Duration::from_secs(10),
    );
}

#[test]
fn a_rendezvous_that_is_down_fails_with_one_line() {
    let port = free_port();
    let via = format!("tuqgck43yrxmsei5yfisuupjti2vax7jujr5pb5s7a5mt57naq2q@127.0.0.1:{port}");
    assert_fails(
        &["connect", "--via", &via, "--name", "x"],
        "rendezvous server unreachable",
        Duration::from_secs(20),
    );
}

#[test]
fn every_command_explains_itself_with_an_example() {
    for cmd in [
        "keygen",
        "rendezvous",
        "listen",
        "connect",
        "expose",
        "forward",
        "send",
        "receive",
        "nat-check",
        "demo",
    ] {
        let out = srudp().args([cmd, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert!(help.contains("Example"), "{cmd} --help: {help}");
    }
}

#[test]
fn connect_help_says_what_direct_does() {
    // Issue 21: the pattern, who may connect, and the longer handshake
    // timeout of --direct are the user's to know.
    let out = srudp().args(["connect", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for phrase in ["IK", "simultaneous open", "30 s", "10 s", "only --peer-key"] {
        assert!(
            help.contains(phrase),
            "connect --help lacks {phrase:?}: {help}"
        );
    }
}

/// A peer for the CLI written with the library: an `srudp-tokio` endpoint
/// on loopback that accepts anyone, on its own runtime.
struct LibraryPeer {
    rt: tokio::runtime::Runtime,
    endpoint: srudp_tokio::Endpoint,
    key: String,
    addr: SocketAddr,
}

impl LibraryPeer {
    fn new() -> LibraryPeer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let config = srudp_tokio::EndpointConfig::new(srudp_tokio::Keypair::generate_from_os());
        let endpoint = rt
            .block_on(async { srudp_tokio::Endpoint::bind("127.0.0.1:0".parse().unwrap(), config) })
            .unwrap();
        let key = endpoint.public_key().to_string();
        let addr = endpoint.local_addr();
        LibraryPeer {
            rt,
            endpoint,
            key,
            addr,
        }
    }
}

/// `srudp connect --direct TO --peer-key KEY` from a free loopback port,
/// stdin, stdout and stderr piped.
fn direct_cli(to: SocketAddr, peer_key: &str) -> Child {
    srudp()
        .args([
            "connect",
            "--direct",
            &to.to_string(),
            "--peer-key",
            peer_key,
        ])
        .args(["--bind", &format!("127.0.0.1:{}", free_port())])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn the_peers_close_code_and_reason_are_shown_to_the_user() {
    let peer = LibraryPeer::new();
    let cli = direct_cli(peer.addr, &peer.key);
    let endpoint = peer.endpoint.clone();
    let served = peer.rt.spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut stream, _, _) = endpoint.accept().await.unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        stream.abort(42, b"disk full");
        got
    });
    let out = run_with_input(cli, b"hello".to_vec(), WAIT);
    let got = peer.rt.block_on(served).unwrap();
    assert_eq!(got, b"hello", "the honest bytes arrived before the abort");
    let err = stderr_of(&out);
    assert!(!out.status.success(), "an aborted connection fails: {err}");
    assert!(
        err.contains(r#"reset by the peer: application code 42, reason "disk full""#),
        "the user sees the peer's code and reason: {err:?}"
    );
}

#[test]
fn a_cli_that_fails_lingers_so_the_peer_learns_why_even_when_its_first_close_is_lost() {
    // The CLI's stdout is closed, so the first bytes from the peer make it
    // fail. It closes with its reason (spec §6.6) and stays in `Closing`:
    // its first CLOSE is dropped on the way, and it answers the peer's next
    // retransmission with CLOSE again, so the peer learns why instead of
    // waiting for its idle timeout.
    let peer = LibraryPeer::new();
    let relay = ArmedLossRelay::start(peer.addr);
    let mut cli = Running(direct_cli(relay.addr(), &peer.key));
    let _stdin = cli.0.stdin.take();
    drop(cli.0.stdout.take());
    let endpoint = peer.endpoint.clone();
    let relay_ref = &relay;
    let reason = peer.rt.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut stream, _, _) = tokio::time::timeout(WAIT, endpoint.accept())
            .await
            .expect("the CLI connects")
            .unwrap();
        relay_ref.arm(3);
        stream.write_all(b"nobody reads this").await.unwrap();
        let mut buf = [0u8; 64];
        // Far below the peer's 30 s idle timeout: only a CLOSE ends this.
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Err(_))),
            "the read ends with the CLI's close: {read:?}"
        );
        stream.close_reason()
    });
    match reason {
        Some(srudp_tokio::CloseReason::PeerClose { code: 1, reason }) => {
            assert!(reason.contains("connection failed"), "{reason:?}");
        }
        other => panic!("the peer did not learn why: {other:?}"),
    }
    assert!(
        relay.dropped() >= 1,
        "the relay dropped what the CLI sent first"
    );
    let status = cli.0.wait().unwrap();
    assert!(!status.success());
}

#[test]
fn help_lists_the_exit_statuses_and_a_usage_error_is_one_line_with_status_2() {
    for args in [
        &["--help"][..],
        &["connect", "--help"],
        &["expose", "--help"],
    ] {
        let out = srudp().args(args).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        for status in [
            "0    success",
            "1    error",
            "2    usage",
            "3    the peer closed",
            "130  interrupted",
        ] {
            assert!(help.contains(status), "{args:?} lacks {status:?}: {help}");
        }
    }
    let out = srudp()
        .args(["expose", "udp://127.0.0.1:22", "--via", "x"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("expected tcp://HOST:PORT"), "{err}");
}
