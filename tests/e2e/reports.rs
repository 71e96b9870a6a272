//! Reports on the CI page after a run: GitHub Actions' job summary (`GITHUB_STEP_SUMMARY`), a
//! Buildkite annotation, and a JUnit file (`--junit`), from the `report` fixture (a failing, a
//! retried, a skipped and a cancelled job in one run). The summary is rendered with a Markdown
//! renderer and opened in headless Chromium; the JUnit file is validated against
//! `tests/e2e/junit.xsd` with xmllint and read back field by field.

use crate::support::{World, bucket_world, fixture_repo, scratch, workspace};
use sparkwing_storage_testing::TestS3;
use std::path::Path;
use std::process::Command;

/// `xmllint`, installed by `scripts/xmllint-setup.sh` when missing.
fn xmllint() -> &'static str {
    static SETUP: std::sync::Once = std::sync::Once::new();
    SETUP.call_once(|| {
        let ok = Command::new(workspace().join("scripts/xmllint-setup.sh"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "scripts/xmllint-setup.sh failed");
    });
    "xmllint"
}

/// Validates `file` against our JUnit schema.
fn validate_junit(file: &Path) {
    let out = Command::new(xmllint())
        .args(["--noout", "--schema"])
        .arg(workspace().join("tests/e2e/junit.xsd"))
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not validate:\n{}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

/// The string value of an XPath expression over `file`.
fn xpath(file: &Path, expr: &str) -> String {
    let out = Command::new(xmllint())
        .args(["--xpath", &format!("string({expr})")])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xpath {expr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // xmllint ends what it prints with one line feed of its own.
    let mut text = String::from_utf8(out.stdout).unwrap();
    if text.ends_with('\n') {
        text.pop();
    }
    text
}

fn case(file: &Path, job: &str, rest: &str) -> String {
    xpath(
        file,
        &format!("/testsuites/testsuite/testcase[@name='{job}']{rest}"),
    )
}

/// What the `report` fixture's JUnit file must say, field by field.
fn check_junit(file: &Path, run_id: &str) {
    validate_junit(file);
    let suite = "/testsuites/testsuite";
    assert_eq!(xpath(file, "count(/testsuites/testsuite)"), "1");
    for (attr, want) in [
        ("name", "report"),
        ("tests", "5"),
        ("failures", "1"),
        ("errors", "0"),
        ("skipped", "2"),
    ] {
        assert_eq!(
            xpath(file, &format!("{suite}/@{attr}")),
            want,
            "testsuite @{attr}"
        );
        if attr != "name" {
            assert_eq!(
                xpath(file, &format!("/testsuites/@{attr}")),
                want,
                "testsuites @{attr}"
            );
        }
    }
    let ts = xpath(file, &format!("{suite}/@timestamp"));
    assert!(
        ts.starts_with(&format!("20{}-", &run_id[6..8])),
        "timestamp {ts}"
    );
    assert_eq!(
        xpath(
            file,
            &format!("{suite}/properties/property[@name='sparkwing.run_id']/@value")
        ),
        run_id
    );
    assert_eq!(
        xpath(
            file,
            &format!("{suite}/properties/property[@name='sparkwing.status']/@value")
        ),
        "failed"
    );
    let names: Vec<String> = (1..=5)
        .map(|i| xpath(file, &format!("{suite}/testcase[{i}]/@name")))
        .collect();
    assert_eq!(names, ["compile", "unit", "flaky", "docs", "deploy"]);
    for job in &names {
        assert_eq!(case(file, job, "/@classname"), "report");
        let time: f64 = case(file, job, "/@time").parse().unwrap();
        assert!((0.0..60.0).contains(&time), "{job} time {time}");
    }
    // The failing job: its reason, its error and its last log lines, escaped back to the text.
    assert_eq!(case(file, "unit", "/failure/@type"), "exit-code");
    let message = case(file, "unit", "/failure/@message");
    assert!(message.starts_with("exit code 1: run `echo"), "{message}");
    let body = case(file, "unit", "/failure");
    for line in [
        "running 3 tests",
        "````",
        "<script>alert(1)</script> & ]]> </failure> | pipe",
        "bell and red",
        "assertion failed: left == right",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "no line {line:?} in the failure:\n{body}"
        );
    }
    assert!(
        !body.contains('\u{7}') && !body.contains('\u{1b}'),
        "{body:?}"
    );
    assert_eq!(case(file, "unit", "/system-out"), "attempts: 1");
    // Retried, then passed: a plain test case that says how many attempts it took.
    assert_eq!(case(file, "flaky", "/system-out"), "attempts: 2");
    assert_eq!(
        xpath(file, &format!("count({suite}/testcase[@name='flaky']/*)")),
        "1"
    );
    assert_eq!(
        case(file, "docs", "/skipped/@message"),
        "skipped: no documentation changed"
    );
    assert_eq!(
        case(file, "deploy", "/skipped/@message"),
        "cancelled: upstream-failed: needs `unit`, which did not succeed"
    );
    assert_eq!(case(file, "compile", "/system-out"), "attempts: 1");
    assert_eq!(
        xpath(file, &format!("count({suite}/testcase/failure)")),
        "1"
    );
}

/// What the `report` fixture's summary must say, line by line. `profile` is the `--profile` the
/// open hint names.
fn check_summary(md: &str, run_id: &str, profile: Option<&str>) {
    assert!(
        md.contains(&format!("### ❌ sparkwing: report failed · `{run_id}`\n")),
        "{md}"
    );
    assert!(
        md.contains("5 job(s): 2 succeeded, 1 failed, 1 skipped, 1 cancelled in "),
        "{md}"
    );
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows[0], "| job | outcome | duration | attempts |", "{md}");
    let cells = |row: &str| -> Vec<String> {
        row.trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect()
    };
    let body: Vec<Vec<String>> = rows[1..].iter().map(|r| cells(r)).collect();
    assert_eq!(body.len(), 5, "{md}");
    let expect = [
        ("compile", "✅ success", "1"),
        ("unit", "❌ failed (exit code 1)", "1"),
        ("flaky", "✅ success", "2 (retried)"),
        ("docs", "⏭️ skipped (no documentation changed)", "–"),
        ("deploy", "🚫 cancelled (upstream\\-failed)", "–"),
    ];
    for (row, (job, outcome, attempts)) in body.iter().zip(expect) {
        assert_eq!(
            (row[0].as_str(), row[1].as_str(), row[3].as_str()),
            (job, outcome, attempts),
            "{md}"
        );
        let dur = row[2].as_str();
        match job {
            "docs" | "deploy" => assert_eq!(dur, "–", "{md}"),
            _ => assert!(dur.ends_with("ms") || dur.ends_with('s'), "{job}: {dur}"),
        }
    }
    // The failed job's last log lines, in a fence longer than the four backticks it printed.
    assert!(md.contains("#### ❌ unit failed (exit code 1)\n"), "{md}");
    let fence = "`````text\n";
    let start = md
        .find(fence)
        .unwrap_or_else(|| panic!("no five-backtick fence:\n{md}"))
        + fence.len();
    let block = &md[start..start + md[start..].find("\n`````\n").unwrap()];
    let lines: Vec<&str> = block.lines().collect();
    assert!(lines.len() <= 20, "{block}");
    for line in [
        "running 3 tests",
        "````",
        "<script>alert(1)</script> & ]]> </failure> | pipe",
        "bell and red",
        "assertion failed: left == right",
    ] {
        assert!(lines.contains(&line), "no line {line:?} in:\n{block}");
    }
    assert!(!md.contains('\u{7}') && !md.contains('\u{1b}'), "{md:?}");
    // Outside the fence, nothing from the log or the records is raw HTML.
    let outside = md.replacen(block, "", 1);
    assert!(!outside.contains("<script>"), "{outside}");
    let show = match profile {
        Some(p) => format!("`sparkwing runs show {run_id} --profile {p}`"),
        None => format!("`sparkwing runs show {run_id}`"),
    };
    assert!(md.contains(&format!("**Open this run:** {show}")), "{md}");
}

