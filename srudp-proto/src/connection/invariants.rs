//! Internal consistency checks of one connection, for tests and fuzzing:
//! every bound the spec promises against a hostile peer, asserted.

use super::*;

impl Connection {
    /// Panics if any resource bound or internal invariant is broken.
    pub(crate) fn assert_invariants(&self) {
        self.recv.assert_invariants(&self.config);
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

    /// Seals `plaintext` as our next Data packet into `buf`, without
    /// recording it as sent: tests and fuzzing forge an authenticated peer's
    /// packets with it. Returns the datagram's length.
    pub(crate) fn seal_unrecorded(&mut self, plaintext: &[u8], buf: &mut [u8]) -> Option<usize> {
        let session = self.session.as_ref()?;
        let header = DataHeader {
            dcid: self.remote_cid,
            packet_number: self.next_pn,
        };
        let h = header.emit(buf).ok()?;
        let n = session
            .seal(self.next_pn, plaintext, buf.get_mut(h..)?)
            .ok()?;
        self.next_pn += 1;
        Some(h + n)
    }
}
