//! How a client reaches its server's stream carrier (spec §12.6): straight
//! over TCP or through an HTTP CONNECT proxy, with or without TLS. Plain
//! data for the adapter that does the IO; the proxy URL's parser and the
//! `NO_PROXY` rule live here because they are pure.

use std::fmt;
use std::str::FromStr;

/// How the adapter opens the stream carrier. The default is a plain TCP
/// connection straight to the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamTransport {
    /// Open a TLS session on the connection before the first frame (the
    /// server's address says `/tls:`, spec §3.2). TLS is camouflage for
    /// firewalls that let only TLS out, not security: the client accepts
    /// any certificate, since Noise inside authenticates the server's key.
    pub tls: bool,
    /// The server's host name as the user gave it, when it is a name (not
    /// an IP address): the TLS server name (SNI), and what a proxy is
    /// asked to connect to.
    pub host_name: Option<String>,
    /// Connect through this HTTP proxy (`CONNECT`), not straight.
    pub proxy: Option<HttpProxy>,
}

/// An HTTP proxy that tunnels TCP with `CONNECT` (RFC 9110 §9.3.6), as
/// `http://[USER:PASSWORD@]HOST:PORT` names it (the form of `HTTPS_PROXY`).
/// `Display` writes the URL without the password.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpProxy {
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

/// Why a text is not an HTTP proxy URL. One line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpProxyError {
    /// A scheme other than `http://` (a proxy reached over TLS is not
    /// supported).
    #[error("invalid proxy URL: expected http://[USER:PASSWORD@]HOST:PORT, found scheme {0:?}")]
    Scheme(String),
    /// No host.
    #[error("invalid proxy URL: the host is empty")]
    EmptyHost,
    /// A character that has no place in a host.
    #[error("invalid proxy URL: character {0:?} in the host")]
    BadHostCharacter(char),
    /// The port is not a number from 1 to 65535.
    #[error("invalid proxy URL: port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// A path or query after the port (a proxy URL has none but `/`).
    #[error("invalid proxy URL: nothing may follow HOST:PORT, found {0:?}")]
    TrailingText(String),
    /// A user name without `:PASSWORD`, or a control character in either.
    #[error("invalid proxy URL: credentials must be USER:PASSWORD without control characters")]
    BadCredentials,
    /// Longer than 1024 bytes.
    #[error("invalid proxy URL: longer than 1024 bytes")]
    TooLong,
}

/// Longest proxy URL read.
const MAX_PROXY_URL_LEN: usize = 1024;

impl HttpProxy {
    /// The proxy's host (a name or an IP address, IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port (80 when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `USER` and `PASSWORD`, for basic authentication, when the URL has them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// `HOST:PORT` for connecting (IPv6 in brackets).
    pub fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
}

/// `host:port`, IPv6 in brackets: what `CONNECT` names and sockets resolve.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl fmt::Debug for HttpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpProxy({self})")
    }
}

impl fmt::Display for HttpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.credentials {
            Some((user, _)) => write!(f, "http://{user}:***@{}", self.authority()),
            None => write!(f, "http://{}", self.authority()),
        }
    }
}

impl FromStr for HttpProxy {
    type Err = HttpProxyError;

    /// `http://[USER:PASSWORD@]HOST[:PORT][/]`; a text without a scheme is
    /// taken as `http://` (as curl does with `HTTPS_PROXY=host:3128`). The
    /// port defaults to 80. User and password are taken as written (no
    /// percent-decoding).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() > MAX_PROXY_URL_LEN {
            return Err(HttpProxyError::TooLong);
        }
        let rest = match s.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => return Err(HttpProxyError::Scheme(scheme.into())),
            None => s,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (credentials, host_port) = match rest.rsplit_once('@') {
            Some((userinfo, host_port)) => {
                let (user, password) = userinfo
                    .split_once(':')
                    .ok_or(HttpProxyError::BadCredentials)?;
                if userinfo.chars().any(char::is_control) {
                    return Err(HttpProxyError::BadCredentials);
                }
                (Some((user.to_string(), password.to_string())), host_port)
            }
            None => (None, rest),
        };
        if let Some(i) = host_port.find(['/', '?', '#']) {
            return Err(HttpProxyError::TrailingText(host_port[i..].into()));
        }
        let (host, port) = match host_port.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or(HttpProxyError::BadHostCharacter('['))?;
                if host.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(HttpProxyError::BadHostCharacter('['));
                }
                match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if after.is_empty() => (host, None),
                    None => return Err(HttpProxyError::BadPort(after.into())),
                }
            }
            None => match host_port.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            },
        };
        if host.is_empty() {
            return Err(HttpProxyError::EmptyHost);
        }
        if !host.contains(':') {
            if let Some(c) = host
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
            {
                return Err(HttpProxyError::BadHostCharacter(c));
            }
        }
        let port = match port {
            None => 80,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u16>() {
                    Ok(0) | Err(_) => return Err(HttpProxyError::BadPort(p.into())),
                    Ok(port) => port,
                }
            }
            Some(p) => return Err(HttpProxyError::BadPort(p.into())),
        };
        Ok(HttpProxy {
            host: host.to_ascii_lowercase(),
            port,
            credentials,
        })
    }
}

