//! `--congestion`: which congestion controller every connection of this
//! process uses (spec §7.1).

use std::sync::{Arc, OnceLock};

use srudp_proto::congestion::{BbrFactory, ControllerFactory, CubicFactory, NewRenoFactory};
use srudp_proto::TransportConfig;

/// A congestion controller the command line can name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Congestion {
    /// CUBIC with HyStart++ (RFC 9438): loss-based, like Linux TCP's default.
    #[default]
    Cubic,
    /// NewReno (RFC 9002): loss-based, halves at every loss.
    Newreno,
    /// BBR (model-based): keeps its rate under random loss.
    Bbr,
}

impl Congestion {
    fn factory(self) -> Arc<dyn ControllerFactory> {
        match self {
            Congestion::Cubic => Arc::new(CubicFactory::default()),
            Congestion::Newreno => Arc::new(NewRenoFactory::default()),
            Congestion::Bbr => Arc::new(BbrFactory::default()),
        }
    }
}

static CHOSEN: OnceLock<Congestion> = OnceLock::new();

/// Sets the controller for the rest of the process (once, from `main`).
pub(crate) fn choose(congestion: Congestion) {
    let _ = CHOSEN.set(congestion);
}

/// The default transport settings with the chosen controller.
pub(crate) fn transport() -> TransportConfig {
    TransportConfig {
        congestion: CHOSEN.get().copied().unwrap_or_default().factory(),
        ..TransportConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_choice_builds_its_own_controller() {
        let now = std::time::Instant::now();
        let names: Vec<String> = [Congestion::Cubic, Congestion::Newreno, Congestion::Bbr]
            .into_iter()
            .map(|c| format!("{:?}", c.factory().build(now, 1200)))
            .collect();
        assert!(names[0].starts_with("Cubic"), "{}", names[0]);
        assert!(names[1].starts_with("NewReno"), "{}", names[1]);
        assert!(names[2].starts_with("Bbr"), "{}", names[2]);
    }
}
