//! The snapshot JSON parser (spec §1), on top of simd-json's tape.
//!
//! The tape keeps the document order, which `CUSTOM` values and metas need, and lets
//! the parser check every rule without building an intermediate DOM.
//!
//! Decisions beyond the spec, all in the direction of "reject rather than guess":
//! - unknown keys in a snapshot or tag object are rejected (a typo such as
//!   `"precison"` would otherwise silently change the output);
//! - a key given twice in the same object is rejected;
//! - integer types take JSON integers only (`5.0` is rejected for `INT16`);
//! - a finite number too large for `FLOAT` is rejected rather than becoming infinity;
//! - `CUSTOM` values may nest at most [`MAX_DEPTH`] levels deep.

use std::collections::HashSet;
use std::fmt;

use simd_json::{Node, StaticNode, Tape};

use crate::escapes;
use crate::types::DataType;
use crate::value::Snapshot;
use crate::view::{
    Item, Items, JsonView, Members as MetaMembers, ReadingView, SnapshotView, Strs, TagView,
    ValueView,
};
use crate::MAX_PRECISION;

/// How deep a `CUSTOM` value may nest. Deeper input is rejected so that neither the
/// parser nor an encoder can be driven into a stack overflow.
pub const MAX_DEPTH: usize = 128;

/// Where in an ingest body an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The body as a whole (for example invalid JSON in an array body, where no single
    /// snapshot can be blamed).
    Body,
    /// The n-th snapshot (1-based) of a single-object or array body.
    Snapshot(usize),
    /// The n-th line (1-based, blank lines counted) of an NDJSON body.
    Line(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Body => f.write_str("body"),
            Position::Snapshot(n) => write!(f, "snapshot {n}"),
            Position::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// Why a snapshot (or a whole ingest body) was rejected: where, which tag, which
/// field, and what is wrong.
///
/// Displays as `snapshot 3, tag "temp", field "value": expected a number for FLOAT,
/// got a string`. A tag whose name is not known (missing or invalid) is shown by
/// its 1-based position, `tag #2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError {
    position: Position,
    tag_index: Option<usize>,
    tag: Option<String>,
    field: Option<String>,
    message: String,
}

impl SnapshotError {
    /// Where the error is.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The 1-based snapshot number or NDJSON line number; `None` when the error
    /// concerns the body as a whole.
    pub fn index(&self) -> Option<usize> {
        match self.position {
            Position::Body => None,
            Position::Snapshot(n) | Position::Line(n) => Some(n),
        }
    }

    /// The name of the offending tag, when the error is in a tag with a valid name.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The 1-based position of the offending tag in its snapshot's `tags` array.
    pub fn tag_index(&self) -> Option<usize> {
        self.tag_index
    }

