//! Typed values, JSON values, tags and snapshots.

use crate::types::DataType;

/// An order-preserving JSON value: the payload of `CUSTOM` tags and of metas.
///
/// Object members keep their input order and numbers keep their input kind
/// (`1` stays an integer, `1.0` stays a real), because the encoders re-emit them as
/// Neuron does.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    Uint(u64),
    /// A number written with a fraction or an exponent. Encoders write a non-finite
    /// value (only a library caller can build one) as `null`, since JSON has no
    /// spelling for it.
    Float(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object; members in order, keys as given.
    Object(Vec<(String, Json)>),
}

impl From<bool> for Json {
    fn from(v: bool) -> Self {
        Json::Bool(v)
    }
}
impl From<i64> for Json {
    fn from(v: i64) -> Self {
        Json::Int(v)
    }
}
impl From<i32> for Json {
    fn from(v: i32) -> Self {
        Json::Int(v.into())
    }
}
impl From<u64> for Json {
    fn from(v: u64) -> Self {
        // Keep small unsigned numbers in `Int` so equal numbers compare equal.
        i64::try_from(v).map_or(Json::Uint(v), Json::Int)
    }
}
impl From<f64> for Json {
    fn from(v: f64) -> Self {
        Json::Float(v)
    }
}
impl From<&str> for Json {
    fn from(v: &str) -> Self {
        Json::String(v.to_owned())
    }
}
impl From<String> for Json {
    fn from(v: String) -> Self {
        Json::String(v)
    }
}

/// A typed tag value: one variant per [`DataType`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `INT8`.
    Int8(i8),
    /// `UINT8`.
    Uint8(u8),
    /// `INT16`.
    Int16(i16),
    /// `UINT16`.
    Uint16(u16),
    /// `INT32`.
    Int32(i32),
    /// `UINT32`.
    Uint32(u32),
    /// `INT64`.
    Int64(i64),
    /// `UINT64`.
    Uint64(u64),
    /// `FLOAT`. May be NaN or infinite: encoders turn that into error 3008.
    Float(f32),
    /// `DOUBLE`. May be NaN or infinite: encoders turn that into error 3008.
    Double(f64),
    /// `BIT`, sent as `0`/`1`.
    Bit(bool),
    /// `BOOL`, sent as `true`/`false`.
    Bool(bool),
    /// `STRING`.
    String(String),
    /// `BYTES`, sent as an array of integers.
    Bytes(Vec<u8>),
    /// `WORD`.
    Word(u16),
    /// `DWORD`.
    Dword(u32),
    /// `LWORD`.
    Lword(u64),
    /// `TIME`, already formatted.
    Time(String),
    /// `DATA_AND_TIME`, already formatted.
    DataAndTime(String),
    /// `ARRAY_CHAR`, sent as a string.
    ArrayChar(String),
    /// `ARRAY_INT8`.
    ArrayInt8(Vec<i8>),
    /// `ARRAY_UINT8`.
    ArrayUint8(Vec<u8>),
    /// `ARRAY_INT16`.
    ArrayInt16(Vec<i16>),
    /// `ARRAY_UINT16`.
    ArrayUint16(Vec<u16>),
    /// `ARRAY_INT32`.
    ArrayInt32(Vec<i32>),
    /// `ARRAY_UINT32`.
    ArrayUint32(Vec<u32>),
    /// `ARRAY_INT64`.
    ArrayInt64(Vec<i64>),
    /// `ARRAY_UINT64`.
    ArrayUint64(Vec<u64>),
    /// `ARRAY_FLOAT`. Non-finite elements are written as `null`.
    ArrayFloat(Vec<f32>),
    /// `ARRAY_DOUBLE`. Non-finite elements are written as `null`.
    ArrayDouble(Vec<f64>),
    /// `ARRAY_BOOL`.
    ArrayBool(Vec<bool>),
    /// `ARRAY_STRING`.
    ArrayString(Vec<String>),
    /// `CUSTOM`: any JSON value.
    Custom(Json),
}

