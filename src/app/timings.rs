//! `--timings`: the wall-clock time of each stage of one `analyze` run. The stages run one
//! after another on one thread, so each one's wall time is its CPU time too.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

/// The stages' times, in the order they ran.
#[derive(Debug)]
pub struct StageClock {
    last: Instant,
    /// Wall-clock time of the start (the run's span starts there).
    pub started: SystemTime,
    pub stages: Vec<StageTime>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StageTime {
    pub stage: &'static str,
    pub ms: f64,
}

impl StageClock {
    pub fn start() -> Self {
        StageClock {
            last: Instant::now(),
            started: SystemTime::now(),
            stages: Vec::new(),
        }
    }

    /// Ends the stage `name`: the time since the previous stage ended.
    pub fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        let spent: Duration = now - self.last;
        self.last = now;
        self.stages.push(StageTime {
            stage: name,
            ms: spent.as_secs_f64() * 1e3,
        });
    }

    pub fn total_ms(&self) -> f64 {
        self.stages.iter().map(|s| s.ms).sum()
    }

    /// The table printed on stderr.
    pub fn table(&self) -> String {
        let total = self.total_ms().max(f64::MIN_POSITIVE);
        let mut s = String::from("stage                      ms   share\n");
        for t in &self.stages {
            s.push_str(&format!(
                "{:<20} {:>10.1} {:>6.1}%\n",
                t.stage,
                t.ms,
                t.ms / total * 100.0
            ));
        }
        s.push_str(&format!("{:<20} {:>10.1}\n", "total", self.total_ms()));
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
        assert!(c.stages[0].ms >= 5.0);
        assert!((c.total_ms() - c.stages[0].ms - c.stages[1].ms).abs() < 1e-9);
        let t = c.table();
        assert!(t.lines().count() == 4 && t.contains("total"), "{t}");
    }
}
