//! Tickets: what `srudp listen` prints and `srudp connect` takes — the
//! listener's public key, its optional name and the rendezvous string, in
//! one copy-paste-safe word.
//!
//! Layout before encoding: version (1) | listener key (32) | name length
//! (1) | name | rendezvous length (1) | rendezvous `KEY@HOST:PORT` |
//! checksum (4: the first bytes of SHA-256 over everything before). The
//! whole is base32 (RFC 4648 alphabet, lowercase, no padding): letters and
//! digits only, so shells, chat clients and double-click selection leave it
//! whole; the checksum catches a truncated or mistyped copy.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use srudp_tokio::PublicKey;

const VERSION: u8 = 1;
const CHECKSUM_LEN: usize = 4;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A parsed ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) peer: PublicKey,
    pub(crate) name: Option<String>,
    pub(crate) rendezvous: String,
}

/// Why a ticket does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TicketError {
    #[error("invalid ticket: character {0:?} is not base32 (a-z, 2-7)")]
    BadCharacter(char),
    #[error("invalid ticket: too short or truncated")]
    Truncated,
    #[error("invalid ticket: checksum mismatch (copied incompletely?)")]
    Checksum,
    #[error("invalid ticket: version {0} is not supported")]
    Version(u8),
    #[error("invalid ticket: bad contents")]
    Contents,
}

impl Ticket {
    fn to_bytes(&self) -> Vec<u8> {
        let name = self.name.as_deref().unwrap_or("");
        let mut out = vec![VERSION];
        out.extend_from_slice(&self.peer.0);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(self.rendezvous.len() as u8);
        out.extend_from_slice(self.rendezvous.as_bytes());
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum[..CHECKSUM_LEN]);
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Ticket, TicketError> {
        if bytes.len() < 1 + 32 + 2 + CHECKSUM_LEN {
            return Err(TicketError::Truncated);
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if Sha256::digest(body)[..CHECKSUM_LEN] != *sum {
            return Err(TicketError::Checksum);
        }
        if body[0] != VERSION {
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
        let name_len = usize::from(take(1)?[0]);
        let name = std::str::from_utf8(take(name_len)?).map_err(|_| TicketError::Contents)?;
        let rdv_len = usize::from(take(1)?[0]);
        let rendezvous = std::str::from_utf8(take(rdv_len)?).map_err(|_| TicketError::Contents)?;
        if !rest.is_empty() || rendezvous.is_empty() {
            return Err(TicketError::Contents);
        }
        Ok(Ticket {
            peer,
            name: (!name.is_empty()).then(|| name.to_string()),
            rendezvous: rendezvous.to_string(),
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
        Ticket::from_bytes(&base32_decode(s.trim())?)
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
            name: name.map(str::to_string),
            rendezvous: "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst@192.0.2.1:4433"
                .into(),
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
    fn base32_matches_rfc_4648_vectors() {
        assert_eq!(base32_encode(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32_decode("mzxw6ytboi").unwrap(), b"foobar");
        assert_eq!(base32_encode(b"f"), "my");
    }
}
