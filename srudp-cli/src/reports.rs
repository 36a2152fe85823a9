//! What the commands report on stderr while connected: the path (direct or
//! relayed) and the registration at the rendezvous.

use srudp_tokio::{Endpoint, PathKind, Stream};

/// The `path:` line for a path; `over_tcp`: relayed through the server's
/// stream carrier (see [`Stream::relayed_over_stream`]).
pub(crate) fn path_line(path: PathKind, over_tcp: bool) -> String {
    match path {
        PathKind::Direct(addr) => format!("path: direct {addr}"),
        PathKind::Relayed { via } if over_tcp => format!("path: relayed via {via} (tcp)"),
        PathKind::Relayed { via } => format!("path: relayed via {via}"),
    }
}

/// The `path:` line for a stream's current path.
pub(crate) fn stream_path_line(stream: &Stream) -> String {
    path_line(stream.path(), stream.relayed_over_stream())
}

/// Prints the stream's path on stderr now and on every change, until the
/// connection ends (run it as a task).
pub(crate) fn report_paths(stream: &Stream) -> tokio::task::JoinHandle<()> {
    let watcher = stream.path_watcher();
    let mut path = watcher.path();
    eprintln!("{}", path_line(path, watcher.relayed_over_stream()));
    tokio::spawn(async move {
        while let Ok(new) = watcher.changed(path).await {
            path = new;
            eprintln!("{}", path_line(path, watcher.relayed_over_stream()));
        }
    })
}

/// Prints a line on stderr whenever the endpoint registers again at the
/// rendezvous (after losing it), so operators see it recover.
pub(crate) fn report_registrations(endpoint: &Endpoint) -> tokio::task::JoinHandle<()> {
    let endpoint = endpoint.clone();
    tokio::spawn(async move {
        let Some(mut status) = endpoint.rendezvous_status() else {
            return;
        };
        while let Ok(new) = endpoint.rendezvous_changed(status).await {
            if new.registrations > status.registrations {
                if let Some(observed) = new.observed {
                    eprintln!("rendezvous: registered again (observed {observed})");
                }
            }
            if status.registered && !new.registered {
                eprintln!("rendezvous: lost the server, reconnecting");
            }
            status = new;
        }
    })
}
