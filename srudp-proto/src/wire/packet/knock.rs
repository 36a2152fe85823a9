//! The two small datagrams of hole punching toward addresses that have not
//! answered yet (spec §4.4, §9.3.8, §9.3.9): a [`Knock`] asks "does the
//! holder of this key live here?", a [`KnockReply`] says yes by echoing the
//! knock's token. Only an address that answered receives the 1200-byte
//! HandshakeInit, so nobody can aim handshakes at a third party.
//!
//! Both have a fixed size: anything longer is `TooLarge`, anything shorter
//! `Truncated`. Parsers borrow nothing and never panic; emitters fail with
//! [`WireError::BufferTooSmall`] rather than write a partial datagram.

use super::{ConnectionId, MAC_LEN};
use crate::wire::coding::{Reader, Writer};
use crate::wire::{WireError, VERSION};

/// Packet type byte of a [`Knock`].
pub const TYPE_KNOCK: u8 = 7;
/// Packet type byte of a [`KnockReply`].
pub const TYPE_KNOCK_REPLY: u8 = 8;
/// Length of a knock token.
pub const KNOCK_TOKEN_LEN: usize = 8;
/// The exact size of a [`Knock`] datagram.
pub const KNOCK_SIZE: usize = KNOCK_MAC_OFFSET + MAC_LEN;
/// Offset of the MAC in a [`Knock`]: the bytes before it are what it covers.
pub const KNOCK_MAC_OFFSET: usize = 2 + 8 + KNOCK_TOKEN_LEN;
/// The exact size of a [`KnockReply`] datagram: smaller than the knock it
/// answers, so answering knocks amplifies nothing.
pub const KNOCK_REPLY_SIZE: usize = 2 + 8 + KNOCK_TOKEN_LEN;

/// A knock: `version u8 | type u8 = 7 | sender_cid u64 | token[8] | mac[16]`,
/// exactly [`KNOCK_SIZE`] (34) bytes.
///
/// `mac` is keyed like a HandshakeInit's `mac1`, by the responder's public
/// key, so only an endpoint with that key answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knock {
    /// The initiator's connection ID: the reply is addressed with it.
    pub sender_cid: ConnectionId,
    /// A secret the initiator chose for this destination address.
    pub token: [u8; KNOCK_TOKEN_LEN],
    /// `MAC(mac1_key, bytes 0–17)`.
    pub mac: [u8; MAC_LEN],
}

impl Knock {
    pub(super) fn parse_body(datagram_len: usize, mut r: Reader<'_>) -> Result<Knock, WireError> {
        if datagram_len > KNOCK_SIZE {
            return Err(WireError::TooLarge);
        }
        Ok(Knock {
            sender_cid: ConnectionId(r.u64()?),
            token: r.array()?,
            mac: r.array()?,
        })
    }

    /// Writes the knock; returns its length ([`KNOCK_SIZE`]).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(buf);
        w.ensure(KNOCK_SIZE)?;
        w.put_u8(VERSION)?;
        w.put_u8(TYPE_KNOCK)?;
        w.put_u64(self.sender_cid.0)?;
        w.put_bytes(&self.token)?;
        w.put_bytes(&self.mac)?;
        Ok(w.len())
    }
}

/// The answer to a [`Knock`]: `version u8 | type u8 = 8 | initiator_cid u64 |
/// token[8]`, exactly [`KNOCK_REPLY_SIZE`] (18) bytes, sent to the knock's
/// source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnockReply {
    /// Copied from the knock's `sender_cid`.
    pub initiator_cid: ConnectionId,
    /// Copied from the knock's `token`.
    pub token: [u8; KNOCK_TOKEN_LEN],
}

impl KnockReply {
    pub(super) fn parse_body(
        datagram_len: usize,
        mut r: Reader<'_>,
    ) -> Result<KnockReply, WireError> {
        if datagram_len > KNOCK_REPLY_SIZE {
            return Err(WireError::TooLarge);
        }
        Ok(KnockReply {
            initiator_cid: ConnectionId(r.u64()?),
            token: r.array()?,
        })
    }

    /// The reply to `knock`.
    pub fn to(knock: &Knock) -> KnockReply {
        KnockReply {
            initiator_cid: knock.sender_cid,
            token: knock.token,
        }
    }

    /// Writes the reply; returns its length ([`KNOCK_REPLY_SIZE`]).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(buf);
        w.ensure(KNOCK_REPLY_SIZE)?;
        w.put_u8(VERSION)?;
        w.put_u8(TYPE_KNOCK_REPLY)?;
        w.put_u64(self.initiator_cid.0)?;
        w.put_bytes(&self.token)?;
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Packet;
    use proptest::prelude::*;

    /// Knock, `sender_cid` 0102030405060708, token a0…a7, mac b0…bf (spec §9.6).
    const KNOCK: [u8; KNOCK_SIZE] = [
        0x01, 0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4,
        0xa5, 0xa6, 0xa7, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb,
        0xbc, 0xbd, 0xbe, 0xbf,
    ];
    /// Its reply (spec §9.6).
    const REPLY: [u8; KNOCK_REPLY_SIZE] = [
        0x01, 0x08, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4,
        0xa5, 0xa6, 0xa7,
    ];

