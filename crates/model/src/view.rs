//! Borrowed views of snapshots: what the encoder reads.
//!
//! A view is either a look at an owned [`Snapshot`] (made by [`Tag::view`], no
//! copying) or the result of [`Parser::parse`](crate::Parser::parse), where every
//! name and string is a slice of the caller's input buffer and arrays, metas and
//! `CUSTOM` values are read straight from simd-json's tape (already validated, so
//! reading them cannot fail). Either way the encoder sees the same types, so there is
//! one encoder for both.

use std::fmt;

#[cfg(feature = "parse")]
use simd_json::{Node, StaticNode};

use crate::types::DataType;
use crate::value::{Json, Reading, Snapshot, Tag, Value};

/// A borrowed snapshot: node, group, timestamp and the tags' views.
#[derive(Debug, Clone)]
pub struct SnapshotView<'a> {
    /// South node (device/driver) name.
    pub node: &'a str,
    /// Group name.
    pub group: &'a str,
    /// Unix epoch milliseconds of the reading.
    pub timestamp_ms: u64,
    /// Tags in group order.
    pub tags: &'a [TagView<'a>],
}

impl SnapshotView<'_> {
    /// An owned copy (allocates: names, strings, arrays, metas).
    pub fn to_snapshot(&self) -> Snapshot {
        Self::owned(self.node, self.group, self.timestamp_ms, self.tags)
    }

    pub(crate) fn owned(
        node: &str,
        group: &str,
        timestamp_ms: u64,
        tags: &[TagView<'_>],
    ) -> Snapshot {
        Snapshot {
            node: node.to_owned(),
            group: group.to_owned(),
            timestamp_ms,
            tags: tags.iter().map(TagView::to_tag).collect(),
        }
    }
}

/// A borrowed tag: see [`Tag`] for the meaning of each field.
#[derive(Debug, Clone)]
pub struct TagView<'a> {
    /// Tag name.
    pub name: &'a str,
    /// The value or the error code.
    pub reading: ReadingView<'a>,
    /// Digits after the decimal point for FLOAT/DOUBLE (0 = Neuron's default).
    pub precision: u8,
    /// Scale factor; 0 means none.
    pub decimal: f64,
    /// Offset added after scaling; 0 means none.
    pub bias: f64,
    /// Driver metadata, in order.
    pub metas: Members<'a>,
}

impl TagView<'_> {
    /// An owned copy.
    pub fn to_tag(&self) -> Tag {
        Tag {
            name: self.name.to_owned(),
            reading: match &self.reading {
                ReadingView::Value(v) => Reading::Value(v.to_value()),
                ReadingView::Error(code) => Reading::Error(*code),
            },
            precision: self.precision,
            decimal: self.decimal,
            bias: self.bias,
            metas: self
                .metas
                .clone()
                .map(|(k, v)| (k.to_owned(), v.to_json()))
                .collect(),
        }
    }
}

impl Tag {
    /// This tag as a view (borrows; copies nothing but the scalars).
    pub fn view(&self) -> TagView<'_> {
        TagView {
            name: &self.name,
            reading: match &self.reading {
                Reading::Value(v) => ReadingView::Value(v.view()),
                Reading::Error(code) => ReadingView::Error(*code),
            },
            precision: self.precision,
            decimal: self.decimal,
            bias: self.bias,
            metas: Members(MembersRepr::Owned(self.metas.iter())),
        }
    }
}

/// A tag's value or its error code, borrowed.
#[derive(Debug, Clone)]
pub enum ReadingView<'a> {
    /// A value read successfully.
    Value(ValueView<'a>),
    /// A Neuron error code.
    Error(i32),
}

macro_rules! value_view {
    ($( $var:ident ( $view:ty ) ),* $(,)?) => {
        /// A borrowed [`Value`]: the same variants, strings as `&str`, arrays as
        /// [`Items`], `CUSTOM` as a [`JsonView`].
        #[derive(Debug, Clone)]
        #[allow(missing_docs)] // each variant is its `Value` namesake
        pub enum ValueView<'a> {
            $( $var($view), )*
        }
    };
}

