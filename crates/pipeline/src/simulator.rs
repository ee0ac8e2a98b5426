//! The built-in `simulator` source: groups of generated tags, reported on a timer.
//!
//! It exists so that a setup can be tried, demonstrated and tested without a PLC. Every
//! group has a first tag named `counter` (UINT64) that rises by exactly 1 with each
//! report, starting at 1, so a receiver can see any gap. The other tags cycle through
//! every Neuron data type; some change with each report, some stay put, and now and then
//! one reports an error code instead of a value, as a flaky device would.

use std::time::Duration;

use tagwire_model::{DataType, Json, Reading, Snapshot, Tag, Value};

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

    /// The next report, stamped `timestamp_ms`, as a new snapshot.
    pub fn next_snapshot(&mut self, timestamp_ms: u64) -> Snapshot {
        let mut snapshot = Snapshot {
            node: self.node.clone(),
            group: self.group.name.clone(),
            timestamp_ms,
            tags: Vec::with_capacity(self.group.tags + 1),
        };
        self.report_into(&mut snapshot, timestamp_ms);
        snapshot
    }

    /// The next report, written over `snapshot` (a previous report of this generator,
    /// or an empty snapshot): tags, names and heap values are updated in place, so that a
    /// source reporting into the same snapshot each time allocates almost nothing (a
    /// few allocations every tenth report, for the tag back from its simulated error). Building and dropping a fresh snapshot of ~100 tags per report was about
    /// a third of the daemon's CPU at 5,000 reports/s. Same content as
    /// [`next_snapshot`](Self::next_snapshot).
    pub fn report_into(&mut self, snapshot: &mut Snapshot, timestamp_ms: u64) {
        self.reports += 1;
        let n = self.reports;
        set_string(&mut snapshot.node, &self.node);
        set_string(&mut snapshot.group, &self.group.name);
        snapshot.timestamp_ms = timestamp_ms;
        let tags = &mut snapshot.tags;
        tags.truncate(self.names.len() + 1);
        while tags.len() < self.names.len() + 1 {
            tags.push(Tag::error(String::new(), 0));
        }
        set_string(&mut tags[0].name, COUNTER_TAG);
        tags[0].reading = Reading::Value(Value::Uint64(n));
        plain(&mut tags[0]);
        let erroring = (n.is_multiple_of(ERROR_EVERY) && self.group.tags > 0)
            .then(|| (n / ERROR_EVERY) as usize % self.group.tags);
        for ((i, name), tag) in self.names.iter().enumerate().zip(&mut tags[1..]) {
            let ty = DataType::ALL[i % DataType::ALL.len()];
            set_string(&mut tag.name, name);
            if erroring == Some(i) {
                tag.reading = Reading::Error(SIMULATED_ERROR);
                plain(tag);
            } else {
                simulate_into(tag, ty, n, i);
            }
        }
    }
}

/// `dst = src`, reusing `dst`'s buffer.
fn set_string(dst: &mut String, src: &str) {
    if dst != src {
        dst.clear();
        dst.push_str(src);
    }
}

/// No precision, no scaling, no metas (as `Tag::value` and `Tag::error` make them).
fn plain(tag: &mut Tag) {
    tag.precision = 0;
    tag.decimal = 0.0;
    tag.bias = 0.0;
    tag.metas.clear();
}

/// The heap buffer of the previous value, emptied for reuse (a new one if it had none).
fn old_string(reading: &mut Reading) -> String {
    match std::mem::replace(reading, Reading::Error(0)) {
        Reading::Value(
            Value::String(mut s)
            | Value::Time(mut s)
            | Value::DataAndTime(mut s)
            | Value::ArrayChar(mut s),
        ) => {
            s.clear();
            s
        }
        _ => String::new(),
    }
}

/// `items` in the vector `take` finds in the previous value, reusing its buffer.
fn refill<T, const N: usize>(
    reading: &mut Reading,
    take: impl FnOnce(Value) -> Option<Vec<T>>,
    items: [T; N],
) -> Vec<T> {
    let mut v = match std::mem::replace(reading, Reading::Error(0)) {
        Reading::Value(old) => take(old).unwrap_or_default(),
        Reading::Error(_) => Vec::new(),
    };
    v.clear();
    v.extend(items);
    v
}

