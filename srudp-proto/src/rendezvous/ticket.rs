//! Tickets (spec §11.10): what `srudp listen` and `srudp send` print and
//! `srudp connect` and `srudp receive` take — the listener's public key, the
//! ticket secret that makes the ticket a capability (spec §4.9), its
//! optional name and the rendezvous string, in one copy-paste-safe word.
//!
//! Layout before encoding: version (1: 2, 3 when the rendezvous names a
//! TCP port, 4 when that port speaks TLS) | listener key (32) | flags (1:
//! bit 0, a secret follows) | secret (32, if flagged) | name length (1) |
//! name | rendezvous length (1) | rendezvous `KEY@HOST:PORT` | checksum (4:
//! the first bytes of SHA-256 over everything before). A listener that
//! registered a name is open to anyone who knows the name, and its ticket
//! carries no secret. The
//! whole is base32 (RFC 4648 alphabet, lowercase, no padding): letters and
//! digits only, so shells, chat clients and double-click selection leave it
//! whole; the checksum catches a truncated or mistyped copy.

use std::fmt;
use std::str::FromStr;

use blake2::{Blake2s256, Digest};

use super::address::{RendezvousAddr, RendezvousAddrError};
use crate::keys::PublicKey;
use crate::ticket::TicketSecret;

/// The version of a ticket whose rendezvous server is UDP only.
const VERSION: u8 = 2;
/// The version of a ticket whose rendezvous address names a TCP port
/// (`/tcp:PORT`, spec §3.2): the same layout, under a number readers that
/// predate the stream carrier refuse with a message asking for a current
/// srudp, rather than calling its address malformed.
const VERSION_WITH_TCP: u8 = 3;
/// The version of a ticket whose rendezvous address names a TLS carrier
/// (`/tls:PORT`, spec §12.6): the same layout again, for the same reason —
/// a reader of version 3 would call `/tls:` malformed.
const VERSION_WITH_TLS: u8 = 4;
/// `flags` bit 0: a 32-byte ticket secret follows.
const FLAG_SECRET: u8 = 1;
const CHECKSUM_LEN: usize = 4;
/// The longest a ticket can be: both strings at their 255-byte maximum.
const MAX_TICKET_BYTES: usize = 1 + 32 + 1 + 32 + 1 + 255 + 1 + 255 + CHECKSUM_LEN;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A ticket: who to connect to, through which rendezvous, and with which
/// secret. `Display` writes it as one base32 word; `FromStr` reads it back
/// (case-insensitively, surrounding whitespace ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The listener's public key.
    pub peer: PublicKey,
    /// Only the holder of this secret can connect (spec §4.9); `None` for a
    /// listener open to anyone who knows its name.
    pub secret: Option<TicketSecret>,
    /// The name the listener registered, if any (at most 255 bytes).
    pub name: Option<String>,
    /// The rendezvous server (its text is at most 255 bytes).
    pub rendezvous: RendezvousAddr,
}

/// Why a ticket does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// A character outside the base32 alphabet.
    #[error("invalid ticket: character {0:?} is not base32 (a-z, 2-7)")]
    BadCharacter(char),
    /// Shorter than its fields say.
    #[error("invalid ticket: too short or truncated")]
    Truncated,
    /// The checksum does not match: copied incompletely or mistyped.
    #[error("invalid ticket: checksum mismatch (copied incompletely?)")]
    Checksum,
    /// A version this implementation does not read.
    #[error("invalid ticket: version {0} is not supported (ask the other side to run a current srudp and print a new ticket)")]
    Version(u8),
    /// Fields that do not make sense (unknown flags, bad UTF-8, trailing bytes).
    #[error("invalid ticket: bad contents")]
    Contents,
    /// The rendezvous field is not a `KEY@HOST:PORT` (spec §3.2).
    #[error("invalid ticket: {0}")]
    Rendezvous(RendezvousAddrError),
}

