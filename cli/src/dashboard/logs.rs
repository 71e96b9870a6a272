//! Rendering stored log records for the API: plain text, text with ANSI colours, or the raw
//! NDJSON records.

use sparkwing_storage::ReadOpts;

/// The response format of a log request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Messages, ANSI escape sequences removed (`text/plain`).
    Plain,
    /// Messages as written, colours included (`text/x-ansi`).
    Ansi,
    /// The stored records, one JSON object a line (`application/x-ndjson`).
    Ndjson,
}

impl LogFormat {
    /// `?format=` value (Go original spellings accepted); `None` for an unknown value.
    pub fn parse(s: &str) -> Option<LogFormat> {
        Some(match s {
            "" | "plain" | "text" => LogFormat::Plain,
            "ansi" | "color" => LogFormat::Ansi,
            "ndjson" | "raw" | "json" => LogFormat::Ndjson,
            _ => return None,
        })
    }

    /// The `Content-Type` of the response.
    pub fn content_type(self) -> &'static str {
        match self {
            LogFormat::Plain => "text/plain; charset=utf-8",
            LogFormat::Ansi => "text/x-ansi; charset=utf-8",
            LogFormat::Ndjson => "application/x-ndjson",
        }
    }
}

/// Renders the stored bytes of one node's log, then applies the filters to the rendered lines so
/// `grep` matches what the reader sees (not JSON keys).
pub fn render(stored: &[u8], format: LogFormat, opts: &ReadOpts) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.len());
    for line in stored.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match format {
            LogFormat::Ndjson => out.extend_from_slice(line),
            LogFormat::Ansi => out.extend_from_slice(message(line).as_bytes()),
            LogFormat::Plain => out.extend_from_slice(strip_ansi(&message(line)).as_bytes()),
        }
        out.push(b'\n');
    }
    opts.apply(&out)
}

use sparkwing_contract::record::log_line_text as message;

/// Removes ANSI escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL|ESC \`, and two-byte
/// escapes).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(msg: &str) -> String {
        serde_json::json!({"ts": "2026-01-01T00:00:00Z", "node": "b", "msg": msg}).to_string()
    }

    #[test]
    fn formats() {
        let stored = format!(
            "{}\n{}\n{}\nnot json\n",
            rec("\u{1b}[31mred\u{1b}[0m text"),
            serde_json::json!({"ts": "t", "event": "node_end"}),
            rec("<script>alert(1)</script>")
        );
        let plain = render(stored.as_bytes(), LogFormat::Plain, &ReadOpts::default());
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            "red text\n· node_end\n<script>alert(1)</script>\nnot json\n"
        );
        let ansi = render(stored.as_bytes(), LogFormat::Ansi, &ReadOpts::default());
        assert!(
            String::from_utf8(ansi)
                .unwrap()
                .starts_with("\u{1b}[31mred\u{1b}[0m text\n")
        );
        let raw = render(stored.as_bytes(), LogFormat::Ndjson, &ReadOpts::default());
        assert_eq!(raw, stored.as_bytes());
    }

    #[test]
    fn filters_apply_to_rendered_lines() {
        let stored = format!("{}\n{}\n{}\n", rec("one"), rec("two msg"), rec("three msg"));
        let grep = ReadOpts {
            grep: Some("msg".into()),
            ..Default::default()
        };
        assert_eq!(
            render(stored.as_bytes(), LogFormat::Plain, &grep),
            b"two msg\nthree msg\n"
        );
        // `msg` is also a JSON key: grep on records must not match every line.
        let grep = ReadOpts {
            grep: Some("one".into()),
            ..Default::default()
        };
        assert_eq!(render(stored.as_bytes(), LogFormat::Plain, &grep), b"one\n");
        let tail = ReadOpts {
            tail: 1,
            ..Default::default()
        };
        assert_eq!(
            render(stored.as_bytes(), LogFormat::Plain, &tail),
            b"three msg\n"
        );
    }

    #[test]
    fn strips_csi_and_osc() {
        assert_eq!(strip_ansi("\u{1b}[1;32mok\u{1b}[0m"), "ok");
        assert_eq!(
            strip_ansi("\u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{7}"),
            "link"
        );
        assert_eq!(strip_ansi("plain"), "plain");
    }
}
