//! # tagwire-encode
//!
//! Encodes group snapshots ([`tagwire_model::Snapshot`]) as the JSON messages EMQ
//! Neuron's northbound plugins send: *values-format* and *tags-format*, in the `neuron`
//! style (byte for byte what Neuron 2.10.2+ sends, down to the digits of every float)
//! or the `compact` style (no whitespace, shortest round-trip floats). The bytes are
//! pinned by the test vectors shipped in this package (`tests/vectors/`: snapshots and
//! the messages Neuron sends for them).
//!
//! The encoder writes straight into a caller's reusable `Vec<u8>` and allocates nothing
//! per message once it has seen a group: tag names are escaped once per group layout
//! and cached, integers go through `itoa`, floats are formatted on the stack. No I/O,
//! no async runtime. It reads an owned [`Snapshot`] ([`Encoder::encode`]) or the
//! borrowed [`SnapshotView`] that [`tagwire_model::Parser`] returns
//! ([`Encoder::encode_view`]); [`encode_ndjson`] (feature `parse`, on by default) is
//! the whole NDJSON-in, messages-out loop.
//!
//! With `default-features = false` the crate needs only `tagwire-model` (without
//! its parser), `itoa` and `zmij`.
//!
//! ## Example
//!
//! ```
//! use tagwire_encode::{EncodeOptions, Encoder, Format, Style};
//! use tagwire_model::{Snapshot, Tag, Value};
//!
//! let snapshot = Snapshot::new("modbus", "grp", 1_650_006_388_943)
//!     .with_tag(Tag::value("tag0", Value::Int16(123)))
//!     .with_tag(Tag::value("temp", Value::Float(12.345678)))
//!     .with_tag(Tag::value("m", Value::Int8(5)).with_meta("unit", "C"))
//!     .with_tag(Tag::error("tag1", 3002));
//!
//! let mut out = Vec::new();
//! let mut values = Encoder::new(EncodeOptions::default());
//! assert!(values.encode(&snapshot, &mut out));
//! assert_eq!(
//!     std::str::from_utf8(&out).unwrap(),
//!     r#"{"node": "modbus", "group": "grp", "timestamp": 1650006388943, "values": {"tag0": 123, "temp": 12.34568, "m": 5}, "errors": {"tag1": 3002}, "metas": {"m": {"unit": "C"}}}"#
//! );
//!
//! out.clear();
//! let mut tags = Encoder::new(EncodeOptions::default().with_format(Format::Tags).with_style(Style::Compact).with_upload_err(false));
//! assert!(tags.encode(&snapshot, &mut out));
//! assert_eq!(
//!     std::str::from_utf8(&out).unwrap(),
//!     r#"{"node":"modbus","group":"grp","timestamp":1650006388943,"tags":[{"name":"tag0","value":123},{"name":"temp","value":12.345678},{"name":"m","value":5,"unit":"C"}]}"#
//! );
//!
//! // With upload_err = false, a snapshot of nothing but errors is not sent at all.
//! let dead = Snapshot::new("plc", "dead", 0).with_tag(Tag::error("a", 3015));
//! out.clear();
//! assert!(!tags.encode(&dead, &mut out));
//! assert!(out.is_empty());
//! ```
#![deny(missing_docs)]

mod escape;
mod layout;
#[cfg(feature = "parse")]
mod ndjson;
mod num;
mod options;
mod source;
mod states;

#[cfg(feature = "parse")]
pub use ndjson::{encode_ndjson, NdjsonError, NdjsonSummary};

pub use options::{EncodeOptions, Format, ParseOptionError, Style};
pub use states::{encode_driver_states, NodeState};

/// How many group layouts (node/group with its escaped tag names) one [`Encoder`]
/// keeps; beyond this, the least recently used layout is dropped and rebuilt when
/// needed.
pub const MAX_CACHED_LAYOUTS: usize = layout::MAX_LAYOUTS;

/// The default byte budget of one [`Encoder`]'s cached layouts (8 MiB); see
/// [`Encoder::set_layout_budget`].
pub const DEFAULT_LAYOUT_BUDGET: usize = layout::DEFAULT_BUDGET;

