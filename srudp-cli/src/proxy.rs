//! Which HTTP proxy reaches a rendezvous server's TCP port (spec §12.6):
//! `--proxy URL`, else `HTTPS_PROXY` (or `https_proxy`); a host that
//! `NO_PROXY` (or `no_proxy`) names goes straight, whichever way the proxy
//! was given. Read once at start: a malformed URL is a one-line error then,
//! not a silent direct connection later.

use std::sync::OnceLock;

use srudp_tokio::rendezvous::HttpProxy;
use srudp_tokio::srudp_proto::stream_carrier::no_proxy_matches;

use crate::failure::Failure;

/// The proxy, and the `NO_PROXY` list, of this run.
#[derive(Debug, Default)]
struct ProxySettings {
    proxy: Option<HttpProxy>,
    no_proxy: String,
}

static SETTINGS: OnceLock<ProxySettings> = OnceLock::new();

/// Settles this run's proxy from the flag and the environment.
pub(crate) fn init(flag: Option<HttpProxy>) -> Result<(), Failure> {
    let env = |names: [&str; 2]| names.iter().find_map(|n| std::env::var(n).ok());
    let proxy = match flag {
        Some(p) => Some(p),
        None => match env(["HTTPS_PROXY", "https_proxy"]).filter(|v| !v.trim().is_empty()) {
            Some(url) => Some(
                url.parse::<HttpProxy>()
                    .map_err(|e| Failure::msg(format!("HTTPS_PROXY: {e}")))?,
            ),
            None => None,
        },
    };
    let no_proxy = env(["NO_PROXY", "no_proxy"]).unwrap_or_default();
    let _ = SETTINGS.set(ProxySettings { proxy, no_proxy });
    Ok(())
}

/// The proxy to reach `host` through, if any.
pub(crate) fn for_host(host: &str) -> Option<HttpProxy> {
    let settings = SETTINGS.get()?;
    let proxy = settings.proxy.as_ref()?;
    (!no_proxy_matches(&settings.no_proxy, host)).then(|| proxy.clone())
}
