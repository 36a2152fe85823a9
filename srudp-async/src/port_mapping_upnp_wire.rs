//! The texts of UPnP-IGD port mapping, the client's side: an SSDP search
//! out and its answer in, an HTTP/1.0 request out and its response in, the
//! gateway's device description (where the WANIPConnection or
//! WANPPPConnection service is controlled), SOAP actions out and their
//! answers (or faults) in.
//!
//! Everything read comes from the network: inputs are capped by the caller
//! ([`MAX_HTTP_LEN`], [`MAX_SSDP_LEN`]), and every parser returns an
//! [`UpnpError`], never panics, in time linear in its input. Only what port
//! mapping needs is understood: no XML namespaces beyond dropping a tag's
//! prefix, no entities (the values we read — addresses, numbers, paths —
//! have none), no chunked transfer (we ask in HTTP/1.0).

use std::net::{Ipv4Addr, SocketAddrV4};

/// SSDP's multicast group and port.
pub(crate) const SSDP_GROUP: SocketAddrV4 =
    SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 1900);
/// The largest SSDP answer read.
pub(crate) const MAX_SSDP_LEN: usize = 2048;
/// The largest HTTP response read (a description or a SOAP answer).
pub(crate) const MAX_HTTP_LEN: usize = 64 * 1024;

/// The services that map ports, best first.
pub(crate) const WAN_SERVICES: [&str; 3] = [
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];

/// The UPnP error code of a gateway that takes only leases without end
/// (IGD 1, "OnlyPermanentLeasesSupported").
pub(crate) const ONLY_PERMANENT_LEASES: u16 = 725;
/// The UPnP error code of an external port already mapped to another host
/// ("ConflictInMappingEntry").
pub(crate) const CONFLICT_IN_MAPPING: u16 = 718;

/// Why a text from the gateway is not one we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UpnpError {
    #[error("not HTTP")]
    NotHttp,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("no {0}")]
    Missing(&'static str),
    #[error("unusable URL {0:?}")]
    BadUrl(String),
    #[error("no WANIPConnection or WANPPPConnection service")]
    NoWanService,
    #[error("UPnP error {0}")]
    Fault(u16),
    #[error("bad {0} value")]
    BadValue(&'static str),
}

/// An `http://` address: where to connect and the path to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    pub(crate) addr: SocketAddrV4,
    pub(crate) path: String,
}

/// The M-SEARCH for Internet gateway devices.
pub(crate) fn ssdp_search() -> Vec<u8> {
    format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: {SSDP_GROUP}\r\n\
         ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
         MAN: \"ssdp:discover\"\r\nMX: 1\r\n\r\n"
    )
    .into_bytes()
}

/// The description's address from an SSDP answer (`LOCATION:`).
pub(crate) fn parse_ssdp_answer(b: &[u8]) -> Result<HttpUrl, UpnpError> {
    let text = std::str::from_utf8(b).map_err(|_| UpnpError::NotHttp)?;
    let (status, headers) = status_and_headers(text)?;
    if status != 200 {
        return Err(UpnpError::Status(status));
    }
    let location = header(headers, "location").ok_or(UpnpError::Missing("LOCATION"))?;
    parse_http_url(location)
}

/// `http://IPv4[:port]/path`: names are not resolved (a gateway names
/// itself by address).
pub(crate) fn parse_http_url(url: &str) -> Result<HttpUrl, UpnpError> {
    let bad = || UpnpError::BadUrl(url.chars().take(100).collect());
    let rest = url
        .trim()
        .strip_prefix("http://")
        .or_else(|| url.trim().strip_prefix("HTTP://"))
        .ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (authority, 80),
    };
    let ip: Ipv4Addr = host.parse().map_err(|_| bad())?;
    if port == 0 || path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad());
    }
    Ok(HttpUrl {
        addr: SocketAddrV4::new(ip, port),
        path: path.to_string(),
    })
}

/// An HTTP/1.0 request (the gateway closes the connection after its
/// response, which is never chunked).
pub(crate) fn http_request(
    method: &str,
    url: &HttpUrl,
    extra_headers: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "{method} {} HTTP/1.0\r\nHost: {}\r\n{extra_headers}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        url.path,
        url.addr,
        body.len()
    )
    .into_bytes()
}

