//! Times the warm path of `sparkwing run`'s cache step: compute the key of a `.sparkwing/`
//! package and take a lease on its (already cached) binary.
//!
//! ```text
//! cargo run --release -p sparkwing-bincache --example warm_path -- path/to/.sparkwing [runs]
//! ```

use sparkwing_bincache::{BuildProfile, KeyRequest, Limits, LocalCache, Source, compute_key};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: warm_path <.sparkwing dir> [runs]")?,
    );
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(20);
    let env = |n: &str| std::env::var(n).ok();
    let req = KeyRequest {
        sparkwing_dir: &dir,
        sdk_version: sparkwing_contract::SDK_VERSION,
        target: "x86_64-unknown-linux-gnu",
        profile: BuildProfile::Release,
        env: &env,
    };
    let root = tempfile::tempdir()?;
    let cache = LocalCache::open(root.path().join("v1"), Limits::default())?;
    let key = compute_key(&req)?;
    drop(cache.get_or_materialize(&key, |s| {
        std::fs::write(s.join("pipeline"), vec![0u8; 8 << 20])?;
        Ok::<_, std::io::Error>(Source::Compiled)
    })?);

    let mut key_times = Vec::new();
    let mut hit_times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let k = compute_key(&req)?;
        key_times.push(t.elapsed());
        let t = Instant::now();
        let lease = cache.lookup(&k.key)?.ok_or("expected a hit")?;
        hit_times.push(t.elapsed());
        drop(lease);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "files: {} | compute_key median {:?} | cache hit median {:?} | runs {runs}",
        key.inputs
            .iter()
            .find(|i| i.label == "tree")
            .map_or("?".into(), |i| i.detail.clone()),
        median(&mut key_times),
        median(&mut hit_times)
    );
    Ok(())
}
