//! The text that names a rendezvous server: `KEY@HOST:PORT`, or
//! `KEY@HOST:PORT/tcp:TCPPORT` for a server that also listens on TCP, or
//! `KEY@HOST:PORT/tls:TCPPORT` for one that speaks TLS there (spec §3.2,
//! §12), what `srudp rendezvous` prints, what `--via` takes and what a
//! ticket carries. The key is the server's static public key in the text of
//! §3.1; the host is a DNS name or an IP address (IPv6 in brackets).
//!
//! Parsing checks the form and never resolves: host names are resolved by
//! the caller, with its runtime's resolver (`(addr.host(), addr.port())` is
//! what `std::net::ToSocketAddrs` and `tokio::net::lookup_host` take).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::keys::{KeyParseError, PublicKey};

/// Longest rendezvous address text, in bytes: it must fit a ticket's
/// one-byte length field (spec §11.10).
pub const MAX_RENDEZVOUS_ADDR_LEN: usize = 255;

/// A rendezvous server as users name it: its key, its host and UDP port,
/// not yet resolved, and the TCP port of its stream carrier (spec §12) if
/// it has one. `Display` writes `KEY@HOST:PORT`, followed by `/tcp:TCPPORT`
/// with a TCP port, or `/tls:TCPPORT` when the server wraps its stream
/// carrier in TLS (spec §12.6) (the key in lowercase, an IPv6 host in brackets);
/// `FromStr` reads it back, ignoring whitespace around the whole text.
///
/// ```
/// use srudp_proto::rendezvous::RendezvousAddr;
///
/// let text = "quqpacmjgctvi5elpxolipxxlig36oqney4bv5hlusuy5ku3jzva@rdv.example.org:4433";
/// let addr: RendezvousAddr = text.parse().unwrap();
/// assert_eq!(addr.host(), "rdv.example.org");
/// assert_eq!(addr.port(), 4433);
/// assert_eq!(addr.socket_addr(), None, "a host name is resolved by the caller");
/// assert_eq!(addr.to_string(), text);
/// assert_eq!(addr.tcp_port(), None);
///
/// let with_tcp: RendezvousAddr = format!("{text}/tcp:443").parse().unwrap();
/// assert_eq!((with_tcp.port(), with_tcp.tcp_port()), (4433, Some(443)));
/// assert!(!with_tcp.tls());
///
/// let with_tls: RendezvousAddr = format!("{text}/tls:443").parse().unwrap();
/// assert_eq!((with_tls.tcp_port(), with_tls.tls()), (Some(443), true));
///
/// let err = "rdv.example.org:4433".parse::<RendezvousAddr>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid rendezvous address: expected KEY@HOST:PORT (as `srudp rendezvous` prints it), found no '@'"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RendezvousAddr {
    key: PublicKey,
    /// A DNS name or an IP address, IPv6 without its brackets.
    host: String,
    port: u16,
    /// The TCP port of the server's stream carrier, if it has one.
    tcp_port: Option<u16>,
    /// The stream carrier is wrapped in TLS (`/tls:`); only with a TCP port.
    tls: bool,
}

