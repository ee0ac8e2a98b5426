//! The baselines a Rust engineer would write instead of tagwire's encoder: serde
//! derive on typed structs borrowing from the snapshot, and the *floor* (the same
//! numbers through the same formatters, every constant byte copied, no JSON logic).
//!
//! Both produce the compact message (and, with [`NeuronSpacing`], Neuron's `", "` and
//! `": "` layout; floats stay shortest round-trip, since serde has no `%.15g`).

use std::io;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use tagwire_encode::Format;
use tagwire_model::{Json, Reading, Snapshot, Tag, Value};

/// A map written from a vector of pairs, in order (what `#[derive]` users reach for
/// when the keys are data).
pub struct Pairs<K, V>(pub Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Pairs<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// One tag value as the compact style writes it (scaling applied).
#[derive(Serialize, Clone, Copy)]
#[serde(untagged)]
pub enum Val<'a> {
    Int(i64),
    Uint(u64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(&'a str),
    Json(JsonRef<'a>),
}

/// A model [`Json`] value serialized in place.
#[derive(Clone, Copy)]
pub struct JsonRef<'a>(pub &'a Json);

impl Serialize for JsonRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Int(i) => s.serialize_i64(*i),
            Json::Uint(u) => s.serialize_u64(*u),
            Json::Float(f) => s.serialize_f64(*f),
            Json::String(t) => s.serialize_str(t),
            Json::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&JsonRef(v))?;
                }
                seq.end()
            }
            Json::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, &JsonRef(v))?;
                }
                map.end()
            }
        }
    }
}

/// The value the compact style writes for `t`, or its error code (3008 for a
/// non-finite result, as tagwire does).
pub fn val_of_tag(t: &Tag) -> Result<Val<'_>, i32> {
    let v = match &t.reading {
        Reading::Error(c) => return Err(*c),
        Reading::Value(v) => v,
    };
    let scaled = t.decimal != 0.0 || t.bias != 0.0;
    let factor = if t.decimal != 0.0 { t.decimal } else { 1.0 };
    let real = |x: f64| {
        if x.is_finite() {
            Ok(Val::F64(x))
        } else {
            Err(3008)
        }
    };
    match v {
        Value::Float(f) if !scaled => {
            if f.is_finite() {
                Ok(Val::F32(*f))
            } else {
                Err(3008)
            }
        }
        Value::Float(f) => real(f64::from(*f) * factor + t.bias),
        Value::Double(d) => real(if scaled { d * factor + t.bias } else { *d }),
        Value::Int16(x) if scaled => real(f64::from(*x) * factor + t.bias),
        Value::Uint16(x) if scaled => real(f64::from(*x) * factor + t.bias),
        Value::Int32(x) if scaled => real(f64::from(*x) * factor + t.bias),
        Value::Uint32(x) if scaled => real(f64::from(*x) * factor + t.bias),
        Value::Int8(x) => Ok(Val::Int((*x).into())),
        Value::Uint8(x) => Ok(Val::Int((*x).into())),
        Value::Int16(x) => Ok(Val::Int((*x).into())),
        Value::Uint16(x) => Ok(Val::Int((*x).into())),
        Value::Int32(x) => Ok(Val::Int((*x).into())),
        Value::Uint32(x) => Ok(Val::Int((*x).into())),
        Value::Int64(x) => Ok(Val::Int(*x)),
        Value::Uint64(x) => Ok(Val::Uint(*x)),
        Value::Bit(b) => Ok(Val::Int(i64::from(*b))),
        Value::Bool(b) => Ok(Val::Bool(*b)),
        Value::String(s) => Ok(Val::Str(s)),
        Value::Custom(j) => Ok(Val::Json(JsonRef(j))),
        other => panic!("benchmark data has no {:?}", other.data_type()),
    }
}

type Metas<'a> = Pairs<&'a str, JsonRef<'a>>;

fn metas(t: &Tag) -> Metas<'_> {
    Pairs(
        t.metas
            .iter()
            .map(|(k, v)| (k.as_str(), JsonRef(v)))
            .collect(),
    )
}

/// values-format as typed structs.
#[derive(Serialize)]
pub struct ValuesMsg<'a> {
    node: &'a str,
    group: &'a str,
    timestamp: u64,
    values: Pairs<&'a str, Val<'a>>,
    errors: Pairs<&'a str, i32>,
    metas: Pairs<&'a str, Metas<'a>>,
}

/// One entry of tags-format.
#[derive(Serialize)]
pub struct TagEntry<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Val<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<i32>,
    /// tags-format writes a tag's metas as keys of the tag object.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    metas: Option<Metas<'a>>,
}

/// tags-format as typed structs.
#[derive(Serialize)]
pub struct TagsMsg<'a> {
    node: &'a str,
    group: &'a str,
    timestamp: u64,
    tags: Vec<TagEntry<'a>>,
}

