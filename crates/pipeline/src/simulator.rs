//! The built-in `simulator` source: groups of generated tags, reported on a timer.
//!
//! It exists so that a setup can be tried, demonstrated and tested without a PLC. Every
//! group has a first tag named `counter` (UINT64) that rises by exactly 1 with each
//! report, starting at 1, so a receiver can see any gap. The other tags cycle through
//! every Neuron data type; some change with each report, some stay put, and now and then
//! one reports an error code instead of a value, as a flaky device would.

use std::time::Duration;

use tagwire_model::{DataType, Json, Snapshot, Tag, Value};

/// The name of the gap-detecting tag every simulated group starts with.
pub const COUNTER_TAG: &str = "counter";

/// Every `ERROR_EVERY`-th report, one tag reports an error instead of a value.
const ERROR_EVERY: u64 = 10;

/// The Neuron error code simulated tags report (Neuron's "device disconnected").
pub const SIMULATED_ERROR: i32 = 3002;

/// One simulated group.
#[derive(Clone, Debug, PartialEq)]
pub struct SimGroup {
    /// Group name.
    pub name: String,
    /// Time between reports.
    pub interval: Duration,
    /// Generated tags besides `counter`.
    pub tags: usize,
}

impl SimGroup {
    /// The group a simulator without configured groups reports: one tag of every data
    /// type, once a second.
    pub fn default_group() -> Self {
        Self {
            name: "default".into(),
            interval: Duration::from_secs(1),
            tags: DataType::ALL.len(),
        }
    }
}

/// Generates the snapshots of one simulated group.
#[derive(Clone, Debug)]
pub struct GroupGenerator {
    node: String,
    group: SimGroup,
    reports: u64,
    /// The generated tags' names, formatted once: formatting them per report was a
    /// tenth of the daemon's CPU at 5,000 reports/s.
    names: Vec<String>,
}

impl GroupGenerator {
    /// A generator for `group` of south node `node`; the first report has `counter = 1`.
    pub fn new(node: impl Into<String>, group: SimGroup) -> Self {
        let names = (0..group.tags)
            .map(|i| {
                let ty = DataType::ALL[i % DataType::ALL.len()];
                format!("{}_{}", ty.name().to_ascii_lowercase(), i)
            })
            .collect();
        Self {
            node: node.into(),
            group,
            reports: 0,
            names,
        }
    }

    /// The group this generator reports.
    pub fn group(&self) -> &SimGroup {
        &self.group
    }

    /// How many reports were made so far.
    pub fn reports(&self) -> u64 {
        self.reports
    }

    /// The next report, stamped `timestamp_ms`.
    pub fn next_snapshot(&mut self, timestamp_ms: u64) -> Snapshot {
        self.reports += 1;
        let n = self.reports;
        let mut tags = Vec::with_capacity(self.group.tags + 1);
        tags.push(Tag::value(COUNTER_TAG, Value::Uint64(n)));
        let erroring = (n.is_multiple_of(ERROR_EVERY) && self.group.tags > 0)
            .then(|| (n / ERROR_EVERY) as usize % self.group.tags);
        for (i, name) in self.names.iter().enumerate() {
            let ty = DataType::ALL[i % DataType::ALL.len()];
            let name = name.clone();
            let tag = if erroring == Some(i) {
                Tag::error(name, SIMULATED_ERROR)
            } else {
                simulated_tag(name, ty, n, i)
            };
            tags.push(tag);
        }
        Snapshot {
            node: self.node.clone(),
            group: self.group.name.clone(),
            timestamp_ms,
            tags,
        }
    }
}

