//! Where a result came from: the command, the git commit (with a dirty flag), the date, the
//! machine and the wall time, recorded at the top of every report.

use serde::Serialize;
use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Provenance of one bench run.
#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    /// The command line, as typed.
    pub command: String,
    /// `git rev-parse HEAD` of the checkout the binary was built from ("unknown" without git).
    pub commit: String,
    /// Whether the checkout had uncommitted changes to tracked files outside docs/results.
    pub dirty: bool,
    /// Start time, UTC, ISO 8601.
    pub date: String,
    /// CPU model (from /proc/cpuinfo where available).
    pub cpu: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// Operating system and architecture.
    pub os: String,
    #[serde(skip)]
    started: Option<Instant>,
}

impl Provenance {
    /// Records the provenance of the current process, now.
    pub fn capture() -> Self {
        // The repository the command runs in (the documented way to run the bench is from the
        // repository root, e.g. a worktree at the commit being recorded); the source tree the
        // binary was built in only when the working directory is not in a repository.
        let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let in_repo = |dir: &Path| {
            Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(["rev-parse", "--show-toplevel"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let repo = std::env::current_dir()
            .ok()
            .filter(|d| in_repo(d))
            .unwrap_or(built_in);
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
        // Results written into docs/results by earlier runs (e.g. the earlier jobs of `all`)
        // do not make the code dirty.
        let dirty = git(&[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":(exclude)docs/results",
        ])
        .is_some_and(|s| !s.is_empty());
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Provenance {
            command: std::env::args()
                .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
                .collect::<Vec<_>>()
                .join(" "),
            commit,
            dirty,
            date: iso_utc(SystemTime::now()),
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            started: Some(Instant::now()),
        }
    }

    /// Seconds since [`Provenance::capture`].
    pub fn wall_s(&self) -> f64 {
        self.started.map_or(0.0, |s| s.elapsed().as_secs_f64())
    }

    /// The same record with `command` as the command that produced the results.
    pub fn with_command(mut self, command: &str) -> Self {
        self.command = command.to_string();
        self
    }

    /// The header of a report.md: a table of the provenance and the wall time so far.
    pub fn header(&self) -> String {
        format!(
            "| provenance | |\n| --- | --- |\n| command | `{}` |\n| commit | `{}`{} |\n\
             | date (UTC) | {} |\n| machine | {}, {} logical cores, {} |\n| wall time | {:.1} s |\n\n",
            self.command,
            self.commit,
            if self.dirty {
                " (dirty: uncommitted changes)"
            } else {
                ""
            },
            self.date,
            self.cpu,
            self.cores,
            self.os,
            self.wall_s()
        )
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a system time (proleptic Gregorian calendar, from days since
/// 1970-01-01 by the standard era/day-of-era decomposition).
fn iso_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn iso_dates() {
        let at = |s: u64| iso_utc(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_796_170_000), "2026-12-02T00:06:40Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
