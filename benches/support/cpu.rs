//! CPU time spent by this process, by PostgreSQL and by Redis over a stretch of a run, read from
//! `/proc` (Linux; elsewhere every figure reads zero). It is only meaningful on an otherwise
//! quiet machine: every `postgres` and `redis-server` process counts.

use std::fs;

/// `/proc` reports times in USER_HZ ticks, 100 a second on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// Seconds of CPU (user and system).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTime {
    pub this_process: f64,
    pub postgres: f64,
    pub redis: f64,
}

impl CpuTime {
    pub fn now() -> Self {
        let mut t = CpuTime {
            this_process: fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|s| ticks(&s, false))
                .unwrap_or(0) as f64
                / TICKS_PER_SECOND,
            ..Default::default()
        };
        let Ok(procs) = fs::read_dir("/proc") else {
            return t;
        };
        for p in procs.flatten() {
            let path = p.path();
            let Ok(comm) = fs::read_to_string(path.join("comm")) else {
                continue;
            };
            let slot = match comm.trim() {
                "postgres" => &mut t.postgres,
                "redis-server" => &mut t.redis,
                _ => continue,
            };
            // Children's time too: a backend that exits is added to the postmaster's.
            if let Some(n) = fs::read_to_string(path.join("stat"))
                .ok()
                .and_then(|s| ticks(&s, true))
            {
                *slot += n as f64 / TICKS_PER_SECOND;
            }
        }
        t
    }

    /// What was spent between `earlier` and `self`.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            this_process: self.this_process - earlier.this_process,
            postgres: self.postgres - earlier.postgres,
            redis: self.redis - earlier.redis,
        }
    }

    pub fn total(&self) -> f64 {
        self.this_process + self.postgres + self.redis
    }

    /// "process N µs, PostgreSQL N µs, Redis N µs, total N µs" per one of `n` units.
    pub fn per(&self, n: usize) -> String {
        let us = |s: f64| s * 1e6 / n.max(1) as f64;
        format!(
            "this process {:.0} µs, PostgreSQL {:.0} µs, Redis {:.0} µs, total {:.0} µs",
            us(self.this_process),
            us(self.postgres),
            us(self.redis),
            us(self.total())
        )
    }
}

/// utime + stime (+ cutime + cstime) from a `/proc/<pid>/stat` line.
fn ticks(stat: &str, children: bool) -> Option<u64> {
    // The command name may hold spaces and parentheses; the fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields 14-17 of the line (utime, stime, cutime, cstime); the slice starts at field 3.
    let take = if children { 4 } else { 2 };
    fields
        .get(11..11 + take)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum()
}
