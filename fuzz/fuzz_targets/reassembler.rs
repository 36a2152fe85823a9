//! The stream reassembler fed arbitrary (offset, bytes) frames and reads, checked against a model.
//! The body lives in `srudp_proto::fuzzing` (compiled under `cfg(fuzzing)` only).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| srudp_proto::fuzzing::reassembler(data));
