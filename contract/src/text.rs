//! Text that came from somewhere else — job output, record fields, a bucket someone else can write
//! — made safe to show. One scanner of terminal control sequences (ECMA-48: CSI, OSC, string
//! commands, two-byte escapes, C0 and C1 controls) serves every place that shows or matches such
//! text: the masker (secrets are matched on what a reader sees), the dashboard's plain view, and
//! the CLI's output of records and logs.

use std::borrow::Cow;

const ESC: char = '\u{1b}';
const BEL: char = '\u{7}';
/// The 8-bit control sequence introducer.
const CSI8: char = '\u{9b}';
/// The 8-bit operating system command.
const OSC8: char = '\u{9d}';
/// The 8-bit string terminator.
const ST8: char = '\u{9c}';

/// One piece of a text, in order; the pieces of a text concatenate back to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Characters a reader sees (including tab and line feed).
    Text(&'a str),
    /// A colour or style change (`ESC [ … m`): harmless on a terminal.
    Style(&'a str),
    /// Any other escape sequence (cursor moves, titles, clipboard writes, hyperlinks…).
    Escape(&'a str),
    /// A lone control character (carriage return, backspace, bell, a C1 control, DEL…), or a
    /// character that reorders what a reader sees (bidirectional overrides).
    Control(char),
}

/// Whether `c` is shown to a reader as itself: not a control, not a bidirectional override.
fn is_plain(c: char) -> bool {
    let layout = c == '\t' || c == '\n';
    (layout || !c.is_control()) && !is_bidi_control(c)
}

/// Characters that reorder the text around them (the "Trojan Source" characters).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
}

/// The pieces of `s`, with the byte offset at which each starts.
pub fn pieces(s: &str) -> impl Iterator<Item = (usize, Piece<'_>)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let rest = &s[at..];
        let first = rest.chars().next()?;
        let start = at;
        let (len, piece) = if is_plain(first) {
            let len = rest.find(|c: char| !is_plain(c)).unwrap_or(rest.len());
            (len, Piece::Text(&rest[..len]))
        } else if first == ESC || first == CSI8 || first == OSC8 {
            let len = sequence_len(rest);
            let seq = &rest[..len];
            if len == first.len_utf8() {
                (len, Piece::Control(first))
            } else if is_style(seq) {
                (len, Piece::Style(seq))
            } else {
                (len, Piece::Escape(seq))
            }
        } else {
            (first.len_utf8(), Piece::Control(first))
        };
        at += len;
        Some((start, piece))
    })
}

/// `ESC [ <digits and ;> m` (the 8-bit introducer is not kept: terminals disagree about it).
fn is_style(seq: &str) -> bool {
    seq.strip_prefix("\u{1b}[")
        .and_then(|b| b.strip_suffix('m'))
        .is_some_and(|p| {
            p.bytes()
                .all(|b| b.is_ascii_digit() || b == b';' || b == b':')
        })
}

/// Length in bytes of the escape sequence that `s` starts with (`s` starts with ESC, CSI or OSC).
/// An unterminated sequence runs to the end of `s`; a lone ESC is one byte.
fn sequence_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    let (_, first) = chars.next().expect("non-empty");
    let kind = if first == ESC {
        match chars.next() {
            Some((_, '[')) => '[',
            Some((_, c @ (']' | 'P' | 'X' | '^' | '_'))) => c,
            // A two-byte escape (`ESC 7`, `ESC c`, …): ESC and one printable ASCII character.
            Some((i, c)) if (' '..='~').contains(&c) => return i + 1,
            _ => return first.len_utf8(),
        }
    } else if first == CSI8 {
        '['
    } else {
        ']'
    };
    if kind == '[' {
        // Parameters and intermediates, then one final byte.
        for (i, c) in chars {
            if ('\u{40}'..='\u{7e}').contains(&c) {
                return i + 1;
            }
            if !('\u{20}'..='\u{3f}').contains(&c) {
                // Not a valid sequence: it ends before this character.
                return i;
            }
        }
        return s.len();
    }
    // A string command (OSC, DCS, SOS, PM, APC): runs to BEL, ESC \ or ST.
    let mut prev_esc = false;
    for (i, c) in chars {
        if c == BEL || c == ST8 {
            return i + c.len_utf8();
        }
        if prev_esc && c == '\\' {
            return i + 1;
        }
        prev_esc = c == ESC;
    }
    s.len()
}

/// What a reader sees of `s`: every escape sequence and control character removed (tabs and line
/// feeds stay).
pub fn strip_controls(s: &str) -> Cow<'_, str> {
    if s.chars().all(is_plain) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for (_, p) in pieces(s) {
        if let Piece::Text(t) = p {
            out.push_str(t);
        }
    }
    Cow::Owned(out)
}

