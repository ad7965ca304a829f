//! `--timings`: the wall-clock and CPU time of each stage of one `analyze` run. The stages
//! run one after another; the capture stage uses several threads (`--threads`), so its
//! CPU time can exceed its wall time.

use std::time::{Duration, Instant, SystemTime};

/// CPU time this process (all threads) has used; `None` where /proc is not there.
fn process_cpu() -> Option<Duration> {
    read_cpu_time("/proc/self/stat")
}

/// CPU time a running process (all threads) has used, from /proc/PID/stat; `None` when
/// it has ended or /proc is not there.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    read_cpu_time(&format!("/proc/{pid}/stat"))
}

/// Fields 14 and 15 of a /proc stat file (user and system time), in USER_HZ ticks, which
/// the kernel reports as 1/100 s on Linux whatever its internal clock.
fn read_cpu_time(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// This process's resident memory now and its peak so far, in bytes; `None` where /proc
/// is not there.
fn process_memory() -> Option<(u64, u64)> {
    read_memory("/proc/self/status")
}

/// The peak resident memory (VmHWM) of a running process, in bytes; `None` when it has
/// ended or /proc is not there.
pub fn peak_rss(pid: u32) -> Option<u64> {
    read_memory(&format!("/proc/{pid}/status")).map(|m| m.1)
}

/// VmRSS and VmHWM of a /proc status file, in bytes.
fn read_memory(path: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(path).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

use serde::Serialize;

/// The stages' times, in the order they ran.
#[derive(Debug)]
pub struct StageClock {
    last: Instant,
    last_cpu: Option<Duration>,
    /// Wall-clock time of the start (the run's span starts there).
    pub started: SystemTime,
    pub stages: Vec<StageTime>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StageTime {
    pub stage: &'static str,
    /// Wall-clock milliseconds.
    pub ms: f64,
    /// CPU milliseconds of all threads (10 ms resolution); null where unknown.
    pub cpu_ms: Option<f64>,
    /// Resident memory when the stage ended, in bytes; null where unknown.
    pub rss_bytes: Option<u64>,
    /// The process's peak resident memory up to the stage's end: the stage whose peak
    /// grows is the one that raised it.
    pub peak_rss_bytes: Option<u64>,
}

impl StageClock {
    pub fn start() -> Self {
        StageClock {
            last: Instant::now(),
            last_cpu: process_cpu(),
            started: SystemTime::now(),
            stages: Vec::new(),
        }
    }

    /// Ends the stage `name`: the time since the previous stage ended.
    pub fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        let spent: Duration = now - self.last;
        self.last = now;
        let cpu = process_cpu();
        let cpu_ms = cpu
            .zip(self.last_cpu)
            .map(|(now, then)| now.saturating_sub(then).as_secs_f64() * 1e3);
        self.last_cpu = cpu;
        let memory = process_memory();
        self.stages.push(StageTime {
            stage: name,
            ms: spent.as_secs_f64() * 1e3,
            cpu_ms,
            rss_bytes: memory.map(|m| m.0),
            peak_rss_bytes: memory.map(|m| m.1),
        });
    }

    pub fn total_ms(&self) -> f64 {
        self.stages.iter().map(|s| s.ms).sum()
    }

    /// The table printed on stderr.
    pub fn table(&self) -> String {
        let total = self.total_ms().max(f64::MIN_POSITIVE);
        let mut s =
            String::from("stage                      ms   share     CPU ms    RSS MB   peak MB\n");
        let cpu = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
        let mb = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| format!("{}", v >> 20));
        for t in &self.stages {
            s.push_str(&format!(
                "{:<20} {:>10.1} {:>6.1}% {:>10} {:>9} {:>9}\n",
                t.stage,
                t.ms,
                t.ms / total * 100.0,
                cpu(t.cpu_ms),
                mb(t.rss_bytes),
                mb(t.peak_rss_bytes)
            ));
        }
        let cpu_total = self.stages.iter().map(|t| t.cpu_ms).sum::<Option<f64>>();
        s.push_str(&format!(
            "{:<20} {:>10.1} {:>7} {:>10}\n",
            "total",
            self.total_ms(),
            "",
            cpu(cpu_total)
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_add_up_to_the_total_in_order() {
        let mut c = StageClock::start();
        std::thread::sleep(Duration::from_millis(5));
        c.lap("a");
        c.lap("b");
        assert_eq!(
            c.stages.iter().map(|s| s.stage).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let two = c.total_ms();
        assert!(c.stages[0].ms >= 5.0);
        // A stage that keeps a core busy until the process has used 50 ms more CPU (at
        // most 20 s of wall time, on a loaded machine) is charged at least that much.
        let (busy, from) = (
            Instant::now(),
            process_cpu().expect("/proc/self/stat on Linux"),
        );
        let mut x = 0u64;
        while process_cpu().is_some_and(|t| t < from + Duration::from_millis(50))
            && busy.elapsed() < Duration::from_secs(20)
        {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        c.lap("busy");
        let cpu = c.stages[2].cpu_ms.expect("CPU time on Linux");
        assert!(cpu >= 50.0, "{:?}", c.stages[2]);
        assert!((two - c.stages[0].ms - c.stages[1].ms).abs() < 1e-9);
        let t = c.table();
        assert!(t.lines().count() == 5 && t.contains("total"), "{t}");
    }

    #[test]
    fn a_stage_that_holds_memory_raises_the_peak() {
        let mut c = StageClock::start();
        c.lap("before");
        // Enough to pass the peak so far (other tests share the process) by 64 MiB,
        // written so that it is resident.
        let b = &c.stages[0];
        let above = b.peak_rss_bytes.unwrap_or(0) - b.rss_bytes.unwrap_or(0);
        let held = std::hint::black_box(vec![1u8; above as usize + (64 << 20)]);
        c.lap("holding");
        drop(held);
        let (before, holding) = (&c.stages[0], &c.stages[1]);
        let peak = |s: &StageTime| s.peak_rss_bytes.expect("VmHWM on Linux");
        assert!(
            peak(holding) >= peak(before) + (60 << 20),
            "{before:?} {holding:?}"
        );
        assert!(holding.rss_bytes.expect("VmRSS on Linux") <= peak(holding));
    }
}
