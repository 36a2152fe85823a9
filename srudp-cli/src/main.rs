//! `srudp`: a rendezvous server, a netcat-like encrypted pipe between two
//! machines behind NATs, file transfer with progress, and a one-command
//! demo. See `srudp --help` and the README.

mod common;
mod demo;
mod keys;
mod pipe;
mod size;
mod transfer;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use common::Failure;

/// Encrypted, reliable byte streams between machines behind NATs, over UDP.
#[derive(Debug, Parser)]
#[command(name = "srudp", version, about, long_about = None)]
struct Cli {
    /// Log what happens on stderr (-v: info, -vv: debug, -vvv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a new secret key to a file (mode 0600) and print its public key.
    ///
    /// Example: `srudp keygen --out laptop.key` prints the public key that
    /// peers pass to `--peer-key`.
    Keygen {
        /// Where to write the secret key (refuses to overwrite).
        #[arg(long, default_value = "srudp.key")]
        out: PathBuf,
    },
    /// Run a rendezvous and relay server.
    ///
    /// Its first line on stdout is the string clients pass to `--via`
    /// (`KEY@HOST:PORT`); logs go to stderr. Example, on a VPS:
    /// `srudp rendezvous --bind 0.0.0.0:4433 --key rdv.key --second-port 4434 --advertise 198.51.100.7:4433`
    Rendezvous {
        /// The UDP address to listen on.
        #[arg(long)]
        bind: std::net::SocketAddr,
        /// The server's secret key file (default: a new key for this run).
        #[arg(long)]
        key: Option<PathBuf>,
        /// A second UDP port on the same address, for NAT behaviour tests.
        #[arg(long)]
        second_port: Option<u16>,
        /// The address clients reach (printed instead of the bound one).
        #[arg(long)]
        advertise: Option<String>,
    },
    /// Register at a rendezvous, print a ticket, wait for one peer, then
    /// pipe stdin to it and it to stdout.
    ///
    /// Example: `srudp listen --via KEY@198.51.100.7:4433 --name laptop < notes.txt`
    /// prints `ticket: TICKET` on stderr; the other side runs `srudp connect TICKET`.
    Listen {
        /// The rendezvous server, as printed by `srudp rendezvous`: KEY@HOST:PORT.
        #[arg(long)]
        via: String,
        /// Our secret key file (default: a new key for this run).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Register under this name too (a-z 0-9 . _ -), so peers can use
        /// `connect --name`. This opens the listener to anyone who knows the
        /// name (and to the server); without --name, only the holder of the
        /// printed ticket can connect (it carries a one-time secret).
        #[arg(long)]
        name: Option<String>,
        /// Also write the ticket, alone, to this file.
        #[arg(long)]
        ticket_file: Option<PathBuf>,
        /// The local UDP address (default: any address of the rendezvous' family).
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
    },
    /// Connect to a listener and pipe stdin to it and it to stdout.
    ///
    /// Examples: `srudp connect TICKET`; `srudp connect --via KEY@HOST:PORT --name laptop`;
    /// with no server, both sides at once:
    /// `srudp connect --direct 198.51.100.7:5000 --peer-key KEY --bind 0.0.0.0:5000 --key me.key`
    Connect {
        /// The ticket printed by `srudp listen`.
        ticket: Option<String>,
        /// The rendezvous server (with --name): KEY@HOST:PORT.
        #[arg(long, requires = "name", conflicts_with_all = ["ticket", "direct"])]
        via: Option<String>,
        /// The name the listener registered. This trusts the rendezvous
        /// server to map the name to the right key; add --peer-key to pin it.
        #[arg(long, requires = "via")]
        name: Option<String>,
        /// No rendezvous: the peer's address (it runs the same toward us).
        /// Both sides connect at once (simultaneous open) with the Noise IK
        /// pattern, so each proves its key; only --peer-key is accepted, nobody
        /// else may connect to us. Both have 30 s to start (the handshake
        /// timeout; the protocol's default is 10 s).
        #[arg(long, requires = "peer_key", conflicts_with = "ticket")]
        direct: Option<String>,
        /// The peer's public key: with --direct, who must answer; with
        /// --name, the key the name must map to (else nothing is sent).
        #[arg(long, conflicts_with = "ticket")]
        peer_key: Option<String>,
        /// Our secret key file (default: a new key for this run).
        #[arg(long)]
        key: Option<PathBuf>,
        /// The local UDP address (with --direct, default: the peer's port on
        /// every address, so both sides can run the same command).
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
    },
    /// Offer a file: register at a rendezvous, print a ticket, send the
    /// file to the first peer that runs `srudp receive TICKET`.
    ///
    /// Example: `srudp send photo.jpg --via KEY@198.51.100.7:4433`
    Send {
        /// The file to send.
        file: PathBuf,
        /// The rendezvous server: KEY@HOST:PORT.
        #[arg(long)]
        via: String,
        /// Our secret key file (default: a new key for this run).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Also write the ticket, alone, to this file.
        #[arg(long)]
        ticket_file: Option<PathBuf>,
        /// The local UDP address.
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
    },
    /// Receive the file offered with `srudp send`, checking its size and
    /// checksum; the file appears under its final name only when complete.
    ///
    /// Example: `srudp receive TICKET --out ~/Downloads/photo.jpg`
    Receive {
        /// The ticket printed by `srudp send`.
        ticket: String,
        /// Where to write the file (default: the sender's file name, here).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Our secret key file (default: a new key for this run).
        #[arg(long)]
        key: Option<PathBuf>,
        /// The local UDP address.
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
    },
    /// Print our public address as the rendezvous sees it, and how our NAT
    /// maps and filters.
    ///
    /// Example: `srudp nat-check --via KEY@198.51.100.7:4433` (the server
    /// needs `--second-port` for the mapping and filtering tests).
    NatCheck {
        /// The rendezvous server: KEY@HOST:PORT.
        #[arg(long)]
        via: String,
        /// The local UDP address.
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&Failure::from(e)),
    };
    let result = runtime.block_on(run(cli.command));
    // Whatever is left (stdin readers blocked in the OS) must not keep us.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &Failure) -> ExitCode {
    eprintln!("srudp: error: {e}");
    ExitCode::FAILURE
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Keygen { out } => keys::keygen(&out),
        Command::Rendezvous {
            bind,
            key,
            second_port,
            advertise,
        } => common::rendezvous(bind, key.as_deref(), second_port, advertise).await,
        Command::Listen {
            via,
            key,
            name,
            ticket_file,
            bind,
        } => pipe::listen(&via, key.as_deref(), name, ticket_file.as_deref(), bind).await,
        Command::Connect {
            ticket,
            via,
            name,
            direct,
            peer_key,
            key,
            bind,
        } => {
            if let Some(direct) = direct {
                // clap enforces `--direct` with `--peer-key`.
                let peer_key = peer_key.unwrap_or_default();
                pipe::connect_direct(&direct, &peer_key, key.as_deref(), bind).await
            } else if let (Some(via), Some(name)) = (via, name) {
                pipe::connect_by_name(&via, &name, peer_key.as_deref(), key.as_deref(), bind).await
            } else if let Some(ticket) = ticket {
                pipe::connect_ticket(&ticket, key.as_deref(), bind).await
            } else {
                Err(Failure::msg(
                    "connect needs a TICKET, --via RDV --name NAME, or --direct HOST:PORT --peer-key KEY",
                ))
            }
        }
        Command::Send {
            file,
            via,
            key,
            ticket_file,
            bind,
        } => transfer::send(&file, &via, key.as_deref(), ticket_file.as_deref(), bind).await,
        Command::Receive {
            ticket,
            out,
            key,
            bind,
        } => transfer::receive(&ticket, out, key.as_deref(), bind).await,
        Command::NatCheck { via, bind } => common::nat_check(&via, bind).await,
        Command::Demo { bytes } => demo::run(bytes).await,
    }
}
