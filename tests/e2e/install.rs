//! `scripts/install.sh` end to end: a release mirror served over HTTP on 127.0.0.1, the installer
//! run with a fresh `HOME` and a `PATH` that holds only the few tools it names (no cargo, no
//! rustc), a version pin, a tampered archive, the GitHub Action's steps (`scripts/action.sh`),
//! and then a ci-embedded run of the installed binary that takes the pipeline binary from the
//! bucket.
//!
//! The archive is the binary under test packed the way the release packs it
//! (`sparkwing-cli-<target>.tar.gz` holding `sparkwing-cli-<target>/sparkwing`, next to
//! `<archive>.sha256` in sha256sum's `<hex> *<name>` form), so no release build is needed here.

use crate::support::{bucket_world, fixture_repo, scratch, sparkwing_bin, workspace};
use sparkwing_storage_testing::TestS3;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The host's target triple, as the release names its archives.
fn host_target() -> String {
    let out = Command::new("rustc").arg("-vV").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("`rustc -vV` names the host")
        .to_string()
}

fn sha256_hex(file: &Path) -> String {
    let out = Command::new("sha256sum").arg(file).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// Packs `binary` as `<dir>/sparkwing-cli-<target>.tar.gz` with its `.sha256`; returns the archive.
fn pack(binary: &Path, dir: &Path, target: &str) -> PathBuf {
    let name = format!("sparkwing-cli-{target}");
    let stage = dir.join("stage").join(&name);
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(binary, stage.join("sparkwing")).unwrap();
    let archive = dir.join(format!("{name}.tar.gz"));
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.join("stage"))
        .arg(&name)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(dir.join("stage")).unwrap();
    write_checksum(&archive, &sha256_hex(&archive));
    archive
}

fn write_checksum(archive: &Path, hex: &str) {
    let name = archive.file_name().unwrap().to_string_lossy();
    std::fs::write(
        archive.with_extension("gz.sha256"),
        format!("{hex} *{name}\n\n"),
    )
    .unwrap();
}

/// A static file server on 127.0.0.1 that records every requested path.
struct Mirror {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Mirror {
    fn serve(root: PathBuf) -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if header == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                seen.lock().unwrap().push(path.clone());
                let file = root.join(path.trim_start_matches('/'));
                let body = if path.contains("..") {
                    None
                } else {
                    std::fs::read(&file).ok()
                };
                let _ = match body {
                    Some(body) => conn
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| conn.write_all(&body)),
                    None => conn.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            }
        });
        Mirror { url, requests }
    }

    fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

