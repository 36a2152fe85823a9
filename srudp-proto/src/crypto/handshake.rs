//! One Noise handshake (NK or IK), two messages long (spec §4).

use snow::{Builder, HandshakeState};
use zeroize::Zeroize;

use super::resolver::SeededResolver;
use super::session::Session;
use super::{Cipher, CryptoError, HandshakePattern, Suite};
use crate::keys::{Keypair, PublicKey, KEY_LEN};
use crate::wire::{ConnectionId, HANDSHAKE_INIT_SIZE};

/// Bytes mixed into the handshake hash before the first message: the protocol
/// label, the suite (pattern and cipher) and the initiator's connection id,
/// so none can be changed in flight without the handshake failing.
pub(crate) fn prologue(suite: Suite, initiator_cid: ConnectionId) -> [u8; 17] {
    let mut p = [0u8; 17];
    p[..8].copy_from_slice(b"srudp/1\0");
    p[8] = suite.to_wire();
    p[9..17].copy_from_slice(&initiator_cid.0.to_be_bytes());
    p
}

/// The state of a handshake in progress.
pub(crate) struct Handshake {
    state: HandshakeState,
    /// Initiator only: what rebuilds `state` as it stood after message 1.
    restart: Option<Box<InitiatorRestart>>,
    cipher: Cipher,
}

/// Everything an initiator's handshake is made of. The ephemeral key comes
/// from `rng_seed`, so building again and writing the same message 1 gives
/// the same state: that is how a read of message 2 is undone.
struct InitiatorRestart {
    suite: Suite,
    local: Keypair,
    remote: PublicKey,
    initiator_cid: ConnectionId,
    rng_seed: [u8; 32],
    /// The payload of message 1, once written.
    message1_payload: Option<Vec<u8>>,
}

impl InitiatorRestart {
    fn build(&self) -> Result<HandshakeState, CryptoError> {
        let prologue = prologue(self.suite, self.initiator_cid);
        let builder = Builder::with_resolver(
            self.suite
                .noise_name()
                .parse()
                .map_err(CryptoError::Noise)?,
            Box::new(match self.suite.pattern {
                HandshakePattern::NK => SeededResolver::new(self.rng_seed),
                HandshakePattern::IK => SeededResolver::with_static(self.rng_seed, &self.local),
            }),
        )
        .prologue(&prologue)
        .map_err(CryptoError::Noise)?
        .remote_public_key(&self.remote.0)
        .map_err(CryptoError::Noise)?;
        let builder = match self.suite.pattern {
            HandshakePattern::NK => builder,
            HandshakePattern::IK => builder
                .local_private_key(self.local.secret().as_bytes())
                .map_err(CryptoError::Noise)?,
        };
        builder.build_initiator().map_err(CryptoError::Noise)
    }
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake").finish_non_exhaustive()
    }
}

impl Handshake {
    /// Starts a handshake toward `remote`, whose static key we must know.
    pub(crate) fn initiator(
        pattern: HandshakePattern,
        cipher: Cipher,
        local: &Keypair,
        remote: &PublicKey,
        initiator_cid: ConnectionId,
        rng_seed: [u8; 32],
    ) -> Result<Handshake, CryptoError> {
        let restart = InitiatorRestart {
            suite: Suite { pattern, cipher },
            local: local.clone(),
            remote: *remote,
            initiator_cid,
            rng_seed,
            message1_payload: None,
        };
        Ok(Handshake {
            state: restart.build()?,
            restart: Some(Box::new(restart)),
            cipher,
        })
    }

    /// Starts the responder's side of a handshake with our static key.
    pub(crate) fn responder(
        pattern: HandshakePattern,
        cipher: Cipher,
        local: &Keypair,
        initiator_cid: ConnectionId,
        rng_seed: [u8; 32],
    ) -> Result<Handshake, CryptoError> {
        let suite = Suite { pattern, cipher };
        let prologue = prologue(suite, initiator_cid);
        let state = Builder::with_resolver(
            suite.noise_name().parse().map_err(CryptoError::Noise)?,
            Box::new(SeededResolver::with_static(rng_seed, local)),
        )
        .prologue(&prologue)
        .map_err(CryptoError::Noise)?
        .local_private_key(local.secret().as_bytes())
        .map_err(CryptoError::Noise)?
        .build_responder()
        .map_err(CryptoError::Noise)?;
        Ok(Handshake {
            state,
            restart: None,
            cipher,
        })
    }