impl Value {
    /// The data type this value belongs to.
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Int8(_) => DataType::Int8,
            Value::Uint8(_) => DataType::Uint8,
            Value::Int16(_) => DataType::Int16,
            Value::Uint16(_) => DataType::Uint16,
            Value::Int32(_) => DataType::Int32,
            Value::Uint32(_) => DataType::Uint32,
            Value::Int64(_) => DataType::Int64,
            Value::Uint64(_) => DataType::Uint64,
            Value::Float(_) => DataType::Float,
            Value::Double(_) => DataType::Double,
            Value::Bit(_) => DataType::Bit,
            Value::Bool(_) => DataType::Bool,
            Value::String(_) => DataType::String,
            Value::Bytes(_) => DataType::Bytes,
            Value::Word(_) => DataType::Word,
            Value::Dword(_) => DataType::Dword,
            Value::Lword(_) => DataType::Lword,
            Value::Time(_) => DataType::Time,
            Value::DataAndTime(_) => DataType::DataAndTime,
            Value::ArrayChar(_) => DataType::ArrayChar,
            Value::ArrayInt8(_) => DataType::ArrayInt8,
            Value::ArrayUint8(_) => DataType::ArrayUint8,
            Value::ArrayInt16(_) => DataType::ArrayInt16,
            Value::ArrayUint16(_) => DataType::ArrayUint16,
            Value::ArrayInt32(_) => DataType::ArrayInt32,
            Value::ArrayUint32(_) => DataType::ArrayUint32,
            Value::ArrayInt64(_) => DataType::ArrayInt64,
            Value::ArrayUint64(_) => DataType::ArrayUint64,
            Value::ArrayFloat(_) => DataType::ArrayFloat,
            Value::ArrayDouble(_) => DataType::ArrayDouble,
            Value::ArrayBool(_) => DataType::ArrayBool,
            Value::ArrayString(_) => DataType::ArrayString,
            Value::Custom(_) => DataType::Custom,
        }
    }
}

/// What a tag carries: a value, or the error code the driver reported instead.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// A value read successfully.
    Value(Value),
    /// A Neuron error code (see [`crate::error_code`]); any `i32` passes through.
    Error(i32),
}

/// One tag of a group snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    /// Tag name; unique within its snapshot.
    pub name: String,
    /// The value or the error.
    pub reading: Reading,
    /// Digits after the decimal point for FLOAT/DOUBLE (0–17; 0 means "Neuron's
    /// default rendering"). Ignored by other types.
    pub precision: u8,
    /// Scale factor; 0 means none. Applied to the integer types INT8…UINT64, FLOAT and
    /// DOUBLE (the value becomes `raw × decimal + bias`).
    pub decimal: f64,
    /// Offset added after scaling; 0 means none.
    pub bias: f64,
    /// Driver metadata, in order.
    pub metas: Vec<(String, Json)>,
}

impl Tag {
    /// A tag with a value, no precision, no scaling, no metas.
    pub fn value(name: impl Into<String>, v: Value) -> Tag {
        Tag {
            name: name.into(),
            reading: Reading::Value(v),
            precision: 0,
            decimal: 0.0,
            bias: 0.0,
            metas: Vec::new(),
        }
    }

    /// A tag that carries the error `code` instead of a value.
    pub fn error(name: impl Into<String>, code: i32) -> Tag {
        Tag {
            name: name.into(),
            reading: Reading::Error(code),
            precision: 0,
            decimal: 0.0,
            bias: 0.0,
            metas: Vec::new(),
        }
    }

    /// Sets the precision (digits after the decimal point for FLOAT/DOUBLE).
    ///
    /// Values above [`MAX_PRECISION`](crate::MAX_PRECISION) are clamped to it, the
    /// largest precision Neuron accepts.
    #[must_use]
    pub fn with_precision(mut self, precision: u8) -> Tag {
        self.precision = precision.min(crate::MAX_PRECISION);
        self
    }

    /// Sets the scaling: the value becomes `raw × decimal + bias` (decimal 0 means 1).
    #[must_use]
    pub fn with_scaling(mut self, decimal: f64, bias: f64) -> Tag {
        self.decimal = decimal;
        self.bias = bias;
        self
    }

    /// Appends one meta entry.
    #[must_use]
    pub fn with_meta(mut self, key: impl Into<String>, value: impl Into<Json>) -> Tag {
        self.metas.push((key.into(), value.into()));
        self
    }

    /// The value, or `None` for an error tag.
    pub fn value_ref(&self) -> Option<&Value> {
        match &self.reading {
            Reading::Value(v) => Some(v),
            Reading::Error(_) => None,
        }
    }
}

/// The values of one group's tags, read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// South node (device/driver) name.
    pub node: String,
    /// Group name.
    pub group: String,
    /// Unix epoch milliseconds of the reading.
    pub timestamp_ms: u64,
    /// Tags in group order; the order is kept in the output.
    pub tags: Vec<Tag>,
}

impl Snapshot {
    /// An empty snapshot of `node`/`group` taken at `timestamp_ms`.
    pub fn new(node: impl Into<String>, group: impl Into<String>, timestamp_ms: u64) -> Self {
        Snapshot {
            node: node.into(),
            group: group.into(),
            timestamp_ms,
            tags: Vec::new(),
        }
    }

    /// Appends a tag.
    #[must_use]
    pub fn with_tag(mut self, tag: Tag) -> Self {
        self.tags.push(tag);
        self
    }
}
