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
