//! The local run record: `$SPARKWING_HOME/state.db`, a SQLite database in WAL mode.
//!
//! One [`Writer`] per run owns the connection on its own thread and applies what it is sent in
//! batched transactions, so the dispatcher never waits on disk. [`Reader`] opens the database
//! read-only and works while a writer is active. [`finalize_abandoned`] closes a run whose process
//! died before it could write its terminal records.
//!
//! ```no_run
//! use sparkwing_records::{Reader, RunFilter};
//! let reader = Reader::open("/home/me/.sparkwing/state.db".as_ref())?;
//! for run in reader.list_runs(&RunFilter { limit: Some(10), ..Default::default() })? {
//!     println!("{} {} {}", run.id, run.pipeline, run.status);
//! }
//! # Ok::<(), sparkwing_records::RecordsError>(())
//! ```

mod error;
mod finalize;
mod reader;
mod row;
pub mod schema;
mod writer;

pub use error::RecordsError;
pub use finalize::finalize_abandoned;
pub use reader::{Reader, RunFilter};
pub use writer::{Opening, Writer, WriterStats};

/// Result alias.
pub type Result<T, E = RecordsError> = std::result::Result<T, E>;
