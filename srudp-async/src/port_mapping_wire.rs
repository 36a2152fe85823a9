//! The wire formats of the two port-mapping protocols a gateway may speak
//! on UDP port 5351: NAT-PMP (RFC 6886) and its successor PCP (RFC 6887),
//! the client's side only (requests out, answers in), for UDP mappings.
//!
//! Every answer carries the server's epoch (seconds since its mapping
//! state began, RFC 6887 §8.5, RFC 6886 §3.6), which tells a restarted
//! gateway (see `port_mapping_epoch`). A gateway that restarts also
//! announces it, unsolicited, to 224.0.0.1:5350: PCP with an ANNOUNCE
//! (RFC 6887 §14.1.3), NAT-PMP with its public address (RFC 6886 §3.2.1);
//! [`parse_announcement`] reads either.
//!
//! Answers come from the network: every parser checks lengths, versions
//! and opcodes and returns a [`WireError`], never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The gateway's port for both protocols.
pub(crate) const SERVER_PORT: u16 = 5351;
/// The port clients hear the gateway's unsolicited announcements on.
pub(crate) const ANNOUNCE_PORT: u16 = 5350;

/// NAT-PMP's version number; PCP's is [`PCP_VERSION`].
const NAT_PMP_VERSION: u8 = 0;
/// PCP's version number.
const PCP_VERSION: u8 = 2;
/// NAT-PMP opcodes (requests; answers add 128).
const NAT_PMP_OP_ADDRESS: u8 = 0;
const NAT_PMP_OP_MAP_UDP: u8 = 1;
/// PCP's MAP opcode (answers set the top bit).
const PCP_OP_MAP: u8 = 1;
/// PCP's ANNOUNCE opcode.
const PCP_OP_ANNOUNCE: u8 = 0;
/// Length of a PCP header, the whole of an ANNOUNCE.
pub(crate) const PCP_HEADER_LEN: usize = 24;
/// The IANA protocol number of UDP, in a PCP MAP.
const PROTOCOL_UDP: u8 = 17;
/// Result code 1 in both protocols: the server speaks another version.
const UNSUPPORTED_VERSION: u16 = 1;

/// Length of a PCP MAP request and answer: 24-byte header, 36-byte MAP.
pub(crate) const PCP_MAP_LEN: usize = 60;
/// Length of a NAT-PMP mapping request.
pub(crate) const NAT_PMP_MAP_REQUEST_LEN: usize = 12;
/// The largest answer we read (a PCP answer may carry options we ignore).
pub(crate) const MAX_ANSWER_LEN: usize = 1100;

/// Why an answer is not one we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    /// Shorter than its fixed part.
    #[error("answer too short ({0} bytes)")]
    Truncated(usize),
    /// Another version or opcode than the answer we wait for.
    #[error("not the answer expected (version {version}, opcode {opcode})")]
    Unexpected {
        /// The version byte.
        version: u8,
        /// The opcode byte.
        opcode: u8,
    },
    /// The server does not speak this protocol's version (result code 1 in
    /// either protocol's answer format): try the other protocol.
    #[error("the gateway does not speak this protocol version")]
    UnsupportedVersion,
    /// The server refused with this result code.
    #[error("the gateway refused (result code {0})")]
    Refused(u16),
    /// A PCP answer for another request (nonce, protocol or port differ).
    #[error("answer to another request")]
    NotOurs,
}

/// A mapping the gateway granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Granted {
    /// The external port.
    pub(crate) external_port: u16,
    /// The external address, when the answer names it (PCP does; NAT-PMP
    /// needs a separate address request).
    pub(crate) external_ip: Option<IpAddr>,
    /// Seconds the mapping lasts (0 for a deletion).
    pub(crate) lifetime: u32,
    /// The server's epoch: seconds since its mapping state began.
    pub(crate) epoch: u32,
}

/// A NAT-PMP server's public address, and its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PublicAddress {
    /// The gateway's external address.
    pub(crate) ip: Ipv4Addr,
    /// The server's epoch: seconds since its mapping state began.
    pub(crate) epoch: u32,
}

/// An unsolicited announcement of a gateway (sent to 224.0.0.1:5350 when
/// it restarts, or, for NAT-PMP, when its public address changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Announcement {
    /// A PCP ANNOUNCE (RFC 6887 §14.1.3) with the server's epoch.
    Pcp {
        /// The server's epoch.
        epoch: u32,
    },
    /// A NAT-PMP public address announcement (RFC 6886 §3.2.1).
    NatPmp(PublicAddress),
}

