//! Text that came from somewhere else — job output, record fields, a bucket someone else can write
//! — made safe to show. One scanner of terminal control sequences (ECMA-48: CSI, OSC, string
//! commands, two-byte escapes, C0 and C1 controls) serves every place that shows or matches such
//! text: the masker (secrets are matched on what a reader sees), the dashboard's plain view, and
//! the CLI's output of records and logs.

use std::borrow::Cow;

/// One piece of a text, in order; the pieces of a text concatenate back to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Characters a reader sees (including tab and line feed).
    Text(&'a str),
    /// A colour or style change (`ESC [ … m`): harmless on a terminal.
    Style(&'a str),
    /// Any other escape sequence (cursor moves, titles, clipboard writes, hyperlinks…), including
    /// one the text ends inside of.
    Escape(&'a str),
    /// A lone control character (carriage return, backspace, bell, a C1 control, DEL…), or a
    /// character that reorders what a reader sees (bidirectional overrides).
    Control(char),
}

/// What a span of raw bytes is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Style,
    Escape,
    Control,
}

/// The length of the character at the start of `bytes`: a lead byte and the continuation bytes
/// that follow it (so invalid UTF-8 reads the same as its lossy conversion), else one byte.
fn char_len(bytes: &[u8]) -> usize {
    let want = match bytes.first() {
        Some(0xc2..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        Some(0xf0..=0xf4) => 4,
        _ => return 1,
    };
    1 + bytes[1..]
        .iter()
        .take(want - 1)
        .take_while(|b| (0x80..0xc0).contains(*b))
        .count()
}

/// The length of the one-character control at the start of `raw`, if it starts with one: a C0
/// control other than tab and line feed, DEL, a C1 control (U+0080–U+009F), or a character that
/// reorders the text around it (U+061C, U+200E/F, U+202A–E, U+2066–9: "Trojan Source").
fn control_len(raw: &[u8]) -> Option<usize> {
    match raw {
        [b, ..] if (*b < 0x20 && *b != b'\n' && *b != b'\t') || *b == 0x7f => Some(1),
        [0xc2, 0x80..=0x9f, ..] => Some(2),
        [0xd8, 0x9c, ..] => Some(2),
        [0xe2, 0x80, 0x8e | 0x8f | 0xaa..=0xae, ..] | [0xe2, 0x81, 0xa6..=0xa9, ..] => Some(3),
        _ => None,
    }
}

/// The span of `raw` that starts at `i`: its kind, where it ends, and whether it is complete (an
/// escape sequence that `raw` ends inside of is not). The rules are a terminal's: `ESC [` runs to
/// its final byte (0x40–0x7E), `ESC ]`, `ESC P`, `ESC X`, `ESC ^` and `ESC _` run to BEL or
/// `ESC \`, `ESC` and any other character are a pair, other controls are one character each.
fn span_at(raw: &[u8], i: usize) -> (Kind, usize, bool) {
    let rest = &raw[i..];
    if rest[0] == 0x1b {
        return match rest.get(1) {
            None => (Kind::Escape, raw.len(), false),
            Some(b'[') => match rest[2..].iter().position(|b| (0x40..=0x7e).contains(b)) {
                Some(p) => {
                    let seq = &rest[..p + 3];
                    let style = seq.ends_with(b"m")
                        && seq[2..p + 2]
                            .iter()
                            .all(|b| b.is_ascii_digit() || *b == b';' || *b == b':');
                    let kind = if style { Kind::Style } else { Kind::Escape };
                    (kind, i + p + 3, true)
                }
                None => (Kind::Escape, raw.len(), false),
            },
            Some(b']' | b'P' | b'X' | b'^' | b'_') => {
                let mut j = 2;
                while j < rest.len() {
                    if rest[j] == 0x07 {
                        return (Kind::Escape, i + j + 1, true);
                    }
                    if rest[j] == 0x1b && rest.get(j + 1) == Some(&b'\\') {
                        return (Kind::Escape, i + j + 2, true);
                    }
                    j += 1;
                }
                (Kind::Escape, raw.len(), false)
            }
            Some(_) => (Kind::Escape, i + 1 + char_len(&rest[1..]), true),
        };
    }
    if let Some(n) = control_len(rest) {
        return (Kind::Control, i + n, true);
    }
    let mut j = 0;
    while j < rest.len() && rest[j] != 0x1b && control_len(&rest[j..]).is_none() {
        j += char_len(&rest[j..]);
    }
    (Kind::Text, i + j.min(rest.len()), true)
}

/// Whether `c` is shown to a reader as itself (by the same rules as [`visible`]).
fn is_plain(c: char) -> bool {
    let mut buf = [0u8; 4];
    c != '\u{1b}' && control_len(c.encode_utf8(&mut buf).as_bytes()).is_none()
}

/// Whether `raw` holds anything [`visible`] removes.
pub fn has_controls(raw: &[u8]) -> bool {
    (0..raw.len()).any(|i| raw[i] == 0x1b || control_len(&raw[i..]).is_some())
}

/// The pieces of `s`, with the byte offset at which each starts.
pub fn pieces(s: &str) -> impl Iterator<Item = (usize, Piece<'_>)> {
    let raw = s.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= raw.len() {
            return None;
        }
        let start = at;
        let (kind, end, _) = span_at(raw, at);
        // Spans end on character boundaries: every rule ends on an ASCII byte or after a whole
        // character.
        let text = &s[start..end];
        at = end;
        let piece = match kind {
            Kind::Text => Piece::Text(text),
            Kind::Style => Piece::Style(text),
            Kind::Escape => Piece::Escape(text),
            Kind::Control => Piece::Control(text.chars().next().unwrap_or('\u{fffd}')),
        };
        Some((start, piece))
    })
}