value_view! {
    Int8(i8), Uint8(u8), Int16(i16), Uint16(u16), Int32(i32), Uint32(u32), Int64(i64),
    Uint64(u64), Float(f32), Double(f64), Bit(bool), Bool(bool), String(&'a str),
    Bytes(Items<'a, u8>), Word(u16), Dword(u32), Lword(u64), Time(&'a str),
    DataAndTime(&'a str), ArrayChar(&'a str), ArrayInt8(Items<'a, i8>),
    ArrayUint8(Items<'a, u8>), ArrayInt16(Items<'a, i16>), ArrayUint16(Items<'a, u16>),
    ArrayInt32(Items<'a, i32>), ArrayUint32(Items<'a, u32>), ArrayInt64(Items<'a, i64>),
    ArrayUint64(Items<'a, u64>), ArrayFloat(Items<'a, f32>), ArrayDouble(Items<'a, f64>),
    ArrayBool(Items<'a, bool>), ArrayString(Strs<'a>), Custom(JsonView<'a>),
}

impl Value {
    /// This value as a view (borrows).
    #[inline]
    pub fn view(&self) -> ValueView<'_> {
        use ValueView as V;
        match self {
            Value::Int8(v) => V::Int8(*v),
            Value::Uint8(v) => V::Uint8(*v),
            Value::Int16(v) => V::Int16(*v),
            Value::Uint16(v) => V::Uint16(*v),
            Value::Int32(v) => V::Int32(*v),
            Value::Uint32(v) => V::Uint32(*v),
            Value::Int64(v) => V::Int64(*v),
            Value::Uint64(v) => V::Uint64(*v),
            Value::Float(v) => V::Float(*v),
            Value::Double(v) => V::Double(*v),
            Value::Bit(v) => V::Bit(*v),
            Value::Bool(v) => V::Bool(*v),
            Value::String(s) => V::String(s),
            Value::Bytes(v) => V::Bytes(Items::slice(v)),
            Value::Word(v) => V::Word(*v),
            Value::Dword(v) => V::Dword(*v),
            Value::Lword(v) => V::Lword(*v),
            Value::Time(s) => V::Time(s),
            Value::DataAndTime(s) => V::DataAndTime(s),
            Value::ArrayChar(s) => V::ArrayChar(s),
            Value::ArrayInt8(v) => V::ArrayInt8(Items::slice(v)),
            Value::ArrayUint8(v) => V::ArrayUint8(Items::slice(v)),
            Value::ArrayInt16(v) => V::ArrayInt16(Items::slice(v)),
            Value::ArrayUint16(v) => V::ArrayUint16(Items::slice(v)),
            Value::ArrayInt32(v) => V::ArrayInt32(Items::slice(v)),
            Value::ArrayUint32(v) => V::ArrayUint32(Items::slice(v)),
            Value::ArrayInt64(v) => V::ArrayInt64(Items::slice(v)),
            Value::ArrayUint64(v) => V::ArrayUint64(Items::slice(v)),
            Value::ArrayFloat(v) => V::ArrayFloat(Items::slice(v)),
            Value::ArrayDouble(v) => V::ArrayDouble(Items::slice(v)),
            Value::ArrayBool(v) => V::ArrayBool(Items::slice(v)),
            Value::ArrayString(v) => V::ArrayString(Strs(StrsRepr::Slice(v))),
            Value::Custom(j) => V::Custom(JsonView(JsonRepr::Owned(j))),
        }
    }
}

impl ValueView<'_> {
    /// The data type this value belongs to.
    pub fn data_type(&self) -> DataType {
        // Spelled once, through the owned type's table, for scalars; cheap for views
        // of arrays too since only the variant matters.
        use ValueView as V;
        match self {
            V::Int8(_) => DataType::Int8,
            V::Uint8(_) => DataType::Uint8,
            V::Int16(_) => DataType::Int16,
            V::Uint16(_) => DataType::Uint16,
            V::Int32(_) => DataType::Int32,
            V::Uint32(_) => DataType::Uint32,
            V::Int64(_) => DataType::Int64,
            V::Uint64(_) => DataType::Uint64,
            V::Float(_) => DataType::Float,
            V::Double(_) => DataType::Double,
            V::Bit(_) => DataType::Bit,
            V::Bool(_) => DataType::Bool,
            V::String(_) => DataType::String,
            V::Bytes(_) => DataType::Bytes,
            V::Word(_) => DataType::Word,
            V::Dword(_) => DataType::Dword,
            V::Lword(_) => DataType::Lword,
            V::Time(_) => DataType::Time,
            V::DataAndTime(_) => DataType::DataAndTime,
            V::ArrayChar(_) => DataType::ArrayChar,
            V::ArrayInt8(_) => DataType::ArrayInt8,
            V::ArrayUint8(_) => DataType::ArrayUint8,
            V::ArrayInt16(_) => DataType::ArrayInt16,
            V::ArrayUint16(_) => DataType::ArrayUint16,
            V::ArrayInt32(_) => DataType::ArrayInt32,
            V::ArrayUint32(_) => DataType::ArrayUint32,
            V::ArrayInt64(_) => DataType::ArrayInt64,
            V::ArrayUint64(_) => DataType::ArrayUint64,
            V::ArrayFloat(_) => DataType::ArrayFloat,
            V::ArrayDouble(_) => DataType::ArrayDouble,
            V::ArrayBool(_) => DataType::ArrayBool,
            V::ArrayString(_) => DataType::ArrayString,
            V::Custom(_) => DataType::Custom,
        }
    }

    /// An owned copy.
    pub fn to_value(&self) -> Value {
        use ValueView as V;
        match self {
            V::Int8(v) => Value::Int8(*v),
            V::Uint8(v) => Value::Uint8(*v),
            V::Int16(v) => Value::Int16(*v),
            V::Uint16(v) => Value::Uint16(*v),
            V::Int32(v) => Value::Int32(*v),
            V::Uint32(v) => Value::Uint32(*v),
            V::Int64(v) => Value::Int64(*v),
            V::Uint64(v) => Value::Uint64(*v),
            V::Float(v) => Value::Float(*v),
            V::Double(v) => Value::Double(*v),
            V::Bit(v) => Value::Bit(*v),
            V::Bool(v) => Value::Bool(*v),
            V::String(s) => Value::String((*s).to_owned()),
            V::Bytes(v) => Value::Bytes(v.iter().collect()),
            V::Word(v) => Value::Word(*v),
            V::Dword(v) => Value::Dword(*v),
            V::Lword(v) => Value::Lword(*v),
            V::Time(s) => Value::Time((*s).to_owned()),
            V::DataAndTime(s) => Value::DataAndTime((*s).to_owned()),
            V::ArrayChar(s) => Value::ArrayChar((*s).to_owned()),
            V::ArrayInt8(v) => Value::ArrayInt8(v.iter().collect()),
            V::ArrayUint8(v) => Value::ArrayUint8(v.iter().collect()),
            V::ArrayInt16(v) => Value::ArrayInt16(v.iter().collect()),
            V::ArrayUint16(v) => Value::ArrayUint16(v.iter().collect()),
            V::ArrayInt32(v) => Value::ArrayInt32(v.iter().collect()),
            V::ArrayUint32(v) => Value::ArrayUint32(v.iter().collect()),
            V::ArrayInt64(v) => Value::ArrayInt64(v.iter().collect()),
            V::ArrayUint64(v) => Value::ArrayUint64(v.iter().collect()),
            V::ArrayFloat(v) => Value::ArrayFloat(v.iter().collect()),
            V::ArrayDouble(v) => Value::ArrayDouble(v.iter().collect()),
            V::ArrayBool(v) => Value::ArrayBool(v.iter().collect()),
            V::ArrayString(v) => Value::ArrayString(v.iter().map(str::to_owned).collect()),
            V::Custom(j) => Value::Custom(j.to_json()),
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A number or boolean element of a typed array ([`Items`]). Sealed: implemented for
/// the integer types, `f32`, `f64` and `bool`.
pub trait Item: Copy + 'static + sealed::Sealed {
    /// The element from a tape node the parser has already checked.
    #[cfg(feature = "parse")]
    #[doc(hidden)]
    fn node(n: &Node<'_>) -> Self;
}

#[cfg(feature = "parse")]
fn node_number(n: &Node<'_>) -> f64 {
    match n {
        Node::Static(StaticNode::F64(v)) => *v,
        Node::Static(StaticNode::I64(v)) => *v as f64,
        Node::Static(StaticNode::U64(v)) => *v as f64,
        Node::String("Infinity") => f64::INFINITY,
        Node::String("-Infinity") => f64::NEG_INFINITY,
        // "NaN" is the only other node the parser lets through for a float.
        _ => f64::NAN,
    }
}

macro_rules! int_item {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Item for $t {
            #[cfg(feature = "parse")]
            #[inline]
            fn node(n: &Node<'_>) -> $t {
                // The parser range-checked every element against this type.
                match n {
                    Node::Static(StaticNode::I64(v)) => *v as $t,
                    Node::Static(StaticNode::U64(v)) => *v as $t,
                    _ => 0,
                }
            }
        }
    )*};
}
int_item!(i8, u8, i16, u16, i32, u32, i64, u64);

impl sealed::Sealed for f32 {}
impl Item for f32 {
    #[cfg(feature = "parse")]
    #[inline]
    fn node(n: &Node<'_>) -> f32 {
        // Rounded through f64 as the parser's range check did (see `float32`).
        node_number(n) as f32
    }
}

impl sealed::Sealed for f64 {}
impl Item for f64 {
    #[cfg(feature = "parse")]
    #[inline]
    fn node(n: &Node<'_>) -> f64 {
        node_number(n)
    }
}

impl sealed::Sealed for bool {}
impl Item for bool {
    #[cfg(feature = "parse")]
    #[inline]
    fn node(n: &Node<'_>) -> bool {
        matches!(n, Node::Static(StaticNode::Bool(true)))
    }
}

/// The elements of a typed array of numbers or booleans: a slice of an owned
/// [`Value`]'s vector, or the parsed input's nodes, read as they are iterated.
#[derive(Clone, Copy)]
pub struct Items<'a, T: Item>(ItemsRepr<'a, T>);

#[derive(Clone, Copy)]
enum ItemsRepr<'a, T: Item> {
    Slice(&'a [T]),
    /// One node per element: the parser accepts only scalar elements.
    #[cfg(feature = "parse")]
    Tape(&'a [Node<'a>]),
}

impl<T: Item + fmt::Debug> fmt::Debug for Items<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, T: Item> Items<'a, T> {
    fn slice(s: &'a [T]) -> Self {
        Items(ItemsRepr::Slice(s))
    }

    #[cfg(feature = "parse")]
    pub(crate) fn tape(nodes: &'a [Node<'a>]) -> Self {
        Items(ItemsRepr::Tape(nodes))
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        match self.0 {
            ItemsRepr::Slice(s) => s.len(),
            #[cfg(feature = "parse")]
            ItemsRepr::Tape(n) => n.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = T> + 'a {
        let (slice, tape) = match self.0 {
            ItemsRepr::Slice(s) => (s, Default::default()),
            #[cfg(feature = "parse")]
            ItemsRepr::Tape(n) => (&[][..], n),
        };
        // Two chained iterators, one of them empty: one loop in the caller for both
        // representations.
        slice.iter().copied().chain(tape_items(tape))
    }
}

/// The elements of an `ARRAY_STRING`: an owned vector's strings, or slices of the
/// parsed input.
#[derive(Clone, Copy)]
pub struct Strs<'a>(StrsRepr<'a>);

#[derive(Clone, Copy)]
enum StrsRepr<'a> {
    Slice(&'a [String]),
    #[cfg(feature = "parse")]
    Tape(&'a [Node<'a>]),
}