/// Why a text is not a rendezvous address `KEY@HOST:PORT`. Each message is
/// one line that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RendezvousAddrError {
    /// No `@` between the key and the host.
    #[error("invalid rendezvous address: expected KEY@HOST:PORT (as `srudp rendezvous` prints it), found no '@'")]
    MissingAt,
    /// The text before the `@` is not a key (spec §3.1).
    #[error("invalid rendezvous address: the key before '@' is invalid: {0}")]
    Key(KeyParseError),
    /// No `:PORT` after the host.
    #[error("invalid rendezvous address: expected HOST:PORT after '@', found no port")]
    MissingPort,
    /// The port is not a number from 1 to 65535.
    #[error("invalid rendezvous address: port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// Nothing between the `@` and the `:PORT`.
    #[error("invalid rendezvous address: the host is empty")]
    EmptyHost,
    /// A character a host name does not have.
    #[error("invalid rendezvous address: character {0:?} in the host (expected a-z, 0-9, '.', '-', '_', or an IPv6 address in brackets)")]
    BadHostCharacter(char),
    /// An IPv6 address without brackets: its colons would be ambiguous
    /// with the port's.
    #[error("invalid rendezvous address: an IPv6 address goes in brackets, KEY@[ADDRESS]:PORT")]
    UnbracketedIpv6,
    /// Brackets around something that is not an IPv6 address.
    #[error("invalid rendezvous address: {0:?} in brackets is not an IPv6 address")]
    BadIpv6(String),
    /// Longer than [`MAX_RENDEZVOUS_ADDR_LEN`] bytes.
    #[error("invalid rendezvous address: {0} bytes long, at most 255")]
    TooLong(usize),
    /// Something after the `/` other than `tcp:PORT` or `tls:PORT`.
    #[error("invalid rendezvous address: expected /tcp:PORT or /tls:PORT after KEY@HOST:PORT, found /{0}")]
    UnknownCarrier(String),
    /// The TCP port after `/tcp:` or `/tls:` is not a number from 1 to 65535.
    #[error("invalid rendezvous address: TCP port {0:?} is not a number from 1 to 65535")]
    BadTcpPort(String),
}

impl RendezvousAddr {
    /// The address of the server with key `key` at `host` (a DNS name, an
    /// IPv4 address or an IPv6 address without brackets) and `port`.
    pub fn new(key: PublicKey, host: &str, port: u16) -> Result<Self, RendezvousAddrError> {
        check_host(host)?;
        if port == 0 {
            return Err(RendezvousAddrError::BadPort("0".into()));
        }
        RendezvousAddr {
            key,
            host: host.to_string(),
            port,
            tcp_port: None,
            tls: false,
        }
        .checked_len()
    }

    /// The same server, also reachable over TCP at `tcp_port` on the same
    /// host (spec §12); `None` for UDP only. Port 0 is refused, and so is a
    /// text that would grow beyond [`MAX_RENDEZVOUS_ADDR_LEN`]. `None`
    /// also drops [`tls`](Self::tls).
    pub fn with_tcp_port(self, tcp_port: Option<u16>) -> Result<Self, RendezvousAddrError> {
        if tcp_port == Some(0) {
            return Err(RendezvousAddrError::BadTcpPort("0".into()));
        }
        let tls = self.tls && tcp_port.is_some();
        RendezvousAddr {
            tcp_port,
            tls,
            ..self
        }
        .checked_len()
    }

    /// The same server, whose stream carrier is (`true`) or is not wrapped
    /// in TLS (spec §12.6): `/tls:TCPPORT` instead of `/tcp:TCPPORT`. Set
    /// the TCP port first: without one there is no TLS, and `true` is
    /// ignored. The text's length does not change.
    pub fn with_tls(self, tls: bool) -> Self {
        let tls = tls && self.tcp_port.is_some();
        RendezvousAddr { tls, ..self }
    }

    fn checked_len(self) -> Result<Self, RendezvousAddrError> {
        match self.text_len() {
            len if len > MAX_RENDEZVOUS_ADDR_LEN => Err(RendezvousAddrError::TooLong(len)),
            _ => Ok(self),
        }
    }

    /// The address of the server with key `key` at the socket address
    /// `addr` (which needs no resolving). Port 0 is refused.
    pub fn from_socket_addr(key: PublicKey, addr: SocketAddr) -> Result<Self, RendezvousAddrError> {
        RendezvousAddr::new(key, &addr.ip().to_string(), addr.port())
    }

    /// The server's static public key.
    pub fn key(&self) -> PublicKey {
        self.key
    }

    /// The host as given: a DNS name, or an IP address (IPv6 without
    /// brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The server's UDP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TCP port of the server's stream carrier (spec §12), if the
    /// server has one: where a client whose UDP goes unanswered falls back.
    pub fn tcp_port(&self) -> Option<u16> {
        self.tcp_port
    }

    /// Whether the server's stream carrier speaks TLS (`/tls:TCPPORT`,
    /// spec §12.6): a client then opens a TLS session on the TCP
    /// connection before the first frame. Always `false` without a TCP port.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The socket address when the host is an IP address; `None` for a
    /// host name, which the caller resolves.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }

