//! Small helpers for printing command results.

use crate::error::CliError;
use std::io::Write;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(|e| CliError::failure(format!("write JSON: {e}")))?;
    let _ = writeln!(out);
    Ok(())
}

/// A compact human duration: `850ms`, `12.3s`, `4m05s`.
pub fn human_duration(ms: i64) -> String {
    if ms < 0 {
        return "-".into();
    }
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::human_duration(850), "850ms");
        assert_eq!(super::human_duration(12_340), "12.3s");
        assert_eq!(super::human_duration(245_000), "4m05s");
    }
}
