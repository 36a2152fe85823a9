//! Test and fuzzing hooks of one connection: its internal consistency
//! (every bound the spec promises against a hostile peer, asserted), and
//! sealing or opening packets with its keys outside the protocol's flow.

use std::time::Instant;

use super::*;

impl Connection {
    /// Panics if any resource bound or internal invariant is broken.
    pub(crate) fn assert_invariants(&self) {
        self.recv.assert_invariants(&self.config);
        self.sent.assert_invariants();
        assert!(
            self.path_responses.len() <= 4,
            "path responses queued without bound"
        );
        assert!(
            self.received.ranges().len() <= crate::wire::MAX_ACK_RANGES,
            "received ranges beyond the limit"
        );
        if !self.path.validated {
            assert!(
                self.path.bytes_sent
                    <= 3 * self.path.bytes_received.max(1) + MAX_DATAGRAM_SIZE as u64,
                "anti-amplification limit broken: sent {} for {} received",
                self.path.bytes_sent,
                self.path.bytes_received
            );
        }
    }

    /// The number our next Data packet will carry: every number below it
    /// was sent, so an ACK may name it (spec §6.2).
    pub(crate) fn next_packet_number(&self) -> u64 {
        self.next_pn
    }

    /// Seals `plaintext` (frames, unchecked) as our next Data packet into
    /// `buf`: tests and fuzzing forge an authenticated peer's packets with
    /// it. Like any packet that is not ack-eliciting, it is not recorded as
    /// sent (its number is simply used up). Returns the datagram's length.
    pub(crate) fn seal_raw(
        &mut self,
        _now: Instant,
        plaintext: &[u8],
        buf: &mut [u8],
    ) -> Option<usize> {
        let session = self.session.as_ref()?;
        let pn = self.next_pn;
        let header = DataHeader {
            dcid: self.remote_cid,
            packet_number: pn,
        };
        let h = header.emit(buf).ok()?;
        let n = session.seal(pn, plaintext, buf.get_mut(h..)?).ok()?;
        self.next_pn += 1;
        // Not ack-eliciting: the sender keeps no record of it (spec §6.2).
        Some(h + n)
    }

    /// Opens a Data packet sealed by the peer, without touching any state
    /// (no replay check, nothing recorded). Returns the plaintext.
    pub(crate) fn open_unrecorded(&self, packet_number: u64, sealed: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0u8; sealed.len()];
        let n = self
            .session
            .as_ref()?
            .open(packet_number, sealed, &mut out)
            .ok()?;
        out.truncate(n);
        Some(out)
    }
}
