//! The command line, typed: one struct of arguments per command, the
//! options several share flattened in, tickets and rendezvous strings parsed
//! by clap.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use srudp_tokio::rendezvous::{HttpProxy, RendezvousAddr, Ticket};

use crate::congestion_choice::Congestion;
use crate::exit_status::EXIT_STATUS_HELP;
use crate::size;
use crate::tunnel::TcpTarget;

/// Encrypted, reliable byte streams between machines behind NATs, over UDP.
#[derive(Debug, Parser)]
#[command(name = "srudp", version, about, long_about = None, after_help = EXIT_STATUS_HELP)]
pub(crate) struct Cli {
    /// Log what happens on stderr (-v: info, -vv: debug, -vvv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Reach a rendezvous server's TCP port through this HTTP proxy
    /// (CONNECT): `http://[USER:PASSWORD@]HOST:PORT`. Default: the
    /// HTTPS_PROXY (or https_proxy) variable; hosts in NO_PROXY go straight.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) proxy: Option<HttpProxy>,
    /// Do not ask the gateway (PCP, NAT-PMP, UPnP-IGD) to forward a public
    /// port to us (by default we do, and offer the mapped address to peers).
    #[arg(long, global = true)]
    pub(crate) no_port_mapping: bool,
    /// The congestion controller of our connections: cubic (the default,
    /// like Linux TCP), newreno, or bbr (model based: keeps its rate under
    /// random loss, as on Wi-Fi and long paths).
    #[arg(long, global = true, value_enum, default_value_t = Congestion::Cubic)]
    pub(crate) congestion: Congestion,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Who we are and where we bind: every command that opens a connection.
#[derive(Debug, Args)]
pub(crate) struct Identity {
    /// Our secret key file (default: a new key for this run).
    #[arg(long)]
    pub(crate) key: Option<PathBuf>,
    /// The local UDP address (default: any address of the rendezvous' family).
    #[arg(long)]
    pub(crate) bind: Option<SocketAddr>,
}

/// How a command that waits for peers registers and hands out its ticket.
#[derive(Debug, Args)]
pub(crate) struct Registration {
    /// The rendezvous server, as printed by `srudp rendezvous`: KEY@HOST:PORT.
    #[arg(long)]
    pub(crate) via: RendezvousAddr,
    /// Also write the ticket, alone, to this file.
    #[arg(long)]
    pub(crate) ticket_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a new secret key to a file (mode 0600) and print its public key.
    ///
    /// Example: `srudp keygen --out laptop.key` prints the public key that
    /// peers pass to `--peer-key` and `expose --allow`.
    Keygen {
        /// Where to write the secret key (refuses to overwrite).
        #[arg(long, default_value = "srudp.key")]
        out: PathBuf,
    },
    /// Run a rendezvous and relay server.
    ///
    /// Its first line on stdout is the string clients pass to `--via`
    /// (`KEY@HOST:PORT`, or `KEY@HOST:PORT/tcp:TCPPORT` with --tcp-port);
    /// logs go to stderr. Example, on a VPS:
    /// `srudp rendezvous --bind 0.0.0.0:4433 --key rdv.key --second-port 4434 --tcp-port 443 --advertise 198.51.100.7:4433`
    Rendezvous(RendezvousArgs),
    /// Register at a rendezvous, print a ticket, wait for one peer, then
    /// pipe stdin to it and it to stdout.
    ///
    /// Example: `srudp listen --via KEY@198.51.100.7:4433 --name laptop < notes.txt`
    /// prints `ticket: TICKET` on stderr; the other side runs `srudp connect TICKET`.
    #[command(after_help = EXIT_STATUS_HELP)]
    Listen(ListenArgs),
    /// Connect to a listener and pipe stdin to it and it to stdout.
    ///
    /// Examples: `srudp connect TICKET`; `srudp connect --via KEY@HOST:PORT --name laptop`;
    /// with no server, both sides at once:
    /// `srudp connect --direct 198.51.100.7:5000 --peer-key KEY --bind 0.0.0.0:5000 --key me.key`.
    /// As an OpenSSH ProxyCommand in front of `srudp expose`:
    /// `ssh -o ProxyCommand="srudp connect TICKET" host`
    #[command(after_help = EXIT_STATUS_HELP)]
    Connect(ConnectArgs),
    /// Serve a TCP service to srudp peers: register, print a ticket, and
    /// for every incoming connection open one TCP connection to HOST:PORT
    /// and pipe both ways, many at once, until stopped.
    ///
    /// Example, in front of sshd: `srudp expose tcp://127.0.0.1:22 --via KEY@198.51.100.7:4433`;
    /// clients run `ssh -o ProxyCommand="srudp connect TICKET" host` or
    /// `srudp forward --listen 127.0.0.1:2222 TICKET`.
    #[command(after_help = EXIT_STATUS_HELP)]
    Expose(ExposeArgs),
    /// Listen on a local TCP port and carry each accepted TCP connection
    /// over its own srudp connection to an `srudp expose`.
    ///
    /// Example: `srudp forward --listen 127.0.0.1:2222 TICKET`, then
    /// `ssh -p 2222 127.0.0.1`.
    #[command(after_help = EXIT_STATUS_HELP)]
    Forward(ForwardArgs),
    /// Offer files and folders: register at a rendezvous, print a ticket,
    /// send them to the first peer that runs `srudp receive TICKET`.
    ///
    /// Example: `srudp send photos/ notes.txt --via KEY@198.51.100.7:4433`.
    /// A receiver that stops halfway runs the same `receive` again (the
    /// sender waits for it) and gets only what it lacks.
    #[command(after_help = EXIT_STATUS_HELP)]
    Send(SendArgs),
    /// Receive what `srudp send` offers into a folder, checking every
    /// path, size and checksum; files appear under their final names only
    /// when complete, and a transfer started again resumes.
    ///
    /// Example: `srudp receive TICKET --out ~/Downloads`
    #[command(after_help = EXIT_STATUS_HELP)]
    Receive(ReceiveArgs),
    /// Print our public address as the rendezvous sees it, and how our NAT
    /// maps and filters.
    ///
    /// Example: `srudp nat-check --via KEY@198.51.100.7:4433` (the server
    /// needs `--second-port` for the mapping and filtering tests).
    NatCheck {
        /// The rendezvous server: KEY@HOST:PORT.
        #[arg(long)]
        via: RendezvousAddr,
        /// The local UDP address.
        #[arg(long)]
        bind: Option<SocketAddr>,
    },
    /// Run a rendezvous and two peers on loopback in this process: register,
    /// introduce, punch, handshake, and move SIZE bytes each way.
    ///
    /// Example: `srudp demo --bytes 64MiB`
    Demo {
        /// Bytes each way (suffixes: K, M, G, KiB, MiB, GiB).
        #[arg(long, default_value = "256MiB", value_parser = size::parse)]
        bytes: u64,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RendezvousArgs {
    /// The UDP address to listen on.
    #[arg(long)]
    pub(crate) bind: SocketAddr,
    /// The server's secret key file (default: a new key for this run).
    #[arg(long)]
    pub(crate) key: Option<PathBuf>,
    /// A second UDP port on the same address, for NAT behaviour tests.
    #[arg(long)]
    pub(crate) second_port: Option<u16>,
    /// The address clients reach (printed instead of the bound one).
    #[arg(long)]
    pub(crate) advertise: Option<String>,
    /// Also listen on TCP, on the same IP address and this port (0: any
    /// free port), for clients whose network blocks UDP; the printed
    /// address then ends in /tcp:PORT, and so do the tickets of its clients.
    #[arg(long)]
    pub(crate) tcp_port: Option<u16>,
    /// Speak TLS on the TCP port (like HTTPS, for firewalls that let only
    /// TLS out); the printed address then ends in /tls:PORT. Without
    /// --tls-cert and --tls-key, a self-signed certificate is made at start
    /// (clients accept any: the server's key authenticates it inside).
    #[arg(long, requires = "tcp_port")]
    pub(crate) tls: bool,
    /// The TLS certificate chain, PEM (with --tls).
    #[arg(long, requires = "tls", requires = "tls_key", value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key, PEM (with --tls-cert).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Bytes per second the relay forwards for one pair of peers, both
    /// directions together (e.g. 2MiB, 100MB); each client may relay twice
    /// that over all its pairs. The relay's cost is the server's bandwidth.
    #[arg(long, default_value = "2MiB", value_parser = size::parse, value_name = "RATE")]
    pub(crate) relay_rate: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    #[command(flatten)]
    pub(crate) registration: Registration,
    /// Register under this name too (a-z 0-9 . _ -), so peers can use
    /// `connect --name`. This opens the listener to anyone who knows the
    /// name (and to the server); without --name, only the holder of the
    /// printed ticket can connect (it carries a one-time secret).
    #[arg(long)]
    pub(crate) name: Option<String>,
    #[command(flatten)]
    pub(crate) identity: Identity,
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("mode").required(true).args(["ticket", "via", "direct"])
))]
pub(crate) struct ConnectArgs {
    /// The ticket printed by `srudp listen` or `srudp expose`.
    pub(crate) ticket: Option<Ticket>,
    /// The rendezvous server (with --name): KEY@HOST:PORT.
    #[arg(long, requires = "name")]
    pub(crate) via: Option<RendezvousAddr>,
    /// The name the listener registered. This trusts the rendezvous
    /// server to map the name to the right key; add --peer-key to pin it.
    #[arg(long, requires = "via")]
    pub(crate) name: Option<String>,
    /// No rendezvous: the peer's address (it runs the same toward us).
    /// Both sides connect at once (simultaneous open) with the Noise IK
    /// pattern, so each proves its key; only --peer-key is accepted, nobody
    /// else may connect to us. Both have 30 s to start (the handshake
    /// timeout; the protocol's default is 10 s).
    #[arg(long, requires = "peer_key")]
    pub(crate) direct: Option<String>,
    /// The peer's public key: with --direct, who must answer; with
    /// --name, the key the name must map to (else nothing is sent).
    #[arg(long, conflicts_with = "ticket")]
    pub(crate) peer_key: Option<String>,
    /// Our secret key file (default: a new key for this run).
    #[arg(long)]
    pub(crate) key: Option<PathBuf>,
    /// The local UDP address (with --direct, default: the peer's port on
    /// every address, so both sides can run the same command).
    #[arg(long)]
    pub(crate) bind: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub(crate) struct ExposeArgs {
    /// The TCP service: tcp://HOST:PORT.
    pub(crate) target: TcpTarget,
    #[command(flatten)]
    pub(crate) registration: Registration,
    /// Register under this name too, so peers can use `forward --via --name`
    /// (anyone who knows the name may connect, unless --allow limits who).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Admit only this peer key (repeat for several); others are refused
    /// even with the ticket. Peers pass their key file with --key.
    #[arg(long = "allow", value_name = "KEY")]
    pub(crate) allow: Vec<srudp_tokio::PublicKey>,
    #[command(flatten)]
    pub(crate) identity: Identity,
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("peer").required(true).args(["ticket", "via"])
))]
pub(crate) struct ForwardArgs {
    /// The local TCP address to listen on, e.g. 127.0.0.1:2222.
    #[arg(long)]
    pub(crate) listen: SocketAddr,
    /// The ticket printed by `srudp expose`.
    pub(crate) ticket: Option<Ticket>,
    /// The rendezvous server (with --name): KEY@HOST:PORT.
    #[arg(long, requires = "name", conflicts_with = "ticket")]
    pub(crate) via: Option<RendezvousAddr>,
    /// The name `srudp expose --name` registered.
    #[arg(long, requires = "via")]
    pub(crate) name: Option<String>,
    /// Our secret key file (needed when the exposing side uses --allow).
    #[arg(long)]
    pub(crate) key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The files and folders to send (folders with everything inside;
    /// symbolic links and special files inside folders are skipped).
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) registration: Registration,
    #[command(flatten)]
    pub(crate) identity: Identity,
}

#[derive(Debug, Args)]
pub(crate) struct ReceiveArgs {
    /// The ticket printed by `srudp send`.
    pub(crate) ticket: Ticket,
    /// The folder to write into (created if missing; default: here).
    #[arg(long, default_value = ".")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) identity: Identity,
}
