//! Byte sizes on the command line: `1000`, `64K`, `256MiB`, `1GB`.

/// Parses a size: a number with an optional suffix, K/M/G (or KB/MB/GB)
/// for powers of 1000 and KiB/MiB/GiB for powers of 1024.
pub(crate) fn parse(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 1000, 64K, 256MiB)"))?;
    let unit: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000 * 1000,
        "g" | "gb" => 1000 * 1000 * 1000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown size suffix {suffix:?}")),
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn sizes_parse_with_decimal_and_binary_suffixes() {
        assert_eq!(parse("1000"), Ok(1000));
        assert_eq!(parse("64K"), Ok(64_000));
        assert_eq!(parse("256MiB"), Ok(256 << 20));
        assert_eq!(parse("2gb"), Ok(2_000_000_000));
        assert!(parse("lots").is_err());
        assert!(parse("5 parsecs").is_err());
        assert!(parse("99999999999999999999GiB").is_err());
    }
}