    /// The stream carrier's socket address, when the server has a TCP port
    /// and the host is an IP address.
    pub fn tcp_socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.tcp_port?))
    }

    fn is_ipv6(&self) -> bool {
        self.host.contains(':')
    }

    /// Length of the text form, in bytes.
    fn text_len(&self) -> usize {
        let brackets = if self.is_ipv6() { 2 } else { 0 };
        let port_digits = self.port.to_string().len();
        let tcp = self
            .tcp_port
            .map_or(0, |p| TCP_SUFFIX.len() + p.to_string().len());
        crate::keys::KEY_TEXT_LEN + 1 + self.host.len() + brackets + 1 + port_digits + tcp
    }
}

/// What introduces the TCP port: `KEY@HOST:PORT/tcp:TCPPORT`.
const TCP_SUFFIX: &str = "/tcp:";
/// What introduces the TCP port of a TLS carrier: `KEY@HOST:PORT/tls:TCPPORT`
/// (as long as [`TCP_SUFFIX`]).
const TLS_SUFFIX: &str = "/tls:";

/// A host as the text form allows it: an IPv6 address (given without
/// brackets), or letters, digits, `.`, `-` and `_` (DNS names, IPv4).
fn check_host(host: &str) -> Result<(), RendezvousAddrError> {
    if host.is_empty() {
        return Err(RendezvousAddrError::EmptyHost);
    }
    if host.contains(':') {
        return match host.parse::<Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(RendezvousAddrError::BadIpv6(host.into())),
        };
    }
    match host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        Some(c) => Err(RendezvousAddrError::BadHostCharacter(c)),
        None => Ok(()),
    }
}

impl FromStr for RendezvousAddr {
    type Err = RendezvousAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() > MAX_RENDEZVOUS_ADDR_LEN {
            return Err(RendezvousAddrError::TooLong(s.len()));
        }
        let (key, host_port) = s.split_once('@').ok_or(RendezvousAddrError::MissingAt)?;
        let key: PublicKey = key.parse().map_err(RendezvousAddrError::Key)?;
        // No host or port has a '/': the first one starts the carriers.
        let (host_port, tcp_port, tls) = match host_port.split_once('/') {
            None => (host_port, None, false),
            Some((host_port, carrier)) => {
                let (port, tls) = match (
                    strip_prefix_ignore_case(carrier, "tcp:"),
                    strip_prefix_ignore_case(carrier, "tls:"),
                ) {
                    (Some(port), _) => (port, false),
                    (None, Some(port)) => (port, true),
                    (None, None) => {
                        return Err(RendezvousAddrError::UnknownCarrier(carrier.into()))
                    }
                };
                let port =
                    parse_port(port).map_err(|_| RendezvousAddrError::BadTcpPort(port.into()))?;
                (host_port, Some(port), tls)
            }
        };
        let (host, port) = match host_port.strip_prefix('[') {
            Some(bracketed) => {
                let (host, rest) = bracketed
                    .split_once(']')
                    .ok_or_else(|| RendezvousAddrError::BadIpv6(bracketed.into()))?;
                if !host.contains(':') {
                    return Err(RendezvousAddrError::BadIpv6(host.into()));
                }
                let port = match rest.strip_prefix(':') {
                    Some(port) => port,
                    None if rest.is_empty() => return Err(RendezvousAddrError::MissingPort),
                    None => return Err(RendezvousAddrError::BadPort(rest.into())),
                };
                (host, port)
            }
            None => {
                let (host, port) = host_port
                    .rsplit_once(':')
                    .ok_or(RendezvousAddrError::MissingPort)?;
                if host.contains(':') {
                    return Err(RendezvousAddrError::UnbracketedIpv6);
                }
                (host, port)
            }
        };
        let port = parse_port(port)?;
        Ok(RendezvousAddr::new(key, host, port)?
            .with_tcp_port(tcp_port)?
            .with_tls(tls))
    }
}

/// `s` without `prefix` (ASCII, in any case), if it starts with it.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// A decimal port from 1 to 65535 (no sign, no spaces).
fn parse_port(port: &str) -> Result<u16, RendezvousAddrError> {
    let bad = || RendezvousAddrError::BadPort(port.into());
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(p) => Ok(p),
    }
}