    /// The offending field: `"value"`, `"value[2]"`, `"metas.unit"`, `"node"`, …
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error, located at NDJSON line `line` (for callers that split lines
    /// themselves and call [`parse_snapshot`] per line).
    #[must_use]
    pub fn at_line(mut self, line: usize) -> Self {
        self.position = Position::Line(line);
        self
    }

    /// The same error, located at snapshot number `index` (1-based).
    #[must_use]
    pub fn at_snapshot(mut self, index: usize) -> Self {
        self.position = Position::Snapshot(index);
        self
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.position)?;
        match (&self.tag, self.tag_index) {
            (Some(name), _) => write!(f, ", tag {name:?}")?,
            (None, Some(i)) => write!(f, ", tag #{i}")?,
            (None, None) => {}
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for SnapshotError {}

/// An error inside one document, before it is given its position. Boxed: every
/// parse function returns `Result<_, Fail>`, and a pointer-sized error keeps the
/// good path's results small (they are moved once per tag and value).
struct Fail(Box<FailData>);

struct FailData {
    tag_index: Option<usize>,
    tag: Option<String>,
    field: Option<String>,
    message: String,
}

impl Fail {
    #[cold]
    fn field(field: impl Into<String>, message: impl Into<String>) -> Fail {
        Fail(Box::new(FailData {
            tag_index: None,
            tag: None,
            field: Some(field.into()),
            message: message.into(),
        }))
    }

    #[cold]
    fn whole(message: impl Into<String>) -> Fail {
        Fail(Box::new(FailData {
            tag_index: None,
            tag: None,
            field: None,
            message: message.into(),
        }))
    }

    fn in_tag(mut self, index: usize, name: Option<&str>) -> Fail {
        self.0.tag_index = Some(index);
        self.0.tag = name.map(str::to_owned);
        self
    }

    /// The same error with the tag's name set.
    fn named(mut self, name: &str) -> Fail {
        self.0.tag = Some(name.to_owned());
        self
    }

    /// The same error with the field set.
    fn with_field(mut self, field: String) -> Fail {
        self.0.field = Some(field);
        self
    }

    fn at(self, position: Position) -> SnapshotError {
        let d = *self.0;
        SnapshotError {
            position,
            tag_index: d.tag_index,
            tag: d.tag,
            field: d.field,
            message: d.message,
        }
    }
}

/// Parses one snapshot object into an owned [`Snapshot`].
///
/// The object has `"node"` and `"group"` (strings), an optional `"timestamp"` (Unix
/// epoch milliseconds) and `"tags"`: objects with `"name"` and either `"type"` (a
/// Neuron type name or code) with `"value"`, or `"error"` (a code); optionally
/// `"precision"` (0–17), `"decimal"`, `"bias"` and `"metas"` (an object of strings,
/// numbers and booleans). Rejected rather than guessed: unknown keys, a key given
/// twice, two tags with one name, a non-integer for an integer type, a value out of
/// its type's range, an invalid escape or lone surrogate, `CUSTOM` values nested
/// deeper than [`MAX_DEPTH`].
///
/// `default_timestamp_ms` is used when the object has no `"timestamp"`. The buffer is
/// used as scratch space by simd-json and is garbage afterwards. Errors are located as
/// `snapshot 1`; use [`SnapshotError::at_line`] when parsing NDJSON line by line.
/// To parse many snapshots without allocating, keep a [`Parser`] and use
/// [`Parser::parse`], which borrows instead of copying.
///
/// ```
/// let mut json = br#"{"node": "plc", "group": "g", "tags": [
///     {"name": "t", "type": "FLOAT", "value": 21.5, "precision": 1}]}"#.to_vec();
/// let snap = tagwire_model::parse_snapshot(&mut json, 1_650_006_388_943).unwrap();
/// assert_eq!(snap.timestamp_ms, 1_650_006_388_943);
/// assert_eq!(snap.tags[0].precision, 1);
/// ```
pub fn parse_snapshot(
    json: &mut [u8],
    default_timestamp_ms: u64,
) -> Result<Snapshot, SnapshotError> {
    Parser::new()
        .parse(json, default_timestamp_ms)
        .map(|view| view.to_snapshot())
}

/// A reusable snapshot parser: keeps simd-json's buffers, the tape, the tag list and
/// the duplicate-name table between calls, so that parsing snapshots of a steady
/// shape allocates nothing, and returns a [`SnapshotView`] that borrows the input
/// (names and strings are slices of it; simd-json unescapes them in place) and the
/// parser's tape (arrays, metas and `CUSTOM` values are read from it).
///
/// ```
/// let mut parser = tagwire_model::Parser::new();
/// for line in [r#"{"node": "a", "group": "g", "tags": [{"name": "t", "type": "INT16", "value": 7}]}"#] {
///     let mut buf = line.as_bytes().to_vec();
///     let view = parser.parse(&mut buf, 0).unwrap();
///     assert_eq!(view.tags[0].name, "t");
/// }
/// ```
pub struct Parser {
    buffers: simd_json::Buffers,
    /// The tape of the last parse. Its `'static` is a lie told only while no parse
    /// is running: every parse clears it first and re-borrows it for its own input
    /// (see [`Parser::parse`]).
    tape: Tape<'static>,
    /// The tag views of the last parse, under the same rule as `tape`.
    tags: Vec<TagView<'static>>,
    names: NameSet,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Parser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parser").finish_non_exhaustive()
    }
}

impl Parser {
    /// A parser with empty buffers (they grow to the largest snapshot seen).
    pub fn new() -> Self {
        Parser {
            buffers: simd_json::Buffers::new(0),
            tape: Tape(Vec::new()),
            tags: Vec::new(),
            names: NameSet::default(),
        }
    }

    /// Parses one snapshot object, borrowing `json` (which simd-json uses as scratch
    /// space: it is garbage afterwards) and this parser until the view is dropped.
    /// Same rules and error texts as [`parse_snapshot`].
    pub fn parse<'p>(
        &'p mut self,
        json: &'p mut [u8],
        default_timestamp_ms: u64,
    ) -> Result<SnapshotView<'p>, SnapshotError> {
        let position = Position::Snapshot(1);
        self.tape.0.clear();
        self.tags.clear();
        if let Some(bad) = escapes::find_bad_escape(json, 0) {
            return Err(bad_escape(json, &bad).1.at(position));
        }
        // SAFETY: both are empty (cleared above), so no element with the false
        // `'static` lifetime exists; the `&'p mut` borrows of `self` keep anyone else
        // from seeing them while the nodes and views borrow `json` for `'p`, and the
        // next parse clears them before anything reads them again.
        let tape: &'p mut Tape<'p> =
            unsafe { &mut *std::ptr::from_mut(&mut self.tape).cast::<Tape<'p>>() };
        let tags: &'p mut Vec<TagView<'p>> =
            unsafe { &mut *std::ptr::from_mut(&mut self.tags).cast::<Vec<TagView<'p>>>() };
        // On invalid JSON the text is read again to word the error; the tape (which
        // borrows it) is emptied first, so only a raw pointer spans the two uses.
        let raw: *mut [u8] = json;
        // SAFETY: `raw` is `json`, borrowed mutably for `'p`; it is read again below
        // only after the tape that borrowed it was cleared.
        if let Err(e) = fill_tape(unsafe { &mut *raw }, &mut self.buffers, tape) {
            tape.0.clear();
            return Err(invalid_json(&e, unsafe { &*raw }).at(position));
        }
        let tape: &'p Tape<'p> = tape;
        let (node, group, timestamp_ms) =
            parse_snapshot_at(&tape.0, 0, default_timestamp_ms, tags, &mut self.names)
                .map_err(|f| f.at(position))?;
        Ok(SnapshotView {
            node,
            group,
            timestamp_ms,
            tags,
        })
    }
}

/// simd-json's tape of `json`, kept out of line so that its code does not depend on
/// what LTO inlines around it. Inlined into [`Parser::parse`], the same stage 2 took
/// 82.8 M instructions in the `tagwire` binary and 70.9 M in the `encode_ndjson`
/// example (callgrind, 2,000 snapshots of 100 tags); out of line it is 74.1 M in both,
/// and `tagwire encode` went from 361.9 M to 353.0 M in all (the example from 347.6 M
/// to 351.0 M: the binary that ships is the one that counts).
#[inline(never)]
fn fill_tape<'de>(
    json: &'de mut [u8],
    buffers: &mut simd_json::Buffers,
    tape: &mut Tape<'de>,
) -> simd_json::Result<()> {
    simd_json::fill_tape(json, buffers, tape)
}

/// The table of the tag names seen so far in one snapshot: open addressing over
/// indices into the tag list, foldhash with a per-parser random seed (several times
/// cheaper than SipHash per name, and the seed keeps hostile bodies from choosing
/// colliding names in advance), its memory reused between snapshots.
#[derive(Default)]
struct NameSet {
    slots: Vec<u32>,
    hasher: foldhash::quality::RandomState,
}

impl NameSet {
    const EMPTY: u32 = u32::MAX;

    /// Empties the table for a snapshot of `n` tags (load factor at most 1/2).
    fn reset(&mut self, n: usize) {
        let cap = (n * 2).next_power_of_two().max(16);
        self.slots.clear();
        self.slots.resize(cap, Self::EMPTY);
    }

