//! Records and logs from a bucket that someone else can write: what the CLI prints of them cannot
//! drive the reader's terminal.

use crate::support::*;
use sparkwing_storage::{ArtifactStore, LogStore};
use sparkwing_storage_testing::TestS3;

/// Every character a terminal would act on, other than the line feeds the CLI writes itself.
fn controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

#[test]
fn hostile_records_and_logs_print_inert() {
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-hostile");
    let cache = bucket_cache(&s3, &prefix);
    let id = sparkwing_contract::RunId::generate().to_string();
    let now = sparkwing_contract::timefmt::unix_nanos_to_rfc3339(
        sparkwing_contract::timefmt::now_unix_nanos(),
    );
    // A title change, a screen clear, a clipboard write, a fake table row and a bidi override.
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}]52;c;cm0gLXJmIC8=\u{7}";
    let run = serde_json::json!({"kind": "run", "data": {
        "id": id, "pipeline": format!("deploy{evil}"), "status": "failed", "started_at": now,
        "finished_at": now, "error": format!("boom\n  fake-node  success{evil}"),
        "git_branch": "main\u{202e}", "git_sha": "abc\u{1b}[8m",
        "invocation": {"mode": "ci-embedded", "profile": "ci\r", "ci_vendor": "github\u{9b}2J"},
        "format_version": 1,
    }});
    let node = serde_json::json!({"kind": "node", "data": {
        "run_id": id, "id": "build", "status": "done", "outcome": "failed",
        "error": format!("exit 1\n::warning::injected{evil}"), "deps": [],
    }});
    let dump = format!("{run}\n{node}\n");
    block(cache.put(&format!("runs/{id}/state.ndjson"), dump.into_bytes())).unwrap();
    let logs = sparkwing_storage::s3::S3LogStore::new(
        s3.config(),
        &s3.bucket,
        &format!("{prefix}/logs"),
        sparkwing_storage::s3::S3Options::default(),
    )
    .unwrap();
    let line = serde_json::json!({"ts": now, "node": "build",
        "msg": format!("\u{1b}[31mred\u{1b}[0m then {evil}\r overwritten")});
    block(logs.append_part(&id, "build", format!("{line}\n").into_bytes())).unwrap();

    let laptop = bucket_world(&s3, &prefix, &fixture_repo("sample"), "");
    let list = laptop.run(&["runs", "list", "--profile", "ci"]);
    assert_eq!(list.code, 0, "{}", list.all());
    assert!(list.stdout.contains(&id), "{}", list.all());
    assert_eq!(
        controls(&list.all()),
        Vec::<char>::new(),
        "{:?}",
        list.stdout
    );

    let show = laptop.run(&["runs", "show", &id, "--profile", "ci"]);
    assert_eq!(show.code, 0, "{}", show.all());
    assert_eq!(
        controls(&show.all()),
        Vec::<char>::new(),
        "{:?}",
        show.stdout
    );
    // The escaped text still says what the record holds, on the lines the CLI chose.
    assert!(
        show.stdout.contains("boom\\n  fake-node"),
        "{}",
        show.stdout
    );
    assert!(
        !show
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("fake-node") || l.starts_with("::warning")),
        "{}",
        show.stdout
    );

    let out = laptop.run(&["runs", "logs", &id, "--profile", "ci"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("red then"), "{}", out.all());
    // Not a terminal: not even colours; escape sequences go whole, line breaks become spaces.
    assert_eq!(controls(&out.all()), Vec::<char>::new(), "{:?}", out.stdout);
    assert!(
        out.stdout.contains(" overwritten") && !out.stdout.contains("pwned"),
        "{:?}",
        out.stdout
    );
}