impl fmt::Display for RendezvousAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ipv6() {
            write!(f, "{}@[{}]:{}", self.key, self.host, self.port)?;
        } else {
            write!(f, "{}@{}:{}", self.key, self.host, self.port)?;
        }
        match self.tcp_port {
            Some(tcp) if self.tls => write!(f, "{TLS_SUFFIX}{tcp}"),
            Some(tcp) => write!(f, "{TCP_SUFFIX}{tcp}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// RFC 7748 §6.1's Alice, the spec's example key.
    const KEY: &str = "quqpacmjgctvi5elpxolipxxlig36oqney4bv5hlusuy5ku3jzva";

    fn parse(s: &str) -> Result<RendezvousAddr, RendezvousAddrError> {
        s.parse()
    }

    #[test]
    fn what_the_server_prints_parses_back_for_ipv4_ipv6_and_host_names() {
        for (text, host, port, socket) in [
            (
                format!("{KEY}@192.0.2.1:4433"),
                "192.0.2.1",
                4433,
                Some("192.0.2.1:4433"),
            ),
            (
                format!("{KEY}@[2001:db8::1]:443"),
                "2001:db8::1",
                443,
                Some("[2001:db8::1]:443"),
            ),
            (
                format!("{KEY}@rdv.example.org:65535"),
                "rdv.example.org",
                65535,
                None,
            ),
            (format!("{KEY}@localhost:1"), "localhost", 1, None),
        ] {
            let addr = parse(&text).unwrap();
            assert_eq!(addr.key(), KEY.parse().unwrap());
            assert_eq!((addr.host(), addr.port()), (host, port), "{text}");
            assert_eq!(addr.socket_addr(), socket.map(|s| s.parse().unwrap()));
            assert_eq!(addr.to_string(), text, "Display writes the same text");
        }
    }

    #[test]
    fn a_tcp_port_follows_as_slash_tcp_and_old_strings_keep_their_meaning() {
        for (text, host, port, tcp, tcp_socket) in [
            (
                format!("{KEY}@192.0.2.1:4433/tcp:443"),
                "192.0.2.1",
                4433,
                Some(443),
                Some("192.0.2.1:443"),
            ),
            (
                format!("{KEY}@[2001:db8::1]:443/tcp:443"),
                "2001:db8::1",
                443,
                Some(443),
                Some("[2001:db8::1]:443"),
            ),
            (
                format!("{KEY}@rdv.example.org:4433/tcp:65535"),
                "rdv.example.org",
                4433,
                Some(65535),
                None,
            ),
            (
                format!("{KEY}@192.0.2.1:4433"),
                "192.0.2.1",
                4433,
                None,
                None,
            ),
        ] {
            let addr = parse(&text).unwrap();
            assert_eq!(
                (addr.host(), addr.port(), addr.tcp_port()),
                (host, port, tcp),
                "{text}"
            );
            assert_eq!(
                addr.tcp_socket_addr(),
                tcp_socket.map(|s| s.parse().unwrap())
            );
            assert_eq!(addr.to_string(), text, "Display writes the same text");
        }
        let key: PublicKey = KEY.parse().unwrap();
        let udp_only = RendezvousAddr::new(key, "192.0.2.1", 4433).unwrap();
        let both = udp_only.clone().with_tcp_port(Some(443)).unwrap();
        assert_eq!(both.to_string(), format!("{KEY}@192.0.2.1:4433/tcp:443"));
        assert_ne!(both, udp_only);
        assert_eq!(both.with_tcp_port(None), Ok(udp_only.clone()));
        assert_eq!(
            udp_only.with_tcp_port(Some(0)),
            Err(RendezvousAddrError::BadTcpPort("0".into()))
        );
    }

    #[test]
    fn a_tls_carrier_follows_as_slash_tls_and_reads_back() {
        let text = format!("{KEY}@[2001:db8::1]:4433/tls:443");
        let addr = parse(&text).unwrap();
        assert_eq!((addr.tcp_port(), addr.tls()), (Some(443), true));
        assert_eq!(
            addr.tcp_socket_addr(),
            Some("[2001:db8::1]:443".parse().unwrap())
        );
        assert_eq!(addr.to_string(), text);
        let upper = parse(&format!("{KEY}@192.0.2.1:4433/TLS:443")).unwrap();
        assert_eq!(upper.to_string(), format!("{KEY}@192.0.2.1:4433/tls:443"));
        // Plain TCP and TLS on the same port are different servers.
        let tcp = parse(&format!("{KEY}@192.0.2.1:4433/tcp:443")).unwrap();
        assert_ne!(tcp, upper);
        assert_eq!(tcp.clone().with_tls(true), upper);
        // Without a TCP port there is no TLS to speak.
        let udp = parse(&format!("{KEY}@192.0.2.1:4433"))
            .unwrap()
            .with_tls(true);
        assert!(!udp.tls());
        assert_eq!(udp.to_string(), format!("{KEY}@192.0.2.1:4433"));
    }

    #[test]
    fn surrounding_whitespace_and_a_key_in_capitals_are_accepted() {
        let text = format!("  {}@192.0.2.1:4433\n", KEY.to_uppercase());
        let addr = parse(&text).unwrap();
        assert_eq!(addr.to_string(), format!("{KEY}@192.0.2.1:4433"));
        let text = format!("{}@192.0.2.1:4433/TCP:443", KEY.to_uppercase());
        let addr = parse(&text).unwrap();
        assert_eq!(addr.to_string(), format!("{KEY}@192.0.2.1:4433/tcp:443"));
    }

    #[test]
    fn a_socket_address_makes_the_same_text() {
        let key: PublicKey = KEY.parse().unwrap();
        let v6 = RendezvousAddr::from_socket_addr(key, "[2001:db8::7]:9".parse().unwrap()).unwrap();
        assert_eq!(v6.to_string(), format!("{KEY}@[2001:db8::7]:9"));
        assert_eq!(parse(&v6.to_string()), Ok(v6));
        let zero = RendezvousAddr::from_socket_addr(key, "192.0.2.1:0".parse().unwrap());
        assert_eq!(zero, Err(RendezvousAddrError::BadPort("0".into())));
    }

    #[test]
    fn each_malformed_address_gets_its_error() {
        use RendezvousAddrError as E;
        let long_host = "a".repeat(200);
        let cases = [
            ("192.0.2.1:4433".to_string(), E::MissingAt),
            ("".to_string(), E::MissingAt),
            (
                "abc@192.0.2.1:4433".to_string(),
                E::Key(KeyParseError::BadLength(3)),
            ),
            (format!("{KEY}@192.0.2.1"), E::MissingPort),
            (format!("{KEY}@[2001:db8::1]"), E::MissingPort),
            (format!("{KEY}@192.0.2.1:"), E::BadPort("".into())),
            (format!("{KEY}@192.0.2.1:0"), E::BadPort("0".into())),
            (format!("{KEY}@192.0.2.1:65536"), E::BadPort("65536".into())),
            (format!("{KEY}@192.0.2.1:+80"), E::BadPort("+80".into())),
            (format!("{KEY}@192.0.2.1:http"), E::BadPort("http".into())),
            (format!("{KEY}@[2001:db8::1]x80"), E::BadPort("x80".into())),
            (format!("{KEY}@:4433"), E::EmptyHost),
            (format!("{KEY}@rdv example:4433"), E::BadHostCharacter(' ')),
            (format!("{KEY}@a@b:4433"), E::BadHostCharacter('@')),
            (
                format!("{KEY}@rdv/x:4433"),
                E::UnknownCarrier("x:4433".into()),
            ),
            (format!("{KEY}@2001:db8::1:443"), E::UnbracketedIpv6),
            (
                format!("{KEY}@[192.0.2.1]:443"),
                E::BadIpv6("192.0.2.1".into()),
            ),
            (
                format!("{KEY}@[2001:db8::g]:443"),
                E::BadIpv6("2001:db8::g".into()),
            ),
            (
                format!("{KEY}@[2001:db8::1:443"),
                E::BadIpv6("2001:db8::1:443".into()),
            ),
            (
                format!("{KEY}@{long_host}:4433"),
                E::TooLong(52 + 1 + 200 + 5),
            ),
            (
                format!("{KEY}@192.0.2.1:4433/"),
                E::UnknownCarrier("".into()),
            ),
            (
                format!("{KEY}@192.0.2.1:4433/tlsx:443"),
                E::UnknownCarrier("tlsx:443".into()),
            ),
            (
                format!("{KEY}@192.0.2.1:4433/tls:0"),
                E::BadTcpPort("0".into()),
            ),
            (
                format!("{KEY}@192.0.2.1:4433/tls:443/tcp:80"),
                E::BadTcpPort("443/tcp:80".into()),
            ),
            (
                format!("{KEY}@192.0.2.1:4433/tcp:"),
                E::BadTcpPort("".into()),
            ),
            (
                format!("{KEY}@192.0.2.1:4433/tcp:0"),
                E::BadTcpPort("0".into()),
            ),
            (
                format!("{KEY}@192.0.2.1:4433/tcp:70000"),
                E::BadTcpPort("70000".into()),
            ),
            (
                format!("{KEY}@192.0.2.1:4433/tcp:443/tcp:80"),
                E::BadTcpPort("443/tcp:80".into()),
            ),
            (format!("{KEY}@192.0.2.1/tcp:443"), E::MissingPort),
            (
                format!("{KEY}@{}:4433/tcp:443", "a".repeat(190)),
                E::TooLong(52 + 1 + 190 + 5 + 8),
            ),
        ];
        for (text, error) in cases {
            assert_eq!(parse(&text), Err(error), "{text:?}");
        }
    }

    #[test]
    fn every_error_message_is_one_line_that_names_the_format() {
        let hostile = format!("{KEY}@192.0.2.1:4\n\u{1b}[2J");
        let err = parse(&hostile).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text:?}");
        assert!(text.starts_with("invalid rendezvous address: "), "{text}");
    }

    #[test]
    fn the_longest_address_fits_a_ticket() {
        let key: PublicKey = KEY.parse().unwrap();
        let host = "h".repeat(MAX_RENDEZVOUS_ADDR_LEN - 52 - 1 - 1 - 5);
        let addr = RendezvousAddr::new(key, &host, 65535).unwrap();
        assert_eq!(addr.to_string().len(), MAX_RENDEZVOUS_ADDR_LEN);
        let longer = format!("{host}h");
        assert_eq!(
            RendezvousAddr::new(key, &longer, 65535),
            Err(RendezvousAddrError::TooLong(MAX_RENDEZVOUS_ADDR_LEN + 1))
        );
    }

    fn arb_host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9._-]{1,60}",
            any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
            any::<Ipv6Addr>().prop_map(|ip| ip.to_string()),
        ]
    }

    proptest! {
        #[test]
        fn any_address_round_trips_through_its_text(
            key in any::<[u8; 32]>(),
            host in arb_host(),
            port in 1u16..,
            tcp_port in proptest::option::of(1u16..),
            tls in any::<bool>(),
        ) {
            let addr = RendezvousAddr::new(PublicKey(key), &host, port)
                .unwrap()
                .with_tcp_port(tcp_port)
                .unwrap()
                .with_tls(tls);
            prop_assert_eq!(addr.tls(), tls && tcp_port.is_some());
            let text = addr.to_string();
            prop_assert_eq!(parse(&text), Ok(addr.clone()));
            prop_assert_eq!(parse(&text.to_uppercase()).map(|a| a.key()), Ok(addr.key()));
        }

        #[test]
        fn parsing_any_text_never_panics_and_what_parses_prints_back(text in any::<String>()) {
            if let Ok(addr) = parse(&text) {
                prop_assert_eq!(parse(&addr.to_string()), Ok(addr));
            }
        }

        #[test]
        fn parsing_near_misses_never_panics(
            key in prop_oneof![Just(KEY.to_string()), "[a-z2-7]{0,60}"],
            rest in "[@:\\[\\]0-9a-f. /tcpls]{0,40}",
        ) {
            if let Ok(addr) = parse(&format!("{key}@{rest}")) {
                prop_assert_eq!(parse(&addr.to_string()), Ok(addr));
            }
        }
    }
}
