//! YAML plumbing: parse a document into a [`Value`], then find where a node sits in the source.
//!
//! `serde_norway` (the maintained fork of `serde_yaml`, on a maintained port of libyaml) gives
//! values without positions, but its deserializer stamps the line and column of the current node
//! on any error a visitor returns. [`locate`] uses that: it walks the document along
//! a key path with a visitor that fails on purpose at the target node, and reads the position off
//! the error. Validation can therefore run on plain values and still report `path:line:col`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_norway::{Mapping, Value};

use crate::error::{ConfigError, Location, Problem};

/// The largest configuration file read: real ones are a few kilobytes, and the file comes from
/// the repository (anyone who can open a pull request), so a bigger one is refused unparsed.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// The deepest nesting of collections a configuration file may have (sparkwing's own schema
/// nests five deep). The YAML parser's time grows faster than linearly with depth.
pub const MAX_CONFIG_DEPTH: usize = 64;

const DEPTH_HINT: &str = "sparkwing's configuration never nests this deep; flatten the structure";

/// Reads a configuration file, or `None` when it does not exist. Never reads more than
/// [`MAX_CONFIG_BYTES`] and one byte: a larger file is refused by [`check_shape`] on its size.
pub(crate) fn read_config(path: &Path) -> Result<Option<String>, ConfigError> {
    use std::io::Read;
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let mut src = String::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_string(&mut src)
        .map_err(read_err)?;
    Ok(Some(src))
}

/// How many lines `src` has as YAML counts them (breaks are `\n`, `\r\n` and a lone `\r`; text
/// after the last break is a line, and so is the empty place after a final break), and the last.
fn yaml_lines(src: &str) -> (usize, &str) {
    let mut count = 1;
    let mut last_start = 0;
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => i += 1,
            b'\r' | b'\n' => {}
            _ => {
                i += 1;
                continue;
            }
        }
        i += 1;
        count += 1;
        last_start = i;
    }
    (count, &src[last_start..])
}

/// Refuses a source that is too large or nests too deep, with the line and column where the
/// limit was passed. A linear scan that knows just enough YAML to skip comments, quoted scalars
/// and block scalars: brackets in text are not nesting.
fn check_shape(src: &str) -> Result<(), (usize, usize, Problem, &'static str)> {
    if src.len() > MAX_CONFIG_BYTES {
        return Err((
            1,
            1,
            Problem::Invalid(format!(
                "the file is {}; configuration files are limited to {}",
                sparkwing_contract::human::bytes(src.len() as u64),
                sparkwing_contract::human::bytes(MAX_CONFIG_BYTES as u64)
            )),
            "sparkwing's configuration is a few kilobytes; check that this is the file you meant",
        ));
    }
    let too_deep = |line: usize, col: usize| {
        Err((
            line,
            col,
            Problem::Invalid(format!("nesting deeper than {MAX_CONFIG_DEPTH} levels")),
            DEPTH_HINT,
        ))
    };
    // Indentations of the block collections open above the current line.
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    // Inside a quoted scalar that spans lines: its quote character.
    let mut quote: Option<char> = None;
    // Inside a block scalar (`|`, `>`): lines indented deeper than this belong to it.
    let mut block_scalar: Option<usize> = None;
    for (n, line) in src.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = &line[indent..];
        if let Some(parent) = block_scalar {
            if body.is_empty() || indent > parent {
                continue;
            }
            block_scalar = None;
        }
        if quote.is_none() && flow == 0 {
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
        }
        let base = indents.len() + flow;
        if base > MAX_CONFIG_DEPTH {
            return too_deep(n + 1, indent + 1);
        }
        let mut depth = base;
        // Where a token may start: a quote or bracket here opens something.
        let mut token_start = true;
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let col = indent + body[..i].chars().count() + 1;
            if let Some(q) = quote {
                if c == q {
                    if q == '\'' && chars.peek().is_some_and(|&(_, c)| c == '\'') {
                        chars.next();
                    } else {
                        quote = None;
                    }
                } else if q == '"' && c == '\\' {
                    chars.next();
                }
                continue;
            }
            match c {
                '#' if token_start || body[..i].ends_with([' ', '\t']) => break,
                '"' | '\'' if token_start => quote = Some(c),
                '[' | '{' if token_start || flow > 0 => {
                    flow += 1;
                    depth += 1;
                    if depth > MAX_CONFIG_DEPTH {
                        return too_deep(n + 1, col);
                    }
                }
                ']' | '}' if flow > 0 => {
                    flow -= 1;
                    depth = depth.saturating_sub(1);
                }
                // A compact nested entry (`- - x`) opens a collection on the same line.
                '-' | '?'
                    if token_start && flow == 0 && chars.peek().is_none_or(|&(_, c)| c == ' ') =>
                {
                    depth += 1;
                    if depth > MAX_CONFIG_DEPTH {
                        return too_deep(n + 1, col);
                    }
                }
                '|' | '>' if token_start && flow == 0 => {
                    block_scalar = Some(indent);
                    break;
                }
                _ => {}
            }
            token_start = matches!(c, ' ' | '\t' | '[' | '{' | ',' | ':' | '-' | '?');
        }
    }
    Ok(())
}

