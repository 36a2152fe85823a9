//! `srudp rendezvous`: a rendezvous and relay server until stopped.

use std::net::SocketAddr;

use srudp_tokio::rendezvous::{
    CarrierTls, RateLimit, RendezvousAddr, ServerConfig, StreamCarrierConfig,
};
use srudp_tokio::{EndpointConfig, RendezvousServer};

use crate::cli::RendezvousArgs;
use crate::failure::Failure;
use crate::keys;
use crate::resolve::resolve;
use crate::signals::StopSignals;

/// `srudp rendezvous`.
pub(crate) async fn rendezvous(args: RendezvousArgs) -> Result<(), Failure> {
    let RendezvousArgs {
        bind,
        key,
        second_port,
        advertise,
        tcp_port,
        tls,
        tls_cert,
        tls_key,
        relay_rate,
    } = args;
    let keypair = keys::load_or_generate(key.as_deref())?;
    let mut config = ServerConfig::default();
    relay_limits(&mut config, relay_rate)?;
    if let (Some(adv), Some(port)) = (&advertise, second_port) {
        let adv = resolve(adv).await?;
        config.alt_address = Some(SocketAddr::new(adv.ip(), port));
    }
    // The address clients are told (its host names the TLS certificate).
    let shown_host = |local: SocketAddr| -> Result<RendezvousAddr, Failure> {
        match &advertise {
            Some(adv) => format!("{}@{adv}", keypair.public())
                .parse::<RendezvousAddr>()
                .map_err(|e| Failure::msg(format!("--advertise {adv:?}: {e}"))),
            None => RendezvousAddr::from_socket_addr(keypair.public(), local)
                .map_err(|e| Failure::msg(format!("cannot show the bound address: {e}"))),
        }
    };
    let carrier_tls = match (tls, tls_cert, tls_key) {
        (false, ..) => None,
        (true, Some(cert), Some(key)) => {
            Some(CarrierTls::from_pem_files(&cert, &key).map_err(|e| Failure::msg(e.to_string()))?)
        }
        (true, _, _) => {
            // Named for the advertised host, else the bound IP address.
            let host = match &advertise {
                Some(_) => shown_host(bind)?.host().to_string(),
                None => bind.ip().to_string(),
            };
            Some(CarrierTls::self_signed(&[host]).map_err(|e| Failure::msg(e.to_string()))?)
        }
    };
    let endpoint = EndpointConfig::new(keypair.clone());
    let server = match tcp_port {
        Some(port) => {
            let mut carrier = StreamCarrierConfig::new(port);
            carrier.tls = carrier_tls;
            RendezvousServer::bind_with_stream_carrier(bind, endpoint, config, second_port, carrier)
        }
        None => RendezvousServer::bind(bind, endpoint, config, second_port),
    }
    .map_err(|e| Failure::msg(format!("cannot bind {bind}: {e}")))?;
    // Printed through the parser clients use, so `--via` takes it as is.
    let shown = shown_host(server.local_addr())?
        .with_tcp_port(server.tcp_addr().map(|a| a.port()))
        .map_err(|e| Failure::msg(format!("cannot show the TCP port: {e}")))?
        .with_tls(tls);
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
            .map(|a| format!(", {} on {a}", if tls { "TLS" } else { "TCP" }))
            .unwrap_or_default(),
        shown
    );
    StopSignals::install()?.next().await;
    eprintln!("stopping");
    server.shutdown().await;
    Ok(())
}

/// `--relay-rate`: `rate` bytes per second for one pair, with a burst of
/// a quarter second of it (at least the default 512 KiB), and twice both
/// for one client's pairs together (the defaults' proportions).
fn relay_limits(config: &mut ServerConfig, rate: u64) -> Result<(), Failure> {
    if rate < 64 * 1024 {
        return Err(Failure::msg(format!(
            "--relay-rate {rate}: at least 64KiB per second (a relayed connection needs some)"
        )));
    }
    let burst = (rate / 4).max(512 << 10);
    config.relay_pair_rate = RateLimit::new(rate, burst);
    config.relay_client_rate = RateLimit::new(rate.saturating_mul(2), burst.saturating_mul(2));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_rate_sets_both_limits_in_the_defaults_proportions() {
        let mut config = ServerConfig::default();
        relay_limits(&mut config, 2 << 20).unwrap();
        let defaults = ServerConfig::default();
        assert_eq!(config.relay_pair_rate, defaults.relay_pair_rate);
        assert_eq!(config.relay_client_rate.per_second, 4 << 20);
        relay_limits(&mut config, 1 << 30).unwrap();
        assert_eq!(config.relay_pair_rate, RateLimit::new(1 << 30, 1 << 28));
        assert!(relay_limits(&mut config, 1000).is_err());
    }
}
