//! A stream carrier's bytes (length-prefixed datagrams, spec §12) cut into arbitrary chunks: the decoder agrees with a one-pass reading, stays within one frame of buffering, and stops for good at a malformed length.
//! The body lives in `srudp_proto::fuzzing` (compiled under `cfg(fuzzing)` only).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| srudp_proto::fuzzing::stream_carrier(data));
