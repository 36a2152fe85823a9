//! A tiny command-line parser: `--name value` options and `--name` flags.

use std::collections::BTreeMap;

/// Parsed `--name value` options and `--name` flags.
#[derive(Debug, Default)]
pub struct Args {
    values: BTreeMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    /// Parses `args` (without the program name). `options` take a value,
    /// `flags` do not; anything else is an error.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        options: &[&str],
        flags: &[&str],
    ) -> Result<Args, String> {
        let mut parsed = Args::default();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            if flags.contains(&name) {
                parsed.flags.push(name.to_string());
            } else if options.contains(&name) {
                let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                parsed.values.insert(name.to_string(), value);
            } else {
                return Err(format!("unknown option --{name}"));
            }
        }
        Ok(parsed)
    }

    /// The value of `--name` as a number, or `default`.
    pub fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: {v:?} is not a valid number")),
        }
    }

    /// The value of `--name`, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether the flag `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, String> {
        Args::parse(
            v.iter().map(|s| s.to_string()),
            &["seed", "only"],
            &["trace"],
        )
    }

    #[test]
    fn options_flags_and_errors() {
        let a = args(&["--seed", "7", "--trace"]).unwrap();
        assert_eq!(a.number("seed", 1u64), Ok(7));
        assert!(a.flag("trace"));
        assert_eq!(a.text("only"), None);
        assert_eq!(args(&[]).unwrap().number("seed", 1u64), Ok(1));
        assert!(args(&["--seed"]).is_err());
        assert!(args(&["--bogus", "1"]).is_err());
        assert!(args(&["seed"]).is_err());
        assert!(args(&["--seed", "x"])
            .unwrap()
            .number("seed", 1u64)
            .is_err());
    }
}