/// One step of a path from the document root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root, cheap enough to clone while descending a small config file.
#[derive(Debug, Clone, Default)]
pub(crate) struct YPath(Vec<Seg>);

impl YPath {
    pub(crate) fn key(&self, k: &str) -> YPath {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_owned()));
        YPath(v)
    }

    pub(crate) fn index(&self, i: usize) -> YPath {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        YPath(v)
    }
}

/// Whether an error points at a mapping key itself or at the value under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Key,
    Value,
}

/// One config document being validated: its source (for positions), its file (for messages) and
/// the home directory used to expand `~`.
pub(crate) struct Doc<'a> {
    pub(crate) src: &'a str,
    pub(crate) file: &'a Path,
    pub(crate) home: Option<&'a Path>,
}

impl<'a> Doc<'a> {
    /// Parses the source into one YAML value; an empty document is `Null`. Size and nesting are
    /// checked first ([`check_shape`]), so hostile input never reaches the parser.
    pub(crate) fn parse(&self) -> Result<Value, ConfigError> {
        check_shape(self.src).map_err(|(line, column, problem, hint)| ConfigError::Invalid {
            at: self.at(line, column),
            problem: Box::new(problem),
            hint: Some(hint.to_owned()),
        })?;
        let mut value: Value = serde_norway::from_str(self.src).map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            let at_tab = self
                .src
                .lines()
                .nth(line - 1)
                .and_then(|l| l.chars().nth(column - 1))
                == Some('\t');
            ConfigError::Invalid {
                at: self.at(line, column),
                problem: Box::new(Problem::Syntax(strip_marks(&e.to_string()))),
                hint: at_tab.then(|| "indent YAML with spaces; tabs are not allowed".to_owned()),
            }
        })?;
        // Merge keys (`<<: *base`) let profiles share a block; positions inside merged keys fall
        // back to the nearest node that is written out in the mapping itself.
        value.apply_merge().map_err(|e| ConfigError::Invalid {
            at: self.at(1, 1),
            problem: Box::new(Problem::Syntax(strip_marks(&e.to_string()))),
            hint: None,
        })?;
        Ok(value)
    }

    /// A location in this file. The parser places an error at the end of the input one line past
    /// the last when the file does not end in a line break: such a place is the end of the last
    /// line, as an editor shows it.
    fn at(&self, line: usize, column: usize) -> Location {
        let (count, last) = yaml_lines(self.src);
        let (line, column) = if line > count {
            (count, last.chars().count() + 1)
        } else {
            (line, column)
        };
        Location {
            file: self.file.to_path_buf(),
            line,
            column,
        }
    }

    /// An error at `path` (the key itself or its value).
    pub(crate) fn err(
        &self,
        path: &YPath,
        target: Target,
        problem: Problem,
        hint: Option<String>,
    ) -> ConfigError {
        let (line, column) = locate_nearest(self.src, &path.0, target);
        ConfigError::Invalid {
            at: self.at(line, column),
            problem: Box::new(problem),
            hint,
        }
    }

    /// The value as a mapping; `null` (a key with nothing under it) is `None`.
    pub(crate) fn mapping<'v>(
        &self,
        v: &'v Value,
        path: &YPath,
        what: &str,
    ) -> Result<Option<&'v Mapping>, ConfigError> {
        match v {
            Value::Mapping(m) => Ok(Some(m)),
            Value::Null => Ok(None),
            other => Err(self.wrong_type(path, what, "a mapping", other)),
        }
    }

    /// The value as a list; `null` counts as an empty one.
    pub(crate) fn sequence<'v>(
        &self,
        v: &'v Value,
        path: &YPath,
        what: &str,
    ) -> Result<&'v [Value], ConfigError> {
        match v {
            Value::Sequence(s) => Ok(s),
            Value::Null => Ok(&[]),
            other => Err(self.wrong_type(path, what, "a list", other)),
        }
    }

    /// The value as a string. Integers are accepted as written (a bucket or prefix may be all
    /// digits); floats and booleans are refused because their text would not round-trip.
    pub(crate) fn string(
        &self,
        v: &Value,
        path: &YPath,
        what: &str,
    ) -> Result<String, ConfigError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
            other => Err(self.wrong_type(path, what, "a string", other)),
        }
    }

    pub(crate) fn boolean(&self, v: &Value, path: &YPath, what: &str) -> Result<bool, ConfigError> {
        match v {
            Value::Bool(b) => Ok(*b),
            other => Err(self.wrong_type(path, what, "true or false", other)),
        }
    }

    pub(crate) fn wrong_type(
        &self,
        path: &YPath,
        what: &str,
        expected: &'static str,
        found: &Value,
    ) -> ConfigError {
        let hint = match (expected, found) {
            ("a string", Value::Number(_) | Value::Bool(_)) => {
                Some("quote the value, e.g. `\"0.10\"`, so YAML keeps it as written".to_owned())
            }
            ("true or false", Value::String(_)) => {
                Some("write `true` or `false` without quotes".to_owned())
            }
            _ => None,
        };
        self.err(
            path,
            Target::Value,
            Problem::WrongType {
                what: what.to_owned(),
                expected,
                found: kind(found),
            },
            hint,
        )
    }

    /// Every key of `map` as a string, refusing keys outside `allowed`.
    pub(crate) fn keys<'v>(
        &self,
        map: &'v Mapping,
        path: &YPath,
        within: &str,
        allowed: &[&'static str],
    ) -> Result<Vec<(String, &'v Value)>, ConfigError> {
        let mut out = Vec::with_capacity(map.len());
        for (k, v) in map {
            let key = self.key_string(k, path, within)?;
            if !allowed.is_empty() && !allowed.contains(&key.as_str()) {
                return Err(self.err(
                    &path.key(&key),
                    Target::Key,
                    Problem::UnknownKey {
                        key,
                        within: within.to_owned(),
                        expected: allowed.to_vec(),
                    },
                    None,
                ));
            }
            out.push((key, v));
        }
        Ok(out)
    }

    fn key_string(&self, k: &Value, path: &YPath, within: &str) -> Result<String, ConfigError> {
        match k {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(self.err(
                path,
                Target::Value,
                Problem::Invalid(format!(
                    "{within} has a key that is {}, not a string",
                    kind(other)
                )),
                None,
            )),
        }
    }

    /// Expands `~` and `~/…` and refuses relative paths: the same profile is read from many
    /// working directories and by the pipeline binary, so only an anchored path means one place.
    pub(crate) fn fs_path(
        &self,
        raw: &str,
        path: &YPath,
        within: &str,
    ) -> Result<PathBuf, ConfigError> {
        if raw.is_empty() {
            return Err(self.err(
                path,
                Target::Value,
                Problem::Invalid(format!("empty `path` in {within}")),
                None,
            ));
        }
        if raw == "~" || raw.starts_with("~/") {
            let Some(home) = self.home else {
                return Err(self.err(
                    path,
                    Target::Value,
                    Problem::Invalid(format!(
                        "`{raw}` in {within} cannot be expanded: HOME is not set"
                    )),
                    Some("set HOME, or write an absolute path".to_owned()),
                ));
            };
            let rest = raw.trim_start_matches('~').trim_start_matches('/');
            return Ok(if rest.is_empty() {
                home.to_path_buf()
            } else {
                home.join(rest)
            });
        }
        if raw.starts_with('~') {
            return Err(self.err(
                path,
                Target::Value,
                Problem::Invalid(format!(
                    "`{raw}` in {within}: only `~` and `~/…` are expanded, not `~user`"
                )),
                Some("write an absolute path".to_owned()),
            ));
        }
        let p = PathBuf::from(raw);
        if !p.is_absolute() {
            return Err(self.err(
                path,
                Target::Value,
                Problem::RelativePath {
                    path: raw.to_owned(),
                    within: within.to_owned(),
                },
                Some(format!(
                    "write an absolute path or one under `~/`, e.g. `~/{}`",
                    raw.trim_start_matches("./")
                )),
            ));
        }
        Ok(p)
    }
}

