//! Any bytes as a stored log line: the text shown for it is one line, and what the CLI prints
//! of it (or of a record field) cannot drive a terminal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkwing_contract::record::log_line_text;
use sparkwing_contract::text::{printable, strip_controls, strip_controls_mapped, terminal_safe};

/// A character a terminal would act on: a control (other than tab) or a reordering character.
fn active(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
}

fuzz_target!(|data: &[u8]| {
    let text = log_line_text(data);
    assert!(!text.contains(['\n', '\r']), "{text:?}");
    assert!(!terminal_safe(&text, false).chars().any(active), "{text:?}");
    let with_colour = terminal_safe(&text, true);
    assert!(
        !with_colour.chars().filter(|&c| c != '\u{1b}').any(active),
        "{text:?}"
    );
    assert!(!printable(&text).chars().any(|c| active(c) || c == '\t'));
    let (seen, map) = strip_controls_mapped(&text);
    assert_eq!(seen, strip_controls(&text));
    assert_eq!(map.len(), seen.len());
    for (i, &at) in map.iter().enumerate() {
        assert_eq!(text.as_bytes()[at], seen.as_bytes()[i]);
    }
});
