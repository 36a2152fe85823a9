//! The congestion controller a benchmark's senders use (`--cc`).

use std::sync::Arc;

use srudp_proto::congestion::{BbrFactory, ControllerFactory, CubicFactory, NewRenoFactory};
use srudp_proto::TransportConfig;

/// A congestion controller by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    /// CUBIC (RFC 9438), srudp's default.
    Cubic,
    /// NewReno (RFC 9002 §7).
    NewReno,
    /// BBR (draft-ietf-ccwg-bbr with BBRv3's loss bounds).
    Bbr,
}

impl Controller {
    /// Parses `cubic`, `newreno` or `bbr`.
    pub fn parse(name: &str) -> Option<Controller> {
        match name {
            "cubic" => Some(Controller::Cubic),
            "newreno" => Some(Controller::NewReno),
            "bbr" => Some(Controller::Bbr),
            _ => None,
        }
    }

    /// Parses the `--cc` option's value (`None`: `default`), or says why not.
    pub fn from_option(value: Option<&str>, default: Controller) -> Result<Controller, String> {
        match value {
            None => Ok(default),
            Some(name) => Controller::parse(name)
                .ok_or_else(|| format!("--cc: {name:?} is not cubic, newreno or bbr")),
        }
    }

    /// The `--cc` option of a benchmark whose profile otherwise keeps its
    /// own controller: with the option, puts that controller into
    /// `profile` and returns it; without, leaves `profile` alone and
    /// returns `None`; or says why the value is not a controller.
    pub fn overriding(
        value: Option<&str>,
        profile: &mut TransportConfig,
    ) -> Result<Option<Controller>, String> {
        let chosen = value
            .map(|name| Controller::from_option(Some(name), Controller::Cubic))
            .transpose()?;
        if let Some(c) = chosen {
            profile.congestion = c.factory();
        }
        Ok(chosen)
    }

    /// The name [`Controller::parse`] takes.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Cubic => "cubic",
            Controller::NewReno => "newreno",
            Controller::Bbr => "bbr",
        }
    }

    /// A factory with the controller's default parameters.
    pub fn factory(self) -> Arc<dyn ControllerFactory> {
        match self {
            Controller::Cubic => Arc::new(CubicFactory::default()),
            Controller::NewReno => Arc::new(NewRenoFactory::default()),
            Controller::Bbr => Arc::new(BbrFactory::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_others_are_refused() {
        for c in [Controller::Cubic, Controller::NewReno, Controller::Bbr] {
            assert_eq!(Controller::parse(c.name()), Some(c));
            assert_eq!(
                Controller::from_option(Some(c.name()), Controller::Cubic),
                Ok(c)
            );
        }
        assert_eq!(
            Controller::from_option(None, Controller::Bbr),
            Ok(Controller::Bbr)
        );
        let e = Controller::from_option(Some("vegas"), Controller::Cubic).unwrap_err();
        assert_eq!(e, "--cc: \"vegas\" is not cubic, newreno or bbr");
    }
}