/// A word for the YAML type of a value, for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number with a fraction",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Drops the first ` at line L column C` (the problem's own position, printed up front instead);
/// a later one belongs to the context ("while parsing a flow sequence at line 2 column 6") and
/// says where the unfinished construct began, so it stays.
fn strip_marks(msg: &str) -> String {
    const AT: &str = " at line ";
    let mut from = 0;
    while let Some(i) = msg[from..].find(AT).map(|i| i + from) {
        let after = &msg[i + AT.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if let Some(tail) = after[digits..]
            .strip_prefix(" column ")
            .filter(|_| digits > 0)
        {
            let d2 = tail.bytes().take_while(u8::is_ascii_digit).count();
            if d2 > 0 {
                return format!("{}{}", &msg[..i], &tail[d2..]);
            }
        }
        from = i + AT.len();
    }
    msg.to_owned()
}

/// The position of the node at `path`, or of its nearest ancestor that is written in the source
/// (merged keys live elsewhere), or 1:1.
fn locate_nearest(src: &str, path: &[Seg], target: Target) -> (usize, usize) {
    if let Some(pos) = locate(src, path, target) {
        return pos;
    }
    for len in (0..path.len()).rev() {
        if let Some(pos) = locate(src, &path[..len], Target::Value) {
            return pos;
        }
    }
    (1, 1)
}

const MARKER: &str = "\u{0}sparkwing-config-locate\u{0}";

/// Line and column (1-based) of the node at `path`.
pub(crate) fn locate(src: &str, path: &[Seg], target: Target) -> Option<(usize, usize)> {
    let de = serde_norway::Deserializer::from_str(src);
    match (Finder { path, target }).deserialize(de) {
        Err(e) if e.to_string().contains(MARKER) => e.location().map(|l| (l.line(), l.column())),
        _ => None,
    }
}

struct Finder<'p> {
    path: &'p [Seg],
    target: Target,
}

