//! The exit statuses of `srudp`, as `--help` lists them.

use std::process::ExitCode;

/// How `srudp` ends. Scripts (and OpenSSH, for a ProxyCommand) read these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    /// 0: the command did what it was asked.
    Success,
    /// 1: an error, explained on stderr in one line.
    Error,
    /// 3: the peer closed the connection with a reason (shown on stderr),
    /// for example because it was interrupted.
    PeerClosed,
    /// 130: interrupted by SIGINT, SIGTERM or SIGHUP (the peers were told).
    Interrupted,
}

impl ExitStatus {
    /// The process exit code. 2 (usage) is clap's own.
    pub(crate) fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Error => 1,
            ExitStatus::PeerClosed => 3,
            ExitStatus::Interrupted => 130,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(status.code())
    }
}

/// The exit status section of `srudp --help`.
pub(crate) const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    success
  1    error (one line on stderr says what went wrong)
  2    usage: invalid arguments
  3    the peer closed the connection, with the reason on stderr
       (\"peer closed the connection: interrupted\" when it was stopped)
  130  interrupted by SIGINT, SIGTERM or SIGHUP; the peers are told
       (a second signal exits at once)";
