//! The one-line error a command ends with, and the exit status it maps to.

use std::fmt;
use std::io;

use srudp_tokio::CloseReason;

use crate::exit_status::ExitStatus;
use crate::signals::INTERRUPTED_CODE;

/// An error for the user: one line, and how the process exits.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    status: ExitStatus,
}

impl Failure {
    pub(crate) fn msg(m: impl Into<String>) -> Failure {
        Failure {
            message: m.into(),
            status: ExitStatus::Error,
        }
    }

    /// A connection's error, with what we were doing (`context`): a peer
    /// that closed it with a reason says so, the rest keeps the context.
    pub(crate) fn connection(context: &str, e: &io::Error) -> Failure {
        match srudp_tokio::close_reason(e) {
            Some(CloseReason::PeerClose { code, reason }) if *code == INTERRUPTED_CODE => {
                Failure::peer_closed(reason)
            }
            Some(CloseReason::PeerClose { .. }) => Failure {
                message: format!("{context}: {e}"),
                status: ExitStatus::PeerClosed,
            },
            _ => Failure::msg(format!("{context}: {e}")),
        }
    }

    /// The peer ended the connection, saying why.
    pub(crate) fn peer_closed(reason: &str) -> Failure {
        Failure {
            message: format!("peer closed the connection: {reason}"),
            status: ExitStatus::PeerClosed,
        }
    }

    pub(crate) fn interrupted() -> Failure {
        Failure {
            message: "interrupted".into(),
            status: ExitStatus::Interrupted,
        }
    }

    pub(crate) fn status(&self) -> ExitStatus {
        self.status
    }

    /// The line to print on stderr: a peer's close is a fact, not our
    /// error, so it is printed as it is.
    pub(crate) fn line(&self) -> String {
        match self.status {
            ExitStatus::PeerClosed if self.message.starts_with("peer closed") => {
                format!("srudp: {self}")
            }
            _ => format!("srudp: error: {self}"),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the message held.
        f.write_str(&self.message.replace('\n', " "))
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::msg(e.to_string())
    }
}