impl<'de> DeserializeSeed<'de> for Finder<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

fn found<E: de::Error>() -> E {
    E::custom(MARKER)
}

impl<'de> Visitor<'de> for Finder<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        // A tagged node: good enough to point at the tag itself.
        Err(found())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(found());
        };
        let Seg::Index(want) = first else {
            return Ok(());
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Finder {
            path: rest,
            target: self.target,
        })?;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(found());
        };
        let Seg::Key(want) = first else {
            return Ok(());
        };
        let key_is_target = rest.is_empty() && self.target == Target::Key;
        while let Some(matched) = map.next_key_seed(KeySeed {
            want,
            fail_on_match: key_is_target,
        })? {
            if matched {
                map.next_value_seed(Finder {
                    path: rest,
                    target: self.target,
                })?;
                return Ok(());
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

impl Finder<'_> {
    fn leaf<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(found())
        } else {
            Ok(())
        }
    }
}

/// Reads a mapping key and says whether it is the wanted one (or fails there, to report the
/// key's own position).
struct KeySeed<'w> {
    want: &'w str,
    fail_on_match: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl KeySeed<'_> {
    fn check<E: de::Error>(&self, key: &str) -> Result<bool, E> {
        let hit = key == self.want;
        if hit && self.fail_on_match {
            Err(found())
        } else {
            Ok(hit)
        }
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.check(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.check(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.check(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.check(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<bool, A::Error> {
        // A tagged key (`!tag name`) is not the wanted one. Its content is read all the same: left
        // unread, the mapping's next events would be taken for its value, and the YAML library
        // panics when an end of mapping comes where it expects a value.
        use de::VariantAccess;
        let (_, content) = data.variant::<IgnoredAny>()?;
        content.newtype_variant::<IgnoredAny>()?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Seg {
        Seg::Key(s.to_owned())
    }

    #[test]
    fn locates_keys_values_and_list_items() {
        let src = "a:\n  b: 1\n  c: { d: x, e: y }\nlist:\n  - name: one\n  - name: two\n    colour: red\n";
        assert_eq!(locate(src, &[k("a")], Target::Key), Some((1, 1)));
        assert_eq!(locate(src, &[k("a"), k("b")], Target::Value), Some((2, 6)));
        assert_eq!(locate(src, &[k("a"), k("c")], Target::Value), Some((3, 6)));
        assert_eq!(
            locate(src, &[k("a"), k("c"), k("e")], Target::Key),
            Some((3, 14))
        );
        assert_eq!(
            locate(src, &[k("list"), Seg::Index(1)], Target::Value),
            Some((6, 5))
        );
        assert_eq!(
            locate(src, &[k("list"), Seg::Index(1), k("colour")], Target::Key),
            Some((7, 5))
        );
        assert_eq!(locate(src, &[k("nope")], Target::Key), None);
        assert_eq!(
            locate(src, &[k("list"), Seg::Index(5)], Target::Value),
            None
        );
    }

    #[test]
    fn strips_libyaml_marks_only() {
        assert_eq!(
            strip_marks(
                "did not find expected key at line 3 column 5, while parsing a block mapping at line 1 column 1"
            ),
            "did not find expected key, while parsing a block mapping at line 1 column 1"
        );
        assert_eq!(strip_marks("look at line noise"), "look at line noise");
    }
}
