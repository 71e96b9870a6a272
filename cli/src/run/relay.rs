//! The supervisor's side of the relay: the run's record database and its bucket stores, served
//! to the pipeline process over a private socket for as long as it lives.

use crate::error::CliError;
use sparkwing_contract::env;
use sparkwing_records::{Opening, Writer};
use sparkwing_storage::relay::{RecordHost, RelayListener, RelayStats, RelayStores, serve};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long the relay may keep going after the child is gone: only what the child already sent.
const DRAIN: Duration = Duration::from_secs(10);

/// A relay waiting for (then serving) the child.
pub struct Relay {
    task: JoinHandle<std::io::Result<RelayStats>>,
    host: Arc<Writer>,
    /// Fires once the child connected.
    connected: tokio::sync::oneshot::Receiver<()>,
}

/// Starts opening the record database at `db` on a thread of its own: the caller finds the
/// pipeline binary meanwhile, and [`Relay::start`] takes the writer once it is ready.
pub fn open_records(db: &Path) -> Result<Opening, CliError> {
    Writer::opening(db).map_err(|e| CliError::failure(e.to_string()))
}

impl Relay {
    /// Takes the record database being opened in `records` and opens a socket for the child,
    /// and sets the child's environment to reach them. `specs` are the run's store specs, the
    /// only ones it may use.
    pub fn start(
        records: Opening,
        specs: Vec<String>,
        cmd: &mut tokio::process::Command,
        rt: &tokio::runtime::Runtime,
    ) -> Result<Relay, CliError> {
        let writer = records
            .ready()
            .map_err(|e| CliError::failure(e.to_string()))?;
        let listener = {
            let _guard = rt.enter();
            RelayListener::bind(None).map_err(|e| {
                CliError::failure(format!(
                    "open a socket for the pipeline process in `{}`: {e}",
                    std::env::temp_dir().display()
                ))
                .with_hint("set TMPDIR to a writable directory")
            })?
        };
        cmd.env(env::RELAY, listener.socket())
            .env(env::RELAY_TOKEN, listener.token());
        let host = Arc::new(writer);
        let stores = Arc::new(RelayStores::new(specs));
        let token = listener.token().to_string();
        let served: Arc<dyn RecordHost> = host.clone();
        let (tx, connected) = tokio::sync::oneshot::channel();
        let task = rt.spawn(async move {
            let stream = listener.accept().await?;
            let _ = tx.send(());
            serve(stream, &token, stores, served).await
        });
        Ok(Relay {
            task,
            host,
            connected,
        })
    }

    /// After the child is gone: serves what it already sent, commits every record and closes the
    /// database. Problems are printed; the run's verdict is the child's.
    pub fn finish(self, rt: &tokio::runtime::Runtime) {
        let Relay {
            mut task,
            host,
            connected,
        } = self;
        let ended = rt.block_on(async {
            // A child that connected at all did so long before it exited; one that never did
            // (a usage error, a plan that failed to build) leaves nothing to wait for.
            if tokio::time::timeout(Duration::from_millis(20), connected)
                .await
                .is_err()
            {
                return None;
            }
            tokio::select! {
                r = &mut task => Some(r),
                // A connection a descendant kept open: nothing more will come.
                _ = tokio::time::sleep(DRAIN) => None,
            }
        });
        match ended {
            Some(Ok(Err(e))) if e.kind() != std::io::ErrorKind::ConnectionReset => {
                eprintln!("warning: the pipeline process's relay failed: {e}")
            }
            None => task.abort(),
            _ => {}
        }
        // The task is over, so this is the last reference.
        let writer = match Arc::try_unwrap(host) {
            Ok(w) => w,
            Err(_) => return,
        };
        let path = writer.path().display().to_string();
        if let Err(e) = writer.close() {
            eprintln!("warning: failed to write the run records to `{path}`: {e}");
        }
    }
}