/// Either message, built from a snapshot.
pub enum Msg<'a> {
    Values(ValuesMsg<'a>),
    Tags(TagsMsg<'a>),
}

impl<'a> Msg<'a> {
    /// The typed message for `s` (what a derive-based encoder builds per message).
    pub fn build(s: &'a Snapshot, format: Format) -> Msg<'a> {
        match format {
            Format::Values => {
                let (mut values, mut errors, mut ms) = (Vec::new(), Vec::new(), Vec::new());
                for t in &s.tags {
                    match val_of_tag(t) {
                        Ok(v) => values.push((t.name.as_str(), v)),
                        Err(c) => errors.push((t.name.as_str(), c)),
                    }
                    if !t.metas.is_empty() {
                        ms.push((t.name.as_str(), metas(t)));
                    }
                }
                Msg::Values(ValuesMsg {
                    node: &s.node,
                    group: &s.group,
                    timestamp: s.timestamp_ms,
                    values: Pairs(values),
                    errors: Pairs(errors),
                    metas: Pairs(ms),
                })
            }
            Format::Tags => Msg::Tags(TagsMsg {
                node: &s.node,
                group: &s.group,
                timestamp: s.timestamp_ms,
                tags: s
                    .tags
                    .iter()
                    .map(|t| {
                        let (value, error) = match val_of_tag(t) {
                            Ok(v) => (Some(v), None),
                            Err(c) => (None, Some(c)),
                        };
                        TagEntry {
                            name: &t.name,
                            value,
                            error,
                            metas: (!t.metas.is_empty()).then(|| metas(t)),
                        }
                    })
                    .collect(),
            }),
        }
    }

    /// Writes the message with serde_json, compact or with Neuron's spacing.
    pub fn write(&self, out: &mut Vec<u8>, neuron: bool) {
        fn go<T: Serialize>(v: &T, out: &mut Vec<u8>, neuron: bool) {
            if neuron {
                v.serialize(&mut serde_json::Serializer::with_formatter(
                    out,
                    NeuronSpacing,
                ))
                .expect("in-memory write");
            } else {
                serde_json::to_writer(out, v).expect("in-memory write");
            }
        }
        match self {
            Msg::Values(m) => go(m, out, neuron),
            Msg::Tags(m) => go(m, out, neuron),
        }
    }
}

/// serde_json's compact formatter with jansson's `", "` and `": "` separators.
pub struct NeuronSpacing;

impl serde_json::ser::Formatter for NeuronSpacing {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// The floor for the compact style: the same message as tagwire's compact style,
/// with every byte that can be made before the message made before it. Per tag a
/// prebuilt constant prefix (`"name":` or `{"name":"…","value":`); numbers and
/// booleans formatted per message with the compact style's formatters (itoa, zmij);
/// strings and JSON values copied in their escaped form, made once (every encoder must
/// also check each byte of a string for escapes: the floor does not, so it stays below
/// any encoder); values-format's `errors` and `metas` objects from prebuilt keys,
/// tags-format's metas as members of each tag's object. No decisions at write time:
/// the least any encoder of this output must do.
pub struct Floor<'a> {
    head: Vec<u8>,
    /// values-format: the tags with a value; tags-format: every tag (an error tag's
    /// prefix ends in `"error":`).
    items: Vec<Item<'a>>,
    /// values-format: `"name":` and the code of each error tag.
    errors: Vec<(Vec<u8>, i32)>,
    /// values-format: `"name":{` and the members of each tag with metas.
    metas: Vec<(Vec<u8>, Vec<Member<'a>>)>,
    close: &'static [u8],
}

/// A value as the floor writes it.
enum FloorVal<'a> {
    /// A number or boolean, formatted per message.
    Formatted(Val<'a>),
    /// A string or JSON value in its escaped form, copied.
    Copied(Vec<u8>),
}

impl<'a> FloorVal<'a> {
    fn of_val(v: Val<'a>) -> Self {
        match v {
            Val::Str(_) | Val::Json(_) => Self::Copied(serde_json::to_vec(&v).expect("value")),
            number => Self::Formatted(number),
        }
    }

    fn of_json(j: &'a Json) -> Self {
        match j {
            Json::Int(x) => Self::Formatted(Val::Int(*x)),
            Json::Uint(x) => Self::Formatted(Val::Uint(*x)),
            other => Self::Copied(serde_json::to_vec(&JsonRef(other)).expect("value")),
        }
    }
}

/// One written value with its constant prefix and, in tags-format, its metas.
struct Item<'a> {
    prefix: Vec<u8>,
    value: Result<FloorVal<'a>, i32>,
    metas: Vec<Member<'a>>,
}

/// One meta member: `"key":` prebuilt, then the value.
struct Member<'a> {
    key: Vec<u8>,
    value: FloorVal<'a>,
}

fn quoted(s: &str) -> Vec<u8> {
    serde_json::to_vec(s).expect("string")
}

fn members(t: &Tag) -> Vec<Member<'_>> {
    t.metas
        .iter()
        .map(|(k, v)| {
            let mut key = quoted(k);
            key.push(b':');
            Member {
                key,
                value: FloorVal::of_json(v),
            }
        })
        .collect()
}