    /// Writes the next handshake message carrying `payload` into `out`.
    pub(crate) fn write(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, CryptoError> {
        let n = self
            .state
            .write_message(payload, out)
            .map_err(CryptoError::Noise)?;
        if let Some(restart) = &mut self.restart {
            restart
                .message1_payload
                .get_or_insert_with(|| payload.to_vec());
        }
        Ok(n)
    }

    /// Initiator: undoes a read of message 2 that authenticated but that the
    /// caller rejected (its cleartext header disagrees with the encrypted
    /// parameters, spec §4.3), so the handshake again waits for message 2,
    /// exactly as after writing message 1, and the genuine response can still
    /// complete it. Rebuilds the state from the same seed and payload (a few
    /// Diffie-Hellman operations); only a response altered in flight costs it.
    pub(crate) fn rewind_to_message2(&mut self) -> Result<(), CryptoError> {
        // Only an initiator that wrote message 1 has something to go back to.
        let not_an_initiator =
            || CryptoError::Noise(snow::Error::State(snow::error::StateProblem::NotTurnToRead));
        let restart = self.restart.as_ref().ok_or_else(not_an_initiator)?;
        let payload = restart
            .message1_payload
            .as_deref()
            .ok_or_else(not_an_initiator)?;
        let mut state = restart.build()?;
        let mut message1 = [0u8; HANDSHAKE_INIT_SIZE];
        state
            .write_message(payload, &mut message1)
            .map_err(CryptoError::Noise)?;
        self.state = state;
        Ok(())
    }

    /// Reads a handshake message, writing its payload into `payload`.
    /// A failure leaves the handshake as it was.
    pub(crate) fn read(
        &mut self,
        message: &[u8],
        payload: &mut [u8],
    ) -> Result<usize, CryptoError> {
        self.state
            .read_message(message, payload)
            .map_err(|_| CryptoError::HandshakeAuthentication)
    }

    /// The peer's static key, once the handshake revealed it (always for the
    /// initiator; for the responder only with IK).
    pub(crate) fn remote_static(&self) -> Option<PublicKey> {
        let raw = self.state.get_remote_static()?;
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(raw.get(..KEY_LEN)?);
        Some(PublicKey(key))
    }

    /// Turns a finished handshake into the packet protection keys: Noise's
    /// `Split()`, whose first key protects what the initiator sends and the
    /// second what the responder sends (the keys snow's transport state would
    /// use; `session.rs` tests that the bytes are the same).
    pub(crate) fn into_session(mut self) -> Result<Session, CryptoError> {
        let (mut initiator_key, mut responder_key) = self.raw_split()?;
        let session = if self.state.is_initiator() {
            Session::new(self.cipher, &initiator_key, &responder_key)
        } else {
            Session::new(self.cipher, &responder_key, &initiator_key)
        };
        initiator_key.zeroize();
        responder_key.zeroize();
        Ok(session)
    }

    fn raw_split(&mut self) -> Result<([u8; 32], [u8; 32]), CryptoError> {
        if !self.state.is_handshake_finished() {
            return Err(CryptoError::Noise(snow::Error::State(
                snow::error::StateProblem::HandshakeNotFinished,
            )));
        }
        Ok(self.state.dangerously_get_raw_split())
    }

    /// The session in this build's implementation, in the portable one, and
    /// snow's own transport state, all from this handshake.
    #[cfg(test)]
    pub(crate) fn into_sessions_and_snow(
        mut self,
    ) -> (Session, Session, snow::StatelessTransportState) {
        let (i, r) = self.raw_split().unwrap();
        let (send, recv) = if self.state.is_initiator() {
            (i, r)
        } else {
            (r, i)
        };
        let fast = Session::new(self.cipher, &send, &recv);
        let portable = Session::new_portable(self.cipher, &send, &recv);
        let snow = self.state.into_stateless_transport_mode().unwrap();
        (fast, portable, snow)
    }
}