impl fmt::Debug for Strs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> Strs<'a> {
    #[cfg(feature = "parse")]
    pub(crate) fn tape(nodes: &'a [Node<'a>]) -> Self {
        Strs(StrsRepr::Tape(nodes))
    }

    /// How many strings.
    pub fn len(&self) -> usize {
        match self.0 {
            StrsRepr::Slice(s) => s.len(),
            #[cfg(feature = "parse")]
            StrsRepr::Tape(n) => n.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The strings, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (slice, tape) = match self.0 {
            StrsRepr::Slice(s) => (s, Default::default()),
            #[cfg(feature = "parse")]
            StrsRepr::Tape(n) => (&[][..], n),
        };
        slice.iter().map(String::as_str).chain(tape_strs(tape))
    }
}

#[cfg(feature = "parse")]
fn tape_items<'a, T: Item>(tape: &'a [Node<'a>]) -> impl Iterator<Item = T> + 'a {
    tape.iter().map(T::node)
}

#[cfg(feature = "parse")]
fn tape_strs<'a>(tape: &'a [Node<'a>]) -> impl Iterator<Item = &'a str> + 'a {
    tape.iter().map(|n| match n {
        Node::String(s) => *s,
        _ => "",
    })
}

#[cfg(not(feature = "parse"))]
fn tape_items<T>(_: ()) -> std::iter::Empty<T> {
    std::iter::empty()
}

#[cfg(not(feature = "parse"))]
fn tape_strs<'a>(_: ()) -> std::iter::Empty<&'a str> {
    std::iter::empty()
}

/// A borrowed JSON value (`CUSTOM` values and metas); read it with [`JsonView::get`].
#[derive(Clone, Copy)]
pub struct JsonView<'a>(JsonRepr<'a>);