impl Announcement {
    /// The server's epoch it carries.
    pub(crate) fn epoch(&self) -> u32 {
        match self {
            Announcement::Pcp { epoch } => *epoch,
            Announcement::NatPmp(a) => a.epoch,
        }
    }
}

/// A PCP MAP request for UDP `internal_port` of `client` (the address the
/// gateway sees us at), suggesting `external_port`, for `lifetime` seconds
/// (0 deletes the mapping named by `nonce`).
pub(crate) fn pcp_map_request(
    client: IpAddr,
    nonce: [u8; 12],
    internal_port: u16,
    external_port: u16,
    external_ip: Option<IpAddr>,
    lifetime: u32,
) -> [u8; PCP_MAP_LEN] {
    let mut b = [0u8; PCP_MAP_LEN];
    b[0] = PCP_VERSION;
    b[1] = PCP_OP_MAP;
    b[4..8].copy_from_slice(&lifetime.to_be_bytes());
    b[8..24].copy_from_slice(&as_v6(client).octets());
    b[24..36].copy_from_slice(&nonce);
    b[36] = PROTOCOL_UDP;
    b[40..42].copy_from_slice(&internal_port.to_be_bytes());
    b[42..44].copy_from_slice(&external_port.to_be_bytes());
    // No preference: the all-zero address of the client's family.
    let suggested = external_ip.unwrap_or(match client {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    b[44..60].copy_from_slice(&as_v6(suggested).octets());
    b
}

/// Parses the answer to [`pcp_map_request`] with `nonce` for
/// `internal_port`. A NAT-PMP answer saying "unsupported version" (what a
/// NAT-PMP-only gateway sends back) is [`WireError::UnsupportedVersion`].
pub(crate) fn parse_pcp_map_answer(
    b: &[u8],
    nonce: [u8; 12],
    internal_port: u16,
) -> Result<Granted, WireError> {
    if b.len() >= 4 && b[0] == NAT_PMP_VERSION && b[1] >= 128 {
        return match u16::from_be_bytes([b[2], b[3]]) {
            0 => Err(WireError::Unexpected {
                version: b[0],
                opcode: b[1],
            }),
            code => Err(result_error(code)),
        };
    }
    if b.len() < 4 {
        return Err(WireError::Truncated(b.len()));
    }
    if b[0] != PCP_VERSION || b[1] != (PCP_OP_MAP | 0x80) {
        if b[1] & 0x80 != 0 && b[3] == UNSUPPORTED_VERSION as u8 {
            return Err(WireError::UnsupportedVersion);
        }
        return Err(WireError::Unexpected {
            version: b[0],
            opcode: b[1],
        });
    }
    let code = u16::from(b[3]);
    if code != 0 {
        return Err(result_error(code));
    }
    if b.len() < PCP_MAP_LEN {
        return Err(WireError::Truncated(b.len()));
    }
    if b[24..36] != nonce
        || b[36] != PROTOCOL_UDP
        || u16::from_be_bytes([b[40], b[41]]) != internal_port
    {
        return Err(WireError::NotOurs);
    }
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&b[44..60]);
    let ip = Ipv6Addr::from(ip);
    Ok(Granted {
        external_port: u16::from_be_bytes([b[42], b[43]]),
        external_ip: Some(match ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(ip),
        }),
        lifetime: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        epoch: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
    })
}

/// A PCP ANNOUNCE request from `client`: the server answers with its epoch
/// only (RFC 6887 §14.1.1), which tells whether it restarted since.
pub(crate) fn pcp_announce_request(client: IpAddr) -> [u8; PCP_HEADER_LEN] {
    let mut b = [0u8; PCP_HEADER_LEN];
    b[0] = PCP_VERSION;
    b[1] = PCP_OP_ANNOUNCE;
    b[8..24].copy_from_slice(&as_v6(client).octets());
    b
}

/// Parses a PCP ANNOUNCE answer (to [`pcp_announce_request`], or sent
/// unsolicited); returns the server's epoch.
pub(crate) fn parse_pcp_announce(b: &[u8]) -> Result<u32, WireError> {
    if b.len() < PCP_HEADER_LEN {
        return Err(WireError::Truncated(b.len()));
    }
    if b[0] != PCP_VERSION || b[1] != PCP_OP_ANNOUNCE | 0x80 {
        return Err(WireError::Unexpected {
            version: b[0],
            opcode: b[1],
        });
    }
    match u16::from(b[3]) {
        0 => Ok(u32::from_be_bytes([b[8], b[9], b[10], b[11]])),
        code => Err(result_error(code)),
    }
}