    /// Records `tags[index]`'s name; false if an earlier tag has the same name.
    fn insert(&mut self, tags: &[TagView<'_>], name: &str, index: u32) -> bool {
        use std::hash::BuildHasher;
        let mask = self.slots.len() - 1;
        let mut at = self.hasher.hash_one(name) as usize & mask;
        loop {
            match self.slots[at] {
                Self::EMPTY => {
                    self.slots[at] = index;
                    return true;
                }
                other if tags[other as usize].name == name => return false,
                _ => at = (at + 1) & mask,
            }
        }
    }
}

/// Parses an ingest body: one snapshot object, a JSON array of snapshot objects, or
/// NDJSON (one object per line; blank lines ignored, `\r\n` accepted).
///
/// All or nothing: the first bad snapshot fails the whole body. The buffer is used as
/// scratch space and is garbage afterwards.
///
/// ```
/// let mut body = b"{\"node\": \"a\", \"group\": \"g\", \"timestamp\": 1, \"tags\": []}\n\n\
///                  {\"node\": \"b\", \"group\": \"g\", \"tags\": [{\"name\": \"x\", \"error\": 3002}]}\n"
///     .to_vec();
/// let snaps = tagwire_model::parse_snapshots(&mut body, 7).unwrap();
/// assert_eq!(snaps.len(), 2);
/// assert_eq!(snaps[1].timestamp_ms, 7);
///
/// let mut bad = br#"[{"node": "a", "group": "g", "tags": [{"name": "x", "type": "BOOL", "value": 1}]}]"#.to_vec();
/// let err = tagwire_model::parse_snapshots(&mut bad, 0).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"snapshot 1, tag "x", field "value": expected true or false for BOOL, got an integer"#
/// );
/// ```
pub fn parse_snapshots(
    body: &mut [u8],
    default_timestamp_ms: u64,
) -> Result<Vec<Snapshot>, SnapshotError> {
    parse_body(&mut Parser::new(), body, default_timestamp_ms)
}

impl Parser {
    /// [`parse_snapshots`] with this parser's buffers: a caller that parses many
    /// bodies (the ingest API, with a pool of parsers) reuses them for the NDJSON and
    /// single-object bodies instead of growing new ones per body.
    pub fn parse_snapshots(
        &mut self,
        body: &mut [u8],
        default_timestamp_ms: u64,
    ) -> Result<Vec<Snapshot>, SnapshotError> {
        parse_body(self, body, default_timestamp_ms)
    }
}

fn parse_body(
    parser: &mut Parser,
    body: &mut [u8],
    default_timestamp_ms: u64,
) -> Result<Vec<Snapshot>, SnapshotError> {
    let Some(start) = body.iter().position(|b| !is_ws(*b)) else {
        return Err(Fail::whole(
            "empty body: expected a snapshot object, a JSON array of snapshots, or NDJSON",
        )
        .at(Position::Body));
    };
    match body[start] {
        b'[' => {
            let tape = match tape(body) {
                Ok(t) => t,
                Err(TapeFail::Json(e)) => return Err(invalid_json(&e, body).at(Position::Body)),
                Err(TapeFail::Escape(Some(n), f)) => return Err(f.at(Position::Snapshot(n + 1))),
                Err(TapeFail::Escape(None, f)) => return Err(f.at(Position::Body)),
            };
            let nodes = &tape.0;
            let Some(&Node::Array { len, .. }) = nodes.first() else {
                return Err(Fail::whole("expected a JSON array of snapshots").at(Position::Body));
            };
            let mut out = Vec::with_capacity(len);
            let mut tags = Vec::new();
            let mut names = NameSet::default();
            let mut i = 1;
            for n in 1..=len {
                tags.clear();
                let (node, group, timestamp_ms) =
                    parse_snapshot_at(nodes, i, default_timestamp_ms, &mut tags, &mut names)
                        .map_err(|f| f.at(Position::Snapshot(n)))?;
                out.push(SnapshotView::owned(node, group, timestamp_ms, &tags));
                i = skip(nodes, i);
            }
            Ok(out)
        }
        b'{' if first_value_end(&body[start..])
            .is_some_and(|end| more_lines(&body[start + end..])) =>
        {
            parse_ndjson(parser, body, default_timestamp_ms)
        }
        _ => parser
            .parse(body, default_timestamp_ms)
            .map(|view| vec![view.to_snapshot()]),
    }
}

fn parse_ndjson(
    parser: &mut Parser,
    body: &mut [u8],
    default_timestamp_ms: u64,
) -> Result<Vec<Snapshot>, SnapshotError> {
    let mut out = Vec::new();
    // A JSON text never holds a raw newline inside a string, so splitting on b'\n' is
    // exact.
    for (n, line) in body.split_mut(|b| *b == b'\n').enumerate() {
        if line.iter().all(|b| is_ws(*b)) {
            continue;
        }
        let view = parser
            .parse(line, default_timestamp_ms)
            .map_err(|e| e.at_line(n + 1))?;
        out.push(view.to_snapshot());
    }
    if out.is_empty() {
        return Err(Fail::whole(
            "empty body: expected a snapshot object, a JSON array of snapshots, or NDJSON",
        )
        .at(Position::Body));
    }
    Ok(out)
}

/// Whether what follows a first object makes the body NDJSON: the line ends, and more
/// text follows. Anything else on the first line is a single object with trailing data.
fn more_lines(after: &[u8]) -> bool {
    match after
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r'))
    {
        Some(i) if after[i] == b'\n' => after[i..].iter().any(|b| !is_ws(*b)),
        _ => false,
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The end (exclusive) of the first object or array in `s`, found by bracket counting
/// outside strings. Only used to tell a single document from NDJSON; the real
/// validation is simd-json's.
fn first_value_end(s: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Why [`tape`] gave no tape.
enum TapeFail {
    /// simd-json refused the text (worded by [`invalid_json`] from the caller's text).
    Json(simd_json::Error),
    /// A bad escape, located; the `Option` is the 0-based element of a top-level array
    /// the string is in.
    Escape(Option<usize>, Fail),
}

/// simd-json's tape of `text`, after refusing escapes that simd-json would decode
/// into a different value (see `escapes.rs`). On a bad escape the error names the
/// field (and the tag) holding the string.
fn tape(text: &mut [u8]) -> Result<Tape<'_>, TapeFail> {
    if let Some(bad) = escapes::find_bad_escape(text, 0) {
        let (n, fail) = bad_escape(text, &bad);
        return Err(TapeFail::Escape(n, fail));
    }
    simd_json::to_tape(text).map_err(TapeFail::Json)
}

/// The error for the bad escape `bad` of `text`, located by the path of its string;
/// the `Option` is the 0-based element of a top-level array the string is in.
/// Patches `text`.
fn bad_escape(text: &mut [u8], bad: &escapes::BadEscape) -> (Option<usize>, Fail) {
    let (ordinal, raw) = escapes::string_containing(text, bad.at);
    let message = format!(
        "the string \"{raw}\" has an invalid escape ({}); it is refused rather than \
         delivered changed",
        bad.what
    );
    escapes::patch_all(text, bad);
    // Only to find where the string is: the patched text is never delivered.
    let Ok(tape) = simd_json::to_tape(text) else {
        return (None, Fail::whole(message));
    };
    locate_string(&tape.0, ordinal, message)
}

/// One step of the path from the document root to a value.
enum Step<'i> {
    Key(&'i str),
    Index(usize),
}

/// The error for the `ordinal`-th string of the tape (keys included), located by its
/// path: the snapshot of a top-level array, the tag, and the field.
fn locate_string(nodes: &[Node<'_>], ordinal: usize, message: String) -> (Option<usize>, Fail) {
    let target = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n, Node::String(_)))
        .nth(ordinal)
        .map(|(j, _)| j);
    let mut path = Vec::new();
    let mut is_key = false;
    if let Some(j) = target {
        path_to(nodes, 0, j, &mut path, &mut is_key);
    }
    let mut steps = &path[..];
    let mut array_index = None;
    let mut root = 0;
    if let Some((Step::Index(n), rest)) = steps.split_first() {
        if matches!(nodes.first(), Some(Node::Array { .. })) {
            array_index = Some(*n);
            root = nth_element(nodes, 0, *n);
            steps = rest;
        }
    }
    let mut tag = None;
    if let [Step::Key("tags"), Step::Index(t), rest @ ..] = steps {
        let at = nth_element(
            nodes,
            members(nodes, root)
                .and_then(|mut m| m.find(|(k, _)| *k == "tags"))
                .map_or(0, |(_, v)| v),
            *t,
        );
        let name = members(nodes, at)
            .and_then(|mut m| m.find(|(k, _)| *k == "name"))
            .and_then(|(_, v)| match nodes.get(v) {
                Some(Node::String(s)) if Some(v) != target => Some(*s),
                _ => None,
            });
        tag = Some((*t + 1, name));
        steps = rest;
    }
    let mut field = String::new();
    let shown = if is_key {
        steps.len().saturating_sub(1)
    } else {
        steps.len()
    };
    for step in &steps[..shown] {
        match step {
            Step::Key(k) if field.is_empty() => field.push_str(k),
            Step::Key(k) => {
                field.push('.');
                field.push_str(k);
            }
            Step::Index(i) => field.push_str(&format!("[{i}]")),
        }
    }
    let mut fail = if field.is_empty() {
        Fail::whole(message)
    } else {
        Fail::field(field, message)
    };
    if let Some((n, name)) = tag {
        fail = fail.in_tag(n, name);
    }
    (array_index, fail)
}

/// Index of the `n`-th element of the array at `at`.
fn nth_element(nodes: &[Node<'_>], at: usize, n: usize) -> usize {
    (0..n).fold(at + 1, |j, _| skip(nodes, j))
}

/// Fills `path` with the steps from the value at `i` to the node `target`; `is_key`
/// tells whether `target` is an object key (its last step is then the key itself).
fn path_to<'i>(
    nodes: &[Node<'i>],
    i: usize,
    target: usize,
    path: &mut Vec<Step<'i>>,
    is_key: &mut bool,
) -> bool {
    if i == target {
        return true;
    }
    match nodes.get(i) {
        Some(Node::Object { .. }) => {
            for (key, v) in members(nodes, i).into_iter().flatten() {
                if v - 1 == target {
                    path.push(Step::Key(key));
                    *is_key = true;
                    return true;
                }
                if (v..skip(nodes, v)).contains(&target) {
                    path.push(Step::Key(key));
                    return path_to(nodes, v, target, path, is_key);
                }
            }
            false
        }
        Some(&Node::Array { len, .. }) => {
            let mut j = i + 1;
            for n in 0..len {
                let end = skip(nodes, j);
                if (j..end).contains(&target) {
                    path.push(Step::Index(n));
                    return path_to(nodes, j, target, path, is_key);
                }
                j = end;
            }
            false
        }
        _ => false,
    }
}

/// simd-json's error in words. Its tape errors name no cause, so the common ones are
/// recognised here from `text` (simd-json rewrites only the inside of strings, so the
/// bytes around the error are still the client's).
fn invalid_json(e: &simd_json::Error, text: &[u8]) -> Fail {
    let at = e.index();
    let start = text.iter().position(|b| !is_ws(*b)).unwrap_or(0);
    let rest = text.get(at..).unwrap_or_default();
    let why = if text[start..].starts_with(b"\xEF\xBB\xBF") {
        "the text starts with a UTF-8 byte-order mark (EF BB BF): send JSON without it".to_string()
    } else if ["NaN", "Infinity", "-Infinity", "+Infinity"]
        .iter()
        .any(|w| rest.starts_with(w.as_bytes()))
    {
        format!("NaN and Infinity are not JSON numbers (byte {at}): send a number, or the tag with an \"error\" code instead")
    } else if let Some(end) = first_value_end(&text[start..])
        .map(|n| start + n)
        .filter(|&end| text[end..].iter().any(|b| !is_ws(*b)))
    {
        let extra = end + text[end..].iter().position(|b| !is_ws(*b)).unwrap_or(0);
        format!("unexpected data after the end of the JSON value (byte {extra}): send one snapshot object, an array of them, or one object per line (NDJSON)")
    } else {
        let near = e
            .character()
            .map_or_else(String::new, |c| format!(" near {c:?}"));
        format!("{:?} at byte {at}{near}", e.error())
    };
    Fail::whole(format!("invalid JSON: {why}"))
}

/// Index just past the value that starts at `i`.
fn skip(nodes: &[Node<'_>], i: usize) -> usize {
    match nodes.get(i) {
        Some(Node::Object { count, .. } | Node::Array { count, .. }) => i + count + 1,
        _ => i + 1,
    }
}

/// "a string", "an integer", … for messages.
fn kind(node: Option<&Node<'_>>) -> &'static str {
    match node {
        Some(Node::String(_)) => "a string",
        Some(Node::Object { .. }) => "an object",
        Some(Node::Array { .. }) => "an array",
        Some(Node::Static(StaticNode::I64(_) | StaticNode::U64(_))) => "an integer",
        Some(Node::Static(StaticNode::F64(_))) => "a number with a fraction or exponent",
        Some(Node::Static(StaticNode::Bool(_))) => "a boolean",
        Some(Node::Static(StaticNode::Null)) => "null",
        #[allow(unreachable_patterns)] // other StaticNode variants exist behind features
        Some(Node::Static(_)) => "a number",
        None => "nothing",
    }
}

/// The key/value index pairs of the object at `i`, or `None` if it is not an object.
/// Walks the tape in place: no allocation per object.
fn members<'t, 'i>(nodes: &'t [Node<'i>], i: usize) -> Option<Members<'t, 'i>> {
    let &Node::Object { len, .. } = nodes.get(i)? else {
        return None;
    };
    Some(Members {
        nodes,
        next: i + 1,
        left: len,
    })
}

/// Iterator over an object's members as (key, index of the value).
#[derive(Clone)]
struct Members<'t, 'i> {
    nodes: &'t [Node<'i>],
    next: usize,
    left: usize,
}

impl<'i> Iterator for Members<'_, 'i> {
    type Item = (&'i str, usize);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        // simd-json's tape always has a string key here; stop rather than trust it.
        let Some(Node::String(key)) = self.nodes.get(self.next) else {
            self.left = 0;
            return None;
        };
        self.left -= 1;
        let value = self.next + 1;
        self.next = skip(self.nodes, value);
        Some((key, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

impl Members<'_, '_> {
    fn len(&self) -> usize {
        self.left
    }
}

fn string_at<'i>(nodes: &[Node<'i>], i: usize, field: &str, what: &str) -> Result<&'i str, Fail> {
    match nodes.get(i) {
        Some(Node::String(s)) => Ok(s),
        other => Err(Fail::field(
            field,
            format!("expected {what}, got {}", kind(other)),
        )),
    }
}

/// Parses the snapshot object at `i`: its tags go to `tags` (empty on entry), and
/// node, group and timestamp are returned.
fn parse_snapshot_at<'t>(
    nodes: &'t [Node<'t>],
    i: usize,
    default_ts: u64,
    out: &mut Vec<TagView<'t>>,
    names: &mut NameSet,
) -> Result<(&'t str, &'t str, u64), Fail> {
    let Some(fields) = members(nodes, i) else {
        return Err(Fail::whole(format!(
            "expected a snapshot object with \"node\", \"group\" and \"tags\", got {}",
            kind(nodes.get(i))
        )));
    };
    let (mut node, mut group, mut ts, mut tags) = (None, None, None, None);
    for (key, at) in fields {
        let slot =
            match key {
                "node" => &mut node,
                "group" => &mut group,
                "timestamp" => &mut ts,
                "tags" => &mut tags,
                _ => return Err(Fail::field(
                    key,
                    "unknown key; a snapshot has \"node\", \"group\", \"timestamp\" and \"tags\"",
                )),
            };
        if slot.replace(at).is_some() {
            return Err(Fail::field(key, "given twice"));
        }
    }
    let node = match node {
        Some(at) => string_at(nodes, at, "node", "the south node name as a string")?,
        None => {
            return Err(Fail::field(
                "node",
                "missing; every snapshot names its south node",
            ))
        }
    };
    let group = match group {
        Some(at) => string_at(nodes, at, "group", "the group name as a string")?,
        None => {
            return Err(Fail::field(
                "group",
                "missing; every snapshot names its group",
            ))
        }
    };
    let timestamp_ms = match ts {
        None => default_ts,
        Some(at) => match nodes.get(at) {
            Some(Node::Static(StaticNode::U64(v))) => *v,
            Some(Node::Static(StaticNode::I64(v))) if *v >= 0 => *v as u64,
            Some(Node::Static(StaticNode::I64(v))) => {
                return Err(Fail::field(
                    "timestamp",
                    format!("{v} is negative; expected Unix epoch milliseconds"),
                ))
            }
            other => {
                return Err(Fail::field(
                    "timestamp",
                    format!(
                        "expected Unix epoch milliseconds as an integer, got {}",
                        kind(other)
                    ),
                ))
            }
        },
    };
    let Some(tags_at) = tags else {
        return Err(Fail::field(
            "tags",
            "missing; give the group's tags as an array (possibly empty)",
        ));
    };
    let Some(&Node::Array { len, .. }) = nodes.get(tags_at) else {
        return Err(Fail::field(
            "tags",
            format!(
                "expected an array of tags, got {}",
                kind(nodes.get(tags_at))
            ),
        ));
    };
    out.reserve(len);
    names.reset(len);
    let mut j = tags_at + 1;
    for n in 1..=len {
        let tag = parse_tag(nodes, j).map_err(|f| {
            let name = f.0.tag.clone();
            f.in_tag(n, name.as_deref())
        })?;
        // A snapshot holds far fewer than 2^32 tags (its JSON would be gigabytes).
        if !names.insert(out, tag.name, out.len() as u32) {
            return Err(Fail::field(
                "name",
                "used by an earlier tag of this snapshot; tag names must be unique",
            )
            .in_tag(n, Some(tag.name)));
        }
        out.push(tag);
        j = skip(nodes, j);
    }
    Ok((node, group, timestamp_ms))
}

/// Parses the tag at `i`. On failure the returned `Fail` carries the tag's name in
/// `tag` when it is known (the caller adds the index).
fn parse_tag<'t>(nodes: &'t [Node<'t>], i: usize) -> Result<TagView<'t>, Fail> {
    let Some(fields) = members(nodes, i) else {
        return Err(Fail::whole(format!(
            "expected a tag object with \"name\" and \"type\"/\"value\" or \"error\", got {}",
            kind(nodes.get(i))
        )));
    };
    let mut slots: [Option<usize>; 8] = [None; 8];
    // Find the name first so that every later error can name the tag.
    let mut early: Option<Fail> = None;
    for (key, at) in fields {
        // A `match` on the key compiles to a switch on its length and one comparison,
        // where a search of a key list compared against each in turn (a tenth of the
        // parse's instructions).
        let slot = match key {
            "name" => Some(0),
            "type" => Some(1),
            "value" => Some(2),
            "error" => Some(3),
            "precision" => Some(4),
            "decimal" => Some(5),
            "bias" => Some(6),
            "metas" => Some(7),
            _ => None,
        };
        match slot {
            Some(k) => {
                if slots[k].replace(at).is_some() && early.is_none() {
                    early = Some(Fail::field(key, "given twice"));
                }
            }
            None => {
                if early.is_none() {
                    early = Some(Fail::field(
                        key,
                        "unknown key; a tag has \"name\", \"type\", \"value\", \"error\", \
                         \"precision\", \"decimal\", \"bias\" and \"metas\"",
                    ));
                }
            }
        }
    }
    let [name, ty, value, error, precision, decimal, bias, metas] = slots;
    let name = match name {
        Some(at) => string_at(nodes, at, "name", "the tag name as a string")?,
        None => return Err(Fail::field("name", "missing; every tag needs a name")),
    };
    let named = |f: Fail| f.named(name);
    if let Some(f) = early {
        return Err(named(f));
    }
    let reading = match (error, ty, value) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(named(Fail::field(
                "error",
                "a tag has either \"error\" or \"type\" and \"value\", not both",
            )))
        }
        (Some(at), None, None) => ReadingView::Error(parse_error_code(nodes, at).map_err(named)?),
        (None, None, _) => {
            return Err(named(Fail::field(
                "type",
                "missing; give the Neuron data type (name or code), or \"error\" instead",
            )))
        }
        (None, Some(_), None) => {
            return Err(named(Fail::field(
                "value",
                "missing; give the value, or \"error\" instead of \"type\" and \"value\"",
            )))
        }
        (None, Some(t), Some(v)) => {
            let dt = parse_type(nodes, t).map_err(named)?;
            ReadingView::Value(parse_value(nodes, v, dt).map_err(named)?)
        }
    };
    let precision = match precision {
        None => 0,
        Some(at) => match nodes.get(at) {
            Some(Node::Static(StaticNode::U64(p))) if *p <= u64::from(MAX_PRECISION) => *p as u8,
            Some(Node::Static(StaticNode::I64(p)))
                if (0..=i64::from(MAX_PRECISION)).contains(p) =>
            {
                *p as u8
            }
            Some(Node::Static(StaticNode::U64(p))) => {
                return Err(named(Fail::field(
                    "precision",
                    format!("{p} is above the maximum {MAX_PRECISION}"),
                )))
            }
            Some(Node::Static(StaticNode::I64(p))) => {
                return Err(named(Fail::field(
                    "precision",
                    format!("{p} is negative; expected 0 to {MAX_PRECISION}"),
                )))
            }
            other => {
                return Err(named(Fail::field(
                    "precision",
                    format!(
                        "expected an integer 0 to {MAX_PRECISION}, got {}",
                        kind(other)
                    ),
                )))
            }
        },
    };
    let decimal = parse_factor(nodes, decimal, "decimal").map_err(named)?;
    let bias = parse_factor(nodes, bias, "bias").map_err(named)?;
    let metas = match metas {
        None => MetaMembers::empty(),
        Some(at) => parse_metas(nodes, at).map_err(named)?,
    };
    Ok(TagView {
        name,
        reading,
        precision,
        decimal,
        bias,
        metas,
    })
}

fn parse_error_code(nodes: &[Node<'_>], at: usize) -> Result<i32, Fail> {
    let n = match nodes.get(at) {
        Some(Node::Static(StaticNode::I64(v))) => i128::from(*v),
        Some(Node::Static(StaticNode::U64(v))) => i128::from(*v),
        other => {
            return Err(Fail::field(
                "error",
                format!("expected an integer error code, got {}", kind(other)),
            ))
        }
    };
    i32::try_from(n).map_err(|_| {
        Fail::field(
            "error",
            format!("{n} is out of range; error codes are 32-bit signed integers"),
        )
    })
}

fn parse_type(nodes: &[Node<'_>], at: usize) -> Result<DataType, Fail> {
    match nodes.get(at) {
        Some(Node::String(s)) => DataType::from_name(s).ok_or_else(|| {
            Fail::field(
                "type",
                format!(
                    "unknown type {:?}; expected a Neuron type name such as \"INT16\" or \
                     \"FLOAT\", or its numeric code",
                    truncate(s, 40)
                ),
            )
        }),
        Some(Node::Static(StaticNode::I64(c))) => u8::try_from(*c)
            .ok()
            .and_then(DataType::from_code)
            .ok_or_else(|| unknown_code(i128::from(*c))),
        Some(Node::Static(StaticNode::U64(c))) => u8::try_from(*c)
            .ok()
            .and_then(DataType::from_code)
            .ok_or_else(|| unknown_code(i128::from(*c))),
        other => Err(Fail::field(
            "type",
            format!("expected a type name or numeric code, got {}", kind(other)),
        )),
    }
}

fn unknown_code(c: i128) -> Fail {
    Fail::field(
        "type",
        format!("unknown type code {c}; Neuron's codes are 1-14, 16-18, 20-34 and 40"),
    )
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[inline]
fn parse_factor(nodes: &[Node<'_>], at: Option<usize>, field: &str) -> Result<f64, Fail> {
    let Some(at) = at else { return Ok(0.0) };
    match nodes.get(at) {
        Some(Node::Static(StaticNode::F64(v))) if v.is_finite() => Ok(*v),
        Some(Node::Static(StaticNode::I64(v))) => Ok(*v as f64),
        Some(Node::Static(StaticNode::U64(v))) => Ok(*v as f64),
        other => Err(Fail::field(
            field,
            format!("expected a number, got {}", kind(other)),
        )),
    }
}

fn parse_metas<'t>(nodes: &'t [Node<'t>], at: usize) -> Result<MetaMembers<'t>, Fail> {
    let Some(fields) = members(nodes, at) else {
        return Err(Fail::field(
            "metas",
            format!(
                "expected an object of string, number or boolean values, got {}",
                kind(nodes.get(at))
            ),
        ));
    };
    // A set only for objects large enough for the quadratic scan (over the earlier
    // members on the tape, which allocates nothing) to matter, so that a hostile body
    // with thousands of keys cannot make the check slow.
    let mut seen: Option<HashSet<&str>> = (fields.len() > 16).then(HashSet::new);
    let earlier = fields.clone();
    for (n, (key, v)) in fields.enumerate() {
        let field = || format!("metas.{key}");
        let duplicate = match &mut seen {
            Some(set) => !set.insert(key),
            None => earlier.clone().take(n).any(|(k, _)| k == key),
        };
        if duplicate {
            return Err(Fail::field(field(), "given twice"));
        }
        match nodes.get(v) {
            Some(Node::String(_) | Node::Static(StaticNode::Bool(_)))
            | Some(Node::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_))) => {}
            other => {
                return Err(Fail::field(
                    field(),
                    format!("expected a string, number or boolean, got {}", kind(other)),
                ))
            }
        }
    }
    Ok(MetaMembers::tape(&nodes[at..skip(nodes, at)]))
}

/// The element field name `value[i]`.
fn elem(i: usize) -> String {
    format!("value[{i}]")
}

fn parse_value<'t>(nodes: &'t [Node<'t>], at: usize, dt: DataType) -> Result<ValueView<'t>, Fail> {
    use DataType as T;
    let node = nodes.get(at);
    let v = match dt {
        T::Int8 => ValueView::Int8(int(node, dt, "value")?),
        T::Uint8 => ValueView::Uint8(int(node, dt, "value")?),
        T::Int16 => ValueView::Int16(int(node, dt, "value")?),
        T::Uint16 => ValueView::Uint16(int(node, dt, "value")?),
        T::Int32 => ValueView::Int32(int(node, dt, "value")?),
        T::Uint32 => ValueView::Uint32(int(node, dt, "value")?),
        T::Int64 => ValueView::Int64(int(node, dt, "value")?),
        T::Uint64 => ValueView::Uint64(int(node, dt, "value")?),
        T::Word => ValueView::Word(int(node, dt, "value")?),
        T::Dword => ValueView::Dword(int(node, dt, "value")?),
        T::Lword => ValueView::Lword(int(node, dt, "value")?),
        T::Float => ValueView::Float(float32(node, dt, "value")?),
        T::Double => ValueView::Double(float64(node, dt, "value")?),
        T::Bit => match node {
            Some(Node::Static(StaticNode::Bool(b))) => ValueView::Bit(*b),
            Some(Node::Static(StaticNode::I64(0) | StaticNode::U64(0))) => ValueView::Bit(false),
            Some(Node::Static(StaticNode::I64(1) | StaticNode::U64(1))) => ValueView::Bit(true),
            Some(Node::Static(StaticNode::I64(n))) => return Err(bit_range(i128::from(*n))),
            Some(Node::Static(StaticNode::U64(n))) => return Err(bit_range(i128::from(*n))),
            other => return Err(expected("0, 1, true or false", dt, "value", other)),
        },
        T::Bool => ValueView::Bool(boolean(node, dt, "value")?),
        T::String => ValueView::String(string(node, dt, "value")?),
        T::Time => ValueView::Time(string(node, dt, "value")?),
        T::DataAndTime => ValueView::DataAndTime(string(node, dt, "value")?),
        T::ArrayChar => ValueView::ArrayChar(string(node, dt, "value")?),
        T::Bytes => ValueView::Bytes(ints::<u8>(nodes, at, dt, "integers 0 to 255")?),
        T::ArrayInt8 => ValueView::ArrayInt8(ints::<i8>(nodes, at, dt, "integers")?),
        T::ArrayUint8 => ValueView::ArrayUint8(ints::<u8>(nodes, at, dt, "integers")?),
        T::ArrayInt16 => ValueView::ArrayInt16(ints::<i16>(nodes, at, dt, "integers")?),
        T::ArrayUint16 => ValueView::ArrayUint16(ints::<u16>(nodes, at, dt, "integers")?),
        T::ArrayInt32 => ValueView::ArrayInt32(ints::<i32>(nodes, at, dt, "integers")?),
        T::ArrayUint32 => ValueView::ArrayUint32(ints::<u32>(nodes, at, dt, "integers")?),
        T::ArrayInt64 => ValueView::ArrayInt64(ints::<i64>(nodes, at, dt, "integers")?),
        T::ArrayUint64 => ValueView::ArrayUint64(ints::<u64>(nodes, at, dt, "integers")?),
        T::ArrayFloat => {
            ValueView::ArrayFloat(Items::tape(array(nodes, at, dt, "numbers", |n, f| {
                float32(n, dt, f)
            })?))
        }
        T::ArrayDouble => {
            ValueView::ArrayDouble(Items::tape(array(nodes, at, dt, "numbers", |n, f| {
                float64(n, dt, f)
            })?))
        }
        T::ArrayBool => {
            ValueView::ArrayBool(Items::tape(array(nodes, at, dt, "booleans", |n, f| {
                boolean(n, dt, f)
            })?))
        }
        T::ArrayString => {
            ValueView::ArrayString(Strs::tape(array(nodes, at, dt, "strings", |n, f| {
                string(n, dt, f)
            })?))
        }
        T::Custom => {
            check_json(nodes, at, 0)?;
            ValueView::Custom(JsonView::tape(&nodes[at..skip(nodes, at)]))
        }
    };
    Ok(v)
}

/// An integer array of element type `I`, each element range-checked.
fn ints<'t, I>(
    nodes: &'t [Node<'t>],
    at: usize,
    dt: DataType,
    of: &str,
) -> Result<Items<'t, I>, Fail>
where
    I: Item + TryFrom<i128> + Bounded,
{
    array(nodes, at, dt, of, |n, f| int::<I>(n, dt, f)).map(Items::tape)
}

fn expected(what: &str, dt: DataType, field: &str, got: Option<&Node<'_>>) -> Fail {
    Fail::field(
        field,
        format!("expected {what} for {dt}, got {}", kind(got)),
    )
}

fn bit_range(n: i128) -> Fail {
    Fail::field("value", format!("{n} is out of range for BIT (0 or 1)"))
}

/// An integer of the Rust type `I`, range-checked against the Neuron type `dt`.
fn int<I>(node: Option<&Node<'_>>, dt: DataType, field: &str) -> Result<I, Fail>
where
    I: TryFrom<i128> + Bounded,
{
    let n = match node {
        Some(Node::Static(StaticNode::I64(v))) => i128::from(*v),
        Some(Node::Static(StaticNode::U64(v))) => i128::from(*v),
        other => return Err(expected("an integer", dt, field, other)),
    };
    I::try_from(n).map_err(|_| {
        Fail::field(
            field,
            format!("{n} is out of range for {dt} ({} to {})", I::MIN, I::MAX),
        )
    })
}

/// The bounds of an integer type, for range messages.
trait Bounded {
    const MIN: i128;
    const MAX: i128;
}
macro_rules! bounded {
    ($($t:ty),*) => {$(
        impl Bounded for $t {
            const MIN: i128 = <$t>::MIN as i128;
            const MAX: i128 = <$t>::MAX as i128;
        }
    )*};
}
bounded!(i8, u8, i16, u16, i32, u32, i64, u64);

fn float64(node: Option<&Node<'_>>, dt: DataType, field: &str) -> Result<f64, Fail> {
    match node {
        Some(Node::Static(StaticNode::F64(v))) => Ok(*v),
        Some(Node::Static(StaticNode::I64(v))) => Ok(*v as f64),
        Some(Node::Static(StaticNode::U64(v))) => Ok(*v as f64),
        Some(Node::String("NaN")) => Ok(f64::NAN),
        Some(Node::String("Infinity")) => Ok(f64::INFINITY),
        Some(Node::String("-Infinity")) => Ok(f64::NEG_INFINITY),
        Some(Node::String(_)) => Err(Fail::field(
            field,
            format!(
                "expected a number for {dt}, got a string (the only strings accepted are \
                 \"NaN\", \"Infinity\" and \"-Infinity\")"
            ),
        )),
        other => Err(expected("a number", dt, field, other)),
    }
}

fn float32(node: Option<&Node<'_>>, dt: DataType, field: &str) -> Result<f32, Fail> {
    let v = float64(node, dt, field)?;
    // Neuron stores a FLOAT tag as a C float, so the input is rounded to the nearest
    // f32 here, once, and every encoder sees the same value. Like Neuron (jansson reads
    // a double, the tag stores a float) the text goes to the nearest f64 first; in rare
    // halfway cases that can differ by one f32 ulp from rounding the decimal directly.
    let f = v as f32;
    if v.is_finite() && !f.is_finite() {
        return Err(Fail::field(
            field,
            format!(
                "{v:e} is out of range for {dt} (largest magnitude {:e})",
                f32::MAX
            ),
        ));
    }
    Ok(f)
}

fn boolean(node: Option<&Node<'_>>, dt: DataType, field: &str) -> Result<bool, Fail> {
    match node {
        Some(Node::Static(StaticNode::Bool(b))) => Ok(*b),
        other => Err(expected("true or false", dt, field, other)),
    }
}

fn string<'t>(node: Option<&Node<'t>>, dt: DataType, field: &str) -> Result<&'t str, Fail> {
    match node {
        Some(Node::String(s)) => Ok(s),
        other => Err(expected("a string", dt, field, other)),
    }
}

/// Checks every element of the typed array at `at` with `each`; the elements, one
/// scalar node each, are then read from the tape by the view.
fn array<'t, I>(
    nodes: &'t [Node<'t>],
    at: usize,
    dt: DataType,
    of: &str,
    mut each: impl FnMut(Option<&'t Node<'t>>, &str) -> Result<I, Fail>,
) -> Result<&'t [Node<'t>], Fail> {
    let Some(&Node::Array { len, .. }) = nodes.get(at) else {
        return Err(expected(
            &format!("an array of {of}"),
            dt,
            "value",
            nodes.get(at),
        ));
    };
    let mut j = at + 1;
    for k in 0..len {
        // Elements of a typed array are scalars; an element that is an array or
        // object is reported by `each`, and `skip` keeps the walk aligned regardless.
        // The element's field name is only spelled out on an error: formatting it per
        // element was an allocation per array element.
        each(nodes.get(j), "value").map_err(|f| f.with_field(elem(k)))?;
        j = skip(nodes, j);
    }
    Ok(&nodes[at + 1..j])
}

/// Checks a `CUSTOM` value: nesting depth and well-formed objects.
fn check_json(nodes: &[Node<'_>], at: usize, depth: usize) -> Result<(), Fail> {
    if depth > MAX_DEPTH {
        return Err(Fail::field(
            "value",
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    match nodes.get(at) {
        Some(Node::String(_)) => {}
        Some(Node::Static(
            StaticNode::Null
            | StaticNode::Bool(_)
            | StaticNode::I64(_)
            | StaticNode::U64(_)
            | StaticNode::F64(_),
        )) => {}
        Some(&Node::Array { len, .. }) => {
            let mut j = at + 1;
            for _ in 0..len {
                check_json(nodes, j, depth + 1)?;
                j = skip(nodes, j);
            }
        }
        Some(&Node::Object { .. }) => {
            let fields =
                members(nodes, at).ok_or_else(|| Fail::field("value", "malformed object"))?;
            for (_, v) in fields {
                check_json(nodes, v, depth + 1)?;
            }
        }
        #[allow(unreachable_patterns)]
        Some(Node::Static(_)) | None => return Err(Fail::field("value", "unsupported JSON value")),
    }
    Ok(())
}
