//! Rendezvous scenarios (spec §11) on the deterministic simulator: peers
//! behind simulated NATs register at a rendezvous server, connect by key or
//! name, fall back to the relay, detect their NATs, and survive a server
//! restart, NAT rebinding and hostile clients.

mod world;

mod determinism;
pub(crate) mod introduction;
mod limits;
mod lost_introduce;
mod nat_detection;
mod registration;
mod relay;
mod sweep;
mod waiting_ping;
