//! Relay fallback (spec §11.5) and the search for a direct path (§11.6).