#[derive(Clone, Copy)]
enum JsonRepr<'a> {
    Owned(&'a Json),
    /// The value's node followed by its children.
    #[cfg(feature = "parse")]
    Tape(&'a [Node<'a>]),
}

/// One level of a [`JsonView`].
#[derive(Debug, Clone)]
pub enum JsonNode<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    Uint(u64),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// A string.
    String(&'a str),
    /// An array's elements.
    Array(Elements<'a>),
    /// An object's members, in order.
    Object(Members<'a>),
}

impl<'a> JsonView<'a> {
    #[cfg(feature = "parse")]
    pub(crate) fn tape(nodes: &'a [Node<'a>]) -> Self {
        JsonView(JsonRepr::Tape(nodes))
    }

    /// This value's kind and contents.
    pub fn get(self) -> JsonNode<'a> {
        match self.0 {
            JsonRepr::Owned(j) => match j {
                Json::Null => JsonNode::Null,
                Json::Bool(b) => JsonNode::Bool(*b),
                Json::Int(v) => JsonNode::Int(*v),
                Json::Uint(v) => JsonNode::Uint(*v),
                Json::Float(v) => JsonNode::Float(*v),
                Json::String(s) => JsonNode::String(s),
                Json::Array(items) => JsonNode::Array(Elements(ElementsRepr::Owned(items.iter()))),
                Json::Object(m) => JsonNode::Object(Members(MembersRepr::Owned(m.iter()))),
            },
            #[cfg(feature = "parse")]
            JsonRepr::Tape(nodes) => match nodes.first() {
                Some(Node::String(s)) => JsonNode::String(s),
                Some(Node::Static(StaticNode::Bool(b))) => JsonNode::Bool(*b),
                Some(Node::Static(StaticNode::I64(v))) => JsonNode::Int(*v),
                Some(Node::Static(StaticNode::U64(v))) => match i64::try_from(*v) {
                    Ok(v) => JsonNode::Int(v),
                    Err(_) => JsonNode::Uint(*v),
                },
                Some(Node::Static(StaticNode::F64(v))) => JsonNode::Float(*v),
                Some(&Node::Array { len, count }) => JsonNode::Array(Elements(ElementsRepr::Tape(
                    TapeWalk::new(&nodes[1..=count], len),
                ))),
                Some(&Node::Object { len, count }) => JsonNode::Object(Members(MembersRepr::Tape(
                    TapeWalk::new(&nodes[1..=count], len),
                ))),
                _ => JsonNode::Null,
            },
        }
    }

    /// An owned copy.
    pub fn to_json(self) -> Json {
        match self.get() {
            JsonNode::Null => Json::Null,
            JsonNode::Bool(b) => Json::Bool(b),
            JsonNode::Int(v) => Json::Int(v),
            JsonNode::Uint(v) => Json::from(v),
            JsonNode::Float(v) => Json::Float(v),
            JsonNode::String(s) => Json::String(s.to_owned()),
            JsonNode::Array(items) => Json::Array(items.map(JsonView::to_json).collect()),
            JsonNode::Object(m) => {
                Json::Object(m.map(|(k, v)| (k.to_owned(), v.to_json())).collect())
            }
        }
    }
}