/// Raw output (any bytes, possibly cut anywhere) as a terminal shows it, with where each shown
/// byte came from. This is what secrets are matched on, and what the dashboard's plain view and
/// the CLI show of logs, so a secret is found however it is broken up.
#[derive(Debug, Default)]
pub struct Visible {
    /// The bytes a reader sees.
    pub text: Vec<u8>,
    /// `map[i]` is the position in the raw bytes of `text[i]`.
    pub map: Vec<usize>,
    /// Raw spans of the escape sequences and controls longer than one byte, in order.
    pub sequences: Vec<(usize, usize)>,
    /// Where something the raw bytes end inside of begins: an escape sequence, or a character cut
    /// short that may yet be a control.
    pub open_tail: Option<usize>,
}

/// [`Visible`] of `raw`.
pub fn visible(raw: &[u8]) -> Visible {
    let mut v = Visible {
        text: Vec::with_capacity(raw.len()),
        map: Vec::with_capacity(raw.len()),
        ..Visible::default()
    };
    // A character cut short by the end of what was read may yet be a control: hold it back.
    let mut limit = raw.len();
    if let Some(lead) = (raw.len().saturating_sub(3)..raw.len()).find(|&i| raw[i] >= 0xc2) {
        let whole = std::str::from_utf8(&raw[lead..]).is_ok_and(|s| s.chars().count() == 1);
        if lead + char_len(&raw[lead..]) == raw.len() && !whole {
            limit = lead;
        }
    }
    let mut i = 0;
    while i < limit {
        let (kind, end, closed) = span_at(&raw[..limit], i);
        match kind {
            Kind::Text => {
                v.text.extend_from_slice(&raw[i..end]);
                v.map.extend(i..end);
            }
            _ => {
                if end - i > 1 {
                    v.sequences.push((i, end));
                }
                if !closed {
                    v.open_tail = Some(i);
                }
            }
        }
        i = end;
    }
    if limit < raw.len() {
        v.sequences.push((limit, raw.len()));
        // An escape sequence still open before the cut-short character holds it: the tail
        // begins where that sequence does.
        v.open_tail.get_or_insert(limit);
    }
    v
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
        let s = "a\u{1b}[01;31m\u{1b}[Kb\rc\u{1b}]0;title\u{7}d\u{1b}]8;;http://x\u{1b}\\e\u{9b}2Jf\u{1b}7g\u{1b}Pdcs\u{1b}\\h\u{202e}i\u{1b}";
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
                Piece::Control('\u{9b}'),
                Piece::Text("2Jf"),
                Piece::Escape("\u{1b}7"),
                Piece::Text("g"),
                Piece::Escape("\u{1b}Pdcs\u{1b}\\"),
                Piece::Text("h"),
                Piece::Control('\u{202e}'),
                Piece::Text("i"),
                Piece::Escape("\u{1b}"),
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
        // Controls inside a CSI do not end it: its final byte does, as on a terminal.
        assert_eq!(strip_controls("a\u{1b}[12\u{7}bc"), "ac");
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

    #[test]
    fn an_open_tail_begins_where_the_earliest_unfinished_thing_does() {
        // A character cut short at the end of what was read is held back…
        assert_eq!(visible(b"ab\xe4").open_tail, Some(2));
        assert_eq!(visible(b"a\x1b[1").open_tail, Some(1));
        // …and when it sits inside an escape sequence still open, the tail is that sequence:
        // passed on without it, the sequence would swallow the start of the next piece.
        assert_eq!(visible(b"a\x1b[,\x07\xe4").open_tail, Some(1));
        assert_eq!(visible(b"a\x1b]0;t\xe2\x82").open_tail, Some(1));
    }
}
