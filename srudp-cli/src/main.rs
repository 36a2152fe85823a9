//! `srudp`: a rendezvous server, a netcat-like encrypted pipe between two
//! machines behind NATs, TCP services exposed and forwarded over srudp,
//! file and folder transfer with resume, and a one-command demo. See
//! `srudp --help` and the README.

mod cli;
mod congestion_choice;
mod demo;
mod endpoint_setup;
mod exit_status;
mod failure;
mod keys;
mod nat_check;
mod pipe;
mod progress;
mod proxy;
mod rendezvous_command;
mod reports;
mod resolve;
mod signals;
mod size;
mod splice;
mod transfer;
mod tunnel;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

use cli::{Cli, Command};
use exit_status::ExitStatus;
use failure::Failure;
use signals::StopSignals;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_logging(cli.verbose);
    if let Err(e) = proxy::init(cli.proxy) {
        return fail(&e);
    }
    endpoint_setup::set_port_mapping(!cli.no_port_mapping);
    congestion_choice::choose(cli.congestion);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&Failure::from(e)),
    };
    let result = runtime.block_on(run_until_stopped(cli.command));
    // Whatever is left (stdin readers blocked in the OS) must not keep us.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => fail(&e),
    }
}

/// Help and version go to stdout as clap writes them; a usage error is one
/// line on stderr and exit status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    {
        let _ = e.print();
        return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
    }
    let rendered = e.render().to_string();
    let what: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let what = what.join(" ");
    let what = what.trim_start_matches("error: ");
    eprintln!("srudp: error: {what} (see srudp --help)");
    ExitCode::from(2)
}

fn fail(e: &Failure) -> ExitCode {
    if e.status() != ExitStatus::Interrupted {
        eprintln!("{}", e.line());
    }
    e.status().into()
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

/// Runs the command; the first SIGINT, SIGTERM or SIGHUP tells every peer
/// and ends it with status 130 (see [`signals`]).
async fn run_until_stopped(command: Command) -> Result<(), Failure> {
    if matches!(command, Command::Rendezvous(_)) {
        // The server stops by itself on a signal, telling its clients.
        return run(command).await;
    }
    let mut signals = StopSignals::install()?;
    // Polled by reference: the command's endpoints must live until the
    // signal's CLOSE went out.
    let command = run(command);
    tokio::pin!(command);
    tokio::select! {
        result = &mut command => result,
        () = signals.next() => {
            signals.close_everything().await;
            Err(Failure::interrupted())
        }
    }
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Keygen { out } => keys::keygen(&out),
        Command::Rendezvous(args) => rendezvous_command::rendezvous(args).await,
        Command::Listen(args) => pipe::listen(args).await,
        Command::Connect(args) => pipe::connect(args).await,
        Command::Expose(args) => tunnel::expose(args).await,
        Command::Forward(args) => tunnel::forward(args).await,
        Command::Send(args) => transfer::send(args).await,
        Command::Receive(args) => transfer::receive(args).await,
        Command::NatCheck { via, bind } => nat_check::nat_check(&via, bind).await,
        Command::Demo { bytes } => demo::run(bytes).await,
    }
}
