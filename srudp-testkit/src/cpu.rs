//! CPU time consumed by this process, for tests that assert an idle
//! endpoint does not spin.

use std::io;
use std::time::Duration;

/// Clock ticks per second of the times in `/proc/*/stat` (`USER_HZ`). The
/// kernel fixes it at 100 for user space on every mainstream architecture;
/// a unit test checks the figure against real CPU use.
#[cfg(target_os = "linux")]
const USER_HZ: u64 = 100;

/// CPU time (user + system) consumed so far by every thread of this process,
/// past and present.
///
/// On Linux this reads `/proc/self/stat` (10 ms resolution); elsewhere it
/// returns an [`io::ErrorKind::Unsupported`] error, and callers skip.
pub fn process_cpu_time() -> io::Result<Duration> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        let ticks = parse_stat_cpu_ticks(&stat).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected /proc/self/stat format",
            )
        })?;
        Ok(Duration::from_millis(ticks.saturating_mul(1000) / USER_HZ))
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "process_cpu_time is implemented for Linux only",
        ))
    }
}

/// `utime + stime` in clock ticks from the text of `/proc/<pid>/stat`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may itself contain
    // spaces or parentheses: fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_even_with_parentheses_in_the_name() {
        let stat = "4242 (we ird) (name) S 1 4242 4242 0 -1 4194560 183 0 0 0 \
                    250 37 0 0 20 0 3 0 1234 5000000 300 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(287));
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn measures_cpu_spent_spinning_and_not_time_spent_sleeping() {
        let before = process_cpu_time().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let slept = process_cpu_time().unwrap() - before;
        assert!(
            slept < Duration::from_millis(100),
            "sleeping used {slept:?}"
        );

        // Spin until the process has used 300 ms more CPU (the machine may be
        // shared, so wall time only bounds it from below).
        let target = process_cpu_time().unwrap() + Duration::from_millis(300);
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while process_cpu_time().unwrap() < target {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "spinning uses no CPU time"
            );
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        // No more CPU than every core for the whole time: a wrong USER_HZ
        // would inflate the figure several times over.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        let wall = start.elapsed();
        assert!(
            wall * cores + Duration::from_millis(20) >= Duration::from_millis(300),
            "300 ms of CPU reported after {wall:?} on {cores} cores"
        );
    }
}