impl Ticket {
    /// The ticket's bytes before base32. The name must be at most 255
    /// bytes (a [`Name`](super::Name) is at most 64); the rendezvous
    /// address always fits ([`MAX_RENDEZVOUS_ADDR_LEN`](super::MAX_RENDEZVOUS_ADDR_LEN)).
    fn to_bytes(&self) -> Vec<u8> {
        let name = self.name.as_deref().unwrap_or("");
        let version = match (self.rendezvous.tcp_port(), self.rendezvous.tls()) {
            (Some(_), true) => VERSION_WITH_TLS,
            (Some(_), false) => VERSION_WITH_TCP,
            (None, _) => VERSION,
        };
        let mut out = vec![version];
        out.extend_from_slice(&self.peer.0);
        match &self.secret {
            Some(secret) => {
                out.push(FLAG_SECRET);
                out.extend_from_slice(&secret.to_bytes());
            }
            None => out.push(0),
        }
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        let rendezvous = self.rendezvous.to_string();
        out.push(rendezvous.len() as u8);
        out.extend_from_slice(rendezvous.as_bytes());
        let sum = Blake2s256::digest(&out);
        out.extend_from_slice(&sum[..CHECKSUM_LEN]);
        out
    }

    /// [`from_bytes`](Self::from_bytes), for the fuzz target.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn from_bytes_for_fuzzing(bytes: &[u8]) -> Result<Ticket, TicketError> {
        Ticket::from_bytes(bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Ticket, TicketError> {
        if bytes.len() > MAX_TICKET_BYTES {
            return Err(TicketError::Contents);
        }
        if bytes.len() < 1 + 32 + 1 + 2 + CHECKSUM_LEN {
            return Err(TicketError::Truncated);
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if Blake2s256::digest(body)[..CHECKSUM_LEN] != *sum {
            return Err(TicketError::Checksum);
        }
        if ![VERSION, VERSION_WITH_TCP, VERSION_WITH_TLS].contains(&body[0]) {
            return Err(TicketError::Version(body[0]));
        }
        let mut rest = &body[1..];
        let mut take = |n: usize| -> Result<&[u8], TicketError> {
            if rest.len() < n {
                return Err(TicketError::Truncated);
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let peer = PublicKey(take(32)?.try_into().map_err(|_| TicketError::Contents)?);
        let flags = take(1)?[0];
        if flags & !FLAG_SECRET != 0 {
            return Err(TicketError::Contents);
        }
        let secret = if flags & FLAG_SECRET != 0 {
            let bytes: [u8; 32] = take(32)?.try_into().map_err(|_| TicketError::Contents)?;
            Some(TicketSecret::from_bytes(bytes))
        } else {
            None
        };
        let name_len = usize::from(take(1)?[0]);
        let name = std::str::from_utf8(take(name_len)?).map_err(|_| TicketError::Contents)?;
        let rdv_len = usize::from(take(1)?[0]);
        let rendezvous = std::str::from_utf8(take(rdv_len)?).map_err(|_| TicketError::Contents)?;
        if !rest.is_empty() || rendezvous.is_empty() {
            return Err(TicketError::Contents);
        }
        let rendezvous = rendezvous.parse().map_err(TicketError::Rendezvous)?;
        Ok(Ticket {
            peer,
            secret,
            name: (!name.is_empty()).then(|| name.to_string()),
            rendezvous,
        })
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32_encode(&self.to_bytes()))
    }
}

impl FromStr for Ticket {
    type Err = TicketError;
    fn from_str(s: &str) -> Result<Ticket, TicketError> {
        let s = s.trim();
        if s.len() > MAX_TICKET_BYTES * 8 / 5 + 1 {
            return Err(TicketError::Contents);
        }
        Ticket::from_bytes(&base32_decode(s)?)
    }
}

fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn base32_decode(s: &str) -> Result<Vec<u8>, TicketError> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.chars() {
        let v = ALPHABET
            .iter()
            .position(|&a| a as char == c.to_ascii_lowercase())
            .ok_or(TicketError::BadCharacter(c))?;
        acc = (acc << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(name: Option<&str>) -> Ticket {
        Ticket {
            peer: PublicKey([7; 32]),
            secret: name.is_none().then(|| TicketSecret::from_bytes([9; 32])),
            name: name.map(str::to_string),
            rendezvous: "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrsa@192.0.2.1:4433"
                .parse()
                .unwrap(),
        }
    }

    #[test]
    fn a_ticket_round_trips_with_and_without_a_name() {
        for t in [ticket(None), ticket(Some("laptop"))] {
            let s = t.to_string();
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{s}"
            );
            assert_eq!(s.parse::<Ticket>().unwrap(), t);
            assert_eq!(
                s.to_uppercase().parse::<Ticket>().unwrap(),
                t,
                "case does not matter"
            );
        }
    }

    #[test]
    fn a_truncated_or_altered_ticket_is_refused() {
        let s = ticket(Some("x")).to_string();
        assert!(s[..s.len() - 3].parse::<Ticket>().is_err());
        let mut altered = s.clone().into_bytes();
        altered[10] = if altered[10] == b'a' { b'b' } else { b'a' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(altered.parse::<Ticket>(), Err(TicketError::Checksum));
        assert!(matches!(
            "not a ticket!".parse::<Ticket>(),
            Err(TicketError::BadCharacter(' '))
        ));
        assert_eq!("".parse::<Ticket>(), Err(TicketError::Truncated));
    }

    #[test]
    fn the_secret_survives_the_round_trip_and_unknown_flags_are_refused() {
        let t = ticket(None);
        let back: Ticket = t.to_string().parse().unwrap();
        assert_eq!(back.secret, Some(TicketSecret::from_bytes([9; 32])));
        let mut bytes = t.to_bytes();
        bytes[33] = 0x02; // an unknown flag
        let body = bytes.len() - CHECKSUM_LEN;
        let sum = Blake2s256::digest(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum[..CHECKSUM_LEN]);
        assert_eq!(Ticket::from_bytes(&bytes), Err(TicketError::Contents));
        // A version-1 ticket (no secret) is refused with a clear message.
        let mut old = t.to_bytes();
        old[0] = 1;
        let sum = Blake2s256::digest(&old[..body]);
        old[body..].copy_from_slice(&sum[..CHECKSUM_LEN]);
        assert_eq!(Ticket::from_bytes(&old), Err(TicketError::Version(1)));
    }

    /// A ticket's bytes, checksummed, with `rendezvous` as written.
    fn bytes_with_rendezvous(rendezvous: &str) -> Vec<u8> {
        let mut out = vec![VERSION];
        out.extend_from_slice(&[7; 32]);
        out.push(0); // no secret
        out.push(0); // no name
        out.push(rendezvous.len() as u8);
        out.extend_from_slice(rendezvous.as_bytes());
        let sum = Blake2s256::digest(&out);
        out.extend_from_slice(&sum[..CHECKSUM_LEN]);
        out
    }

    #[test]
    fn a_ticket_whose_rendezvous_is_not_key_at_host_port_is_refused_with_the_reason() {
        let good = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrsa@192.0.2.1:4433";
        assert!(Ticket::from_bytes(&bytes_with_rendezvous(good)).is_ok());
        for (bad, reason) in [
            ("192.0.2.1:4433", RendezvousAddrError::MissingAt),
            (
                "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrsa@192.0.2.1",
                RendezvousAddrError::MissingPort,
            ),
        ] {
            let text = base32_encode(&bytes_with_rendezvous(bad));
            let err = text.parse::<Ticket>().unwrap_err();
            assert_eq!(err, TicketError::Rendezvous(reason.clone()), "{bad}");
            assert_eq!(err.to_string(), format!("invalid ticket: {reason}"));
        }
    }

    #[test]
    fn a_rendezvous_with_a_tcp_port_travels_in_a_version_3_ticket() {
        let mut t = ticket(None);
        t.rendezvous = t.rendezvous.with_tcp_port(Some(443)).unwrap();
        let bytes = t.to_bytes();
        assert_eq!(bytes[0], VERSION_WITH_TCP);
        let back: Ticket = t.to_string().parse().unwrap();
        assert_eq!(back.rendezvous.tcp_port(), Some(443));
        assert_eq!(back, t);
        // Without a TCP port a ticket is written as before: version 2,
        // byte for byte what earlier versions wrote and read.
        assert_eq!(ticket(None).to_bytes()[0], VERSION);
        // A version-2 ticket whose address names a TCP port is read too.
        let mut v2 = bytes.clone();
        v2[0] = VERSION;
        let body = v2.len() - CHECKSUM_LEN;
        let sum = Blake2s256::digest(&v2[..body]);
        v2[body..].copy_from_slice(&sum[..CHECKSUM_LEN]);
        assert_eq!(Ticket::from_bytes(&v2), Ok(t));
        // Version 5 is not.
        let mut v5 = v2;
        v5[0] = 5;
        let sum = Blake2s256::digest(&v5[..body]);
        v5[body..].copy_from_slice(&sum[..CHECKSUM_LEN]);
        assert_eq!(Ticket::from_bytes(&v5), Err(TicketError::Version(5)));
    }

    #[test]
    fn a_rendezvous_with_a_tls_carrier_travels_in_a_version_4_ticket() {
        let mut t = ticket(Some("laptop"));
        t.rendezvous = t
            .rendezvous
            .with_tcp_port(Some(443))
            .unwrap()
            .with_tls(true);
        let bytes = t.to_bytes();
        assert_eq!(bytes[0], VERSION_WITH_TLS);
        let back: Ticket = t.to_string().parse().unwrap();
        assert!(back.rendezvous.tls());
        assert_eq!(back.rendezvous.tcp_port(), Some(443));
        assert_eq!(back, t);
        // An address of another version's form is read in any of them.
        let text = base32_encode(&bytes_with_rendezvous(&t.rendezvous.to_string()));
        assert_eq!(text.parse::<Ticket>().unwrap().rendezvous, t.rendezvous);
    }

    #[test]
    fn a_malformed_tcp_port_in_a_ticket_is_refused_with_the_reason() {
        let key = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrsa";
        for (bad, reason) in [
            (
                format!("{key}@192.0.2.1:4433/tcp:0"),
                RendezvousAddrError::BadTcpPort("0".into()),
            ),
            (
                format!("{key}@192.0.2.1:4433/udp:1"),
                RendezvousAddrError::UnknownCarrier("udp:1".into()),
            ),
        ] {
            let text = base32_encode(&bytes_with_rendezvous(&bad));
            assert_eq!(
                text.parse::<Ticket>(),
                Err(TicketError::Rendezvous(reason)),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_spec_example_parses() {
        // Spec §11.10: key 00 01 … 1f, secret 55 × 32, no name.
        let text = "aiaacaqdaqcqmbyibefawdanbyhraeiscmkbkfqxdamrugy4dupb6akvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkuaeg5dvoftwg2zugn4xe6dnonswsnlzmzuxg5lvobvhi2jsozqxqn3kovvhenlqmi2xgn3bgvwxinjxnzqxcmtriaytsmrogaxdelrrhi2dimztuyho6hi";
        let t: Ticket = text.parse().unwrap();
        let key: Vec<u8> = (0..32).collect();
        assert_eq!(&t.peer.0[..], &key[..]);
        assert_eq!(t.secret, Some(TicketSecret::from_bytes([0x55; 32])));
        assert_eq!(t.name, None);
        assert_eq!(
            t.rendezvous.to_string(),
            "tuqgck43yrxmsei5yfisuupjti2vax7jujr5pb5s7a5mt57naq2q@192.0.2.1:4433"
        );
        assert_eq!(t.to_string(), text);
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_text_never_panics_and_what_parses_prints_back(text in ".{0,1000}") {
            if let Ok(t) = text.parse::<Ticket>() {
                proptest::prop_assert_eq!(t.to_string().parse::<Ticket>(), Ok(t));
            }
        }

        #[test]
        fn parsing_base32_of_any_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = base32_encode(&bytes).parse::<Ticket>();
        }
    }

    #[test]
    fn base32_matches_rfc_4648_vectors() {
        assert_eq!(base32_encode(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32_decode("mzxw6ytboi").unwrap(), b"foobar");
        assert_eq!(base32_encode(b"f"), "my");
    }
}
