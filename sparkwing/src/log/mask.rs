//! Secret masking: every registered value becomes `***` in every sink.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// The replacement for a secret value.
pub(crate) const MASK: &str = "***";

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
    values: RwLock<Vec<String>>,
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
            if !c.trim().is_empty() && !values.contains(&c) {
                values.push(c);
            }
        }
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        self.inner.any.store(!values.is_empty(), Ordering::Release);
    }

    /// `text` with every secret value replaced by `***`.
    /// A place at or before `cut` to split `bytes` so that no occurrence of a secret spans the
    /// split: pieces masked one by one then never show part of a secret.
    pub fn safe_cut(&self, bytes: &[u8], cut: usize) -> usize {
        if !self.inner.any.load(Ordering::Acquire) {
            return cut;
        }
        let values = self.inner.values.read().unwrap_or_else(|p| p.into_inner());
        let mut cut = cut.min(bytes.len());
        // At the end of what was read so far, a secret may have only begun: keep its start back.
        if cut == bytes.len() {
            for v in values.iter().map(String::as_bytes) {
                if let Some(k) = (1..v.len()).rev().find(|&k| bytes.ends_with(&v[..k])) {
                    cut = cut.min(bytes.len() - k);
                }
            }
        }
        // Moving the cut back can make it land inside another occurrence: repeat until stable.
        loop {
            let mut moved = false;
            for v in values.iter().map(String::as_bytes).filter(|v| v.len() > 1) {
                let from = cut.saturating_sub(v.len() - 1);
                let to = (cut + v.len() - 1).min(bytes.len());
                if to <= from {
                    continue;
                }
                if let Some(pos) = bytes[from..to].windows(v.len()).position(|w| w == v) {
                    let start = from + pos;
                    if start < cut && start + v.len() > cut {
                        cut = start;
                        moved = true;
                    }
                }
            }
            if !moved || cut == 0 {
                return cut;
            }
        }
    }

    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.inner.any.load(Ordering::Acquire) {
            return Cow::Borrowed(text);
        }
        let values = self.inner.values.read().unwrap_or_else(|p| p.into_inner());
        let mut out = Cow::Borrowed(text);
        for v in values.iter() {
            if out.contains(v.as_str()) {
                out = Cow::Owned(out.replace(v.as_str(), MASK));
            }
        }
        out
    }
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
}
