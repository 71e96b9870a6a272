//! The supervisor's side of the relay for tests that run a pipeline without `sparkwing run`.

use sparkwing_storage::relay::{RecordHost, RelayListener, RelayStores, serve};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Serves one pipeline process: its records go to the SQLite database at `db`, its bucket calls
/// to the stores named by `specs`, exactly as `sparkwing run` serves them. Set [`RelayHost::env`]
/// on the pipeline process; [`RelayHost::finish`] (or dropping it) waits until everything the
/// process sent is committed.
pub struct RelayHost {
    socket: PathBuf,
    token: String,
    connected: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RelayHost {
    /// Opens the database and the socket, and starts serving `stores` on a thread of its own.
    pub fn start(db: &Path, stores: RelayStores) -> RelayHost {
        let writer = sparkwing_records::Writer::open(db)
            .unwrap_or_else(|e| panic!("open `{}`: {e}", db.display()));
        let (tx, rx) = std::sync::mpsc::channel();
        let connected = Arc::new(AtomicBool::new(false));
        let flag = connected.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the relay host");
            rt.block_on(async move {
                let listener = RelayListener::bind(None).expect("bind the relay socket");
                let token = listener.token().to_string();
                tx.send((listener.socket().to_path_buf(), token.clone()))
                    .expect("the test waits for the socket");
                let Ok(stream) = listener.accept().await else {
                    return;
                };
                flag.store(true, Ordering::SeqCst);
                let host: Arc<dyn RecordHost> = Arc::new(writer);
                let _ = serve(stream, &token, Arc::new(stores), host).await;
            });
        });
        let (socket, token) = rx.recv().expect("the relay host started");
        RelayHost {
            socket,
            token,
            connected,
            thread: Some(thread),
        }
    }

    /// The variables that lead a pipeline process here.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("SPARKWING_RELAY", self.socket.display().to_string()),
            ("SPARKWING_RELAY_TOKEN", self.token.clone()),
        ]
    }

    /// Waits until the pipeline process is gone and its records are committed. A process that
    /// never connected leaves nothing to wait for.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if !self.connected.load(Ordering::SeqCst) {
            // Ends the wait for a connection: without the token, the host stops at once.
            let _ = std::os::unix::net::UnixStream::connect(&self.socket);
        }
        let _ = thread.join();
    }
}

impl Drop for RelayHost {
    fn drop(&mut self) {
        self.stop();
    }
}
