//! Noise handshakes, packet protection and replay protection.
mod pattern;
pub mod replay_window;

pub use pattern::HandshakePattern;
pub use replay_window::ReplayWindow;
