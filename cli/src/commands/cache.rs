//! `sparkwing cache info | explain | prune`.

use crate::cli::{CacheCommand, Format};
use crate::error::{CliError, CliResult};
use crate::run::binary::{BuildContext, open_cache};
use sparkwing_bincache::{PruneOpts, render_explain, render_info, render_prune};

pub fn execute(cmd: CacheCommand) -> CliResult {
    if let CacheCommand::Keygen { out } = &cmd {
        return keygen(out);
    }
    let home = crate::home::sparkwing_home()?;
    match cmd {
        CacheCommand::Info { output } => {
            let cache = open_cache(&home)?;
            let info = cache.info().map_err(|e| {
                CliError::failure(format!("read the pipeline cache: {e}")).hinted(&e)
            })?;
            match output {
                Format::Pretty => print!("{}", render_info(&info)),
                Format::Json => crate::output::print_json(
                    &serde_json::to_value(&info)
                        .map_err(|e| CliError::failure(format!("encode cache info: {e}")))?,
                )?,
            }
        }
        CacheCommand::Explain { output } => {
            let cwd = std::env::current_dir()
                .map_err(|e| CliError::failure(format!("read the current directory: {e}")))?;
            let project = crate::project::find(&cwd)?;
            let ctx = BuildContext::new(&project.sparkwing_dir, &home);
            // The key `sparkwing run` would use: that starts from a lockfile.
            ctx.ensure_lockfile()?;
            let key = ctx.key()?;
            let deps_key = ctx.deps_key()?;
            match output {
                Format::Pretty => {
                    print!("{}", render_explain(&key));
                    println!(
                        "dependency set key {deps_key} (lockfile, toolchain, SDK, target, profile settings; not the pipeline's sources)"
                    );
                }
                Format::Json => {
                    let mut v = serde_json::to_value(&key)
                        .map_err(|e| CliError::failure(format!("encode the key: {e}")))?;
                    v["deps_key"] = serde_json::Value::String(deps_key);
                    crate::output::print_json(&v)?
                }
            }
        }
        CacheCommand::Prune { all, older_than } => {
            let cache = open_cache(&home)?;
            let opts = match (all, older_than) {
                (true, _) => PruneOpts::All,
                (false, Some(age)) => PruneOpts::OlderThan(age),
                (false, None) => PruneOpts::ToLimits,
            };
            let report = cache.prune(opts).map_err(|e| {
                CliError::failure(format!("prune the pipeline cache: {e}")).hinted(&e)
            })?;
            print!("{}", render_prune(&report));
        }
        CacheCommand::Keygen { .. } => unreachable!("handled above"),
    }
    Ok(0)
}

/// `sparkwing cache keygen`: an unencrypted minisign key pair (CI reads the secret from a
/// secret variable, so a password would only be another secret beside it). The secret key file
/// is created with mode 0600 and never overwrites anything.
fn keygen(out: &std::path::Path) -> CliResult {
    let mut pub_path = out.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = std::path::PathBuf::from(pub_path);
    for p in [out, pub_path.as_path()] {
        if p.exists() {
            return Err(CliError::usage(format!(
                "`{}` already exists; keygen never overwrites a key",
                p.display()
            ))
            .with_hint("pass `--out PATH` for a new key, or remove the old one first"));
        }
    }
    let (secret, public_file, public) = sparkwing_bincache::generate_keypair()
        .map_err(|e| CliError::failure(format!("make a key pair: {e}")))?;
    let write = |path: &std::path::Path, text: &str, mode: u32| -> Result<(), CliError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(|e| CliError::failure(format!("create `{}`: {e}", path.display())))?;
        f.write_all(text.as_bytes())
            .map_err(|e| CliError::failure(format!("write `{}`: {e}", path.display())))
    };
    write(out, &secret, 0o600)?;
    write(&pub_path, &public_file, 0o644)?;
    println!(
        "secret key: {} (keep it secret: store its content in your CI's secrets as SPARKWING_CACHE_SIGNING_KEY, then delete the file)",
        out.display()
    );
    println!("public key: {}", pub_path.display());
    println!();
    println!("Trust it in the profile's cache surface:");
    println!();
    println!("    cache: {{ type: s3, bucket: …, prefix: cache, trusted_keys: [{public}] }}");
    Ok(0)
}
