//! Issue 19 with a real OpenSSH: sshd on loopback (a throwaway host key and
//! authorized key), behind `srudp expose`; ssh through `srudp connect` as
//! its ProxyCommand, and through `srudp forward` with scp. Skipped, with a
//! line saying why, only when sshd cannot run here.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

struct Sshd {
    _process: Running,
    port: u16,
    key: PathBuf,
    user: String,
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn keygen(path: &Path) -> bool {
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// sshd on 127.0.0.1, or `None` (with the reason printed) if it cannot run.
fn sshd(dir: &TempDir) -> Option<Sshd> {
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipped: /usr/sbin/sshd is not installed (.ci/run installs openssh-server)");
        return None;
    }
    let (host_key, key) = (dir.path("host_key"), dir.path("client_key"));
    if !keygen(&host_key) || !keygen(&key) {
        eprintln!("skipped: ssh-keygen failed");
        return None;
    }
    std::fs::copy(dir.path("client_key.pub"), dir.path("authorized_keys")).unwrap();
    // sshd wants its privilege separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_tcp_port();
    let config = dir.path("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             StrictModes no\nUsePAM no\nPidFile none\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin yes\nSubsystem sftp internal-sftp\n",
            host_key.display(),
            dir.path("authorized_keys").display()
        ),
    )
    .unwrap();
    let process = Running(
        Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?,
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            eprintln!("skipped: sshd did not start listening");
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let user = std::env::var("USER").unwrap_or_else(|_| {
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            "root".into()
        } else {
            "nobody".into()
        }
    });
    Some(Sshd {
        _process: process,
        port,
        key,
        user,
    })
}

fn ssh_options(sshd: &Sshd) -> Vec<String> {
    [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-i",
        sshd.key.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn finish_within(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: killing our own child by its id.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}

fn expose(dir: &TempDir, via: &str, port: u16) -> (Running, Lines, String) {
    let ticket_file = dir.path("expose-ticket");
    let mut exposer = spawn(&[
        "expose",
        &format!("tcp://127.0.0.1:{port}"),
        "--via",
        via,
        "--ticket-file",
        ticket_file.to_str().unwrap(),
    ]);
    let lines = Lines::of(&mut exposer);
    let ticket = read_ticket(&ticket_file);
    (exposer, lines, ticket)
}

#[test]
fn ssh_through_expose_with_connect_as_proxy_command_twice_and_the_end_is_logged() {
    let dir = TempDir::new("ssh-expose");
    let Some(sshd) = sshd(&dir) else { return };
    let (_server, via) = rendezvous();
    let (_exposer, lines, ticket) = expose(&dir, &via, sshd.port);
    for session in 1..=2 {
        let mut ssh = Command::new("ssh");
        ssh.args(ssh_options(&sshd))
            .arg("-o")
            .arg(format!("ProxyCommand={SRUDP} connect {ticket}"))
            .arg(format!("{}@srudp-test", sshd.user))
            .arg("head -c 10485760 /dev/zero");
        let out = finish_within(ssh, WAIT);
        assert!(
            out.status.success(),
            "session {session}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout.len(), 10 << 20, "session {session} moved 10 MB");
        assert!(
            lines.wait_for(
                &format!("connection {session} closed"),
                Duration::from_secs(2)
            ),
            "the expose side logs the end of session {session} within 2 s: {}",
            lines.all()
        );
    }
}

#[test]
fn ssh_and_two_concurrent_scp_through_forward_are_byte_identical() {
    let dir = TempDir::new("ssh-forward");
    let Some(sshd) = sshd(&dir) else { return };
    let (_server, via) = rendezvous();
    let (_exposer, expose_lines, ticket) = expose(&dir, &via, sshd.port);
    let port = free_tcp_port();
    let mut forwarder = spawn(&["forward", "--listen", &format!("127.0.0.1:{port}"), &ticket]);
    let forward_lines = Lines::of(&mut forwarder);
    assert!(
        forward_lines.wait_for("forwarding", WAIT),
        "{}",
        forward_lines.all()
    );
    for session in 1..=3 {
        let mut ssh = Command::new("ssh");
        ssh.args(ssh_options(&sshd))
            .args(["-p", &port.to_string()])
            .arg(format!("{}@127.0.0.1", sshd.user))
            .arg(format!("echo session {session}"));
        let out = finish_within(ssh, WAIT);
        assert!(
            out.status.success(),
            "session {session}: {} / {}",
            String::from_utf8_lossy(&out.stderr),
            expose_lines.all()
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("session {session}")
        );
    }
    let source = dir.path("twenty.bin");
    let data = payload(20, 20 << 20);
    std::fs::write(&source, &data).unwrap();
    let copies: Vec<_> = (0..2)
        .map(|i| {
            let target = dir.path(&format!("copy{i}.bin"));
            let mut scp = Command::new("scp");
            scp.args(ssh_options(&sshd))
                .args(["-P", &port.to_string()])
                .arg(format!("{}@127.0.0.1:{}", sshd.user, source.display()))
                .arg(&target);
            (thread::spawn(move || finish_within(scp, WAIT)), target)
        })
        .collect();
    for (copy, target) in copies {
        let out = copy.join().unwrap();
        assert!(
            out.status.success(),
            "scp: {} / {}",
            String::from_utf8_lossy(&out.stderr),
            forward_lines.all()
        );
        assert!(
            std::fs::read(&target).unwrap() == data,
            "byte-identical copy"
        );
    }
    assert!(
        forward_lines.wait_for("connection 5 closed", Duration::from_secs(5)),
        "{}",
        forward_lines.all()
    );
}