/// [`strip_controls`] with, for each byte of the result, the offset in `s` of the byte it came
/// from: a match at `a..b` in the result covers `map[a]..map[b - 1] + 1` in `s`.
pub fn strip_controls_mapped(s: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(s.len());
    let mut map = Vec::with_capacity(s.len());
    for (at, p) in pieces(s) {
        if let Piece::Text(t) = p {
            out.push_str(t);
            map.extend(at..at + t.len());
        }
    }
    (out, map)
}

/// A field of a record (an id, a status, an error message) as one safe line for a terminal or a
/// table: every control character and escape sequence is shown escaped (`\n`, `\u{1b}[2J`), so a
/// record can neither move the cursor nor fake another line.
pub fn printable(s: &str) -> Cow<'_, str> {
    if s.chars().all(|c| is_plain(c) && c != '\n' && c != '\t') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_plain(c) && c != '\n' && c != '\t' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    Cow::Owned(out)
}

/// A line of job output for a terminal: colour and style changes stay when `keep_style` (the
/// reader's terminal shows colours), every other escape sequence is dropped, and other control
/// characters are shown escaped. Nothing in a log can retitle the window, write the clipboard or
/// rewrite what was printed before it.
pub fn terminal_safe(s: &str, keep_style: bool) -> Cow<'_, str> {
    if s.chars().all(is_plain) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for (_, p) in pieces(s) {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Style(t) if keep_style => out.push_str(t),
            Piece::Style(_) | Piece::Escape(_) => {}
            Piece::Control(c) => out.extend(c.escape_default()),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_text_in_order() {
        let s = "a\u{1b}[01;31m\u{1b}[Kb\rc\u{1b}]0;title\u{7}d\u{1b}]8;;http://x\u{1b}\\e\u{9b}2Jf\u{1b}7g\u{1b}";
        let got: Vec<Piece> = pieces(s).map(|(_, p)| p).collect();
        assert_eq!(
            got,
            vec![
                Piece::Text("a"),
                Piece::Style("\u{1b}[01;31m"),
                Piece::Escape("\u{1b}[K"),
                Piece::Text("b"),
                Piece::Control('\r'),
                Piece::Text("c"),
                Piece::Escape("\u{1b}]0;title\u{7}"),
                Piece::Text("d"),
                Piece::Escape("\u{1b}]8;;http://x\u{1b}\\"),
                Piece::Text("e"),
                Piece::Escape("\u{9b}2J"),
                Piece::Text("f"),
                Piece::Escape("\u{1b}7"),
                Piece::Text("g"),
                Piece::Control('\u{1b}'),
            ]
        );
        let mut joined = String::new();
        for (at, p) in pieces(s) {
            let t = match p {
                Piece::Text(t) | Piece::Style(t) | Piece::Escape(t) => t.to_string(),
                Piece::Control(c) => c.to_string(),
            };
            assert_eq!(&s[at..at + t.len()], t);
            joined.push_str(&t);
        }
        assert_eq!(joined, s);
    }

    #[test]
    fn stripping_shows_what_a_reader_sees_and_maps_back() {
        let raw = "tok-\u{1b}[01;31m\u{1b}[KSuper\u{1b}[m\u{1b}[KSecret\r-123";
        assert_eq!(strip_controls(raw), "tok-SuperSecret-123");
        let (seen, map) = strip_controls_mapped(raw);
        let a = seen.find("SuperSecret").unwrap();
        let b = a + "SuperSecret".len();
        assert_eq!(&raw[map[a]..map[b - 1] + 1], "Super\u{1b}[m\u{1b}[KSecret");
        assert!(matches!(strip_controls("plain\ttext"), Cow::Borrowed(_)));
        // An unterminated sequence hides the rest of the line, as a terminal would.
        assert_eq!(strip_controls("a\u{1b}]0;never ends"), "a");
        // A broken CSI ends where it stops being one.
        assert_eq!(strip_controls("a\u{1b}[12\u{7}b"), "ab");
    }

    #[test]
    fn printable_fields_are_one_inert_line() {
        assert_eq!(printable("build"), "build");
        assert_eq!(
            printable("x\n\u{1b}[2J\u{202e}evil\t"),
            "x\\n\\u{1b}[2J\\u{202e}evil\\t"
        );
    }

    #[test]
    fn terminal_safe_keeps_only_colours() {
        let s = "\u{1b}[31mred\u{1b}[0m\u{1b}]52;c;aGk=\u{7}\u{1b}[2Jok\r";
        assert_eq!(terminal_safe(s, true), "\u{1b}[31mred\u{1b}[0mok\\r");
        assert_eq!(terminal_safe(s, false), "redok\\r");
    }
}
