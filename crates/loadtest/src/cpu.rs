//! The client's own CPU use, from `/proc/self/stat` (Linux only), so a report can tell whether
//! the load generator rather than the server was the bottleneck.

use serde::Serialize;

/// `sysconf(_SC_CLK_TCK)`: the unit of `utime`/`stime`. The kernel reports these fields in
/// USER_HZ, which is 100 on every Linux architecture (`getconf CLK_TCK`).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// User and system CPU time of this process so far, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuTicks {
    pub user: u64,
    pub system: u64,
}

/// Reads the process's CPU ticks; `None` where `/proc` is missing (not Linux).
pub(crate) fn sample() -> Option<CpuTicks> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Parses `/proc/self/stat`. The command name (field 2) is in parentheses and may hold spaces
/// or parentheses itself, so fields are counted after the *last* `)`: there, field 3 (`state`)
/// is the first, `utime` (field 14) the 12th and `stime` (field 15) the 13th.
pub(crate) fn parse_stat(stat: &str) -> Option<CpuTicks> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    Some(CpuTicks {
        user: fields.next()?.parse().ok()?,
        system: fields.next()?.parse().ok()?,
    })
}

/// CPU the client used during the run.
#[derive(Debug, Clone, Serialize)]
pub struct CpuReport {
    /// User-mode CPU seconds.
    pub user_secs: f64,
    /// Kernel-mode CPU seconds (mostly socket I/O).
    pub system_secs: f64,
    /// Both.
    pub cpu_secs: f64,
    /// `cpu_secs / wall` × 100: 100 % is one core fully busy.
    pub percent_of_one_core: f64,
    /// Cores this process may use.
    pub cores: usize,
    /// `percent_of_one_core / cores`: near 100 % means the client saturated the machine.
    pub percent_of_all_cores: f64,
}

/// The CPU used between two samples over `wall_secs`.
pub(crate) fn report(before: CpuTicks, after: CpuTicks, wall_secs: f64) -> CpuReport {
    let user_secs = after.user.saturating_sub(before.user) as f64 / CLOCK_TICKS_PER_SEC;
    let system_secs = after.system.saturating_sub(before.system) as f64 / CLOCK_TICKS_PER_SEC;
    let cpu_secs = user_secs + system_secs;
    let percent_of_one_core = if wall_secs > 0.0 {
        cpu_secs / wall_secs * 100.0
    } else {
        0.0
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    CpuReport {
        user_secs,
        system_secs,
        cpu_secs,
        percent_of_one_core,
        cores,
        percent_of_all_cores: percent_of_one_core / cores as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        // A command name with spaces and a `)` of its own.
        let stat = "4242 (load test) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    321 45 0 0 20 0 8 0 777 1000000 500 18446744073709551615";
        assert_eq!(
            parse_stat(stat),
            Some(CpuTicks {
                user: 321,
                system: 45
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(sample().is_some());
        }
    }

    #[test]
    fn percentages_of_wall_time() {
        let r = report(
            CpuTicks {
                user: 100,
                system: 50,
            },
            CpuTicks {
                user: 250,
                system: 100,
            },
            4.0,
        );
        assert!((r.cpu_secs - 2.0).abs() < 1e-9);
        assert!((r.percent_of_one_core - 50.0).abs() < 1e-9);
    }
}