/// A plausible value of type `ty` for report `n` of tag number `i`. Even-numbered tags
/// change with every report; odd-numbered ones hold still, as most real tags do.
fn simulated_tag(name: String, ty: DataType, n: u64, i: usize) -> Tag {
    let k = if i.is_multiple_of(2) { n } else { 1 } + i as u64;
    let wave = (k as f64 * 0.1).sin();
    let value = match ty {
        DataType::Int8 => Value::Int8((k % 256) as u8 as i8),
        DataType::Uint8 => Value::Uint8((k % 256) as u8),
        DataType::Int16 => Value::Int16((k % 65536) as u16 as i16),
        DataType::Uint16 => Value::Uint16((k % 65536) as u16),
        DataType::Int32 => Value::Int32(-(k as i32)),
        DataType::Uint32 => Value::Uint32(k as u32),
        DataType::Int64 => Value::Int64(-(k as i64) * 1_000_000_007),
        DataType::Uint64 => Value::Uint64(k.wrapping_mul(1_000_000_007)),
        DataType::Float => Value::Float(20.0 + 5.0 * wave as f32),
        DataType::Double => Value::Double(1013.25 + 10.0 * wave),
        DataType::Bit => Value::Bit(k % 2 == 1),
        DataType::Bool => Value::Bool(k.is_multiple_of(3)),
        DataType::String => Value::String(format!("state-{}", k % 5)),
        DataType::Bytes => Value::Bytes(vec![(k % 256) as u8, 0x55, 0xAA]),
        DataType::Word => Value::Word((k % 65536) as u16),
        DataType::Dword => Value::Dword(k as u32 ^ 0xDEAD_0000),
        DataType::Lword => Value::Lword(k << 20),
        DataType::Time => Value::Time(format!(
            "{:02}:{:02}:{:02}",
            k / 3600 % 24,
            k / 60 % 60,
            k % 60
        )),
        DataType::DataAndTime => Value::DataAndTime(format!("2026-01-01 00:00:{:02}", k % 60)),
        DataType::ArrayChar => Value::ArrayChar(format!("chars{}", k % 10)),
        DataType::ArrayInt8 => Value::ArrayInt8(vec![-1, (k % 100) as i8]),
        DataType::ArrayUint8 => Value::ArrayUint8(vec![1, (k % 200) as u8]),
        DataType::ArrayInt16 => Value::ArrayInt16(vec![-300, (k % 1000) as i16]),
        DataType::ArrayUint16 => Value::ArrayUint16(vec![300, (k % 1000) as u16]),
        DataType::ArrayInt32 => Value::ArrayInt32(vec![-70_000, k as i32]),
        DataType::ArrayUint32 => Value::ArrayUint32(vec![70_000, k as u32]),
        DataType::ArrayInt64 => Value::ArrayInt64(vec![i64::MIN, k as i64]),
        DataType::ArrayUint64 => Value::ArrayUint64(vec![u64::MAX, k]),
        DataType::ArrayFloat => Value::ArrayFloat(vec![1.5, wave as f32]),
        DataType::ArrayDouble => Value::ArrayDouble(vec![0.25, wave]),
        DataType::ArrayBool => Value::ArrayBool(vec![true, k.is_multiple_of(2)]),
        DataType::ArrayString => Value::ArrayString(vec!["on".into(), format!("s{}", k % 3)]),
        DataType::Custom => Value::Custom(Json::Object(vec![
            ("seq".into(), Json::Uint(k)),
            ("ok".into(), Json::Bool(true)),
        ])),
    };
    let tag = Tag::value(name, value);
    match ty {
        // Show the tag options a real driver sets, so the demo exercises them.
        DataType::Float => tag.with_precision(2),
        DataType::Uint16 => tag.with_scaling(0.1, 0.0),
        DataType::Int16 => tag.with_meta("unit", Json::String("°C".into())),
        _ => tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_rises_by_one_from_one_and_every_type_appears() {
        let mut g = GroupGenerator::new("sim", SimGroup::default_group());
        for want in 1..=25u64 {
            let s = g.next_snapshot(want);
            assert_eq!(s.tags[0].name, COUNTER_TAG);
            match &s.tags[0].reading {
                tagwire_model::Reading::Value(Value::Uint64(v)) => assert_eq!(*v, want),
                other => panic!("counter is {other:?}"),
            }
        }
        let s = g.next_snapshot(0);
        for ty in DataType::ALL {
            assert!(
                s.tags.iter().any(|t| matches!(&t.reading, tagwire_model::Reading::Value(v) if v.data_type() == ty)),
                "{ty:?} missing"
            );
        }
    }

    #[test]
    fn an_error_tag_appears_now_and_then() {
        let mut g = GroupGenerator::new("sim", SimGroup::default_group());
        let errors = (0..20)
            .map(|t| g.next_snapshot(t))
            .filter(|s| {
                s.tags
                    .iter()
                    .any(|t| matches!(t.reading, tagwire_model::Reading::Error(SIMULATED_ERROR)))
            })
            .count();
        assert_eq!(errors, 2);
    }
}
