//! Client CPU time of this process, for "CPU per query" figures.

use std::fs;
use std::time::Duration;

/// User + system CPU time consumed by this process (all threads) so far.
///
/// Read from `/proc/self/stat` (Linux), in clock ticks of 10 ms (`USER_HZ` is 100 in the
/// kernel's user-space ABI). Measure windows of a few seconds so the tick resolution stays
/// below one percent. `None` where `/proc` is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CpuTime(Duration);

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`), fixed by the kernel ABI.
const USER_HZ: u64 = 100;

impl CpuTime {
    /// The CPU time used by this process so far, or `None` where it cannot be read.
    pub fn now() -> Option<CpuTime> {
        let stat = fs::read_to_string("/proc/self/stat").ok()?;
        parse_stat(&stat)
    }

    /// The CPU time between `earlier` and `self`.
    pub fn since(self, earlier: CpuTime) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

/// Parses `utime + stime` out of a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<CpuTime> {
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state (3), ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt,
    // majflt, cmajflt, utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(CpuTime(Duration::from_millis(ticks * 1000 / USER_HZ)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_after_a_name_with_spaces() {
        let line = "4242 (tokio worker) R 1 2 3 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(parse_stat(line), Some(CpuTime(Duration::from_secs(3))));
    }

    #[test]
    fn reads_this_process() {
        assert!(CpuTime::now().is_some());
    }
}
