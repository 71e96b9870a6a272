//! Secret masking: every registered value becomes `***` in every sink.
//!
//! A value is found both as written and as a terminal (or the dashboard's plain view) shows it:
//! output is also searched with its control sequences removed (CSI and OSC sequences, other
//! escapes, `\r` and the other C0 and C1 controls), and a value found there is masked over its
//! whole raw span, the codes inside it included. `grep --color=always` cannot then split a token
//! into pieces that each look harmless.

pub(crate) use sparkwing_contract::text::{Visible, has_controls, visible};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// The replacement for a secret value.
pub(crate) const MASK: &str = "***";

/// Masking rounds before a pathological text is replaced whole: masking can, in theory, make a
/// new occurrence appear (a removed span lets an escape sequence before it swallow other text),
/// so the result is searched again until nothing is found.
const MAX_ROUNDS: usize = 4;

/// The run's secret values. Lines are masked whole (capture is line based), so a value written in
/// two pieces is still found once the line is complete.
#[derive(Debug, Clone, Default)]
pub(crate) struct Masker {
    inner: Arc<MaskerInner>,
}

#[derive(Debug, Default)]
struct MaskerInner {
    any: AtomicBool,
    /// Longest first, so a secret containing another is masked whole.
    values: RwLock<Vec<Pattern>>,
}

/// One secret as written and as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    raw: String,
    /// `raw` without control sequences; empty when it shows nothing but blanks (a secret made of
    /// codes is masked as written only, never every space).
    visible: String,
}

impl Pattern {
    fn new(raw: String) -> Pattern {
        let v = visible(raw.as_bytes());
        // Removing whole UTF-8 sequences and ASCII bytes from UTF-8 leaves UTF-8.
        let visible = String::from_utf8(v.text).unwrap_or_default();
        let visible = if visible.trim().is_empty() {
            String::new()
        } else {
            visible
        };
        Pattern { raw, visible }
    }
}

/// `line` without an escape sequence it ends inside of. Printed on, such a sequence would swallow
/// the next line's start on a terminal, joining what is left of two lines into one that no
/// per-line masking saw (a half secret on each side of an OSC string).
pub(crate) fn without_open_tail(line: &str) -> &str {
    if !line.contains('\x1b') {
        return line;
    }
    match visible(line.as_bytes()).open_tail {
        Some(at) => &line[..at],
        None => line,
    }
}

/// Calls `f` with the start of every occurrence of `needle` in `hay`, overlapping ones included.
fn occurrences(hay: &[u8], needle: &[u8], mut f: impl FnMut(usize)) {
    let Some((&first, _)) = needle.split_first() else {
        return;
    };
    if needle.len() > hay.len() {
        return;
    }
    let last = hay.len() - needle.len();
    let mut i = 0;
    while i <= last {
        match hay[i..=last].iter().position(|&b| b == first) {
            None => return,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    f(i);
                }
                i += 1;
            }
        }
    }
}

/// Raw spans `[start, end)` of every occurrence of a secret, as written or as shown; not merged.
/// `shown` is the visible form of `raw`, `None` when `raw` holds no control (it is its own).
fn secret_spans(raw: &[u8], shown: Option<&Visible>, values: &[Pattern]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for p in values {
        let needle = p.raw.as_bytes();
        occurrences(raw, needle, |s| spans.push((s, s + needle.len())));
        let needle = p.visible.as_bytes();
        match shown {
            Some(v) => occurrences(&v.text, needle, |s| {
                spans.push((v.map[s], v.map[s + needle.len() - 1] + 1));
            }),
            None if p.visible != p.raw => {
                occurrences(raw, needle, |s| spans.push((s, s + needle.len())));
            }
            None => {}
        }
    }
    spans
}