use escape::{write_str, Hex};
use layout::{Layout, LayoutCache};
use num::write_int;
use source::{Source, TagRead};
use tagwire_model::{
    error_code, JsonNode, JsonView, Members, Snapshot, SnapshotView, ValueView, MAX_PRECISION,
};

/// Turns snapshots into messages for one set of [`EncodeOptions`].
///
/// Keep one encoder per destination and reuse it: it caches each group's escaped tag
/// names (a bounded number of groups) so that steady-state encoding allocates nothing.
#[derive(Debug)]
pub struct Encoder {
    options: EncodeOptions,
    layouts: LayoutCache,
    /// Tag lists of the values-format message being written, collected during its
    /// single pass over the tags and reused between messages (so that steady state
    /// allocates nothing).
    lists: Lists,
}

/// What values-format writes after the values, gathered while writing them: the
/// `errors` and `metas` objects then walk only these tags instead of all of them.
#[derive(Debug, Default)]
struct Lists {
    /// Error tags (index, code), in tag order.
    errors: Vec<(u32, i32)>,
    /// Tags whose metas are written, in tag order.
    metas: Vec<u32>,
}

impl Encoder {
    /// An encoder producing `options`' format and style.
    pub fn new(options: EncodeOptions) -> Self {
        Encoder {
            options,
            layouts: LayoutCache::new(options.style, options.format),
            lists: Lists::default(),
        }
    }

    /// The options this encoder was made with.
    pub fn options(&self) -> &EncodeOptions {
        &self.options
    }

    /// Appends the message for `snapshot` to `out` (which is not cleared).
    ///
    /// Returns false, and leaves `out` as it was, when the snapshot must not be sent:
    /// `upload_err` is false and no tag with a value is left.
    #[must_use = "false means nothing was written and the snapshot must not be sent"]
    pub fn encode(&mut self, snapshot: &Snapshot, out: &mut Vec<u8>) -> bool {
        self.encode_source(snapshot, out)
    }

    /// [`encode`](Self::encode) for a borrowed snapshot, as
    /// [`tagwire_model::Parser::parse`] returns: the same bytes, nothing copied.
    #[must_use = "false means nothing was written and the snapshot must not be sent"]
    pub fn encode_view(&mut self, snapshot: &SnapshotView<'_>, out: &mut Vec<u8>) -> bool {
        self.encode_source(snapshot, out)
    }

    fn encode_source(&mut self, snapshot: &impl Source, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        let upload_err = self.options.upload_err;
        // At most two passes: the second follows a rebuild of the plan, after which
        // every name matches.
        let written = loop {
            let layout = self.layouts.get(snapshot);
            // One monomorphised writer per style, so that the punctuation is a constant
            // and every small copy is inlined.
            let written = match (self.options.style, self.options.format) {
                (Style::Neuron, Format::Values) => {
                    Writer::<true> { upload_err }.values(layout, snapshot, &mut self.lists, out)
                }
                (Style::Compact, Format::Values) => {
                    Writer::<false> { upload_err }.values(layout, snapshot, &mut self.lists, out)
                }
                (Style::Neuron, Format::Tags) => {
                    Writer::<true> { upload_err }.tags(layout, snapshot, out)
                }
                (Style::Compact, Format::Tags) => {
                    Writer::<false> { upload_err }.tags(layout, snapshot, out)
                }
            };
            if written != Written::Stale {
                break written;
            }
            // A tag was renamed: nothing written so far may go out under the old name.
            out.truncate(start);
            self.layouts.resync(snapshot);
        };
        let sent = written == Written::Sent;
        if !sent {
            out.truncate(start);
        }
        sent
    }

