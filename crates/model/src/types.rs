//! Neuron data types and their codes.

use std::fmt;

/// A Neuron data type, with Neuron's numeric code as discriminant.
///
/// The codes and upper-case names are those of Neuron's `neu_type_e`, so a tag
/// definition exported from Neuron maps over unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DataType {
    /// Signed 8-bit integer (`INT8`, code 1).
    Int8 = 1,
    /// Unsigned 8-bit integer (`UINT8`, code 2).
    Uint8 = 2,
    /// Signed 16-bit integer (`INT16`, code 3).
    Int16 = 3,
    /// Unsigned 16-bit integer (`UINT16`, code 4).
    Uint16 = 4,
    /// Signed 32-bit integer (`INT32`, code 5).
    Int32 = 5,
    /// Unsigned 32-bit integer (`UINT32`, code 6).
    Uint32 = 6,
    /// Signed 64-bit integer (`INT64`, code 7).
    Int64 = 7,
    /// Unsigned 64-bit integer (`UINT64`, code 8).
    Uint64 = 8,
    /// 32-bit IEEE float (`FLOAT`, code 9).
    Float = 9,
    /// 64-bit IEEE float (`DOUBLE`, code 10).
    Double = 10,
    /// A single bit, sent as `0`/`1` (`BIT`, code 11).
    Bit = 11,
    /// A boolean, sent as `true`/`false` (`BOOL`, code 12).
    Bool = 12,
    /// A UTF-8 string (`STRING`, code 13).
    String = 13,
    /// Raw bytes, sent as an array of integers (`BYTES`, code 14).
    Bytes = 14,
    /// Unsigned 16-bit word (`WORD`, code 16).
    Word = 16,
    /// Unsigned 32-bit double word (`DWORD`, code 17).
    Dword = 17,
    /// Unsigned 64-bit long word (`LWORD`, code 18).
    Lword = 18,
    /// A time of day already formatted by the driver (`TIME`, code 20).
    Time = 20,
    /// A date and time already formatted by the driver (`DATA_AND_TIME`, code 21;
    /// Neuron's spelling).
    DataAndTime = 21,
    /// A character array, sent as a string (`ARRAY_CHAR`, code 22).
    ArrayChar = 22,
    /// Array of `INT8` (`ARRAY_INT8`, code 23).
    ArrayInt8 = 23,
    /// Array of `UINT8` (`ARRAY_UINT8`, code 24).
    ArrayUint8 = 24,
    /// Array of `INT16` (`ARRAY_INT16`, code 25).
    ArrayInt16 = 25,
    /// Array of `UINT16` (`ARRAY_UINT16`, code 26).
    ArrayUint16 = 26,
    /// Array of `INT32` (`ARRAY_INT32`, code 27).
    ArrayInt32 = 27,
    /// Array of `UINT32` (`ARRAY_UINT32`, code 28).
    ArrayUint32 = 28,
    /// Array of `INT64` (`ARRAY_INT64`, code 29).
    ArrayInt64 = 29,
    /// Array of `UINT64` (`ARRAY_UINT64`, code 30).
    ArrayUint64 = 30,
    /// Array of `FLOAT` (`ARRAY_FLOAT`, code 31).
    ArrayFloat = 31,
    /// Array of `DOUBLE` (`ARRAY_DOUBLE`, code 32).
    ArrayDouble = 32,
    /// Array of `BOOL` (`ARRAY_BOOL`, code 33).
    ArrayBool = 33,
    /// Array of `STRING` (`ARRAY_STRING`, code 34).
    ArrayString = 34,
    /// Any JSON value, embedded as is (`CUSTOM`, code 40).
    Custom = 40,
}

impl DataType {
    /// Every data type, in code order.
    pub const ALL: [DataType; 33] = [
        DataType::Int8,
        DataType::Uint8,
        DataType::Int16,
        DataType::Uint16,
        DataType::Int32,
        DataType::Uint32,
        DataType::Int64,
        DataType::Uint64,
        DataType::Float,
        DataType::Double,
        DataType::Bit,
        DataType::Bool,
        DataType::String,
        DataType::Bytes,
        DataType::Word,
        DataType::Dword,
        DataType::Lword,
        DataType::Time,
        DataType::DataAndTime,
        DataType::ArrayChar,
        DataType::ArrayInt8,
        DataType::ArrayUint8,
        DataType::ArrayInt16,
        DataType::ArrayUint16,
        DataType::ArrayInt32,
        DataType::ArrayUint32,
        DataType::ArrayInt64,
        DataType::ArrayUint64,
        DataType::ArrayFloat,
        DataType::ArrayDouble,
        DataType::ArrayBool,
        DataType::ArrayString,
        DataType::Custom,
    ];