/// Parses an unsolicited announcement: a PCP ANNOUNCE or a NAT-PMP public
/// address answer.
pub(crate) fn parse_announcement(b: &[u8]) -> Result<Announcement, WireError> {
    match b.first() {
        Some(&PCP_VERSION) => parse_pcp_announce(b).map(|epoch| Announcement::Pcp { epoch }),
        _ => parse_nat_pmp_address_answer(b).map(Announcement::NatPmp),
    }
}

/// A NAT-PMP request for the gateway's external address.
pub(crate) fn nat_pmp_address_request() -> [u8; 2] {
    [NAT_PMP_VERSION, NAT_PMP_OP_ADDRESS]
}

/// Parses the answer to [`nat_pmp_address_request`] (or the same message
/// sent unsolicited, an announcement).
pub(crate) fn parse_nat_pmp_address_answer(b: &[u8]) -> Result<PublicAddress, WireError> {
    let code = nat_pmp_header(b, NAT_PMP_OP_ADDRESS, 12)?;
    if code != 0 {
        return Err(result_error(code));
    }
    Ok(PublicAddress {
        ip: Ipv4Addr::new(b[8], b[9], b[10], b[11]),
        epoch: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    })
}

/// A NAT-PMP request mapping UDP `internal_port`, suggesting
/// `external_port`, for `lifetime` seconds (0 with external port 0 deletes
/// the mapping).
pub(crate) fn nat_pmp_map_request(
    internal_port: u16,
    external_port: u16,
    lifetime: u32,
) -> [u8; NAT_PMP_MAP_REQUEST_LEN] {
    let mut b = [0u8; NAT_PMP_MAP_REQUEST_LEN];
    b[0] = NAT_PMP_VERSION;
    b[1] = NAT_PMP_OP_MAP_UDP;
    b[4..6].copy_from_slice(&internal_port.to_be_bytes());
    b[6..8].copy_from_slice(&external_port.to_be_bytes());
    b[8..12].copy_from_slice(&lifetime.to_be_bytes());
    b
}

/// Parses the answer to [`nat_pmp_map_request`] for `internal_port`.
pub(crate) fn parse_nat_pmp_map_answer(b: &[u8], internal_port: u16) -> Result<Granted, WireError> {
    let code = nat_pmp_header(b, NAT_PMP_OP_MAP_UDP, 16)?;
    if code != 0 {
        return Err(result_error(code));
    }
    if u16::from_be_bytes([b[8], b[9]]) != internal_port {
        return Err(WireError::NotOurs);
    }
    Ok(Granted {
        external_port: u16::from_be_bytes([b[10], b[11]]),
        external_ip: None,
        lifetime: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
        epoch: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    })
}

/// Checks a NAT-PMP answer's version and opcode (`request_op` + 128) and
/// its length (`len`, unless it is an error answer); returns its result
/// code.
fn nat_pmp_header(b: &[u8], request_op: u8, len: usize) -> Result<u16, WireError> {
    if b.len() < 4 {
        return Err(WireError::Truncated(b.len()));
    }
    if b[0] != NAT_PMP_VERSION || b[1] != request_op | 0x80 {
        return Err(WireError::Unexpected {
            version: b[0],
            opcode: b[1],
        });
    }
    let code = u16::from_be_bytes([b[2], b[3]]);
    if code == 0 && b.len() < len {
        return Err(WireError::Truncated(b.len()));
    }
    Ok(code)
}

fn result_error(code: u16) -> WireError {
    if code == UNSUPPORTED_VERSION {
        WireError::UnsupportedVersion
    } else {
        WireError::Refused(code)
    }
}

fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NONCE: [u8; 12] = [7; 12];

    /// What a PCP server answers to `request` (RFC 6887 §11.4 layout).
    fn pcp_answer(request: &[u8; PCP_MAP_LEN], code: u8, port: u16, ip: Ipv4Addr) -> Vec<u8> {
        let mut b = request.to_vec();
        b[1] |= 0x80;
        b[3] = code;
        b[8..12].copy_from_slice(&1234u32.to_be_bytes()); // epoch
        b[12..24].fill(0);
        b[42..44].copy_from_slice(&port.to_be_bytes());
        b[44..60].copy_from_slice(&ip.to_ipv6_mapped().octets());
        b
    }

    #[test]
    fn a_pcp_map_request_has_the_rfc_6887_layout() {
        let client: IpAddr = "192.168.1.20".parse().unwrap();
        let b = pcp_map_request(client, NONCE, 5000, 5000, None, 7200);
        assert_eq!(b[0], 2, "version");
        assert_eq!(b[1], 1, "opcode MAP, request");
        assert_eq!(&b[4..8], &7200u32.to_be_bytes());
        assert_eq!(
            &b[8..24],
            &Ipv4Addr::new(192, 168, 1, 20).to_ipv6_mapped().octets()
        );
        assert_eq!(&b[24..36], &NONCE);
        assert_eq!(b[36], 17, "UDP");
        assert_eq!(&b[40..42], &5000u16.to_be_bytes());
        assert_eq!(&b[42..44], &5000u16.to_be_bytes());
        assert_eq!(&b[44..60], &Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets());
    }

    #[test]
    fn a_pcp_answer_grants_the_external_address_and_lifetime() {
        let req = pcp_map_request(
            "192.168.1.20".parse().unwrap(),
            NONCE,
            5000,
            5000,
            None,
            7200,
        );
        let mut answer = pcp_answer(&req, 0, 40001, Ipv4Addr::new(203, 0, 113, 1));
        answer[4..8].copy_from_slice(&3600u32.to_be_bytes());
        let g = parse_pcp_map_answer(&answer, NONCE, 5000).unwrap();
        assert_eq!(g.external_port, 40001);
        assert_eq!(g.external_ip, Some("203.0.113.1".parse().unwrap()));
        assert_eq!(g.lifetime, 3600);
        assert_eq!(g.epoch, 1234);
    }

    #[test]
    fn a_pcp_answer_for_another_nonce_or_port_is_not_ours() {
        let req = pcp_map_request("192.168.1.20".parse().unwrap(), NONCE, 5000, 5000, None, 60);
        let answer = pcp_answer(&req, 0, 5000, Ipv4Addr::new(203, 0, 113, 1));
        assert_eq!(
            parse_pcp_map_answer(&answer, [8; 12], 5000),
            Err(WireError::NotOurs)
        );
        assert_eq!(
            parse_pcp_map_answer(&answer, NONCE, 5001),
            Err(WireError::NotOurs)
        );
    }

    #[test]
    fn pcp_refusals_and_version_mismatches_are_told_apart() {
        let req = pcp_map_request("192.168.1.20".parse().unwrap(), NONCE, 5000, 5000, None, 60);
        let refused = pcp_answer(&req, 2, 0, Ipv4Addr::UNSPECIFIED); // NOT_AUTHORIZED
        assert_eq!(
            parse_pcp_map_answer(&refused, NONCE, 5000),
            Err(WireError::Refused(2))
        );
        let pcp_v1 = pcp_answer(&req, 1, 0, Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            parse_pcp_map_answer(&pcp_v1, NONCE, 5000),
            Err(WireError::UnsupportedVersion)
        );
        // A NAT-PMP-only gateway answers a PCP request in NAT-PMP's format.
        let nat_pmp = [0u8, 129, 0, 1, 0, 0, 0, 9];
        assert_eq!(
            parse_pcp_map_answer(&nat_pmp, NONCE, 5000),
            Err(WireError::UnsupportedVersion)
        );
    }

    #[test]
    fn a_nat_pmp_map_request_has_the_rfc_6886_layout() {
        assert_eq!(
            nat_pmp_map_request(5000, 5001, 7200),
            [0, 1, 0, 0, 0x13, 0x88, 0x13, 0x89, 0, 0, 0x1c, 0x20]
        );
        assert_eq!(nat_pmp_address_request(), [0, 0]);
    }

    #[test]
    fn nat_pmp_answers_grant_the_port_and_name_the_address() {
        let answer = [
            0, 129, 0, 0, 0, 0, 0, 5, 0x13, 0x88, 0x9c, 0x41, 0, 0, 0x0e, 0x10,
        ];
        let g = parse_nat_pmp_map_answer(&answer, 5000).unwrap();
        assert_eq!(
            (g.external_port, g.external_ip, g.lifetime, g.epoch),
            (40001, None, 3600, 5)
        );
        assert_eq!(
            parse_nat_pmp_map_answer(&answer, 5001),
            Err(WireError::NotOurs)
        );
        let address = [0, 128, 0, 0, 0, 0, 0, 5, 203, 0, 113, 1];
        assert_eq!(
            parse_nat_pmp_address_answer(&address),
            Ok(PublicAddress {
                ip: Ipv4Addr::new(203, 0, 113, 1),
                epoch: 5
            })
        );
        let refused = [0, 129, 0, 2, 0, 0, 0, 5];
        assert_eq!(
            parse_nat_pmp_map_answer(&refused, 5000),
            Err(WireError::Refused(2))
        );
        assert_eq!(
            parse_nat_pmp_address_answer(&[0, 129, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4]),
            Err(WireError::Unexpected {
                version: 0,
                opcode: 129
            })
        );
        assert_eq!(
            parse_nat_pmp_map_answer(&answer[..15], 5000),
            Err(WireError::Truncated(15))
        );
    }

    #[test]
    fn a_pcp_announce_request_has_the_rfc_6887_layout() {
        let b = pcp_announce_request("192.168.1.20".parse().unwrap());
        assert_eq!(b.len(), 24);
        assert_eq!((b[0], b[1], &b[4..8]), (2, 0, &[0u8; 4][..]));
        assert_eq!(
            &b[8..24],
            &Ipv4Addr::new(192, 168, 1, 20).to_ipv6_mapped().octets()
        );
    }

    /// What a restarted PCP server multicasts (RFC 6887 §14.1.3): an
    /// ANNOUNCE answer with result 0 and its new epoch.
    fn pcp_announce(epoch: u32) -> Vec<u8> {
        let mut b = vec![0u8; 24];
        b[0] = 2;
        b[1] = 0x80;
        b[8..12].copy_from_slice(&epoch.to_be_bytes());
        b
    }

    #[test]
    fn announcements_of_either_protocol_carry_the_epoch() {
        assert_eq!(
            parse_announcement(&pcp_announce(3)),
            Ok(Announcement::Pcp { epoch: 3 })
        );
        let nat_pmp = [0, 128, 0, 0, 0, 0, 0, 2, 203, 0, 113, 1];
        assert_eq!(
            parse_announcement(&nat_pmp),
            Ok(Announcement::NatPmp(PublicAddress {
                ip: Ipv4Addr::new(203, 0, 113, 1),
                epoch: 2
            }))
        );
        assert_eq!(parse_announcement(&nat_pmp).unwrap().epoch(), 2);
    }

    #[test]
    fn what_is_not_an_announcement_is_an_error() {
        assert_eq!(
            parse_announcement(&pcp_announce(3)[..23]),
            Err(WireError::Truncated(23))
        );
        // A request (no answer bit), a MAP answer, a refusal.
        let mut request = pcp_announce(3);
        request[1] = 0;
        assert!(matches!(
            parse_announcement(&request),
            Err(WireError::Unexpected { .. })
        ));
        let map = [
            0u8, 129, 0, 0, 0, 0, 0, 5, 0x13, 0x88, 0x9c, 0x41, 0, 0, 0, 1,
        ];
        assert!(matches!(
            parse_announcement(&map),
            Err(WireError::Unexpected { .. })
        ));
        let mut refused = pcp_announce(3);
        refused[3] = 8; // NO_RESOURCES
        assert_eq!(parse_announcement(&refused), Err(WireError::Refused(8)));
        assert_eq!(parse_announcement(&[]), Err(WireError::Truncated(0)));
    }

    proptest! {
        /// Attacker test: any datagram a hostile host sends to our
        /// port-mapping socket is parsed to a value or an error, never a
        /// panic, by every parser.
        #[test]
        fn hostile_answers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_pcp_map_answer(&b, NONCE, 5000);
            let _ = parse_nat_pmp_map_answer(&b, 5000);
            let _ = parse_nat_pmp_address_answer(&b);
            let _ = parse_pcp_announce(&b);
            let _ = parse_announcement(&b);
        }

        /// Attacker test: any datagram that reaches the announcement port
        /// is an announcement or an error, never a panic; an announcement
        /// it is only if it has the exact shape of one.
        #[test]
        fn hostile_announcements_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(a) = parse_announcement(&b) {
                match a {
                    Announcement::Pcp { .. } => prop_assert!(b.len() >= 24 && b[..2] == [2, 0x80] && b[3] == 0),
                    Announcement::NatPmp(_) => prop_assert!(b.len() >= 12 && b[..4] == [0, 128, 0, 0]),
                }
            }
        }

        /// Whatever a PCP server grants is read back exactly.
        #[test]
        fn pcp_grants_round_trip(port in any::<u16>(), ip in any::<[u8; 4]>(), lifetime in any::<u32>()) {
            let req = pcp_map_request("192.168.1.20".parse().unwrap(), NONCE, 5000, 5000, None, 60);
            let mut answer = pcp_answer(&req, 0, port, Ipv4Addr::from(ip));
            answer[4..8].copy_from_slice(&lifetime.to_be_bytes());
            let g = parse_pcp_map_answer(&answer, NONCE, 5000).unwrap();
            prop_assert_eq!(g.external_port, port);
            prop_assert_eq!(g.external_ip, Some(IpAddr::V4(Ipv4Addr::from(ip))));
            prop_assert_eq!(g.lifetime, lifetime);
        }
    }
}
