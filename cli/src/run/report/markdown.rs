//! The run as Markdown for a CI vendor's page (GitHub Actions' job summary, a Buildkite
//! annotation): a heading with the verdict, a table of jobs, the last log lines of each failed
//! job, and how to open the run.
//!
//! Every record field and log line is someone else's text (a job's output, a bucket's record):
//! it is shown as text and can neither end the block it stands in nor become HTML or a link.
//! Fields are written with every ASCII punctuation character backslash-escaped (CommonMark then
//! shows each as itself, `<` and `|` included); log lines go into a fenced block whose fence is
//! longer than any run of backticks inside it, so no line can close it, and a fenced block shows
//! `<script>` as text.

use super::results::{JobResult, RunResults, Verdict};
use sparkwing_contract::RunStatus;
use sparkwing_contract::human::duration_ms;
use sparkwing_contract::text::printable;
use std::fmt::Write;

/// More jobs than this, and only the ones that did not pass are listed (with a count of the
/// rest): the page stays readable and under the vendors' size caps.
pub const MAX_ROWS: usize = 300;
/// Failed jobs whose log lines are shown; the rest are named with the command that shows them.
pub const MAX_TAILS: usize = 20;

/// How to open the run elsewhere.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// The profile to name in `sparkwing runs show … --profile P`; `None` for the built-in one.
    pub profile: Option<String>,
    /// A dashboard's base URL (`http://` or `https://`).
    pub dashboard: Option<String>,
}

/// The symbol shown before a verdict.
pub fn symbol(v: Verdict) -> &'static str {
    match v {
        Verdict::Passed | Verdict::Cached => "✅",
        Verdict::Failed => "❌",
        Verdict::Skipped => "⏭️",
        Verdict::Cancelled => "🚫",
        Verdict::Unfinished => "⚠️",
    }
}

fn run_symbol(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Success => "✅",
        RunStatus::Failed => "❌",
        RunStatus::Cancelled => "🚫",
        RunStatus::Pending | RunStatus::Running => "⚠️",
    }
}

/// The whole summary, ending in a blank line (summaries of several runs follow each other).
pub fn summary(r: &RunResults, links: &Links) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {} sparkwing: {} {} · {}\n",
        run_symbol(r.status),
        text(&r.pipeline),
        r.status,
        code(&r.run_id)
    );
    let mut counts = Vec::new();
    for (v, word) in [
        (Verdict::Passed, "succeeded"),
        (Verdict::Cached, "cached"),
        (Verdict::Failed, "failed"),
        (Verdict::Skipped, "skipped"),
        (Verdict::Cancelled, "cancelled"),
        (Verdict::Unfinished, "unfinished"),
    ] {
        let n = r.count(v);
        if n > 0 {
            counts.push(format!("{n} {word}"));
        }
    }
    let _ = write!(out, "{} job(s)", r.jobs.len());
    if !counts.is_empty() {
        let _ = write!(out, ": {}", counts.join(", "));
    }
    if let Some(ms) = r.duration_ms {
        let _ = write!(out, " in {}", duration_ms(ms));
    }
    out.push_str(".\n\n");
    if !r.error.is_empty() {
        let _ = writeln!(out, "**Error:** {}\n", text(&r.error));
    }
    table(&mut out, r);
    tails(&mut out, r, links);
    open_hints(&mut out, r, links);
    out.push('\n');
    out
}

fn table(out: &mut String, r: &RunResults) {
    if r.jobs.is_empty() {
        return;
    }
    let listed: Vec<&JobResult> = if r.jobs.len() <= MAX_ROWS {
        r.jobs.iter().collect()
    } else {
        r.jobs
            .iter()
            .filter(|j| !matches!(j.verdict, Verdict::Passed | Verdict::Cached))
            .take(MAX_ROWS)
            .collect()
    };
    out.push_str("| job | outcome | duration | attempts |\n|---|---|---|---|\n");
    for j in &listed {
        let _ = writeln!(
            out,
            "| {} | {} {}{} | {} | {} |",
            text(&j.id),
            symbol(j.verdict),
            j.verdict.as_str(),
            reason(j),
            j.duration_ms.map(duration_ms).unwrap_or_else(|| "–".into()),
            attempts(j.attempts)
        );
    }
    let unlisted = r.jobs.len() - listed.len();
    if unlisted > 0 {
        let _ = writeln!(
            out,
            "\n{unlisted} more job(s) not listed (every one not listed succeeded)."
        );
    }
    out.push('\n');
}