    /// Neuron's numeric code for this type.
    #[inline]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Neuron's upper-case name for this type (`"INT8"`, `"DATA_AND_TIME"`, …).
    pub fn name(self) -> &'static str {
        match self {
            DataType::Int8 => "INT8",
            DataType::Uint8 => "UINT8",
            DataType::Int16 => "INT16",
            DataType::Uint16 => "UINT16",
            DataType::Int32 => "INT32",
            DataType::Uint32 => "UINT32",
            DataType::Int64 => "INT64",
            DataType::Uint64 => "UINT64",
            DataType::Float => "FLOAT",
            DataType::Double => "DOUBLE",
            DataType::Bit => "BIT",
            DataType::Bool => "BOOL",
            DataType::String => "STRING",
            DataType::Bytes => "BYTES",
            DataType::Word => "WORD",
            DataType::Dword => "DWORD",
            DataType::Lword => "LWORD",
            DataType::Time => "TIME",
            DataType::DataAndTime => "DATA_AND_TIME",
            DataType::ArrayChar => "ARRAY_CHAR",
            DataType::ArrayInt8 => "ARRAY_INT8",
            DataType::ArrayUint8 => "ARRAY_UINT8",
            DataType::ArrayInt16 => "ARRAY_INT16",
            DataType::ArrayUint16 => "ARRAY_UINT16",
            DataType::ArrayInt32 => "ARRAY_INT32",
            DataType::ArrayUint32 => "ARRAY_UINT32",
            DataType::ArrayInt64 => "ARRAY_INT64",
            DataType::ArrayUint64 => "ARRAY_UINT64",
            DataType::ArrayFloat => "ARRAY_FLOAT",
            DataType::ArrayDouble => "ARRAY_DOUBLE",
            DataType::ArrayBool => "ARRAY_BOOL",
            DataType::ArrayString => "ARRAY_STRING",
            DataType::Custom => "CUSTOM",
        }
    }

    /// The type with Neuron code `code`, or `None` for a code Neuron does not define
    /// (0, 15, 19, 35–39, above 40).
    pub fn from_code(code: u8) -> Option<Self> {
        // ALL is sorted by code, so a binary search is exact and needs no second table.
        Self::ALL
            .binary_search_by_key(&code, |t| t.code())
            .ok()
            .map(|i| Self::ALL[i])
    }

    /// The type named `name`; ASCII case is ignored (`"float"` is `FLOAT`).
    pub fn from_name(name: &str) -> Option<Self> {
        // Exact (upper-case) names first: one `match` on the string, which is what
        // nearly every input uses; other spellings take the case-insensitive scan.
        let exact = match name {
            "INT8" => DataType::Int8,
            "UINT8" => DataType::Uint8,
            "INT16" => DataType::Int16,
            "UINT16" => DataType::Uint16,
            "INT32" => DataType::Int32,
            "UINT32" => DataType::Uint32,
            "INT64" => DataType::Int64,
            "UINT64" => DataType::Uint64,
            "FLOAT" => DataType::Float,
            "DOUBLE" => DataType::Double,
            "BIT" => DataType::Bit,
            "BOOL" => DataType::Bool,
            "STRING" => DataType::String,
            "BYTES" => DataType::Bytes,
            "WORD" => DataType::Word,
            "DWORD" => DataType::Dword,
            "LWORD" => DataType::Lword,
            "TIME" => DataType::Time,
            "DATA_AND_TIME" => DataType::DataAndTime,
            "CUSTOM" => DataType::Custom,
            _ => {
                return Self::ALL
                    .iter()
                    .copied()
                    .find(|t| t.name().eq_ignore_ascii_case(name))
            }
        };
        Some(exact)
    }

    /// True for the integer scalars INT8…UINT64 (not WORD/DWORD/LWORD, which Neuron
    /// never scales).
    pub fn is_scalable_integer(self) -> bool {
        (1..=8).contains(&self.code())
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for t in DataType::ALL {
            assert_eq!(DataType::from_code(t.code()), Some(t));
            assert_eq!(DataType::from_name(t.name()), Some(t));
            assert_eq!(DataType::from_name(&t.name().to_ascii_lowercase()), Some(t));
        }
        for code in [0u8, 15, 19, 35, 39, 41, 255] {
            assert_eq!(DataType::from_code(code), None, "code {code}");
        }
        assert_eq!(DataType::from_name("DATE_AND_TIME"), None);
        assert_eq!(DataType::DataAndTime.name(), "DATA_AND_TIME");
        assert_eq!(DataType::ArrayUint8.code(), 24);
    }
}
