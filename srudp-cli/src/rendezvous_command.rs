//! `srudp rendezvous`: a rendezvous and relay server until stopped.

use std::net::SocketAddr;
use std::path::Path;

use srudp_tokio::rendezvous::{RendezvousAddr, ServerConfig, StreamCarrierConfig};
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
    tcp_port: Option<u16>,
) -> Result<(), Failure> {
    let keypair = keys::load_or_generate(key)?;
    let mut config = ServerConfig::default();
    if let (Some(adv), Some(port)) = (&advertise, second_port) {
        let adv = resolve(adv).await?;
        config.alt_address = Some(SocketAddr::new(adv.ip(), port));
    }
    let endpoint = EndpointConfig::new(keypair);
    let server = match tcp_port {
        Some(port) => RendezvousServer::bind_with_stream_carrier(
            bind,
            endpoint,
            config,
            second_port,
            StreamCarrierConfig::new(port),
        ),
        None => RendezvousServer::bind(bind, endpoint, config, second_port),
    }
    .map_err(|e| Failure::msg(format!("cannot bind {bind}: {e}")))?;
    // Printed through the parser clients use, so `--via` takes it as is.
    let shown = match &advertise {
        Some(adv) => format!("{}@{adv}", server.public_key())
            .parse::<RendezvousAddr>()
            .map_err(|e| Failure::msg(format!("--advertise {adv:?}: {e}")))?,
        None => RendezvousAddr::from_socket_addr(server.public_key(), server.local_addr())
            .map_err(|e| Failure::msg(format!("cannot show the bound address: {e}")))?,
    };
    let shown = shown
        .with_tcp_port(server.tcp_addr().map(|a| a.port()))
        .map_err(|e| Failure::msg(format!("cannot show the TCP port: {e}")))?;
    println!("{shown}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    eprintln!(
        "rendezvous server on {}{}{}; clients use --via {}",
        server.local_addr(),
        server
            .alt_addr()
            .map(|a| format!(" (NAT tests on {a})"))
            .unwrap_or_default(),
        server
            .tcp_addr()
            .map(|a| format!(", TCP on {a}"))
            .unwrap_or_default(),
        shown
    );
    StopSignals::install()?.next().await;
    eprintln!("stopping");
    server.shutdown().await;
    Ok(())
}
