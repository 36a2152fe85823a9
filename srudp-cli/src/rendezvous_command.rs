//! `srudp rendezvous`: a rendezvous and relay server until stopped.

use std::net::SocketAddr;
use std::path::Path;

use srudp_tokio::rendezvous::{RendezvousAddr, ServerConfig};
use srudp_tokio::{EndpointConfig, RendezvousServer};

use crate::failure::Failure;
use crate::keys;
use crate::resolve::resolve;
use crate::signals::StopSignals;

/// `srudp rendezvous`.
pub(crate) async fn rendezvous(
    bind: SocketAddr,
    key: Option<&Path>,
    second_port: Option<u16>,
    advertise: Option<String>,
) -> Result<(), Failure> {
    let keypair = keys::load_or_generate(key)?;
    let mut config = ServerConfig::default();
    if let (Some(adv), Some(port)) = (&advertise, second_port) {
        let adv = resolve(adv).await?;
        config.alt_address = Some(SocketAddr::new(adv.ip(), port));
    }
    let server = RendezvousServer::bind(bind, EndpointConfig::new(keypair), config, second_port)
        .map_err(|e| Failure::msg(format!("cannot bind {bind}: {e}")))?;
    // Printed through the parser clients use, so `--via` takes it as is.
    let shown = match &advertise {
        Some(adv) => format!("{}@{adv}", server.public_key())
            .parse::<RendezvousAddr>()
            .map_err(|e| Failure::msg(format!("--advertise {adv:?}: {e}")))?,
        None => RendezvousAddr::from_socket_addr(server.public_key(), server.local_addr())
            .map_err(|e| Failure::msg(format!("cannot show the bound address: {e}")))?,
    };
    println!("{shown}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    eprintln!(
        "rendezvous server on {}{}; clients use --via {}",
        server.local_addr(),
        server
            .alt_addr()
            .map(|a| format!(" (NAT tests on {a})"))
            .unwrap_or_default(),
        shown
    );
    StopSignals::install()?.next().await;
    eprintln!("stopping");
    server.shutdown().await;
    Ok(())
}