    /// The message for `snapshot` in a new vector, or `None` when it must not be sent.
    /// Convenient in tests; [`encode`](Self::encode) into a reused buffer is faster.
    pub fn encode_to_vec(&mut self, snapshot: &Snapshot) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.encode(snapshot, &mut out).then_some(out)
    }

    /// How many group layouts are cached (at most [`MAX_CACHED_LAYOUTS`]).
    pub fn cached_layouts(&self) -> usize {
        self.layouts.len()
    }

    /// The heap bytes the cached group layouts hold (names, escaped prefixes, offsets).
    pub fn cached_layout_bytes(&self) -> usize {
        self.layouts.bytes()
    }

    /// The byte budget of the cached layouts.
    pub fn layout_budget(&self) -> usize {
        self.layouts.budget()
    }

    /// Bounds the cached layouts to about `bytes` of heap (default
    /// [`DEFAULT_LAYOUT_BUDGET`]): when a layout is built or grows past it, the least
    /// recently used layouts are dropped until the rest fit. The layout being used is
    /// kept even when it alone is larger, so a huge group costs a rebuild only when
    /// another group was encoded in between.
    pub fn set_layout_budget(&mut self, bytes: usize) {
        self.layouts.set_budget(bytes);
    }

    /// Forgets every cached group layout (they are rebuilt on demand).
    pub fn clear_cache(&mut self) {
        self.layouts.clear();
    }
}

/// What a tag turns into on the wire.
pub(crate) enum Out<'a> {
    /// An error code (the tag's own, or 3008 for a non-finite float).
    Error(i32),
    /// A FLOAT/DOUBLE or a scaled number, ready to be formatted.
    Real {
        v: f64,
        /// The declared FLOAT's own `f32` when it was not scaled (compact style
        /// writes the shortest `f32` text).
        single: Option<f32>,
        /// Whether Neuron's heuristic applies (precision 0 and the type rules of §4).
        heuristic: bool,
        precision: u8,
    },
    /// Any other value, written as it is.
    Plain(ValueView<'a>),
}

/// 2^63: from here on Neuron's heuristic (which truncates to `int64_t`) is skipped.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// Applies Neuron's scaling and float rules (precision, decimal, bias, the rounding
/// heuristic) to one tag's value.
#[inline]
fn classify<'a>(value: &ValueView<'a>, decimal: f64, bias: f64, precision: u8) -> Out<'a> {
    let scaled = decimal != 0.0 || bias != 0.0;
    let (raw, single, declared_double) = match *value {
        ValueView::Float(f) => (f64::from(f), Some(f), false),
        ValueView::Double(d) => (d, None, true),
        _ if !scaled => return Out::Plain(value.clone()),
        ValueView::Int8(x) => (f64::from(x), None, false),
        ValueView::Uint8(x) => (f64::from(x), None, false),
        ValueView::Int16(x) => (f64::from(x), None, false),
        ValueView::Uint16(x) => (f64::from(x), None, false),
        ValueView::Int32(x) => (f64::from(x), None, false),
        ValueView::Uint32(x) => (f64::from(x), None, false),
        ValueView::Int64(x) => (x as f64, None, false),
        ValueView::Uint64(x) => (x as f64, None, false),
        _ => return Out::Plain(value.clone()),
    };
    let (v, single, heuristic) = if scaled {
        // Two separate roundings, as Neuron's C does (Rust never fuses a * b + c).
        let factor = if decimal != 0.0 { decimal } else { 1.0 };
        (raw * factor + bias, None, declared_double && bias == 0.0)
    } else {
        (raw, single, true)
    };
    real_out(v, single, heuristic, precision)
}

/// The end of [`classify`] for a float `v` (scaled or not): error 3008 when it is not
/// finite, else how to format it. The writer's unscaled FLOAT/DOUBLE path calls this
/// directly (with `heuristic` true), skipping the dispatch on the value's type.
#[inline(always)]
fn real_out<'a>(v: f64, single: Option<f32>, heuristic: bool, precision: u8) -> Out<'a> {
    if !v.is_finite() {
        return Out::Error(error_code::TAG_VALUE_NOT_FINITE);
    }
    let precision = precision.min(MAX_PRECISION);
    Out::Real {
        v,
        single,
        heuristic: heuristic && precision == 0 && v.abs() < TWO_POW_63,
        precision,
    }
}

/// What a writer did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// The message is complete and is to be sent.
    Sent,
    /// The message is complete but must not be sent (`upload_err` is false and no tag
    /// has a value).
    NotSent,
    /// A tag's name differs from the plan's: the output is incomplete and the plan is
    /// to be rebuilt before writing again.
    Stale,
}