impl<'a> Floor<'a> {
    /// Precomputes every constant byte of `s`'s compact message.
    pub fn new(s: &'a Snapshot, format: Format) -> Floor<'a> {
        let mut head = b"{\"node\":".to_vec();
        head.extend_from_slice(&quoted(&s.node));
        head.extend_from_slice(b",\"group\":");
        head.extend_from_slice(&quoted(&s.group));
        head.extend_from_slice(b",\"timestamp\":");
        let (mut items, mut errors, mut metas) = (Vec::new(), Vec::new(), Vec::new());
        for t in &s.tags {
            let value = val_of_tag(t).map(FloorVal::of_val);
            if format == Format::Tags {
                let mut prefix = b"{\"name\":".to_vec();
                prefix.extend_from_slice(&quoted(&t.name));
                prefix.extend_from_slice(if value.is_err() {
                    b",\"error\":"
                } else {
                    b",\"value\":"
                });
                items.push(Item {
                    prefix,
                    value,
                    metas: members(t),
                });
                continue;
            }
            let mut key = quoted(&t.name);
            key.push(b':');
            if !t.metas.is_empty() {
                let mut open = key.clone();
                open.push(b'{');
                metas.push((open, members(t)));
            }
            match value {
                Ok(_) => items.push(Item {
                    prefix: key,
                    value,
                    metas: Vec::new(),
                }),
                Err(code) => errors.push((key, code)),
            }
        }
        let close: &'static [u8] = if format == Format::Tags { b"}" } else { b"" };
        Floor {
            head,
            items,
            errors,
            metas,
            close,
        }
    }

    /// Writes the message: copies and formatting only.
    pub fn write(&self, out: &mut Vec<u8>, timestamp: u64, values: bool) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
        out.extend_from_slice(if values {
            b",\"values\":{"
        } else {
            b",\"tags\":["
        });
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&item.prefix);
            match &item.value {
                Ok(v) => Self::val(out, v),
                Err(c) => out.extend_from_slice(itoa::Buffer::new().format(*c).as_bytes()),
            }
            for m in &item.metas {
                out.push(b',');
                out.extend_from_slice(&m.key);
                Self::val(out, &m.value);
            }
            out.extend_from_slice(self.close);
        }
        if !values {
            out.extend_from_slice(b"]}");
            return;
        }
        out.extend_from_slice(b"},\"errors\":{");
        for (i, (key, code)) in self.errors.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            out.extend_from_slice(itoa::Buffer::new().format(*code).as_bytes());
        }
        out.extend_from_slice(b"},\"metas\":{");
        for (i, (open, members)) in self.metas.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(open);
            for (j, m) in members.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&m.key);
                Self::val(out, &m.value);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"}}");
    }

    /// One value: formatted, or copied (inlined into the loop, as a hand-written
    /// encoder would have it).
    #[inline(always)]
    fn val(out: &mut Vec<u8>, v: &FloorVal<'_>) {
        match *v {
            FloorVal::Formatted(Val::Int(x)) => {
                out.extend_from_slice(itoa::Buffer::new().format(x).as_bytes())
            }
            FloorVal::Formatted(Val::Uint(x)) => {
                out.extend_from_slice(itoa::Buffer::new().format(x).as_bytes())
            }
            FloorVal::Formatted(Val::F32(x)) => {
                out.extend_from_slice(zmij::Buffer::new().format_finite(x).as_bytes())
            }
            FloorVal::Formatted(Val::F64(x)) => {
                out.extend_from_slice(zmij::Buffer::new().format_finite(x).as_bytes())
            }
            FloorVal::Formatted(Val::Bool(b)) => {
                out.extend_from_slice(if b { b"true" } else { b"false" })
            }
            FloorVal::Formatted(Val::Str(_) | Val::Json(_)) => {
                unreachable!("strings and JSON are copied")
            }
            FloorVal::Copied(ref bytes) => out.extend_from_slice(bytes),
        }
    }
}

/// Panics unless the derive baseline (both spacings' compact bytes) and the floor write
/// exactly tagwire's compact message for `snap` in `format`: a baseline or floor that
/// skipped part of the message (errors, metas, escaping) would measure something else.
pub fn assert_same_bytes(name: &str, snap: &Snapshot, format: Format) {
    let mut ours = Vec::new();
    let sent = tagwire_encode::Encoder::new(
        tagwire_encode::EncodeOptions::new()
            .with_format(format)
            .with_style(tagwire_encode::Style::Compact)
            .with_upload_err(true),
    )
    .encode(snap, &mut ours);
    assert!(sent, "{name} {format}: every shape is sent");
    let mut theirs = Vec::new();
    Msg::build(snap, format).write(&mut theirs, false);
    assert_eq!(
        String::from_utf8_lossy(&theirs),
        String::from_utf8_lossy(&ours),
        "{name} {format}: derive baseline writes different bytes"
    );
    let mut floor = Vec::new();
    Floor::new(snap, format).write(&mut floor, snap.timestamp_ms, format == Format::Values);
    assert_eq!(
        String::from_utf8_lossy(&floor),
        String::from_utf8_lossy(&ours),
        "{name} {format}: the floor writes different bytes"
    );
}