impl Masker {
    /// Registers a value. Empty values are ignored; a multi-line value also registers each of its
    /// lines, since output is masked a line at a time.
    pub fn add(&self, value: &str) {
        let mut candidates = vec![value.to_string()];
        if value.contains('\n') {
            candidates.extend(
                value
                    .lines()
                    .map(|l| l.trim_end_matches('\r'))
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string),
            );
        }
        let mut values = self.inner.values.write().unwrap_or_else(|p| p.into_inner());
        for c in candidates {
            if !c.trim().is_empty() && !values.iter().any(|p| p.raw == c) {
                values.push(Pattern::new(c));
            }
        }
        values.sort_by_key(|v| std::cmp::Reverse(v.raw.len()));
        self.inner.any.store(!values.is_empty(), Ordering::Release);
    }

    /// A place at or before `cut` to split `bytes` so that no occurrence of a secret, as written or
    /// as shown, spans the split, and no escape sequence is cut in two: pieces masked one by one
    /// then never show part of a secret.
    pub fn safe_cut(&self, bytes: &[u8], cut: usize) -> usize {
        if !self.inner.any.load(Ordering::Acquire) {
            return cut;
        }
        let values = self.inner.values.read().unwrap_or_else(|p| p.into_inner());
        let mut cut = cut.min(bytes.len());
        let shown = visible(bytes);
        let mut spans = secret_spans(bytes, Some(&shown), &values);
        spans.extend(shown.sequences.iter().copied());
        // At the end of what was read so far, a secret or an escape sequence may have only begun:
        // keep its start back.
        if cut == bytes.len() {
            if let Some(start) = shown.open_tail {
                cut = cut.min(start);
            }
            for p in values.iter() {
                let raw = p.raw.as_bytes();
                if let Some(k) = (1..raw.len()).rev().find(|&k| bytes.ends_with(&raw[..k])) {
                    cut = cut.min(bytes.len() - k);
                }
                let vis = if p.visible.is_empty() {
                    raw
                } else {
                    p.visible.as_bytes()
                };
                if let Some(k) = (1..vis.len())
                    .rev()
                    .find(|&k| shown.text.ends_with(&vis[..k]))
                {
                    cut = cut.min(shown.map[shown.text.len() - k]);
                }
            }
        }
        // Moving the cut back can make it land inside another occurrence: repeat until stable.
        loop {
            let before = cut;
            for &(s, e) in &spans {
                if s < cut && cut < e {
                    cut = s;
                }
            }
            if cut == before || cut == 0 {
                return cut;
            }
        }
    }

    /// `text` with every secret value replaced by `***`.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.inner.any.load(Ordering::Acquire) {
            return Cow::Borrowed(text);
        }
        let values = self.inner.values.read().unwrap_or_else(|p| p.into_inner());
        let mut out = Cow::Borrowed(text);
        for _ in 0..MAX_ROUNDS {
            match mask_once(&out, &values) {
                None => return out,
                Some(m) => out = Cow::Owned(m),
            }
        }
        if mask_once(&out, &values).is_none() {
            out
        } else {
            Cow::Owned(MASK.to_string())
        }
    }
}

