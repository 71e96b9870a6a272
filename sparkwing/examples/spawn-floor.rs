//! The floor under the "1,000 `true` jobs" benchmark: the same 1,000 commands started the way the
//! runtime starts a job's command (tokio's multi-thread runtime with two workers, the dispatching
//! loop a task on them, `tokio::process`, stdin null, stdout and stderr piped and read to the end,
//! own process group, reaped), two at a time, with nothing else — no DAG, no logs, no records, no
//! console.
//!
//! `cargo run --release -p sparkwing --example spawn-floor -- 1000 /usr/bin/true`

use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncReadExt;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let program = args.next().unwrap_or_else(|| "true".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let began = Instant::now();
    let dispatch = rt.spawn(async move {
        let slots = Arc::new(tokio::sync::Semaphore::new(2));
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..n {
            let slot = slots.clone().acquire_owned().await.expect("open semaphore");
            let program = program.clone();
            jobs.spawn(async move {
                let mut child = tokio::process::Command::new(&program)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .process_group(0)
                    .kill_on_drop(true)
                    .spawn()
                    .expect("spawn");
                let mut out = child.stdout.take().expect("stdout");
                let mut err = child.stderr.take().expect("stderr");
                let (mut o, mut e) = (Vec::new(), Vec::new());
                let (status, _, _) = tokio::join!(
                    child.wait(),
                    out.read_to_end(&mut o),
                    err.read_to_end(&mut e)
                );
                assert!(status.expect("wait").success(), "{program} failed");
                drop(slot);
            });
            while let Some(done) = jobs.try_join_next() {
                done.expect("job task");
            }
        }
        while let Some(done) = jobs.join_next().await {
            done.expect("job task");
        }
    });
    rt.block_on(dispatch).expect("the dispatching task");
    println!("{:.6}", began.elapsed().as_secs_f64());
}