/// Whether `NO_PROXY`'s value exempts `host` from the proxy, as curl reads
/// it: a comma- (or space-) separated list of host names and IP
/// addresses; `*` exempts every host; an entry matches the host itself and,
/// with or without a leading `.`, every name under it. Case-insensitive; a
/// port on an entry is ignored; CIDR ranges are not supported.
pub fn no_proxy_matches(no_proxy: &str, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    no_proxy
        .split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = strip_entry_port(entry);
            let entry = entry
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_end_matches('.')
                .to_ascii_lowercase();
            !entry.is_empty()
                && (host == entry
                    || host
                        .strip_suffix(entry.as_str())
                        .is_some_and(|head| head.ends_with('.')))
        })
}

/// An entry without its `:PORT` (IPv6 entries in brackets keep theirs off).
fn strip_entry_port(entry: &str) -> &str {
    if let Some(bracketed) = entry.strip_prefix('[') {
        return bracketed.split_once(']').map_or(bracketed, |(h, _)| h);
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => entry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(s: &str) -> Result<HttpProxy, HttpProxyError> {
        s.parse()
    }

    #[test]
    fn a_proxy_url_gives_its_host_port_and_credentials() {
        let p = proxy("http://alice:s3cret@proxy.example.org:3128").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.example.org", 3128));
        assert_eq!(p.credentials(), Some(("alice", "s3cret")));
        assert_eq!(p.to_string(), "http://alice:***@proxy.example.org:3128");
        assert!(
            !format!("{p:?}").contains("s3cret"),
            "the password is never printed"
        );
        let p = proxy("HTTP://192.0.2.8:8080/").unwrap();
        assert_eq!(
            (p.host(), p.port(), p.credentials()),
            ("192.0.2.8", 8080, None)
        );
        let p = proxy("[2001:db8::3]:3128").unwrap();
        assert_eq!((p.host(), p.port()), ("2001:db8::3", 3128));
        assert_eq!(p.authority(), "[2001:db8::3]:3128");
        assert_eq!(proxy("http://proxy").unwrap().port(), 80);
        // A password may contain ':' and '@' is split at the last one.
        let p = proxy("http://u:a:b@c@h:1").unwrap();
        assert_eq!(p.credentials(), Some(("u", "a:b@c")));
    }

    #[test]
    fn each_malformed_proxy_url_gets_its_error() {
        use HttpProxyError as E;
        for (text, err) in [
            ("https://proxy:443", E::Scheme("https".into())),
            ("socks5://proxy:1080", E::Scheme("socks5".into())),
            ("http://:3128", E::EmptyHost),
            ("http://pro xy:3128", E::BadHostCharacter(' ')),
            ("http://proxy:0", E::BadPort("0".into())),
            ("http://proxy:99999", E::BadPort("99999".into())),
            ("http://proxy:", E::BadPort("".into())),
            ("http://proxy:3128/path", E::TrailingText("/path".into())),
            ("http://alice@proxy:3128", E::BadCredentials),
            ("http://a:b\r\nX: y@proxy:3128", E::BadCredentials),
            ("http://[2001:db8::g]:1", E::BadHostCharacter('[')),
        ] {
            assert_eq!(proxy(text), Err(err), "{text:?}");
        }
        assert_eq!(proxy(&"a".repeat(2000)), Err(E::TooLong));
    }

    #[test]
    fn no_proxy_exempts_hosts_and_the_names_under_them() {
        let list = "localhost, .corp.example,192.0.2.1 example.net:443,[2001:db8::1]";
        for (host, exempt) in [
            ("localhost", true),
            ("corp.example", true),
            ("rdv.corp.example", true),
            ("evilcorp.example", false),
            ("192.0.2.1", true),
            ("192.0.2.10", false),
            ("example.net", true),
            ("www.EXAMPLE.net", true),
            ("2001:db8::1", true),
            ("rdv.example.org", false),
        ] {
            assert_eq!(no_proxy_matches(list, host), exempt, "{host}");
        }
        assert!(no_proxy_matches("*", "anything.example"));
        assert!(!no_proxy_matches("", "anything.example"));
        assert!(!no_proxy_matches(" , ,", "anything.example"));
    }
}