/// `text` with every occurrence masked, or `None` when there is none.
fn mask_once(text: &str, values: &[Pattern]) -> Option<String> {
    let raw = text.as_bytes();
    let shown = has_controls(raw).then(|| visible(raw));
    let mut spans = secret_spans(raw, shown.as_ref(), values);
    if spans.is_empty() {
        return None;
    }
    // A span that begins or ends inside an escape sequence takes the whole sequence: `***` must
    // never be left inside a broken one, which would swallow the text after it.
    if let Some(v) = &shown {
        for span in spans.iter_mut() {
            for &(s, e) in &v.sequences {
                if s < span.0 && span.0 < e {
                    span.0 = s;
                }
                if s < span.1 && span.1 < e {
                    span.1 = e;
                }
            }
        }
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut i = 0;
    while i < spans.len() {
        let (start, mut end) = spans[i];
        i += 1;
        while i < spans.len() && spans[i].0 < end {
            end = end.max(spans[i].1);
            i += 1;
        }
        // Spans start and end on character boundaries (whole UTF-8 sequences are matched and
        // removed); widen defensively all the same.
        let start = (0..=start.max(at))
            .rev()
            .find(|&k| text.is_char_boundary(k))
            .unwrap_or(0);
        let end = (end..=text.len())
            .find(|&k| text.is_char_boundary(k))
            .unwrap_or(text.len());
        out.push_str(&text[at..start]);
        out.push_str(MASK);
        at = end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_cuts_never_split_a_secret() {
        let m = Masker::default();
        assert_eq!(m.safe_cut(b"abcdef", 3), 3, "no secrets: any cut");
        m.add("cde");
        assert_eq!(m.safe_cut(b"abcdef", 3), 2, "inside `cde`: cut before it");
        assert_eq!(m.safe_cut(b"abcdef", 2), 2, "right before it");
        assert_eq!(m.safe_cut(b"abcdef", 5), 5, "right after it");
        assert_eq!(
            m.safe_cut(b"xcdecdey", 5),
            4,
            "the second `cde` is kept whole"
        );
        assert_eq!(
            m.safe_cut(b"xyzcd", 5),
            3,
            "a secret that has only begun stays back"
        );
        assert_eq!(m.safe_cut(b"xyzcdz", 6), 6);
    }

    #[test]
    fn masks_every_occurrence_longest_first() {
        let m = Masker::default();
        assert!(matches!(m.mask("abc"), Cow::Borrowed(_)));
        m.add("abc");
        m.add("abcdef");
        m.add("");
        assert_eq!(m.mask("x abcdef y abc z"), "x *** y *** z");
        assert_eq!(m.mask("nothing here"), "nothing here");
    }

    #[test]
    fn multi_line_values_mask_line_by_line() {
        let m = Masker::default();
        m.add("-----BEGIN KEY-----\nc2VjcmV0\n");
        assert_eq!(m.mask("c2VjcmV0"), "***");
    }

    #[test]
    fn a_secret_broken_up_by_terminal_codes_is_masked_with_the_codes() {
        let m = Masker::default();
        m.add("tok-SuperSecret-123");
        // `grep --color=always Super`
        assert_eq!(
            m.mask("tok-\x1b[01;31m\x1b[KSuper\x1b[m\x1b[KSecret-123"),
            "***"
        );
        assert_eq!(
            m.mask("a \x1b[1mtok-Super\x1b[0mSecret-123\x1b[0m b"),
            "a \x1b[1m***\x1b[0m b"
        );
        assert_eq!(m.mask("a tok-Super\rSecret-123 b"), "a *** b");
        assert_eq!(m.mask("tok-Super\x1b]8;;u\x07Secret-123"), "***");
        assert_eq!(m.mask("tok-Super\x08\x7fSecret-123"), "***");
        assert_eq!(m.mask("no tok-Super secret"), "no tok-Super secret");
    }

    #[test]
    fn a_secret_holding_terminal_codes_is_masked_as_shown_and_as_written() {
        let m = Masker::default();
        m.add("x\x1b[1my-secret");
        assert_eq!(m.mask("[x\x1b[1my-secret]"), "[***]");
        assert_eq!(m.mask("[xy-secret]"), "[***]", "as a terminal shows it");
        let m = Masker::default();
        m.add("31mabc");
        assert_eq!(
            m.mask("\x1b[31mabc"),
            "***",
            "as written, even where a code ate it, and the code it began in goes too"
        );
    }

    #[test]
    fn overlapping_occurrences_are_masked_together() {
        let m = Masker::default();
        m.add("aba");
        assert_eq!(m.mask("xababay"), "x***y");
    }

    #[test]
    fn safe_cuts_see_through_terminal_codes() {
        let m = Masker::default();
        m.add("tok-SuperSecret-123");
        let b = b"xx tok-\x1b[1mSup";
        assert_eq!(
            m.safe_cut(b, b.len()),
            3,
            "a secret that has begun, codes inside"
        );
        let b = b"tok-Super\x1b[1mSecret-123 tail";
        assert_eq!(m.safe_cut(b, 18), 0, "inside the secret's raw span");
        assert_eq!(m.safe_cut(b, 26), 26, "after it");
        let m = Masker::default();
        m.add("zzz");
        let b = b"ab\x1b[31mcd";
        assert_eq!(m.safe_cut(b, 4), 2, "never inside an escape sequence");
        assert_eq!(
            m.safe_cut(b"ab\x1b[3", 5),
            2,
            "an unfinished one stays back"
        );
    }
}
