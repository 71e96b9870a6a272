//! The run as a JUnit XML report, the format CI vendors read test results from (GitLab's
//! `artifacts:reports:junit`, CircleCI's `store_test_results`, Buildkite Test Analytics, GitHub
//! test-report actions): one `<testsuite>` per run named after the pipeline, one `<testcase>` per
//! job. The layout follows the Ant/Jenkins format; `tests/e2e/junit.xsd` describes it and the
//! end-to-end tests validate every report against it.
//!
//! Record fields and log lines are someone else's text: terminal sequences are removed, the
//! characters XML 1.0 forbids (other control characters, U+FFFE, U+FFFF) are dropped, and the
//! rest is escaped, so nothing in them can end an element or an attribute.

use super::results::{RunResults, Verdict};
use sparkwing_contract::text::strip_controls;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// The report. `hostname` is the machine that ran the pipeline, when known.
pub fn render(r: &RunResults, hostname: Option<&str>) -> String {
    let tests = r.jobs.len();
    let failures = r.count(Verdict::Failed);
    let errors = r.count(Verdict::Unfinished);
    let skipped = r.count(Verdict::Skipped) + r.count(Verdict::Cancelled);
    let counts = format!(
        "tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{}\"",
        seconds(r.duration_ms)
    );
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(x, "<testsuites name=\"sparkwing\" {counts}>");
    let _ = write!(x, "  <testsuite name=\"{}\" {counts}", attr(&r.pipeline));
    if let Some(ts) = r.started_at.and_then(timestamp) {
        let _ = write!(x, " timestamp=\"{ts}\"");
    }
    if let Some(h) = hostname.filter(|h| !h.is_empty()) {
        let _ = write!(x, " hostname=\"{}\"", attr(h));
    }
    x.push_str(">\n    <properties>\n");
    for (name, value) in [
        ("sparkwing.run_id", r.run_id.as_str()),
        ("sparkwing.pipeline", r.pipeline.as_str()),
        ("sparkwing.status", r.status.as_str()),
    ] {
        let _ = writeln!(
            x,
            "      <property name=\"{name}\" value=\"{}\"/>",
            attr(value)
        );
    }
    x.push_str("    </properties>\n");
    for j in &r.jobs {
        let _ = writeln!(
            x,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
            attr(&j.id),
            attr(&r.pipeline),
            seconds(j.duration_ms)
        );
        let why = match (j.failure_reason.as_str(), j.exit_code) {
            ("exit-code" | "", Some(c)) => format!("exit code {c}"),
            ("", None) => j.verdict.as_str().to_string(),
            (reason, _) => reason.to_string(),
        };
        let message = if j.error.is_empty() {
            why.clone()
        } else {
            format!("{why}: {}", j.error)
        };
        let kind = if j.failure_reason.is_empty() {
            j.verdict.as_str()
        } else {
            j.failure_reason.as_str()
        };
        match j.verdict {
            Verdict::Failed | Verdict::Unfinished => {
                let element = if j.verdict == Verdict::Failed {
                    "failure"
                } else {
                    "error"
                };
                let message = if j.verdict == Verdict::Unfinished {
                    "the run ended before this job did".to_string()
                } else {
                    message
                };
                let _ = write!(
                    x,
                    "      <{element} message=\"{}\" type=\"{}\">",
                    attr(&message),
                    attr(kind)
                );
                x.push_str(&text(&j.log_tail.join("\n")));
                let _ = writeln!(x, "</{element}>");
            }
            Verdict::Skipped => {
                let message = if j.error.is_empty() {
                    "skipped".to_string()
                } else {
                    format!("skipped: {}", j.error)
                };
                let _ = writeln!(x, "      <skipped message=\"{}\"/>", attr(&message));
            }
            Verdict::Cancelled => {
                let _ = writeln!(
                    x,
                    "      <skipped message=\"cancelled: {}\"/>",
                    attr(&message)
                );
            }
            Verdict::Passed | Verdict::Cached => {}
        }
        let mut out = format!("attempts: {}", j.attempts);
        if j.verdict == Verdict::Cached {
            out.push_str("\noutcome: cached");
        }
        if j.verdict == Verdict::Cancelled && !j.log_tail.is_empty() {
            out.push_str("\nlast log lines:\n");
            out.push_str(&j.log_tail.join("\n"));
        }
        let _ = writeln!(x, "      <system-out>{}</system-out>", text(&out));
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Milliseconds as seconds with three decimals (`0` when unknown or negative).
fn seconds(ms: Option<i64>) -> String {
    let ms = ms.unwrap_or(0).max(0);
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Unix nanoseconds as the format's timestamp: UTC to the second, without a zone (`2026-12-02T15:30:00`).
fn timestamp(nanos: i64) -> Option<String> {
    let rfc =
        sparkwing_contract::timefmt::unix_nanos_to_rfc3339(nanos - nanos.rem_euclid(1_000_000_000));
    Some(rfc.strip_suffix('Z')?.to_string())
}

/// Whether XML 1.0 allows `c` in a document at all.
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Element content.
pub fn text(s: &str) -> String {
    escape(s, false)
}

/// An attribute value (between double quotes); line breaks and tabs are kept as references,
/// since a parser turns literal ones into spaces.
pub fn attr(s: &str) -> String {
    escape(s, true)
}

/// `s` as XML: controls and characters XML 1.0 forbids dropped, markup escaped; in an attribute
/// also quotes, line breaks and tabs.
fn escape(s: &str, in_attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in strip_controls(s).chars().filter(|&c| allowed(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attr => out.push_str("&quot;"),
            '\'' if in_attr => out.push_str("&apos;"),
            '\n' if in_attr => out.push_str("&#10;"),
            '\t' if in_attr => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes `bytes` to `path` whole or not at all: into a temporary file beside it, synced, then
/// renamed over it, so a CI step that reads the report never sees half of one. Missing parent
/// directories are created.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped_and_forbidden_characters_dropped() {
        assert_eq!(
            text("a<b>&c]]>\u{1b}[31mred\u{0}\u{8}\u{fffe}\ttab\nnl"),
            "a&lt;b&gt;&amp;c]]&gt;red\ttab\nnl"
        );
        assert_eq!(
            attr("\"q\" 'a' <x> & y\nz\u{1}"),
            "&quot;q&quot; &apos;a&apos; &lt;x&gt; &amp; y&#10;z"
        );
    }

    #[test]
    fn times_are_seconds_and_timestamps_have_no_zone() {
        assert_eq!(seconds(Some(1234)), "1.234");
        assert_eq!(seconds(Some(-5)), "0.000");
        assert_eq!(seconds(None), "0.000");
        assert_eq!(
            timestamp(1_796_225_400_123_456_789).as_deref(),
            Some("2026-12-02T15:30:00")
        );
    }

    #[test]
    fn writes_replace_the_file_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("reports/junit.xml");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["junit.xml"]);
    }
}