    fn knock() -> Knock {
        Knock {
            sender_cid: ConnectionId(0x0102_0304_0506_0708),
            token: [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7],
            mac: core::array::from_fn(|i| 0xb0 + i as u8),
        }
    }

    #[test]
    fn knock_literal_bytes_round_trip() {
        assert_eq!(Packet::parse(&KNOCK), Ok(Packet::Knock(knock())));
        let mut out = [0u8; 64];
        assert_eq!(knock().emit(&mut out), Ok(KNOCK_SIZE));
        assert_eq!(&out[..KNOCK_SIZE], &KNOCK);
    }

    #[test]
    fn knock_reply_literal_bytes_round_trip_and_echo_the_knock() {
        let reply = KnockReply::to(&knock());
        assert_eq!(Packet::parse(&REPLY), Ok(Packet::KnockReply(reply)));
        let mut out = [0u8; 64];
        assert_eq!(reply.emit(&mut out), Ok(KNOCK_REPLY_SIZE));
        assert_eq!(&out[..KNOCK_REPLY_SIZE], &REPLY);
    }

    #[test]
    fn the_reply_is_smaller_than_the_knock() {
        const { assert!(KNOCK_REPLY_SIZE < KNOCK_SIZE) };
        assert_eq!((KNOCK_SIZE, KNOCK_REPLY_SIZE), (34, 18));
    }

    #[test]
    fn wrong_sizes_are_refused() {
        for n in 0..KNOCK_SIZE {
            let err = Packet::parse(&KNOCK[..n]).unwrap_err();
            assert_eq!(err, WireError::Truncated, "knock of {n} bytes");
        }
        for n in 0..KNOCK_REPLY_SIZE {
            let err = Packet::parse(&REPLY[..n]).unwrap_err();
            assert_eq!(err, WireError::Truncated, "reply of {n} bytes");
        }
        let mut long = KNOCK.to_vec();
        long.push(0);
        assert_eq!(Packet::parse(&long), Err(WireError::TooLarge));
        let mut long = REPLY.to_vec();
        long.push(0);
        assert_eq!(Packet::parse(&long), Err(WireError::TooLarge));
    }

    #[test]
    fn emitting_into_a_short_buffer_writes_nothing() {
        let mut short = [9u8; KNOCK_SIZE - 1];
        assert_eq!(knock().emit(&mut short), Err(WireError::BufferTooSmall));
        assert!(short.iter().all(|&b| b == 9));
        let mut short = [9u8; KNOCK_REPLY_SIZE - 1];
        let reply = KnockReply::to(&knock());
        assert_eq!(reply.emit(&mut short), Err(WireError::BufferTooSmall));
        assert!(short.iter().all(|&b| b == 9));
    }

    proptest! {
        #[test]
        fn knocks_round_trip(cid: u64, token: [u8; KNOCK_TOKEN_LEN], mac: [u8; MAC_LEN]) {
            let k = Knock { sender_cid: ConnectionId(cid), token, mac };
            let mut out = [0u8; KNOCK_SIZE];
            prop_assert_eq!(k.emit(&mut out), Ok(KNOCK_SIZE));
            prop_assert_eq!(Packet::parse(&out), Ok(Packet::Knock(k)));
            let r = KnockReply::to(&k);
            let mut out = [0u8; KNOCK_REPLY_SIZE];
            prop_assert_eq!(r.emit(&mut out), Ok(KNOCK_REPLY_SIZE));
            prop_assert_eq!(Packet::parse(&out), Ok(Packet::KnockReply(r)));
        }

        #[test]
        fn any_bytes_after_a_knock_prefix_parse_or_fail_cleanly(
            ty in 7u8..=8,
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut dg = vec![1, ty];
            dg.extend_from_slice(&body);
            let expected = if ty == TYPE_KNOCK { KNOCK_SIZE } else { KNOCK_REPLY_SIZE };
            match Packet::parse(&dg) {
                Ok(Packet::Knock(k)) => {
                    prop_assert_eq!(dg.len(), expected);
                    let mut out = [0u8; KNOCK_SIZE];
                    k.emit(&mut out).unwrap();
                    prop_assert_eq!(&out[..], &dg[..]);
                }
                Ok(Packet::KnockReply(r)) => {
                    prop_assert_eq!(dg.len(), expected);
                    let mut out = [0u8; KNOCK_REPLY_SIZE];
                    r.emit(&mut out).unwrap();
                    prop_assert_eq!(&out[..], &dg[..]);
                }
                Ok(other) => prop_assert!(false, "parsed as {:?}", other),
                Err(e) => prop_assert!(
                    matches!(e, WireError::Truncated | WireError::TooLarge),
                    "unexpected error {:?}", e
                ),
            }
        }
    }
}
