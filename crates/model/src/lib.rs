//! # tagwire-model
//!
//! The data of an EMQ Neuron style "group snapshot": the values of one group's tags
//! read at one moment, with Neuron's data types, codes and error codes, and the parser
//! for the snapshot JSON that tagwire accepts (feature `parse`, on by default; its rules
//! are on [`parse_snapshot`]). Without the feature the crate has no dependencies.
//!
//! Two shapes of the same data: the owned [`Snapshot`] (build it in code, keep it,
//! send it between tasks) and the borrowed [`SnapshotView`] that a reused [`Parser`]
//! returns without copying the input; [`Tag::view`] turns an owned tag into a view.
//!
//! No I/O and no async runtime: this crate is the vocabulary shared by the encoder,
//! the pipeline and anyone building their own gateway.
//!
//! ## Example
//!
//! Build a snapshot in code, or parse one from JSON:
//!
//! ```
//! use tagwire_model::{parse_snapshot, DataType, Reading, Snapshot, Tag, Value, error_code};
//!
//! let built = Snapshot::new("modbus", "grp", 1_650_006_388_943)
//!     .with_tag(Tag::value("tag0", Value::Int16(123)))
//!     .with_tag(Tag::value("temp", Value::Float(21.5)).with_precision(1))
//!     .with_tag(Tag::value("m", Value::Int8(5)).with_meta("unit", "C"))
//!     .with_tag(Tag::error("tag1", error_code::PLUGIN_DISCONNECTED));
//!
//! let mut json = br#"{"node": "modbus", "group": "grp", "timestamp": 1650006388943,
//!   "tags": [
//!     {"name": "tag0", "type": "INT16", "value": 123},
//!     {"name": "temp", "type": "FLOAT", "value": 21.5, "precision": 1},
//!     {"name": "m", "type": 1, "value": 5, "metas": {"unit": "C"}},
//!     {"name": "tag1", "error": 3002}
//!   ]}"#.to_vec();
//! let parsed = parse_snapshot(&mut json, 0).unwrap();
//! assert_eq!(parsed, built);
//! assert_eq!(parsed.tags[1].value_ref().unwrap().data_type(), DataType::Float);
//! assert_eq!(parsed.tags[3].reading, Reading::Error(3002));
//!
//! // Bad input is rejected with the tag and field named:
//! let mut bad = br#"{"node": "n", "group": "g", "tags": [
//!     {"name": "temp", "type": "FLOAT", "value": "hot"}]}"#.to_vec();
//! let err = parse_snapshot(&mut bad, 0).unwrap_err();
//! assert_eq!(err.tag(), Some("temp"));
//! assert_eq!(err.field(), Some("value"));
//! assert!(err.to_string().starts_with(
//!     r#"snapshot 1, tag "temp", field "value": expected a number for FLOAT, got a string"#));
//! ```
#![deny(missing_docs)]

#[cfg(feature = "parse")]
mod cost;
#[cfg(feature = "parse")]
mod escapes;
#[cfg(feature = "parse")]
mod parse;
mod types;
mod value;
mod view;

#[cfg(feature = "parse")]
pub use cost::parse_memory_estimate;
#[cfg(feature = "parse")]
pub use parse::{parse_snapshot, parse_snapshots, Parser, Position, SnapshotError, MAX_DEPTH};
pub use types::DataType;
pub use value::{Json, Reading, Snapshot, Tag, Value};
pub use view::{
    Elements, Item, Items, JsonNode, JsonView, Members, ReadingView, SnapshotView, Strs, TagView,
    ValueView,
};

/// The largest `precision` a tag may have (Neuron's limit).
pub const MAX_PRECISION: u8 = 17;

/// Neuron's error codes for tags (`neu_err_code_e`, plugin range 3000–3018).
///
/// Tags may carry any `i32`; these are the codes Neuron's drivers use, named as in
/// Neuron without the `NEU_ERR_` prefix.
pub mod error_code {
    /// 3000: the driver failed to read the tag.
    pub const PLUGIN_READ_FAILURE: i32 = 3000;
    /// 3001: the driver failed to write the tag.
    pub const PLUGIN_WRITE_FAILURE: i32 = 3001;
    /// 3002: the device is disconnected.
    pub const PLUGIN_DISCONNECTED: i32 = 3002;
    /// 3003: the tag may not be read.
    pub const PLUGIN_TAG_NOT_ALLOW_READ: i32 = 3003;
    /// 3004: the tag may not be written.
    pub const PLUGIN_TAG_NOT_ALLOW_WRITE: i32 = 3004;
    /// 3007: the value does not match the tag's type.
    pub const PLUGIN_TAG_TYPE_MISMATCH: i32 = 3007;
    /// 3008: the value expired, or is not a finite number. Encoders report a NaN or
    /// infinite FLOAT/DOUBLE with this code, as Neuron does for NaN.
    pub const PLUGIN_TAG_VALUE_EXPIRED: i32 = 3008;
    /// 3008 under the name this project uses where it means "not finite".
    pub const TAG_VALUE_NOT_FINITE: i32 = PLUGIN_TAG_VALUE_EXPIRED;
    /// 3009: the device's answer could not be decoded.
    pub const PLUGIN_PROTOCOL_DECODE_FAILURE: i32 = 3009;
    /// 3010: the driver is not running.
    pub const PLUGIN_NOT_RUNNING: i32 = 3010;
    /// 3011: the tag has not been read yet.
    pub const PLUGIN_TAG_NOT_READY: i32 = 3011;
    /// 3012: a packet arrived out of order.
    pub const PLUGIN_PACKET_OUT_OF_ORDER: i32 = 3012;
    /// 3013: a name is too long.
    pub const PLUGIN_NAME_TOO_LONG: i32 = 3013;
    /// 3014: the plugin was not found.
    pub const PLUGIN_NOT_FOUND: i32 = 3014;
    /// 3015: the device does not respond.
    pub const PLUGIN_DEVICE_NOT_RESPONSE: i32 = 3015;
    /// 3016: the plugin does not support templates.
    pub const PLUGIN_NOT_SUPPORT_TEMPLATE: i32 = 3016;
    /// 3017: the plugin does not support writing several tags.
    pub const PLUGIN_NOT_SUPPORT_WRITE_TAGS: i32 = 3017;
    /// 3018: the plugin does not support synchronous reads.
    pub const PLUGIN_NOT_SUPPORT_READ_SYNC: i32 = 3018;
}