/// Renders `md` with marked in headless Chromium and returns what the page shows.
fn render_in_browser(md_file: &Path, shot: &Path) -> serde_json::Value {
    let setup = Command::new(workspace().join("scripts/browser-setup.sh"))
        .status()
        .unwrap();
    assert!(setup.success(), "scripts/browser-setup.sh failed");
    let out = Command::new("node")
        .arg(workspace().join("tests/browser/summary.test.mjs"))
        .arg(md_file)
        .arg(shot)
        .current_dir(workspace().join("tests/browser"))
        .output()
        .expect("run node (install Node.js 20)");
    assert!(
        out.status.success(),
        "summary.test.mjs failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_run_with_failing_retried_and_skipped_jobs_reports_to_the_summary_and_junit() {
    let mut w = World::sample();
    let summary = w.home.join("step-summary.md");
    // GitHub appends every step's summary to one file: what was there stays.
    std::fs::write(&summary, "earlier step\n").unwrap();
    w.set("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())
        .set("SPARKWING_DASHBOARD_URL", "http://127.0.0.1:4343/");
    // A relative path is taken from where `sparkwing run` was started (the repository here).
    let r = w.run(&["run", "report", "--junit", "reports/junit.xml"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let id = r.run_id();
    assert!(!r.stderr.contains("warning"), "{}", r.all());
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("earlier step\n### "), "{md}");
    check_summary(&md, &id, None);
    assert!(
        md.contains(&format!(
            "[open in the dashboard](<http://127.0.0.1:4343/#/runs/{id}>)"
        )),
        "{md}"
    );
    let junit = w.repo.join("reports/junit.xml");
    assert!(
        r.stderr.contains(&format!(
            "sparkwing: JUnit report of {id} written to `{}`",
            junit.display()
        )),
        "{}",
        r.all()
    );
    check_junit(&junit, &id);

    // The summary as a page: marked renders it, Chromium shows it.
    let shot = workspace().join("target/browser-screenshots/summary.png");
    let _ = std::fs::remove_file(&shot);
    let page = render_in_browser(&summary, &shot);
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 1000)
            .unwrap_or(false),
        "no screenshot {}",
        shot.display()
    );
    assert_eq!(
        page["headers"],
        serde_json::json!(["job", "outcome", "duration", "attempts"])
    );
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{page:#}");
    assert_eq!(rows[1][0], "unit");
    assert_eq!(rows[1][1], "❌ failed (exit code 1)");
    assert_eq!(rows[2][3], "2 (retried)");
    assert_eq!(rows[3][1], "⏭️ skipped (no documentation changed)");
    assert_eq!(rows[4][1], "🚫 cancelled (upstream-failed)");
    assert_eq!(page["failedRowVisible"], true, "{page:#}");
    assert_eq!(page["h3"][0], format!("❌ sparkwing: report failed · {id}"));
    assert_eq!(page["h4"][0], "❌ unit failed (exit code 1)");
    let code = page["code"][0].as_str().unwrap();
    assert!(
        code.contains("\n<script>alert(1)</script> & ]]> </failure> | pipe\n"),
        "the log line shows as text: {code}"
    );
    assert_eq!(page["injected"], 0, "{page:#}");
    assert_eq!(page["dialogs"], serde_json::json!([]), "{page:#}");
    assert_eq!(
        page["links"],
        serde_json::json!([format!("http://127.0.0.1:4343/#/runs/{id}")])
    );
}

#[test]
fn ci_embedded_with_records_in_the_bucket_reports_from_the_bucket() {
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-report");
    let mut w = bucket_world(&s3, &prefix, &fixture_repo("sample"), "");
    let summary = w.home.join("step-summary.md");
    let junit = scratch().join(format!("{prefix}-junit.xml"));
    w.set("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())
        .set("GITHUB_ACTIONS", "true")
        .set("SPARKWING_JUNIT", junit.to_str().unwrap());
    let r = w.run(&["run", "report", "--sw-mode=ci-embedded", "--profile", "ci"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let id = r.run_id();
    assert!(!r.stderr.contains("warning"), "{}", r.all());
    // The console's own grouping is still there.
    assert!(
        r.stdout.contains("::group::") || r.stderr.contains("::group::"),
        "{}",
        r.all()
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    check_summary(&md, &id, Some("ci"));
    check_junit(&junit, &id);
    // What the summary says is what the bucket says: a laptop reading it back sees the same.
    let laptop = bucket_world(&s3, &prefix, &w.repo, "");
    let show = laptop.show_with(&id, &["--profile", "ci"]);
    assert_eq!(show["run"]["status"], "failed");
    assert_eq!(crate::support::node(&show, "flaky")["attempts"], 2);
}

/// Buildkite's agent cannot run here (it needs a Buildkite job and an agent token): a fake
/// `buildkite-agent` on PATH records its arguments and stdin instead, so the test sees exactly
/// what the real agent would be given.
#[test]
fn buildkite_annotates_through_the_agent_on_path() {
    let mut w = World::sample();
    let bin = w.home.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let agent = bin.join("buildkite-agent");
    std::fs::write(
        &agent,
        "#!/bin/sh\n# Fake buildkite-agent: records one call per run.\nprintf '%s\\n' \"$@\" > \"$FAKE_AGENT_DIR/args-$$\"\ncat > \"$FAKE_AGENT_DIR/stdin-$$\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let calls = w.home.join("agent-calls");
    std::fs::create_dir_all(&calls).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    w.set("BUILDKITE", "true")
        .set("PATH", &path)
        .set("FAKE_AGENT_DIR", calls.to_str().unwrap());
    let read_call = |id: &str| -> (Vec<String>, String) {
        let mut found = None;
        for e in std::fs::read_dir(&calls).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if let Some(pid) = name.strip_prefix("args-") {
                let args: Vec<String> = std::fs::read_to_string(&p)
                    .unwrap()
                    .lines()
                    .map(String::from)
                    .collect();
                if args.iter().any(|a| a.contains(id)) {
                    let stdin =
                        std::fs::read_to_string(calls.join(format!("stdin-{pid}"))).unwrap();
                    found = Some((args, stdin));
                }
            }
        }
        found.unwrap_or_else(|| panic!("no agent call for {id}"))
    };

    let r = w.run(&["run", "report"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let id = r.run_id();
    let (args, stdin) = read_call(&id);
    assert_eq!(
        args,
        [
            "annotate",
            "--style",
            "error",
            "--context",
            &format!("sparkwing-{id}")
        ]
    );
    check_summary(&stdin, &id, None);

    let r = w.run(&["run", "hello"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let id = r.run_id();
    let (args, stdin) = read_call(&id);
    assert_eq!(
        args,
        [
            "annotate",
            "--style",
            "success",
            "--context",
            &format!("sparkwing-{id}")
        ]
    );
    assert!(
        stdin.starts_with(&format!("### ✅ sparkwing: hello success · `{id}`\n")),
        "{stdin}"
    );
    assert!(stdin.contains("3 job(s): 3 succeeded in "), "{stdin}");
}

/// A report that cannot be made is one warning line; the exit code stays the pipeline's.
#[test]
fn a_report_that_cannot_be_made_is_one_warning_and_the_exit_code_stays() {
    let mut w = World::sample();
    // A directory where the summary file should be: appending fails.
    let dir = w.home.join("not-a-file");
    std::fs::create_dir_all(&dir).unwrap();
    w.set("GITHUB_STEP_SUMMARY", dir.to_str().unwrap());
    let r = w.run(&["run", "failing"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let warnings: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", r.all());
    assert!(
        warnings[0].starts_with(&format!(
            "warning: could not append the run summary to `{}`",
            dir.display()
        )),
        "{}",
        r.all()
    );

    // A plan the pipeline refuses records no run: nothing to report, and exit 2 stays.
    let summary = w.home.join("summary.md");
    let mut w2 = w.with_new_home();
    w2.set("GITHUB_STEP_SUMMARY", summary.to_str().unwrap());
    let r = w2.run(&["run", "badplan"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let warnings: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", r.all());
    assert!(
        warnings[0].starts_with("warning: no report of run run-")
            && warnings[0].ends_with(
                "for the CI page: run has no records (the pipeline ended before it recorded the run)"
            ),
        "{}",
        r.all()
    );
    assert!(!summary.exists());
}