/// The status code and body of a whole HTTP response (the body cut at
/// `Content-Length` when given).
pub(crate) fn parse_http_response(b: &[u8]) -> Result<(u16, &[u8]), UpnpError> {
    let end = find(b, b"\r\n\r\n").ok_or(UpnpError::NotHttp)?;
    let head = std::str::from_utf8(&b[..end]).map_err(|_| UpnpError::NotHttp)?;
    let (status, headers) = status_and_headers(head)?;
    let mut body = &b[end + 4..];
    if let Some(len) = header(headers, "content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| UpnpError::BadValue("Content-Length"))?;
        body = body.get(..len).unwrap_or(body);
    }
    Ok((status, body))
}

/// Where the port-mapping service of the description is controlled: the
/// best of [`WAN_SERVICES`] it lists, and its control URL (relative ones
/// are on `base`'s server).
pub(crate) fn parse_description(xml: &str, base: &HttpUrl) -> Result<(String, HttpUrl), UpnpError> {
    let mut best: Option<(usize, &str)> = None;
    for service in Elements::new(xml, "service") {
        let Some(kind) = element(service, "serviceType") else {
            continue;
        };
        let Some(rank) = WAN_SERVICES.iter().position(|s| *s == kind) else {
            continue;
        };
        if best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, service));
        }
    }
    let (rank, service) = best.ok_or(UpnpError::NoWanService)?;
    let control = element(service, "controlURL").ok_or(UpnpError::Missing("controlURL"))?;
    let url = if control.starts_with('/') {
        parse_http_url(&format!("http://{}{control}", base.addr))?
    } else if control.contains("://") {
        parse_http_url(control)?
    } else {
        parse_http_url(&format!("http://{}/{control}", base.addr))?
    };
    Ok((WAN_SERVICES[rank].to_string(), url))
}

/// A SOAP envelope calling `action` of `service` with `args`, and the
/// `SOAPAction` header that goes with it.
pub(crate) fn soap_request(
    service: &str,
    action: &str,
    args: &[(&str, String)],
) -> (String, String) {
    let mut body = format!(
        "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>\
         <u:{action} xmlns:u=\"{service}\">"
    );
    for (name, value) in args {
        body.push_str(&format!("<{name}>{value}</{name}>"));
    }
    body.push_str(&format!("</u:{action}></s:Body></s:Envelope>\r\n"));
    let header = format!(
        "SOAPAction: \"{service}#{action}\"\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"
    );
    (header, body)
}

/// The answer to `action`: its body (where the out arguments are), or the
/// fault's UPnP error code.
pub(crate) fn parse_soap_answer<'a>(
    status: u16,
    body: &'a [u8],
    action: &str,
) -> Result<&'a str, UpnpError> {
    let xml = std::str::from_utf8(body).map_err(|_| UpnpError::NotHttp)?;
    if let Some(code) = element(xml, "errorCode") {
        return Err(UpnpError::Fault(
            code.parse().map_err(|_| UpnpError::BadValue("errorCode"))?,
        ));
    }
    if status != 200 {
        return Err(UpnpError::Status(status));
    }
    let response = format!("{action}Response");
    element(xml, &response).ok_or(UpnpError::Missing("action response"))
}

/// The gateway's public address from GetExternalIPAddress's answer.
pub(crate) fn parse_external_ip(answer: &str) -> Result<Ipv4Addr, UpnpError> {
    element(answer, "NewExternalIPAddress")
        .ok_or(UpnpError::Missing("NewExternalIPAddress"))?
        .parse()
        .map_err(|_| UpnpError::BadValue("NewExternalIPAddress"))
}

/// The lease held, in seconds, from GetSpecificPortMappingEntry's answer.
pub(crate) fn parse_lease_duration(answer: &str) -> Result<u32, UpnpError> {
    element(answer, "NewLeaseDuration")
        .ok_or(UpnpError::Missing("NewLeaseDuration"))?
        .parse()
        .map_err(|_| UpnpError::BadValue("NewLeaseDuration"))
}

