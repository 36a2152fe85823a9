//! Transport parameters: the payload of both handshake messages (spec §4.3).

use crate::ticket::TICKET_PROOF_LEN;
use crate::wire::coding::{Reader, Writer};
use crate::wire::{ConnectionId, WireError, MAX_DATAGRAM_SIZE};

/// Largest max_ack_delay a peer may announce, in milliseconds (2^14, as in QUIC).
pub(crate) const MAX_ACK_DELAY_LIMIT_MS: u64 = 1 << 14;

/// Limits and choices each side announces in its handshake message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TransportParams {
    /// The responder refuses the connection (response only).
    pub(crate) refused: bool,
    /// The sender's own connection id (must match the packet header).
    pub(crate) cid: ConnectionId,
    /// Initial flow-control limit: the peer may send stream bytes below this offset.
    pub(crate) max_data: u64,
    /// The sender's idle timeout in milliseconds (0: none).
    pub(crate) idle_timeout_ms: u64,
    /// How long the sender may delay acknowledgments, in milliseconds.
    pub(crate) max_ack_delay_ms: u64,
    /// The sender takes ACK_FREQUENCY frames (spec §6.2); a peer sends it
    /// none otherwise.
    pub(crate) accepts_ack_frequency: bool,
    /// The sender's proof that it holds the connection's ticket (spec §4.9).
    pub(crate) ticket_proof: Option<[u8; TICKET_PROOF_LEN]>,
    /// With `refused`: the responder refuses because the initiation did not
    /// prove it holds the ticket the responder requires (response only).
    pub(crate) ticket_required: bool,
    /// The sender initiates because a rendezvous server introduced us
    /// (init only, spec §4.3, §11.4): the responder holds the connection
    /// for that introduction.
    pub(crate) introduced: bool,
    /// The largest UDP payload the sender accepts (spec §4.3, §6.9); a
    /// peer that does not send the field accepts [`MAX_DATAGRAM_SIZE`].
    pub(crate) max_udp_payload: u64,
}

/// Most bytes the parameters take encoded (six fields, the longest
/// varints, a ticket proof).
pub(crate) const MAX_PARAMS_LEN: usize = 1 + 8 + 4 * 8 + TICKET_PROOF_LEN;

/// `flags` bit 0: the responder refuses the connection.
const FLAG_REFUSED: u8 = 1;
/// `flags` bit 1: the sender takes ACK_FREQUENCY frames.
const FLAG_ACK_FREQUENCY: u8 = 2;
/// `flags` bit 2: a ticket proof follows the fixed fields.
const FLAG_TICKET: u8 = 4;
/// `flags` bit 3: refused for want of a valid ticket (response only).
const FLAG_TICKET_REQUIRED: u8 = 8;
/// `flags` bit 4: the initiator connects because of an introduction.
const FLAG_INTRODUCED: u8 = 16;