impl fmt::Debug for JsonView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_json(), f)
    }
}

/// Walks `left` sibling values of a tape slice, each with its children.
#[cfg(feature = "parse")]
#[derive(Clone)]
struct TapeWalk<'a> {
    nodes: &'a [Node<'a>],
    left: usize,
}

#[cfg(feature = "parse")]
impl<'a> TapeWalk<'a> {
    fn new(nodes: &'a [Node<'a>], left: usize) -> Self {
        TapeWalk { nodes, left }
    }

    /// The next value with its children.
    fn next_value(&mut self) -> Option<&'a [Node<'a>]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let end = match self.nodes.first()? {
            Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
            _ => 1,
        };
        let (value, rest) = self.nodes.split_at(end.min(self.nodes.len()));
        self.nodes = rest;
        Some(value)
    }
}

/// The elements of a JSON array, as [`JsonView`]s.
#[derive(Clone)]
pub struct Elements<'a>(ElementsRepr<'a>);

#[derive(Clone)]
enum ElementsRepr<'a> {
    Owned(std::slice::Iter<'a, Json>),
    #[cfg(feature = "parse")]
    Tape(TapeWalk<'a>),
}

impl<'a> Iterator for Elements<'a> {
    type Item = JsonView<'a>;

    fn next(&mut self) -> Option<JsonView<'a>> {
        match &mut self.0 {
            ElementsRepr::Owned(it) => it.next().map(|j| JsonView(JsonRepr::Owned(j))),
            #[cfg(feature = "parse")]
            ElementsRepr::Tape(w) => w.next_value().map(JsonView::tape),
        }
    }
}

