//! Where a running dashboard is recorded: `$SPARKWING_HOME/dashboard.pid`, `dashboard.addr` and
//! `dashboard.log`, shared by the foreground server and the `start`/`stop`/`status` commands.

use crate::error::CliError;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The arguments a dashboard server runs with (`sparkwing dashboard start --foreground …`).
const DASHBOARD_ARGS: [&str; 2] = ["dashboard", "start"];

/// A live process named by the pid file.
pub enum Recorded {
    /// A dashboard server, and its address when recorded.
    Dashboard(i32, Option<SocketAddr>),
    /// Some other program (the pid was reused after the dashboard died): its pid and name.
    Other(i32, String),
}

/// `dashboard.pid` (the server's pid, alone, so `kill $(cat …)` works) and `dashboard.addr`
/// (its address) under `$SPARKWING_HOME`.
pub struct PidFiles {
    pid: PathBuf,
    addr: PathBuf,
    pub log: PathBuf,
}

impl PidFiles {
    pub fn new(home: &sparkwing_contract::Home) -> PidFiles {
        PidFiles {
            pid: home.dashboard_file("pid"),
            addr: home.dashboard_file("addr"),
            log: home.dashboard_file("log"),
        }
    }

    /// Records a server that is listening on `addr`.
    pub fn write(&self, pid: u32, addr: SocketAddr) -> Result<(), CliError> {
        if let Some(dir) = self.pid.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::failure(format!("create `{}`: {e}", dir.display())))?;
        }
        std::fs::write(&self.addr, format!("{addr}\n"))
            .map_err(|e| CliError::failure(format!("write `{}`: {e}", self.addr.display())))?;
        std::fs::write(&self.pid, format!("{pid}\n"))
            .map_err(|e| CliError::failure(format!("write `{}`: {e}", self.pid.display())))
    }

    /// The recorded server, if its process is alive and is a dashboard.
    pub fn running(&self) -> Option<(i32, Option<SocketAddr>)> {
        match self.recorded()? {
            Recorded::Dashboard(pid, addr) => Some((pid, addr)),
            Recorded::Other(..) => None,
        }
    }

    /// What the pid file names, when it names a live process.
    pub fn recorded(&self) -> Option<Recorded> {
        let pid: i32 = std::fs::read_to_string(&self.pid)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        if pid <= 1 || kill(Pid::from_raw(pid), None).is_err() {
            return None;
        }
        if !crate::active::runs_subcommand(pid, &DASHBOARD_ARGS) {
            return Some(Recorded::Other(
                pid,
                crate::active::program_of(pid).unwrap_or_else(|| "an unknown program".into()),
            ));
        }
        let addr = std::fs::read_to_string(&self.addr)
            .ok()
            .and_then(|a| a.trim().parse().ok());
        Some(Recorded::Dashboard(pid, addr))
    }

    /// The pid file, for messages.
    pub fn pid_path(&self) -> &std::path::Path {
        &self.pid
    }

    /// Removes the files if they still describe `pid` (a newer server may have replaced them).
    pub fn remove_if_mine(&self, pid: u32) {
        let recorded = std::fs::read_to_string(&self.pid)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        if recorded == Some(pid) {
            self.remove();
        }
    }

    /// Removes both files.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.pid);
        let _ = std::fs::remove_file(&self.addr);
    }
}

/// The page's URL for a bound address.
pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}