/// A directory of symlinks to exactly the tools the installer needs (and `git`, which
/// `sparkwing run` reads the commit with): a CI image without a Rust toolchain.
fn bare_bin(dir: &Path) -> PathBuf {
    let bin = dir.join("bare-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tools = [
        "sh",
        "uname",
        "mktemp",
        "mkdir",
        "cp",
        "mv",
        "rm",
        "chmod",
        "tar",
        "gzip",
        "curl",
        "sha256sum",
        "git",
    ];
    for tool in tools {
        let found = ["/usr/local/bin", "/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("`{tool}` is needed for the installer test"));
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    bin
}

/// Runs the installer with only `env` (and no inherited environment).
fn install(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("/bin/sh");
    c.arg(workspace().join("scripts/install.sh"))
        .args(args)
        .env_clear()
        .current_dir(scratch());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_installer_verifies_pins_and_installs_a_cli_that_runs_a_cached_pipeline_without_a_toolchain()
{
    let target = host_target();
    let root = scratch().join("install");
    let mirror_dir = root.join("mirror");
    let tag = format!("v{VERSION}");
    let file = format!("sparkwing-cli-{target}.tar.gz");

    // The mirror: this version (also as `latest`), another version whose binary only says its
    // version, and a release whose archive was changed after its checksum was written.
    let real = pack(&sparkwing_bin(), &mirror_dir.join(&tag), &target);
    std::fs::create_dir_all(mirror_dir.join("latest")).unwrap();
    for ext in ["", ".sha256"] {
        std::fs::copy(
            format!("{}{ext}", real.display()),
            mirror_dir.join("latest").join(format!("{file}{ext}")),
        )
        .unwrap();
    }
    let fake_bin = root.join("fake-sparkwing");
    std::fs::write(&fake_bin, "#!/bin/sh\necho sparkwing 9.9.9\n").unwrap();
    pack(&fake_bin, &mirror_dir.join("v9.9.9"), &target);
    let tampered = pack(&fake_bin, &mirror_dir.join("v6.6.6"), &target);
    let good = sha256_hex(&tampered);
    let mut bytes = std::fs::read(&tampered).unwrap();
    bytes.push(0);
    std::fs::write(&tampered, bytes).unwrap();
    let bad = sha256_hex(&tampered);
    let mirror = Mirror::serve(mirror_dir);

    let bare = bare_bin(&root);
    let bare_path = bare.display().to_string();
    let found = Command::new("/bin/sh")
        .args([
            "-c",
            "command -v cargo || command -v rustc || command -v rustup",
        ])
        .env_clear()
        .env("PATH", &bare_path)
        .output()
        .unwrap();
    assert!(
        !found.status.success(),
        "the bare PATH must hold no toolchain: {}",
        text(&found.stdout)
    );

    // 1. Defaults: the latest release into ~/.local/bin of a fresh HOME.
    let home = root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let home_s = home.display().to_string();
    let started = std::time::Instant::now();
    let out = install(
        &[],
        &[
            ("HOME", &home_s),
            ("PATH", &bare_path),
            ("SPARKWING_DOWNLOAD_URL", &mirror.url),
        ],
    );
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let installed_dir = home.join(".local/bin");
    let stdout = text(&out.stdout);
    let expected_steps = format!(
        "sparkwing-install: target {target}, release latest\n\
         sparkwing-install: downloading {url}/latest/{file}\n\
         sparkwing-install: verified sha256 {sum}\n\
         sparkwing-install: installed {dir}/sparkwing\n\
         sparkwing-install: {dir} is not on PATH; add it: export PATH=\"{dir}:$PATH\"\n",
        url = mirror.url,
        sum = sha256_hex(&real),
        dir = installed_dir.display(),
    );
    assert_eq!(stdout, expected_steps);
    assert_eq!(
        mirror.take_requests(),
        [format!("/latest/{file}"), format!("/latest/{file}.sha256")]
    );
    let installed = installed_dir.join("sparkwing");
    let v = Command::new(&installed).arg("--version").output().unwrap();
    assert!(
        text(&v.stdout).starts_with(&format!("sparkwing {VERSION} (commit ")),
        "{}",
        text(&v.stdout)
    );
    eprintln!("installed from the local mirror in {took:?}");

    // 2. A pin picks its directory on the mirror, by option or by variable.
    let pinned = root.join("pinned");
    let pinned_s = pinned.display().to_string();
    let out = install(
        &["--version", "9.9.9", "--to", &pinned_s],
        &[
            ("HOME", &home_s),
            ("PATH", &bare_path),
            ("SPARKWING_DOWNLOAD_URL", &mirror.url),
            ("SPARKWING_VERSION", "0.0.1"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        mirror.take_requests(),
        [format!("/v9.9.9/{file}"), format!("/v9.9.9/{file}.sha256")]
    );
    let v = Command::new(pinned.join("sparkwing"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(text(&v.stdout).trim(), "sparkwing 9.9.9");
    let out = install(
        &[],
        &[
            ("HOME", &home_s),
            ("PATH", &bare_path),
            ("SPARKWING_DOWNLOAD_URL", &mirror.url),
            ("SPARKWING_VERSION", &tag),
            ("SPARKWING_INSTALL_DIR", &pinned_s),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        mirror.take_requests(),
        [format!("/{tag}/{file}"), format!("/{tag}/{file}.sha256")]
    );
    let v = Command::new(pinned.join("sparkwing"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        text(&v.stdout).starts_with(&format!("sparkwing {VERSION} (commit ")),
        "{}",
        text(&v.stdout)
    );

    // 3. A tampered archive: one clear error naming the file and both digests; nothing installed.
    let untouched = root.join("untouched");
    let out = install(
        &[
            "--version",
            "6.6.6",
            "--to",
            &untouched.display().to_string(),
        ],
        &[
            ("HOME", &home_s),
            ("PATH", &bare_path),
            ("SPARKWING_DOWNLOAD_URL", &mirror.url),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stderr),
        format!(
            "sparkwing-install: error: checksum mismatch for `{file}`: expected {good}, got {bad}; nothing was installed\n\
             sparkwing-install: hint: the download or the mirror is corrupt; retry, or compare with https://github.com/sparkwing-dev/sparkwing/releases\n"
        )
    );
    assert!(!untouched.exists(), "nothing may be installed");
    assert_eq!(
        mirror.take_requests(),
        [format!("/v6.6.6/{file}"), format!("/v6.6.6/{file}.sha256")]
    );

    // 4. The action's steps (scripts/action.sh, as action.yml runs them): the version comes from
    // the action's own tag, the install goes into the tool cache and onto GITHUB_PATH, and a
    // second job with the cached directory downloads nothing.
    let gh = root.join("github");
    std::fs::create_dir_all(&gh).unwrap();
    let tool_cache = root.join("toolcache").display().to_string();
    let gh_output = gh.join("output");
    let gh_path = gh.join("path");
    let action = |step: &str, env: &[(&str, &str)]| {
        let mut c = Command::new("/bin/bash");
        c.arg(workspace().join("scripts/action.sh"))
            .arg(step)
            .env_clear()
            .env("PATH", &bare_path)
            .env("HOME", &home_s)
            .env("GITHUB_OUTPUT", &gh_output)
            .env("GITHUB_PATH", &gh_path)
            .env("RUNNER_TOOL_CACHE", &tool_cache)
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("SPARKWING_DOWNLOAD_URL", &mirror.url);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = action("resolve", &[("ACTION_REF", "main")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "::error title=sparkwing::no version to install: the action's ref `main` is not a release tag; set `with: version: 0.1.0`\n"
    );
    let out = action("resolve", &[("ACTION_REF", &tag)]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let tool_dir = format!("{tool_cache}/sparkwing/{VERSION}/X64");
    assert_eq!(
        std::fs::read_to_string(&gh_output).unwrap(),
        format!("tag={tag}\ndir={tool_dir}\ncache-key=sparkwing-{VERSION}-Linux-X64\n")
    );
    let out = action("install", &[("TAG", &tag), ("DIR", &tool_dir)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("verified sha256 {}", sha256_hex(&real))),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        mirror.take_requests(),
        [format!("/{tag}/{file}"), format!("/{tag}/{file}.sha256")]
    );
    let out = action("install", &[("TAG", &tag), ("DIR", &tool_dir)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("sparkwing {VERSION}: cached in {tool_dir}\n")
    );
    assert!(
        mirror.take_requests().is_empty(),
        "a cached install downloads nothing"
    );
    assert_eq!(
        std::fs::read_to_string(&gh_path).unwrap(),
        format!("{tool_dir}\n{tool_dir}\n")
    );

    // 5. A CI machine with the installed CLI and no toolchain runs (through the action's `run`
    // step) the pipeline binary that a first machine, with a toolchain, published to the bucket.
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-install");
    let a = bucket_world(&s3, &prefix, &fixture_repo("sample"), "");
    let r = a.run(&["run", "hello", "--sw-mode=ci-embedded", "--profile", "ci"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("published pipeline binary"),
        "{}",
        r.all()
    );
    let repo_b = fixture_repo("sample");
    std::fs::copy(
        a.repo.join(".sparkwing/Cargo.lock"),
        repo_b.join(".sparkwing/Cargo.lock"),
    )
    .unwrap();
    let mut b = bucket_world(&s3, &prefix, &repo_b, "");
    // The job's own steps need the usual tools (`echo`, …), but still no toolchain.
    let system_path = "/usr/local/bin:/usr/bin:/bin";
    let found = Command::new("/bin/sh")
        .args(["-c", "command -v cargo || command -v rustc"])
        .env("PATH", system_path)
        .output()
        .unwrap();
    assert!(
        !found.status.success(),
        "this machine has a toolchain on `{system_path}`; the test needs a PATH without one"
    );
    let path = format!("{tool_dir}:{system_path}");
    b.set("PATH", &path)
        .set("HOME", &home_s)
        .set("SPARKWING_CARGO", "/nonexistent/cargo")
        .set("PIPELINE", "hello")
        .set("PROFILE", "ci")
        .set("ARGS", "--sw-workers=1");
    let action_sh = workspace().join("scripts/action.sh");
    let r: crate::support::Run = b
        .cmd_program("/bin/bash".as_ref(), &[action_sh.to_str().unwrap(), "run"])
        .output()
        .unwrap()
        .into();
    assert!(
        r.stdout.starts_with(
            "+ sparkwing run hello --sw-mode=ci-embedded --profile ci --sw-workers=1\n"
        ),
        "{}",
        r.all()
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("from the remote cache"), "{}", r.all());
    let show = b.show_with(&r.run_id(), &[]);
    assert_eq!(show["run"]["status"], "success");
    assert_eq!(show["run"]["invocation"]["binary_source"], "remote-cache");
}

/// `make bench`: time from nothing to the first job on a fresh CI machine whose bucket already
/// holds the pipeline binary — the installer from a mirror on loopback, then `sparkwing run` in
/// ci-embedded mode until the first job starts (binary fetched and verified, records opened).
/// Run with `--release` so the installed CLI is the release build.
#[test]
#[ignore = "benchmark (make bench)"]
fn bench_nothing_to_first_job() {
    let target = host_target();
    let root = scratch().join("bench-first-job");
    let tag = format!("v{VERSION}");
    let archive = pack(&sparkwing_bin(), &root.join("mirror").join(&tag), &target);
    let mirror = Mirror::serve(root.join("mirror"));
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("bench-first-job");
    // The first machine builds and publishes the pipeline binary.
    let a = bucket_world(&s3, &prefix, &fixture_repo("sample"), "");
    let r = a.run(&["run", "hello", "--sw-mode=ci-embedded", "--profile", "ci"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let bare = bare_bin(&root);
    let system_path = "/usr/local/bin:/usr/bin:/bin";
    let (mut installs, mut starts, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..5 {
        let home = root.join(format!("home-{i}"));
        std::fs::create_dir_all(&home).unwrap();
        let home_s = home.display().to_string();
        let t0 = std::time::Instant::now();
        let out = install(
            &["--version", &tag],
            &[
                ("HOME", &home_s),
                ("PATH", &bare.display().to_string()),
                ("SPARKWING_DOWNLOAD_URL", &mirror.url),
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let installed = t0.elapsed();
        let repo = fixture_repo("sample");
        std::fs::copy(
            a.repo.join(".sparkwing/Cargo.lock"),
            repo.join(".sparkwing/Cargo.lock"),
        )
        .unwrap();
        let mut b = bucket_world(&s3, &prefix, &repo, "");
        b.set("PATH", &format!("{home_s}/.local/bin:{system_path}"))
            .set("SPARKWING_CARGO", "/nonexistent/cargo");
        let t1 = std::time::Instant::now();
        let mut child = b
            .cmd_program(
                home.join(".local/bin/sparkwing").as_os_str(),
                &["run", "hello", "--sw-mode=ci-embedded", "--profile", "ci"],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut first_job = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            // `▶ <job>` after the run's own `▶ <pipeline> <run id> …` line.
            if line.starts_with("▶ ") && !line.contains(" run-") && first_job.is_none() {
                first_job = Some(t1.elapsed());
            }
        }
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(child.wait().unwrap().success(), "{err}");
        assert!(err.contains("from the remote cache"), "{err}");
        let start = first_job.expect("a job started");
        installs.push(installed.as_secs_f64());
        starts.push(start.as_secs_f64());
        totals.push((installed + start).as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let size = std::fs::metadata(&archive).unwrap().len() as f64 / (1024.0 * 1024.0);
    println!(
        "nothing to first job (median of 5, archive {size:.1} MiB): install {:.2} s, run to first job {:.2} s, total {:.2} s",
        median(&mut installs),
        median(&mut starts),
        median(&mut totals)
    );
}