/// ` (timeout)`, ` (exit code 2)`: why a job did not pass, when the record says.
fn reason(j: &JobResult) -> String {
    if j.verdict == Verdict::Skipped && !j.error.is_empty() {
        return format!(" ({})", text(&j.error));
    }
    match (j.failure_reason.as_str(), j.exit_code) {
        ("exit-code", Some(c)) | ("", Some(c)) if c != 0 => format!(" (exit code {c})"),
        ("", _) => String::new(),
        (r, _) => format!(" ({})", text(r)),
    }
}

fn attempts(n: u32) -> String {
    match n {
        0 => "–".into(),
        1 => "1".into(),
        n => format!("{n} (retried)"),
    }
}

fn tails(out: &mut String, r: &RunResults, links: &Links) {
    let with_tail: Vec<&JobResult> = r
        .jobs
        .iter()
        .filter(|j| {
            matches!(
                j.verdict,
                Verdict::Failed | Verdict::Unfinished | Verdict::Cancelled
            ) && (!j.log_tail.is_empty() || j.verdict == Verdict::Failed)
        })
        .collect();
    for j in with_tail.iter().take(MAX_TAILS) {
        let _ = writeln!(
            out,
            "#### {} {} {}{}\n",
            symbol(j.verdict),
            text(&j.id),
            j.verdict.as_str(),
            reason(j)
        );
        // The error is often the last line of the log too: say it once.
        if !j.error.is_empty() && j.log_tail.last() != Some(&j.error) {
            let _ = writeln!(out, "{}\n", text(&j.error));
        }
        if j.log_tail.is_empty() {
            out.push_str("No log lines were stored for this job.\n\n");
        } else {
            let _ = writeln!(out, "Last {} log line(s):\n", j.log_tail.len());
            fenced(out, &j.log_tail);
        }
    }
    if with_tail.len() > MAX_TAILS {
        let _ = writeln!(
            out,
            "{} more job(s) did not succeed; {} shows their logs.\n",
            with_tail.len() - MAX_TAILS,
            code(&command(
                &["runs", "logs", &r.run_id, "--node", "<job>"],
                links
            ))
        );
    }
}

fn open_hints(out: &mut String, r: &RunResults, links: &Links) {
    let _ = write!(
        out,
        "**Open this run:** {}",
        code(&command(&["runs", "show", &r.run_id], links))
    );
    if let Some(url) = links
        .dashboard
        .as_deref()
        .and_then(|u| run_url(u, &r.run_id))
    {
        let _ = write!(out, " · [open in the dashboard](<{url}>)");
    }
    out.push('\n');
}

/// `sparkwing <args> [--profile P]`.
fn command(args: &[&str], links: &Links) -> String {
    let mut c = format!("sparkwing {}", args.join(" "));
    if let Some(p) = &links.profile {
        let _ = write!(c, " --profile {p}");
    }
    c
}

/// The dashboard page of run `id` under `base` (the page routes by fragment: `#/runs/<id>`), or
/// `None` when `base` is not an `http(s)://` URL. Characters that could end the link or leave the
/// angle-bracket destination are percent-encoded.
pub fn run_url(base: &str, id: &str) -> Option<String> {
    let base = base.trim();
    let lower = base.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    let mut url = String::new();
    for c in base.trim_end_matches('/').chars() {
        if c.is_control() || matches!(c, ' ' | '<' | '>' | '(' | ')' | '"' | '\'' | '\\' | '`') {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(url, "%{b:02X}");
            }
        } else {
            url.push(c);
        }
    }
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Some(format!("{url}/#/runs/{id}"))
}

