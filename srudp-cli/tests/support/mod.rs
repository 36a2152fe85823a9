//! What the CLI's test files share: the built binary, temporary folders,
//! children killed on drop, a rendezvous server on loopback, tickets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) const SRUDP: &str = env!("CARGO_BIN_EXE_srudp");
pub(crate) const WAIT: Duration = Duration::from_secs(60);

pub(crate) fn srudp() -> Command {
    Command::new(SRUDP)
}

/// A temporary directory removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("srudp-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop (a failing test leaves nothing running).
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Sends `signal` to the child.
    pub(crate) fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to our own child process by its id.
        unsafe {
            libc::kill(self.0.id() as i32, signal);
        }
    }

    /// Waits at most `limit` for the child to exit; its status and stderr.
    pub(crate) fn wait_for(
        &mut self,
        limit: Duration,
    ) -> Option<(std::process::ExitStatus, String)> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.0.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.0.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return Some((status, err));
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// A rendezvous server on loopback and its `--via` string.
pub(crate) fn rendezvous() -> (Running, String) {
    let mut child = srudp()
        .args(["rendezvous", "--bind", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Running(child), line.trim().to_string())
}

/// Waits for a ticket file to be written completely.
pub(crate) fn read_ticket(file: &Path) -> String {
    let started = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(file) {
            if t.ends_with('\n') {
                return t.trim().to_string();
            }
        }
        assert!(started.elapsed() < WAIT, "no ticket in {}", file.display());
        thread::sleep(Duration::from_millis(20));
    }
}

/// Deterministic bytes.
pub(crate) fn payload(seed: u64, len: usize) -> Vec<u8> {
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

/// `srudp ARGS` with stdin, stdout and stderr piped, killed on drop.
pub(crate) fn spawn(args: &[&str]) -> Running {
    Running(
        srudp()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// A child's stderr read line by line on a thread, so a test can wait for
/// a line while the child runs.
pub(crate) struct Lines(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Lines {
    pub(crate) fn of(child: &mut Running) -> Lines {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.0.stderr.take().unwrap();
        let sink = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Lines(lines)
    }

    /// Waits at most `limit` for a line containing `text`.
    pub(crate) fn wait_for(&self, text: &str, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.0.lock().unwrap().iter().any(|l| l.contains(text)) {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }

    pub(crate) fn all(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// Waits at most `limit` for the child to exit.
pub(crate) fn exit_within(
    child: &mut Running,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.0.try_wait().unwrap() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(10));
    }
    None
}
