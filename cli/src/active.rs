//! `$SPARKWING_HOME/active/<runID>.json`: written by a local run's supervisor while its processes
//! live, removed last. Readers use it to tell a live run from one whose processes were killed,
//! and the dashboard to cancel an in-flight run by signalling its supervisor.

use serde::{Deserialize, Serialize};
use sparkwing_contract::Home;
use std::path::PathBuf;

/// The marker's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRun {
    pub run_id: String,
    #[serde(default)]
    pub pipeline: String,
    pub supervisor_pid: i32,
    #[serde(default)]
    pub child_pid: i32,
}

/// Where the marker of `run_id` lives.
pub fn marker_path(home: &Home, run_id: &str) -> PathBuf {
    home.active_marker(run_id)
}

impl ActiveRun {
    /// Writes the marker (best effort: without it the dashboard only cannot cancel the run).
    pub fn write(&self, home: &Home) {
        let path = marker_path(home, &self.run_id);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let body = serde_json::to_vec(self).expect("marker serializes");
        let _ = std::fs::write(&path, body);
    }

    /// Removes the marker of `run_id`.
    pub fn remove(home: &Home, run_id: &str) {
        let _ = std::fs::remove_file(marker_path(home, run_id));
    }

    /// Reads the marker: `Ok(None)` when there is none, `Err(why)` when it is unreadable.
    pub fn read(home: &Home, run_id: &str) -> Result<Option<ActiveRun>, String> {
        match std::fs::read_to_string(marker_path(home, run_id)) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Whether a process on this machine is still running local run `run_id`: its marker exists and
/// names a live supervisor or a live pipeline process. A pid reused by an unrelated process only
/// makes a reader wait longer; it never ends a live run.
pub fn local_run_is_live(home: &Home, run_id: &str) -> bool {
    match ActiveRun::read(home, run_id) {
        Ok(None) => false,
        // Unreadable (being written?): not evidence that the run is gone.
        Err(_) => true,
        Ok(Some(m)) => [m.supervisor_pid, m.child_pid]
            .into_iter()
            .any(|pid| pid > 1 && sparkwing_bincache::process::alive(pid)),
    }
}

/// True when `pid` is alive and its arguments begin with `words` (`<program> <words…>`): the one
/// rule for telling whether a pid read from a file is still one of our processes before it is
/// signalled. A marker or pid file left by a process that was SIGKILLed may name a pid the
/// system has since given to an unrelated process.
pub fn runs_subcommand(pid: i32, words: &[&str]) -> bool {
    if pid <= 1 {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    words.len() < args.len()
        && words
            .iter()
            .zip(&args[1..])
            .all(|(want, got)| want.as_bytes() == *got)
}

/// The program a process runs (the last segment of its `argv[0]`), for messages.
pub fn program_of(pid: i32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv0 = cmdline.split(|&b| b == 0).next()?;
    let name = String::from_utf8_lossy(argv0);
    let name = name.rsplit('/').next().unwrap_or_default();
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_is_ours_only_when_its_arguments_say_so() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = sleeper.id() as i32;
        // What /proc shows of a process that has just been started can lag behind its exec.
        let within = |want: bool, words: &[&str]| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while runs_subcommand(pid, words) != want && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            runs_subcommand(pid, words) == want
        };
        assert!(within(true, &["30"]));
        assert!(!runs_subcommand(pid, &["run"]));
        assert!(!runs_subcommand(pid, &["30", "more"]));
        assert_eq!(program_of(pid).as_deref(), Some("sleep"));
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        assert!(within(false, &["30"]));
        assert!(!runs_subcommand(0, &[]));
    }

    #[test]
    fn written_marker_reads_back_and_names_a_live_process() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path());
        let run = "run-20260101-000000-0000abcd";
        assert!(!local_run_is_live(&home, run));
        let m = ActiveRun {
            run_id: run.into(),
            pipeline: "ci".into(),
            supervisor_pid: std::process::id() as i32,
            child_pid: 0,
        };
        m.write(&home);
        assert_eq!(ActiveRun::read(&home, run).unwrap(), Some(m));
        assert!(local_run_is_live(&home, run));
        ActiveRun::remove(&home, run);
        assert!(!local_run_is_live(&home, run));
    }
}