impl TransportParams {
    pub(crate) fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(buf);
        let mut flags = 0;
        if self.refused {
            flags |= FLAG_REFUSED;
        }
        if self.accepts_ack_frequency {
            flags |= FLAG_ACK_FREQUENCY;
        }
        if self.ticket_proof.is_some() {
            flags |= FLAG_TICKET;
        }
        if self.ticket_required {
            flags |= FLAG_TICKET_REQUIRED;
        }
        if self.introduced {
            flags |= FLAG_INTRODUCED;
        }
        w.put_u8(flags)?;
        w.put_u64(self.cid.0)?;
        w.put_varint(self.max_data)?;
        w.put_varint(self.idle_timeout_ms)?;
        w.put_varint(self.max_ack_delay_ms)?;
        if let Some(proof) = &self.ticket_proof {
            w.put_bytes(proof)?;
        }
        w.put_varint(self.max_udp_payload)?;
        Ok(w.len())
    }

    /// Parses the parameters; unknown trailing bytes are ignored so later
    /// versions can add fields.
    pub(crate) fn decode(buf: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(buf);
        let flags = r.u8()?;
        let cid = ConnectionId(r.u64()?);
        let max_data = r.varint()?;
        let idle_timeout_ms = r.varint()?;
        let max_ack_delay_ms = r.varint()?;
        if max_ack_delay_ms > MAX_ACK_DELAY_LIMIT_MS {
            return Err(WireError::InvalidLength);
        }
        let ticket_proof = if flags & FLAG_TICKET != 0 {
            Some(r.array::<TICKET_PROOF_LEN>()?)
        } else {
            None
        };
        // Added after version 1's first release: a sender that predates it
        // ends here, and accepts the base size.
        let max_udp_payload = if r.peek_rest().is_empty() {
            MAX_DATAGRAM_SIZE as u64
        } else {
            r.varint()?
        };
        if max_udp_payload < MAX_DATAGRAM_SIZE as u64 {
            return Err(WireError::InvalidLength);
        }
        Ok(TransportParams {
            refused: flags & FLAG_REFUSED != 0,
            accepts_ack_frequency: flags & FLAG_ACK_FREQUENCY != 0,
            ticket_proof,
            ticket_required: flags & FLAG_REFUSED != 0 && flags & FLAG_TICKET_REQUIRED != 0,
            introduced: flags & FLAG_INTRODUCED != 0,
            cid,
            max_data,
            idle_timeout_ms,
            max_ack_delay_ms,
            max_udp_payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_through_literal_bytes() {
        let p = TransportParams {
            refused: false,
            cid: ConnectionId(0x0102030405060708),
            max_data: 4 << 20,
            idle_timeout_ms: 30_000,
            max_ack_delay_ms: 25,
            accepts_ack_frequency: true,
            ticket_proof: None,
            ticket_required: false,
            introduced: false,
            max_udp_payload: 1472,
        };
        let mut buf = [0u8; 64];
        let n = p.encode(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &[
                0x02, 1, 2, 3, 4, 5, 6, 7, 8, 0x80, 0x40, 0x00, 0x00, 0x80, 0x00, 0x75, 0x30, 25,
                0x45, 0xc0
            ]
        );
        assert_eq!(TransportParams::decode(&buf[..n]).unwrap(), p);
        // A peer that predates max_udp_payload ends after max_ack_delay_ms:
        // it accepts the base size (spec §4.3).
        let older = TransportParams::decode(&buf[..n - 2]).unwrap();
        assert_eq!(older.max_udp_payload, 1200);
        // Below the base is invalid: every path carries 1200 bytes.
        let mut small = buf;
        small[n - 2..n].copy_from_slice(&[0x44, 0xaf]); // 1199
        assert_eq!(
            TransportParams::decode(&small[..n]),
            Err(WireError::InvalidLength)
        );
        // A peer that predates ACK_FREQUENCY sends flags 0 (and ignores bit 1).
        buf[0] = 0x00;
        let old = TransportParams::decode(&buf[..n]).unwrap();
        assert!(!old.accepts_ack_frequency);
        buf[0] = 0x80;
        let unknown = TransportParams::decode(&buf[..n]).unwrap();
        assert!(
            !unknown.refused && !unknown.accepts_ack_frequency,
            "unknown bits ignored"
        );
        // Bit 4: the initiator comes from an introduction (spec §11.4).
        buf[0] = 0x12;
        let introduced = TransportParams::decode(&buf[..n]).unwrap();
        assert!(introduced.introduced && introduced.accepts_ack_frequency);
    }

    #[test]
    fn a_ticket_proof_follows_the_fixed_fields() {
        let p = TransportParams {
            refused: true,
            cid: ConnectionId(1),
            max_data: 1,
            idle_timeout_ms: 0,
            max_ack_delay_ms: 25,
            accepts_ack_frequency: false,
            ticket_proof: Some([0xaa; 32]),
            ticket_required: true,
            introduced: false,
            max_udp_payload: 1200,
        };
        let mut buf = [0u8; MAX_PARAMS_LEN];
        let n = p.encode(&mut buf).unwrap();
        let mut expected = vec![0x0d, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 25];
        expected.extend_from_slice(&[0xaa; 32]);
        expected.extend_from_slice(&[0x44, 0xb0]); // max_udp_payload 1200
        assert_eq!(&buf[..n], &expected[..]);
        assert_eq!(TransportParams::decode(&buf[..n]).unwrap(), p);
        // A proof cut short is malformed, not a shorter proof.
        assert!(TransportParams::decode(&buf[..n - 3]).is_err());
        // `ticket_required` means nothing without `refused`.
        buf[0] = 0x08;
        assert!(!TransportParams::decode(&buf[..12]).unwrap().ticket_required);
    }

    #[test]
    fn absurd_ack_delay_is_rejected() {
        let mut buf = [0u8; 64];
        let p = TransportParams {
            refused: true,
            cid: ConnectionId(1),
            max_data: 1,
            idle_timeout_ms: 1,
            max_ack_delay_ms: 1 << 20,
            accepts_ack_frequency: false,
            ticket_proof: None,
            ticket_required: false,
            introduced: false,
            max_udp_payload: 1472,
        };
        let n = p.encode(&mut buf).unwrap();
        assert!(TransportParams::decode(&buf[..n]).is_err());
        assert!(TransportParams::decode(&buf[..3]).is_err());
    }

    use crate::wire::VARINT_MAX;
    use proptest::prelude::*;

    proptest! {
        /// Every valid parameter set survives encoding, with any trailing
        /// bytes a later version might add.
        #[test]
        fn params_round_trip(
            refused: bool,
            accepts_ack_frequency: bool,
            ticket_proof: Option<[u8; 32]>,
            ticket_required: bool,
            introduced: bool,
            cid: u64,
            max_data in 0..=VARINT_MAX,
            idle in 0..=VARINT_MAX,
            delay in 0..=MAX_ACK_DELAY_LIMIT_MS,
            max_udp_payload in (MAX_DATAGRAM_SIZE as u64)..=VARINT_MAX,
            trailer in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let p = TransportParams {
                refused,
                cid: ConnectionId(cid),
                max_data,
                idle_timeout_ms: idle,
                max_ack_delay_ms: delay,
                accepts_ack_frequency,
                ticket_proof,
                ticket_required: refused && ticket_required,
                introduced,
                max_udp_payload,
            };
            let mut buf = [0u8; MAX_PARAMS_LEN];
            let n = p.encode(&mut buf).unwrap();
            let bytes = [&buf[..n], &trailer[..]].concat();
            prop_assert_eq!(TransportParams::decode(&bytes), Ok(p));
        }

        #[test]
        fn arbitrary_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = TransportParams::decode(&bytes) {
                prop_assert!(p.max_ack_delay_ms <= MAX_ACK_DELAY_LIMIT_MS);
            }
        }
    }
}