impl fmt::Debug for Elements<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// The members of a JSON object (a tag's metas, an object in a `CUSTOM` value), in
/// order, as (key, value).
#[derive(Clone)]
pub struct Members<'a>(MembersRepr<'a>);

#[derive(Clone)]
enum MembersRepr<'a> {
    Owned(std::slice::Iter<'a, (String, Json)>),
    #[cfg(feature = "parse")]
    Tape(TapeWalk<'a>),
}

impl<'a> Members<'a> {
    /// No members.
    pub fn empty() -> Self {
        Members(MembersRepr::Owned([].iter()))
    }

    #[cfg(feature = "parse")]
    pub(crate) fn tape(object: &'a [Node<'a>]) -> Self {
        match object.first() {
            Some(&Node::Object { len, count }) => {
                Members(MembersRepr::Tape(TapeWalk::new(&object[1..=count], len)))
            }
            _ => Self::empty(),
        }
    }

    /// How many members are left.
    pub fn len(&self) -> usize {
        match &self.0 {
            MembersRepr::Owned(it) => it.len(),
            #[cfg(feature = "parse")]
            MembersRepr::Tape(w) => w.left,
        }
    }

    /// Whether none are left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, JsonView<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            MembersRepr::Owned(it) => it
                .next()
                .map(|(k, v)| (k.as_str(), JsonView(JsonRepr::Owned(v)))),
            #[cfg(feature = "parse")]
            MembersRepr::Tape(w) => {
                let key = match w.next_value()?.first()? {
                    Node::String(k) => *k,
                    _ => return None,
                };
                // A key counts as one of `left`; the pair is one member.
                w.left += 1;
                Some((key, JsonView::tape(w.next_value()?)))
            }
        }
    }
}

impl fmt::Debug for Members<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.clone()).finish()
    }
}
