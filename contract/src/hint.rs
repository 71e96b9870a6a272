//! Errors that say how to fix them. `Display` is what went wrong, alone; [`Hinted::hint`] is the
//! fix, typed apart, so the command line prints `error: …` and `  hint: …` once each and no caller
//! ever parses a hint back out of a message.

/// An error with an optional hint.
pub trait Hinted: std::error::Error {
    /// How to fix it, when there is an obvious way.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// The message followed by `\nhint: …` when there is a hint: for tests and logs that want both.
pub fn with_hint(e: &dyn Hinted) -> String {
    match e.hint() {
        Some(h) => format!("{e}\nhint: {h}"),
        None => e.to_string(),
    }
}