/// Sets `tag` (number `i`, of type `ty`) to a plausible value for report `n`, with the
/// options a real driver sets. Even-numbered tags change with every report; odd-numbered
/// ones hold still, as most real tags do.
fn simulate_into(tag: &mut Tag, ty: DataType, n: u64, i: usize) {
    use std::fmt::Write as _;
    let k = if i.is_multiple_of(2) { n } else { 1 } + i as u64;
    // Only the float types need it: `sin` for every tag was 7% of the daemon's CPU.
    let wave = || (k as f64 * 0.1).sin();
    let r = &mut tag.reading;
    let text = |r: &mut Reading, args: std::fmt::Arguments<'_>| {
        let mut s = old_string(r);
        let _ = s.write_fmt(args);
        s
    };
    let value = match ty {
        DataType::Int8 => Value::Int8((k % 256) as u8 as i8),
        DataType::Uint8 => Value::Uint8((k % 256) as u8),
        DataType::Int16 => Value::Int16((k % 65536) as u16 as i16),
        DataType::Uint16 => Value::Uint16((k % 65536) as u16),
        DataType::Int32 => Value::Int32(-(k as i32)),
        DataType::Uint32 => Value::Uint32(k as u32),
        DataType::Int64 => Value::Int64(-(k as i64) * 1_000_000_007),
        DataType::Uint64 => Value::Uint64(k.wrapping_mul(1_000_000_007)),
        DataType::Float => Value::Float(20.0 + 5.0 * wave() as f32),
        DataType::Double => Value::Double(1013.25 + 10.0 * wave()),
        DataType::Bit => Value::Bit(k % 2 == 1),
        DataType::Bool => Value::Bool(k.is_multiple_of(3)),
        DataType::String => Value::String(text(r, format_args!("state-{}", k % 5))),
        DataType::Bytes => Value::Bytes(refill(
            r,
            |v| match v {
                Value::Bytes(v) => Some(v),
                _ => None,
            },
            [(k % 256) as u8, 0x55, 0xAA],
        )),
        DataType::Word => Value::Word((k % 65536) as u16),
        DataType::Dword => Value::Dword(k as u32 ^ 0xDEAD_0000),
        DataType::Lword => Value::Lword(k << 20),
        DataType::Time => Value::Time(text(
            r,
            format_args!("{:02}:{:02}:{:02}", k / 3600 % 24, k / 60 % 60, k % 60),
        )),
        DataType::DataAndTime => {
            Value::DataAndTime(text(r, format_args!("2026-01-01 00:00:{:02}", k % 60)))
        }
        DataType::ArrayChar => Value::ArrayChar(text(r, format_args!("chars{}", k % 10))),
        DataType::ArrayInt8 => Value::ArrayInt8(refill(
            r,
            |v| match v {
                Value::ArrayInt8(v) => Some(v),
                _ => None,
            },
            [-1, (k % 100) as i8],
        )),
        DataType::ArrayUint8 => Value::ArrayUint8(refill(
            r,
            |v| match v {
                Value::ArrayUint8(v) => Some(v),
                _ => None,
            },
            [1, (k % 200) as u8],
        )),
        DataType::ArrayInt16 => Value::ArrayInt16(refill(
            r,
            |v| match v {
                Value::ArrayInt16(v) => Some(v),
                _ => None,
            },
            [-300, (k % 1000) as i16],
        )),
        DataType::ArrayUint16 => Value::ArrayUint16(refill(
            r,
            |v| match v {
                Value::ArrayUint16(v) => Some(v),
                _ => None,
            },
            [300, (k % 1000) as u16],
        )),
        DataType::ArrayInt32 => Value::ArrayInt32(refill(
            r,
            |v| match v {
                Value::ArrayInt32(v) => Some(v),
                _ => None,
            },
            [-70_000, k as i32],
        )),
        DataType::ArrayUint32 => Value::ArrayUint32(refill(
            r,
            |v| match v {
                Value::ArrayUint32(v) => Some(v),
                _ => None,
            },
            [70_000, k as u32],
        )),
        DataType::ArrayInt64 => Value::ArrayInt64(refill(
            r,
            |v| match v {
                Value::ArrayInt64(v) => Some(v),
                _ => None,
            },
            [i64::MIN, k as i64],
        )),
        DataType::ArrayUint64 => Value::ArrayUint64(refill(
            r,
            |v| match v {
                Value::ArrayUint64(v) => Some(v),
                _ => None,
            },
            [u64::MAX, k],
        )),
        DataType::ArrayFloat => Value::ArrayFloat(refill(
            r,
            |v| match v {
                Value::ArrayFloat(v) => Some(v),
                _ => None,
            },
            [1.5, wave() as f32],
        )),
        DataType::ArrayDouble => Value::ArrayDouble(refill(
            r,
            |v| match v {
                Value::ArrayDouble(v) => Some(v),
                _ => None,
            },
            [0.25, wave()],
        )),
        DataType::ArrayBool => Value::ArrayBool(refill(
            r,
            |v| match v {
                Value::ArrayBool(v) => Some(v),
                _ => None,
            },
            [true, k.is_multiple_of(2)],
        )),
        DataType::ArrayString => {
            let mut v = match std::mem::replace(r, Reading::Error(0)) {
                Reading::Value(Value::ArrayString(v)) if v.len() == 2 => v,
                _ => vec!["on".into(), String::new()],
            };
            v[1].clear();
            let _ = write!(v[1], "s{}", k % 3);
            Value::ArrayString(v)
        }
        DataType::Custom => match std::mem::replace(r, Reading::Error(0)) {
            // Only the number changes: keep the keys' strings.
            Reading::Value(Value::Custom(Json::Object(mut fields))) if fields.len() == 2 => {
                fields[0].1 = Json::Uint(k);
                Value::Custom(Json::Object(fields))
            }
            _ => Value::Custom(Json::Object(vec![
                ("seq".into(), Json::Uint(k)),
                ("ok".into(), Json::Bool(true)),
            ])),
        },
    };
    tag.reading = Reading::Value(value);
    // Show the tag options a real driver sets, so the demo exercises them.
    tag.precision = if ty == DataType::Float { 2 } else { 0 };
    (tag.decimal, tag.bias) = if ty == DataType::Uint16 {
        (0.1, 0.0)
    } else {
        (0.0, 0.0)
    };
    if ty != DataType::Int16 {
        tag.metas.clear();
    } else if tag.metas.is_empty() {
        tag.metas.push(("unit".into(), Json::String("°C".into())));
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

    /// [`fingerprint`] of the simulator before reports were updated in place.
    const GOLDEN: u64 = 0xe4b7_deb6_b617_78e2;

    /// FNV-1a over the debug form of reports 1..=40 of the default group and of a
    /// 99-tag group: the fingerprint of the simulator's output, taken before reports
    /// were updated in place, so that the reuse cannot change what is reported.
    fn fingerprint(reuse: bool) -> u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for group in [
            SimGroup::default_group(),
            SimGroup {
                name: "g".into(),
                interval: Duration::from_millis(2),
                tags: 99,
            },
        ] {
            let mut g = GroupGenerator::new("sim", group);
            let mut reused = g.next_snapshot(0);
            for t in 1..=40u64 {
                let fresh;
                let s = if reuse {
                    g.report_into(&mut reused, t);
                    &reused
                } else {
                    fresh = g.next_snapshot(t);
                    &fresh
                };
                for b in format!("{s:?}").bytes() {
                    hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
                }
            }
        }
        hash
    }

    #[test]
    fn reports_are_the_same_whether_built_afresh_or_updated_in_place() {
        assert_eq!(fingerprint(false), GOLDEN);
        assert_eq!(fingerprint(true), GOLDEN);
    }
}
