//! The adversary suite (issue 15, spec §10): one test per attack, written
//! from the attacker's side. Each performs the attack, asserts that it
//! fails, and asserts that honest traffic beside it is unharmed.
//!
//! Modules are named after what the attacker goes after: the peer's
//! identity, the tickets, third parties (reflection), the endpoint's CPU and
//! memory, and the rendezvous server's registrations, relays and groups.

#[path = "../common/mod.rs"]
mod common;

#[path = "../rendezvous/world.rs"]
mod world;

mod ack_flood;
mod group_snooping;
mod hostile_peer;
mod identity;
mod never_acknowledges;
mod opened_notices;
mod reflection;
mod relay_exhaustion;
mod rendezvous_attacker;
mod server_backlog;
mod tickets;
