//! Benchmarks of srudp's loss recovery and congestion control.
//!
//! Each binary in `src/bin` runs srudp endpoints over the deterministic
//! network simulator of `srudp-proto` (feature `sim`) in virtual time, takes
//! `--seed`, and prints one JSON object per line, so results can be compared
//! run to run. The results and the commands are in `BENCHMARKS.md` at the
//! repository root.
//!
//! * `goodput` — bulk transfer over a 50 ms, 100 Mbit/s path with random
//!   and bursty loss, against the PFTK model of TCP throughput.
//! * `latency` — KCP's own test: 8-byte messages every 20 ms over 10 % loss
//!   and a 60–125 ms RTT, echoed back; the round-trip delay of each message.
//! * `fairness` — two flows sharing one bottleneck, one starting late
//!   ([`two_flows`]), one run or a sweep over seeds and start phases.
//!
//! Each takes `--cc cubic|newreno|bbr` to choose the senders' congestion
//! controller ([`controller`]).
//!
//! This library holds what they share: the reference formulas
//! ([`models`]), argument parsing ([`args`]) and scenario drivers
//! ([`harness`]).

pub mod args;
pub mod cipher;
pub mod controller;
pub mod counting_alloc;
pub mod harness;
pub mod in_memory;
pub mod models;
pub mod two_flows;
