//! Any Data-packet plaintext: all frames valid or an error; valid frames re-emit to the same frames.
//! The body lives in `srudp_proto::fuzzing` (compiled under `cfg(fuzzing)` only).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| srudp_proto::fuzzing::frames(data));
