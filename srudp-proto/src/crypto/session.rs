//! Packet protection after the handshake (spec §5): ChaCha20-Poly1305 with the
//! explicit 64-bit packet number as nonce, through snow's stateless transport.

use snow::StatelessTransportState;

use super::CryptoError;

/// The keys of an established connection.
pub(crate) struct Session {
    transport: StatelessTransportState,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(transport: StatelessTransportState) -> Self {
        Session { transport }
    }

    /// Encrypts `plaintext` as packet `packet_number` into `out` (which needs
    /// room for the plaintext and the 16-byte tag). Returns the bytes written.
    pub(crate) fn seal(
        &self,
        packet_number: u64,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        self.transport
            .write_message(packet_number, plaintext, out)
            .map_err(CryptoError::Noise)
    }

    /// Decrypts and authenticates packet `packet_number`. On failure nothing
    /// is written that the caller may use.
    pub(crate) fn open(
        &self,
        packet_number: u64,
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        self.transport
            .read_message(packet_number, ciphertext, out)
            .map_err(|_| CryptoError::PacketAuthentication)
    }
}
