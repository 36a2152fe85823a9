//! The stream carrier through an HTTP proxy (spec §12.6): `CONNECT
//! HOST:PORT`, on a blocking TCP connection to the proxy, before TLS and
//! frames. The proxy's answer is read within a deadline and at most
//! [`MAX_RESPONSE_HEAD`] bytes; anything but a 2xx status is an error, and
//! the connection is then dropped.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use srudp_proto::stream_carrier::HttpProxy;

/// Most bytes of the proxy's response head (status line and headers).
pub(crate) const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// Why the proxy did not open the tunnel. One line each.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// Reading or writing failed, or the deadline passed.
    #[error("HTTP proxy: {0}")]
    Io(#[from] io::Error),
    /// The proxy closed the connection before the end of its response.
    #[error("HTTP proxy: connection closed before the end of the response")]
    Closed,
    /// The response head is longer than [`MAX_RESPONSE_HEAD`].
    #[error("HTTP proxy: response head longer than {MAX_RESPONSE_HEAD} bytes")]
    TooLong,
    /// The first line is not `HTTP/1.x CODE ...`.
    #[error("HTTP proxy: malformed status line {0:?}")]
    Malformed(String),
    /// The proxy refused (407: it wants credentials, or others).
    #[error("HTTP proxy refused CONNECT: {0}")]
    Refused(String),
}

/// Asks the proxy on `tcp` to connect to `authority` (`HOST:PORT`), with
/// basic authentication when the proxy has credentials; returns once the
/// tunnel is open, by `deadline`. The stream is positioned after the
/// response's head: every later byte is the server's.
pub(crate) fn connect_through(
    tcp: &mut TcpStream,
    proxy: &HttpProxy,
    authority: &str,
    deadline: Instant,
) -> Result<(), ProxyError> {
    tcp.write_all(request(proxy, authority).as_bytes())?;
    let head = read_head(tcp, deadline)?;
    check_status(&head)
}

/// The `CONNECT` request.
fn request(proxy: &HttpProxy, authority: &str) -> String {
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some((user, password)) = proxy.credentials() {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// Reads up to the blank line that ends the head, one byte at a time (so
/// nothing after it — the tunnel's first bytes — is consumed).
fn read_head(tcp: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, ProxyError> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() >= MAX_RESPONSE_HEAD {
            return Err(ProxyError::TooLong);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no response in time").into());
        }
        tcp.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        match tcp.read(&mut byte) {
            Ok(0) => return Err(ProxyError::Closed),
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no response in time").into())
            }
            Err(e) => return Err(e.into()),
        }
    }
    tcp.set_read_timeout(None)?;
    Ok(head)
}

/// A 2xx status opens the tunnel; anything else is the proxy's refusal.
fn check_status(head: &[u8]) -> Result<(), ProxyError> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line).trim_end().to_string();
    let printable: String = line.chars().filter(|c| !c.is_control()).take(120).collect();
    let mut parts = line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(ProxyError::Malformed(printable));
    };
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(ProxyError::Malformed(printable));
    }
    match code.parse::<u16>() {
        Ok(200..=299) => Ok(()),
        Ok(_) => Err(ProxyError::Refused(printable)),
        Err(_) => Err(ProxyError::Malformed(printable)),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    fn proxy(url: &str) -> HttpProxy {
        url.parse().unwrap()
    }

    #[test]
    fn the_request_names_the_target_and_carries_basic_credentials() {
        let plain = request(&proxy("http://p:3128"), "rdv.example.org:443");
        assert_eq!(
            plain,
            "CONNECT rdv.example.org:443 HTTP/1.1\r\nHost: rdv.example.org:443\r\n\r\n"
        );
        let auth = request(&proxy("http://alice:s3cret@p:3128"), "[2001:db8::1]:443");
        assert!(auth.starts_with("CONNECT [2001:db8::1]:443 HTTP/1.1\r\n"));
        // base64("alice:s3cret")
        assert!(auth.contains("\r\nProxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n"));
    }

    #[test]
    fn statuses_open_or_refuse_the_tunnel() {
        assert!(check_status(b"HTTP/1.1 200 Connection established\r\n\r\n").is_ok());
        assert!(check_status(b"HTTP/1.0 200\r\n\r\n").is_ok());
        assert!(matches!(
            check_status(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"),
            Err(ProxyError::Refused(s)) if s == "HTTP/1.1 407 Proxy Authentication Required"
        ));
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 20x ok\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert!(matches!(check_status(bad), Err(ProxyError::Malformed(_))));
        }
    }

    /// A hostile proxy on loopback that answers with `answer` after
    /// reading the request.
    fn fake_proxy(answer: Vec<u8>, then_hold: bool) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut tcp, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = tcp.read(&mut buf);
            let _ = tcp.write_all(&answer);
            if then_hold {
                std::thread::sleep(Duration::from_secs(3));
            }
        });
        addr
    }

    fn handshake(answer: Vec<u8>, hold: bool) -> (Result<(), ProxyError>, TcpStream) {
        let addr = fake_proxy(answer, hold);
        let mut tcp = TcpStream::connect(addr).unwrap();
        let deadline = Instant::now() + Duration::from_millis(500);
        let r = connect_through(&mut tcp, &proxy("http://p:1"), "h:2", deadline);
        (r, tcp)
    }

    #[test]
    fn the_tunnel_opens_and_its_first_bytes_are_left_unread() {
        let (r, mut tcp) = handshake(
            b"HTTP/1.1 200 OK\r\nVia: x\r\n\r\n\x00\x02hi".to_vec(),
            false,
        );
        r.unwrap();
        let mut rest = Vec::new();
        tcp.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"\x00\x02hi");
    }

    #[test]
    fn an_endless_head_a_silent_proxy_and_a_hangup_end_in_errors() {
        let endless = [b"HTTP/1.1 200 OK\r\n".to_vec(), vec![b'X'; 10_000]].concat();
        assert!(matches!(
            handshake(endless, true).0,
            Err(ProxyError::TooLong)
        ));
        // Silent until it hangs up 3 s later: the 0.5 s deadline ends it.
        let (silent, _) = handshake(Vec::new(), true);
        assert!(
            matches!(&silent, Err(ProxyError::Io(e)) if e.kind() == io::ErrorKind::TimedOut),
            "{silent:?}"
        );
        let (cut, _) = handshake(b"HTTP/1.1 200 OK\r\n".to_vec(), false);
        assert!(matches!(cut, Err(ProxyError::Closed)), "{cut:?}");
    }
}
