//! `sparkwing doctor` against the real S3 test server: a healthy `ci` profile passes, a bucket
//! behind a cut connection fails with a fix and without a secret, and outside a repository the
//! project check fails with its hint.

use crate::support::{World, bucket_world, fixture_repo};
use sparkwing_storage_testing::{Proxy, TestS3};

/// The line of the pretty report that starts with `status` and names `check`, and the line after
/// it (where a hint goes).
fn check_line<'a>(stdout: &'a str, status: &str, check: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = stdout.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(status) && l[status.len()..].trim_start().starts_with(check))
        .unwrap_or_else(|| panic!("no `{status}  {check}` line in:\n{stdout}"));
    (lines[i], lines.get(i + 1).copied().unwrap_or(""))
}

#[test]
fn a_reachable_bucket_profile_passes_every_check() {
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-doctor-ok");
    let w = bucket_world(&s3, &prefix, &fixture_repo("sample"), "");
    let r = w.run(&["doctor", "--profile", "ci"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let out = &r.stdout;

    let (project, _) = check_line(out, "ok", "project");
    assert!(
        project.contains(".sparkwing/sparkwing.yaml` loads"),
        "{project}"
    );
    let (profile, _) = check_line(out, "ok", "profile");
    assert!(profile.contains("`ci` (flag)"), "{profile}");
    let cache_url = format!("s3://{}/{prefix}/cache", s3.bucket);
    let logs_url = format!("s3://{}/{prefix}/logs", s3.bucket);
    assert!(out.contains(&format!("cache: {cache_url}")), "{out}");
    assert!(out.contains(&format!("logs:  {logs_url}")), "{out}");
    let (cache, _) = check_line(out, "ok", "cache bucket");
    assert!(
        cache.contains(&format!(
            "`{cache_url}` reachable via endpoint `{}`",
            s3.endpoint
        )),
        "{cache}"
    );
    check_line(out, "ok", "logs bucket");
    let (cond, _) = check_line(out, "ok", "conditional writes");
    assert!(
        cond.contains(&format!("supported by `{cache_url}`")),
        "{cond}"
    );
    assert!(!out.contains("\nfail"), "{out}");

    // The same checks as JSON: one object per check, in order.
    let j = w.run(&["doctor", "--profile", "ci", "-o", "json"]);
    assert_eq!(j.code, 0, "{}", j.all());
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "project",
            "toolchain",
            "profile",
            "logs bucket",
            "cache bucket",
            "conditional writes"
        ]
    );
    assert_eq!(v["checks"][5]["status"], "ok");
}

#[test]
fn a_read_only_cache_is_checked_for_reach_but_not_for_conditional_writes() {
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-doctor-ro");
    let w = bucket_world(&s3, &prefix, &fixture_repo("sample"), ", read_only: true");
    let r = w.run(&["doctor", "--profile", "ci"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let cache_url = format!("s3://{}/{prefix}/cache", s3.bucket);
    assert!(
        r.stdout
            .contains(&format!("cache: {cache_url} (read-only)")),
        "{}",
        r.all()
    );
    check_line(&r.stdout, "ok", "cache bucket");
    let (cond, _) = check_line(&r.stdout, "skip", "conditional writes");
    assert!(cond.contains("is read-only"), "{cond}");
}

#[test]
fn a_cut_connection_fails_the_bucket_check_with_a_fix_and_no_secret() {
    let s3 = TestS3::from_env();
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("the test server's secret key");
    assert!(!secret.is_empty());
    let prefix = s3.unique_prefix("e2e-doctor-cut");
    let upstream = s3
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("the test endpoint is `http://<ip>:<port>`");
    let proxy = Proxy::start(upstream);
    let mut w = bucket_world(&s3, &prefix, &fixture_repo("sample"), "");
    // Set after `bucket_world`'s endpoint, so it wins.
    w.set("SPARKWING_S3_ENDPOINT", &proxy.endpoint());

    // Through the proxy while it is up: the same profile passes, so the failure below is the cut.
    let up = w.run(&["doctor", "--profile", "ci"]);
    assert_eq!(up.code, 0, "{}", up.all());

    proxy.cut();
    let r = w.run(&["doctor", "--profile", "ci"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let cache_url = format!("s3://{}/{prefix}/cache", s3.bucket);
    let (cache, hint) = check_line(&r.stdout, "fail", "cache bucket");
    assert!(
        cache.contains(&format!(
            "cannot use `{cache_url}` via endpoint `{}`",
            proxy.endpoint()
        )),
        "{cache}"
    );
    assert!(cache.contains("cannot connect"), "{cache}");
    assert!(
        hint.trim_start().starts_with("hint: ") && hint.contains(&proxy.endpoint()),
        "{hint}"
    );
    check_line(&r.stdout, "fail", "logs bucket");
    check_line(&r.stdout, "skip", "conditional writes");
    assert!(r.stdout.ends_with("\n2 checks failed\n"), "{}", r.all());
    assert!(
        !r.all().contains(&secret),
        "the secret key appears in:\n{}",
        r.all()
    );
    assert!(!up.all().contains(&secret), "{}", up.all());
}

#[test]
fn outside_a_project_the_project_check_fails_with_its_hint() {
    let dir = tempfile::tempdir().unwrap();
    let w = World::new(dir.path().to_path_buf());
    let r = w.run(&["doctor"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let (project, hint) = check_line(&r.stdout, "fail", "project");
    assert!(
        project.contains("no `.sparkwing/` package found"),
        "{project}"
    );
    assert!(
        hint.contains("hint: create one with `sparkwing pipeline new --name NAME`"),
        "{hint}"
    );
    // The rest still runs: the built-in profile resolves without a project.
    let (profile, _) = check_line(&r.stdout, "ok", "profile");
    assert!(profile.contains("`built-in` (built-in)"), "{profile}");
    assert!(r.stdout.ends_with("\n1 check failed\n"), "{}", r.all());
}