/// The status line's code, and the header lines after it.
fn status_and_headers(text: &str) -> Result<(u16, &str), UpnpError> {
    let (line, headers) = text.split_once("\r\n").unwrap_or((text, ""));
    let mut words = line.split(' ');
    if !words.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(UpnpError::NotHttp);
    }
    let status = words
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or(UpnpError::NotHttp)?;
    Ok((status, headers))
}

/// The value of header `name` (case-insensitive), trimmed.
fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The trimmed content of the first element named `name` (any prefix).
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    Elements::new(xml, name).next()
}

/// The contents of successive elements named `name` (a prefix such as
/// `u:` ignored), not nested in each other. Each start tag is looked at
/// once and each search for an end tag moves past it or ends the walk, so
/// the walk is linear in the text.
struct Elements<'a, 'n> {
    xml: &'a str,
    at: usize,
    name: &'n str,
}

impl<'a, 'n> Elements<'a, 'n> {
    fn new(xml: &'a str, name: &'n str) -> Self {
        Elements { xml, at: 0, name }
    }
}

impl<'a> Iterator for Elements<'a, '_> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let rest = self.xml.get(self.at..)?;
            let open = rest.find('<')?;
            let tag_start = self.at + open + 1;
            let tail = &self.xml[tag_start..];
            let tag_len = tail
                .find(|c: char| c == '>' || c == '/' || c.is_whitespace())
                .unwrap_or(tail.len());
            let tag = &tail[..tag_len];
            let local = tag.rsplit(':').next().unwrap_or(tag);
            if local != self.name {
                self.at = tag_start;
                continue;
            }
            let start_end = tag_start + tail.find('>')?;
            if self.xml[..start_end].ends_with('/') {
                // <name/>: empty.
                self.at = start_end + 1;
                return Some("");
            }
            let content_start = start_end + 1;
            let closing = format!("</{tag}>");
            let len = self.xml[content_start..].find(&closing)?;
            self.at = content_start + len + closing.len();
            return Some(self.xml[content_start..content_start + len].trim());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GATEWAY: &str = "192.168.1.1:5000";

    fn base() -> HttpUrl {
        parse_http_url(&format!("http://{GATEWAY}/rootDesc.xml")).unwrap()
    }

    #[test]
    fn an_ssdp_answer_names_the_description() {
        let answer = b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n\
            ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
            Location: http://192.168.1.1:5000/rootDesc.xml\r\n\r\n";
        assert_eq!(parse_ssdp_answer(answer).unwrap(), base());
        assert_eq!(
            parse_ssdp_answer(b"HTTP/1.1 200 OK\r\nST: x\r\n\r\n"),
            Err(UpnpError::Missing("LOCATION"))
        );
        assert_eq!(
            parse_ssdp_answer(b"NOTIFY * HTTP/1.1\r\nLOCATION: http://1.2.3.4/\r\n\r\n"),
            Err(UpnpError::NotHttp)
        );
    }

    #[test]
    fn urls_name_an_ipv4_address_not_a_host_name() {
        let u = parse_http_url("http://10.0.0.1/ctl").unwrap();
        assert_eq!(u.addr, "10.0.0.1:80".parse().unwrap());
        assert_eq!(u.path, "/ctl");
        for bad in [
            "https://10.0.0.1/",
            "http://router.lan/",
            "http://10.0.0.1:0/",
            "http://10.0.0.1:99999/",
            "http://10.0.0.1/a b",
            "http://10.0.0.1/a\r\nX: y",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_description_gives_the_best_wan_service_and_its_control_url() {
        let xml = "<root><device><serviceList>\
            <service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>\
            <controlURL>/l3f</controlURL></service>\
            <service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType>\
            <controlURL>/ppp</controlURL></service>\
            <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>\
            <controlURL>ctl/IPConn</controlURL></service>\
            </serviceList></device></root>";
        let (service, url) = parse_description(xml, &base()).unwrap();
        assert_eq!(service, WAN_SERVICES[1]);
        assert_eq!(url.addr.to_string(), GATEWAY);
        assert_eq!(url.path, "/ctl/IPConn");
        assert_eq!(
            parse_description(
                "<root><service><serviceType>x</serviceType></service></root>",
                &base()
            ),
            Err(UpnpError::NoWanService)
        );
    }

    #[test]
    fn soap_answers_give_their_values_and_faults_their_code() {
        let ok = b"<?xml version=\"1.0\"?><s:Envelope><s:Body>\
            <u:GetExternalIPAddressResponse xmlns:u=\"urn:x\">\
            <NewExternalIPAddress>203.0.113.21</NewExternalIPAddress>\
            </u:GetExternalIPAddressResponse></s:Body></s:Envelope>";
        let answer = parse_soap_answer(200, ok, "GetExternalIPAddress").unwrap();
        assert_eq!(
            parse_external_ip(answer).unwrap(),
            Ipv4Addr::new(203, 0, 113, 21)
        );
        let fault = b"<s:Envelope><s:Body><s:Fault><faultcode>s:Client</faultcode>\
            <detail><UPnPError><errorCode>725</errorCode>\
            <errorDescription>OnlyPermanentLeasesSupported</errorDescription></UPnPError>\
            </detail></s:Fault></s:Body></s:Envelope>";
        assert_eq!(
            parse_soap_answer(500, fault, "AddPortMapping"),
            Err(UpnpError::Fault(ONLY_PERMANENT_LEASES))
        );
        let entry = b"<s:Envelope><s:Body><u:GetSpecificPortMappingEntryResponse>\
            <NewInternalPort>4000</NewInternalPort><NewLeaseDuration>600</NewLeaseDuration>\
            </u:GetSpecificPortMappingEntryResponse></s:Body></s:Envelope>";
        let answer = parse_soap_answer(200, entry, "GetSpecificPortMappingEntry").unwrap();
        assert_eq!(parse_lease_duration(answer), Ok(600));
        assert_eq!(
            parse_lease_duration("<NewLeaseDuration>-1</NewLeaseDuration>"),
            Err(UpnpError::BadValue("NewLeaseDuration"))
        );
        assert_eq!(
            parse_soap_answer(500, b"", "AddPortMapping"),
            Err(UpnpError::Status(500))
        );
    }

    #[test]
    fn http_responses_are_cut_at_their_content_length() {
        let r = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nabcdef";
        assert_eq!(parse_http_response(r).unwrap(), (200, &b"ab"[..]));
        assert_eq!(
            parse_http_response(b"HTTP/1.0 200 OK\r\n"),
            Err(UpnpError::NotHttp)
        );
    }

    proptest! {
        #[test]
        fn hostile_answers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_ssdp_answer(&b);
            let _ = parse_http_response(&b);
            if let Ok(answer) = parse_soap_answer(200, &b, "AddPortMapping") {
                let _ = parse_external_ip(answer);
                let _ = parse_lease_duration(answer);
            }
            let text = String::from_utf8_lossy(&b);
            let _ = parse_description(&text, &base());
            let _ = parse_http_url(&text);
        }

        #[test]
        fn hostile_xml_never_panics(parts in proptest::collection::vec(
            prop_oneof![
                Just("<service>"), Just("</service>"), Just("<serviceType>"),
                Just("</serviceType>"), Just("<controlURL>"), Just("</controlURL>"),
                Just("urn:schemas-upnp-org:service:WANIPConnection:1"), Just("<"), Just(">"),
                Just("/"), Just("<u:service/>"), Just("http://"), Just("é"), Just(":"),
            ],
            0..60,
        )) {
            let xml: String = parts.concat();
            let _ = parse_description(&xml, &base());
            let _ = parse_soap_answer(200, xml.as_bytes(), "service");
        }
    }

    /// A description of many unclosed start tags is walked once, not once
    /// per tag (no quadratic time for a hostile gateway).
    #[test]
    fn unclosed_tags_end_the_walk() {
        let xml = "<service>".repeat(MAX_HTTP_LEN / 9);
        assert_eq!(
            parse_description(&xml, &base()),
            Err(UpnpError::NoWanService)
        );
    }
}