impl Written {
    fn sent_if(sent: bool) -> Written {
        if sent {
            Written::Sent
        } else {
            Written::NotSent
        }
    }
}

/// Writes one message; `NEURON` selects the style at compile time.
pub(crate) struct Writer<const NEURON: bool> {
    upload_err: bool,
}

impl<const NEURON: bool> Writer<NEURON> {
    /// jansson's default dump separates with `", "` and `": "`; compact with none.
    const COMMA: &'static [u8] = if NEURON { b", " } else { b"," };
    const COLON: &'static [u8] = if NEURON { b": " } else { b":" };
    pub(crate) const HEX: Hex = if NEURON { Hex::Upper } else { Hex::Lower };
    const VALUE_KEY: &'static [u8] = b"\"value\"";
    // The constant runs between the parts of a message, each appended as one
    // fixed-size copy (as separate pushes, each with its capacity check, they were
    // about 90 instructions a message: a few percent of a 10-tag message).
    /// `"values":{` after the header.
    const VALUES_OPEN: &'static [u8] = if NEURON {
        b"\"values\": {"
    } else {
        b"\"values\":{"
    };
    /// `"tags":[` after the header.
    const TAGS_OPEN: &'static [u8] = if NEURON {
        b"\"tags\": ["
    } else {
        b"\"tags\":["
    };
    /// The end of `values` and the start of `errors`.
    const ERRORS_OPEN: &'static [u8] = if NEURON {
        b"}, \"errors\": {"
    } else {
        b"},\"errors\":{"
    };
    /// The end of `errors` and the start of `metas`.
    const METAS_OPEN: &'static [u8] = if NEURON {
        b"}, \"metas\": {"
    } else {
        b"},\"metas\":{"
    };

    #[inline]
    fn key(out: &mut Vec<u8>, quoted: &[u8]) {
        out.extend_from_slice(quoted);
        out.extend_from_slice(Self::COLON);
    }

    fn head(layout: &Layout, snapshot: &impl Source, out: &mut Vec<u8>) {
        out.extend_from_slice(layout.header());
        write_int(out, snapshot.timestamp_ms());
        out.extend_from_slice(Self::COMMA);
    }

    /// values-format (§2).
    ///
    /// One pass over the plan writes the values and notes the error and meta tags;
    /// the `errors` and `metas` objects then visit only those. Each tag costs one
    /// name check, one prefix copy and one dispatch on its value; an error tag's
    /// prefix is written too and taken back, which is cheaper than deciding first.
    fn values(
        &self,
        layout: &Layout,
        snapshot: &impl Source,
        lists: &mut Lists,
        out: &mut Vec<u8>,
    ) -> Written {
        Self::head(layout, snapshot, out);
        out.extend_from_slice(Self::VALUES_OPEN);
        lists.errors.clear();
        lists.metas.clear();
        let mut n_values = 0usize;
        // The first value goes without the separator its prefix starts with.
        let mut skip = Self::COMMA.len();
        for (i, step) in layout.steps().iter().enumerate() {
            let tag = snapshot.tag(i);
            if !layout.name_is(step, tag.name()) {
                return Written::Stale;
            }
            // A snapshot holds far fewer than 2^32 tags (its JSON would be gigabytes).
            let index = i as u32;
            let at = out.len();
            layout.write_prefix(out, step, skip);
            match tag.write_value(self, out) {
                Ok(()) => {
                    skip = 0;
                    n_values += 1;
                    if tag.has_metas() {
                        lists.metas.push(index);
                    }
                }
                Err(code) => {
                    out.truncate(at);
                    lists.errors.push((index, code));
                    // An error tag's metas are sent only with its error.
                    if self.upload_err && tag.has_metas() {
                        lists.metas.push(index);
                    }
                }
            }
        }
        let steps = layout.steps();
        out.extend_from_slice(Self::ERRORS_OPEN);
        if self.upload_err {
            for (n, &(i, code)) in lists.errors.iter().enumerate() {
                if n > 0 {
                    out.extend_from_slice(Self::COMMA);
                }
                out.extend_from_slice(layout.key(&steps[i as usize], Self::COMMA.len()));
                write_int(out, code);
            }
        }
        out.extend_from_slice(Self::METAS_OPEN);
        for (n, &i) in lists.metas.iter().enumerate() {
            if n > 0 {
                out.extend_from_slice(Self::COMMA);
            }
            let i = i as usize;
            out.extend_from_slice(layout.key(&steps[i], Self::COMMA.len()));
            out.push(b'{');
            self.members(out, snapshot.tag(i).metas());
            out.push(b'}');
        }
        out.extend_from_slice(b"}}");
        Written::sent_if(self.upload_err || n_values > 0)
    }

    /// tags-format (§3).
    fn tags(&self, layout: &Layout, snapshot: &impl Source, out: &mut Vec<u8>) -> Written {
        // What ends every prefix of tags-format, taken back for an error tag.
        let value_key = Self::VALUE_KEY.len() + Self::COLON.len();
        Self::head(layout, snapshot, out);
        out.extend_from_slice(Self::TAGS_OPEN);
        let mut n_values = 0usize;
        // The first element goes without the separator its prefix starts with.
        let mut skip = Self::COMMA.len();
        for (i, step) in layout.steps().iter().enumerate() {
            let tag = snapshot.tag(i);
            if !layout.name_is(step, tag.name()) {
                return Written::Stale;
            }
            let at = out.len();
            // The prefix is `, {"name": "<name>", "value": `.
            layout.write_prefix(out, step, skip);
            match tag.write_value(self, out) {
                Ok(()) => n_values += 1,
                Err(_) if !self.upload_err => {
                    out.truncate(at);
                    continue;
                }
                Err(code) => {
                    let end = out.len() - value_key;
                    out.truncate(end);
                    Self::key(out, b"\"error\"");
                    write_int(out, code);
                }
            }
            skip = 0;
            if tag.has_metas() {
                out.extend_from_slice(Self::COMMA);
                self.members(out, tag.metas());
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        Written::sent_if(self.upload_err || n_values > 0)
    }

    /// A classified value, as [`TagRead::write_value`] finishes the cases it does not
    /// write itself: an error code is returned, not written.
    // Always inlined: a call here cost float-heavy shapes about 10% (the float rules
    // fold away once the scaling is known to be zero).
    #[inline(always)]
    pub(crate) fn classified(&self, out: &mut Vec<u8>, o: Out<'_>) -> Result<(), i32> {
        match o {
            Out::Error(code) => Err(code),
            o => {
                self.out(out, &o);
                Ok(())
            }
        }
    }

    /// `"k": v, "k2": v2` (no braces).
    fn members(&self, out: &mut Vec<u8>, members: Members<'_>) {
        for (n, (k, v)) in members.enumerate() {
            if n > 0 {
                out.extend_from_slice(Self::COMMA);
            }
            write_str(out, k, Self::HEX);
            out.extend_from_slice(Self::COLON);
            self.json(out, v);
        }
    }

    #[inline(always)]
    fn out(&self, out: &mut Vec<u8>, o: &Out<'_>) {
        match *o {
            Out::Error(code) => write_int(out, code),
            Out::Real {
                v,
                single,
                heuristic,
                precision,
            } => self.real(out, v, single, heuristic, precision),
            Out::Plain(ref value) => self.value(out, value),
        }
    }

    #[inline]
    fn real(&self, out: &mut Vec<u8>, v: f64, single: Option<f32>, heuristic: bool, precision: u8) {
        if precision > 0 {
            num::write_fixed(out, v, precision);
        } else if NEURON {
            if heuristic {
                num::write_heuristic(out, v);
            } else {
                num::write_g15(out, v);
            }
        } else if let Some(f) = single {
            num::write_shortest_f32(out, f);
        } else {
            num::write_shortest_f64(out, v);
        }
    }

    /// An array element of ARRAY_FLOAT / ARRAY_DOUBLE: `%.15g` (neuron) or shortest
    /// (compact), never the heuristic or a precision; `null` when not finite, since
    /// JSON cannot spell it.
    fn element_f64(&self, out: &mut Vec<u8>, v: f64) {
        if !v.is_finite() {
            out.extend_from_slice(b"null");
        } else if NEURON {
            num::write_g15(out, v);
        } else {
            num::write_shortest_f64(out, v);
        }
    }

    fn element_f32(&self, out: &mut Vec<u8>, v: f32) {
        if !v.is_finite() {
            out.extend_from_slice(b"null");
        } else if NEURON {
            num::write_g15(out, f64::from(v));
        } else {
            num::write_shortest_f32(out, v);
        }
    }

    fn array<T>(
        &self,
        out: &mut Vec<u8>,
        items: impl Iterator<Item = T>,
        mut each: impl FnMut(&mut Vec<u8>, T),
    ) {
        out.push(b'[');
        for (n, item) in items.enumerate() {
            if n > 0 {
                out.extend_from_slice(Self::COMMA);
            }
            each(out, item);
        }
        out.push(b']');
    }

    pub(crate) fn value(&self, out: &mut Vec<u8>, value: &ValueView<'_>) {
        use ValueView as V;
        match value {
            V::Int8(v) => write_int(out, *v),
            V::Uint8(v) => write_int(out, *v),
            V::Int16(v) => write_int(out, *v),
            V::Uint16(v) => write_int(out, *v),
            V::Int32(v) => write_int(out, *v),
            V::Uint32(v) => write_int(out, *v),
            V::Int64(v) => write_int(out, *v),
            V::Uint64(v) => write_int(out, *v),
            V::Word(v) => write_int(out, *v),
            V::Dword(v) => write_int(out, *v),
            V::Lword(v) => write_int(out, *v),
            // `classify` turns FLOAT/DOUBLE into `Out::Real`; this is the same rendering
            // for a value reached without a tag (precision 0, unscaled).
            V::Float(f) => self.real(out, f64::from(*f), Some(*f), true, 0),
            V::Double(d) => self.real(out, *d, None, d.abs() < TWO_POW_63, 0),
            V::Bit(b) => out.push(if *b { b'1' } else { b'0' }),
            V::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            V::String(s) | V::Time(s) | V::DataAndTime(s) | V::ArrayChar(s) => {
                write_str(out, s, Self::HEX)
            }
            V::Bytes(v) => self.array(out, v.iter(), write_int),
            V::ArrayInt8(v) => self.array(out, v.iter(), write_int),
            V::ArrayUint8(v) => self.array(out, v.iter(), write_int),
            V::ArrayInt16(v) => self.array(out, v.iter(), write_int),
            V::ArrayUint16(v) => self.array(out, v.iter(), write_int),
            V::ArrayInt32(v) => self.array(out, v.iter(), write_int),
            V::ArrayUint32(v) => self.array(out, v.iter(), write_int),
            V::ArrayInt64(v) => self.array(out, v.iter(), write_int),
            V::ArrayUint64(v) => self.array(out, v.iter(), write_int),
            V::ArrayFloat(v) => self.array(out, v.iter(), |o, x| self.element_f32(o, x)),
            V::ArrayDouble(v) => self.array(out, v.iter(), |o, x| self.element_f64(o, x)),
            V::ArrayBool(v) => self.array(out, v.iter(), |o, b| {
                o.extend_from_slice(if b { b"true" } else { b"false" })
            }),
            V::ArrayString(v) => self.array(out, v.iter(), |o, s| write_str(o, s, Self::HEX)),
            V::Custom(j) => self.json(out, *j),
        }
    }

    /// A JSON value re-dumped in this style: members in their order, integers as
    /// integers, reals as `%.15g` (neuron) or shortest (compact).
    fn json(&self, out: &mut Vec<u8>, j: JsonView<'_>) {
        match j.get() {
            JsonNode::Null => out.extend_from_slice(b"null"),
            JsonNode::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            JsonNode::Int(v) => write_int(out, v),
            JsonNode::Uint(v) => write_int(out, v),
            JsonNode::Float(v) => self.element_f64(out, v),
            JsonNode::String(s) => write_str(out, s, Self::HEX),
            JsonNode::Array(items) => self.array(out, items, |o, x| self.json(o, x)),
            JsonNode::Object(members) => {
                out.push(b'{');
                self.members(out, members);
                out.push(b'}');
            }
        }
    }
}
