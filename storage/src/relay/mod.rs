//! The relay between the pipeline process and its supervisor: a Unix socket over which the child
//! makes every call of its bucket stores and hands over its run records.
//!
//! The supervisor already links the S3 client and SQLite (it reads caches and finalizes crashed
//! runs), so the child does not: a pipeline binary builds without a TLS, HTTP or SQLite stack,
//! and holds no bucket connection of its own. Calls are multiplexed by id; object bodies travel
//! as frame payloads, large objects as acknowledged 1 MiB chunks so neither side holds more than
//! a chunk of a stream in memory. Records are one-way and ordered; they
//! leave in batches about 25 ms apart (a node's record may replace its earlier one still
//! waiting), and `sync` sends what waits and then waits for the commit.
//!
//! ```text
//! child (RelayClient)  ──Hello{token}, Call{id,store,op}, Records, Sync, Chunk/End/Abort──▶
//!                      ◀─────────────── Reply{id,ok|err}, Chunk, Ack ─────────────── supervisor
//! ```

mod client;
#[cfg(feature = "relay-server")]
mod listener;
#[cfg(feature = "relay-server")]
mod server;
// Parts of the frame format only the supervisor's end reads.
#[cfg_attr(not(feature = "relay-server"), allow(dead_code))]
mod wire;

pub use client::RelayClient;
#[cfg(feature = "relay-server")]
pub use listener::RelayListener;
#[cfg(feature = "relay-server")]
pub use server::{RecordHost, RelayStats, RelayStores, SyncDone, serve};
pub use wire::Record;
