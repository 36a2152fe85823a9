//! Test and fuzzing hooks of [`Endpoint`]: internal invariants, and forging
//! an authenticated peer's packets. Compiled only for this crate's unit tests,
//! under `cfg(fuzzing)` (cargo-fuzz), and with the `test-hooks` feature (the
//! adversary tests and benches play a hostile peer with them); never part of
//! the public API.

use super::*;

impl Endpoint {
    /// Panics unless every bound on the endpoint's state holds and its
    /// indexes agree with its connections.
    #[doc(hidden)]
    pub fn assert_invariants(&self) {
        assert!(
            self.connections.len() <= self.config.max_connections,
            "more connections than max_connections"
        );
        let pending: BTreeSet<ConnectionHandle> = self
            .connections
            .iter()
            .filter(|(_, s)| s.conn.is_pending_responder())
            .map(|(h, _)| *h)
            .collect();
        assert_eq!(pending, self.pending, "pending set out of step");
        assert!(pending.len() <= self.config.max_pending_handshakes);
        let punching: BTreeSet<ConnectionHandle> = self
            .connections
            .iter()
            .filter(|(_, s)| !s.released && s.conn.is_handshaking())
            .map(|(h, _)| *h)
            .collect();
        assert_eq!(punching, self.punching, "punching set out of step");
        let armed = self
            .connections
            .values()
            .filter(|s| s.conn.poll_timeout().is_some())
            .count();
        assert_eq!(self.timers.len(), armed, "timer queue out of step");
        assert_eq!(
            self.timers.next(),
            self.connections
                .values()
                .filter_map(|s| s.conn.poll_timeout())
                .min(),
            "the timer queue's next deadline is the earliest connection's"
        );
        assert!(self.stateless.len() <= MAX_STATELESS_QUEUE);
        assert_eq!(self.by_cid.len(), self.connections.len(), "cid index size");
        for (handle, slot) in &self.connections {
            assert_eq!(self.by_cid.get(&slot.conn.local_cid()), Some(handle));
            assert_eq!(slot.pending, slot.conn.is_pending_responder());
            assert_eq!(self.timers.deadline(*handle), slot.conn.poll_timeout());
            if let Some(key) = slot.init_key {
                assert_eq!(self.by_init.get(&key), Some(handle));
            }
            slot.conn.assert_invariants();
        }
        for (key, handle) in &self.by_init {
            let slot = self
                .connections
                .get(handle)
                .expect("init index names a live slot");
            assert_eq!(slot.init_key.as_ref(), Some(key));
        }
    }

    /// The packet number the next Data packet of `handle` will carry (fuzz
    /// targets aim forged ACKs at the numbers it sent).
    #[doc(hidden)]
    pub fn next_packet_number(&self, handle: ConnectionHandle) -> Option<u64> {
        Some(self.connections.get(&handle)?.conn.next_packet_number())
    }

    /// Seals `plaintext` (frames, unchecked) as the next Data packet of
    /// `handle` toward its peer, into `buf`; returns the datagram's length.
    /// Lets tests and fuzz targets hand the peer authenticated packets with
    /// arbitrary frames.
    #[doc(hidden)]
    pub fn seal_for_peer(
        &mut self,
        now: Instant,
        handle: ConnectionHandle,
        plaintext: &[u8],
        buf: &mut [u8],
    ) -> Option<usize> {
        let n = self
            .connections
            .get_mut(&handle)?
            .conn
            .seal_raw(now, plaintext, buf);
        self.refresh(handle);
        n
    }

    /// The plaintext of a Data packet the peer of `handle` sealed, opened
    /// without changing any state (to build fuzz seeds from real traffic).
    #[doc(hidden)]
    pub fn open_from_peer(&self, handle: ConnectionHandle, datagram: &[u8]) -> Option<Vec<u8>> {
        let Ok(Packet::Data(header, sealed)) = Packet::parse(datagram) else {
            return None;
        };
        self.connections
            .get(&handle)?
            .conn
            .open_unrecorded(header.packet_number, sealed)
    }
}
