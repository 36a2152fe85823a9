//! Test support shared by srudp's runtime adapters (`srudp-std`,
//! `srudp-tokio`, `srudp-async-std`): not published.
//!
//! * [`ImpairingRelay`] — a UDP relay on loopback between two peers that
//!   drops, duplicates, reorders and delays datagrams, every decision drawn
//!   from a seed, so that adapters can be tested over a bad path with real
//!   sockets.
//! * [`ArmedLossRelay`] — a relay that loses exactly what a test asks it
//!   to: a side's first CLOSE, for the closing-state tests.
//! * [`process_cpu_time`] — CPU time consumed by the process, for tests that
//!   assert an idle endpoint does not busy-loop.
//! * [`fixtures`] — seeded configurations, loopback addresses and payloads
//!   for the async adapters' tests.

mod armed_loss;
mod cpu;
pub mod fixtures;
mod relay;

pub use armed_loss::ArmedLossRelay;
pub use cpu::process_cpu_time;
pub use relay::{ImpairingRelay, Impairment, RelayStats, MAX_QUEUED, MAX_TICK, REORDER_HOLD};