/// A record field as Markdown text on one line: control characters shown escaped, every ASCII
/// punctuation character backslash-escaped (so nothing in it is markup, HTML, an entity or a
/// table cell's end).
pub fn text(s: &str) -> String {
    let s = printable(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `s` as an inline code span on one line: delimited by more backticks than any run inside it.
pub fn code(s: &str) -> String {
    let s = printable(s);
    let ticks = "`".repeat(longest_backtick_run(&s) + 1);
    // A space on each side keeps a backtick at either end from joining the delimiter; CommonMark
    // removes exactly one space from each side.
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// `lines` in a fenced block that none of them can close.
pub fn fenced(out: &mut String, lines: &[String]) {
    let longest = lines
        .iter()
        .map(|l| longest_backtick_run(l))
        .max()
        .unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    let _ = writeln!(out, "{fence}text");
    for l in lines {
        // Tail lines carry no line breaks or control characters; make sure of it here too.
        let _ = writeln!(
            out,
            "{}",
            l.replace(|c: char| c.is_control() && c != '\t', " ")
        );
    }
    let _ = writeln!(out, "{fence}\n");
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::report::results::{JobResult, RunResults, Verdict};

    fn job(id: &str, verdict: Verdict) -> JobResult {
        JobResult {
            id: id.into(),
            verdict,
            failure_reason: String::new(),
            error: String::new(),
            exit_code: None,
            duration_ms: Some(1500),
            attempts: 1,
            log_tail: Vec::new(),
        }
    }

    #[test]
    fn fields_are_text_and_log_lines_cannot_leave_their_block() {
        assert_eq!(text("a|b<script>"), "a\\|b\\<script\\>");
        assert_eq!(text("x\n# y"), "x\\\\n\\# y");
        assert_eq!(code("run-1"), "`run-1`");
        assert_eq!(code("a``b"), "```a``b```");
        assert_eq!(code("`x"), "`` `x ``");
        let mut out = String::new();
        fenced(
            &mut out,
            &[
                "````".into(),
                "```text".into(),
                "<img src=x onerror=alert(1)>".into(),
            ],
        );
        let fence = "`````";
        assert!(out.starts_with(&format!("{fence}text\n")), "{out}");
        assert!(out.ends_with(&format!("\n{fence}\n\n")), "{out}");
        // Only the opening and closing lines are fences of that length or longer.
        assert_eq!(
            out.lines().filter(|l| l.starts_with(fence)).count(),
            2,
            "{out}"
        );
    }

    #[test]
    fn a_summary_has_the_verdict_table_tails_and_links() {
        let mut failed = job("a", Verdict::Failed);
        failed.failure_reason = "exit-code".into();
        failed.exit_code = Some(1);
        failed.log_tail = vec!["failing on purpose".into()];
        let mut retried = job("flaky", Verdict::Passed);
        retried.attempts = 3;
        let mut skipped = job("docs", Verdict::Skipped);
        skipped.duration_ms = None;
        skipped.attempts = 0;
        let r = RunResults {
            run_id: "run-20261202-153000-0a1b2c3d".into(),
            pipeline: "report".into(),
            status: RunStatus::Failed,
            error: String::new(),
            started_at: None,
            duration_ms: Some(2300),
            jobs: vec![failed, retried, skipped],
        };
        let md = summary(
            &r,
            &Links {
                profile: Some("ci".into()),
                dashboard: Some("https://dash.example/".into()),
            },
        );
        assert!(
            md.starts_with("### ❌ sparkwing: report failed · `run-20261202-153000-0a1b2c3d`\n"),
            "{md}"
        );
        assert!(
            md.contains("3 job(s): 1 succeeded, 1 failed, 1 skipped in 2.3s."),
            "{md}"
        );
        assert!(
            md.contains("| a | ❌ failed (exit code 1) | 1.5s | 1 |\n"),
            "{md}"
        );
        assert!(
            md.contains("| flaky | ✅ success | 1.5s | 3 (retried) |\n"),
            "{md}"
        );
        assert!(md.contains("| docs | ⏭️ skipped | – | – |\n"), "{md}");
        assert!(md.contains("```text\nfailing on purpose\n```\n"), "{md}");
        assert!(
            md.contains("`sparkwing runs show run-20261202-153000-0a1b2c3d --profile ci`"),
            "{md}"
        );
        assert!(md.contains("[open in the dashboard](<https://dash.example/#/runs/run-20261202-153000-0a1b2c3d>)"), "{md}");
    }

    #[test]
    fn dashboard_links_are_http_only_and_cannot_leave_the_destination() {
        assert_eq!(run_url("javascript:alert(1)", "run-1"), None);
        assert_eq!(
            run_url("https://d.example/x y>(z)", "run-1").unwrap(),
            "https://d.example/x%20y%3E%28z%29/#/runs/run-1"
        );
    }
}
