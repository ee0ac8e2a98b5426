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
    /// The value and metas of the tag that reports the simulated error, kept for when
    /// it reports a value again: its buffers are reused instead of made anew.
    parked: Option<(Reading, Vec<(String, Json)>)>,
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
            parked: None,
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
    /// source reporting into the same snapshot each time allocates almost nothing.
    /// Building and dropping a fresh snapshot of ~100 tags per report was about a third
    /// of the daemon's CPU at 5,000 reports/s. Same content as
    /// [`next_snapshot`](Self::next_snapshot). Every tag is written, since `snapshot` may
    /// have been changed since: a source that owns its snapshots uses [`Reporter`],
    /// which writes only what changed.
    pub fn report_into(&mut self, snapshot: &mut Snapshot, timestamp_ms: u64) {
        self.fill(snapshot, timestamp_ms, false);
    }

    /// The tag (index into `names`) that reports the simulated error in report `n`.
    fn erroring(&self, n: u64) -> Option<usize> {
        (n > 0 && n.is_multiple_of(ERROR_EVERY) && self.group.tags > 0)
            .then(|| (n / ERROR_EVERY) as usize % self.group.tags)
    }

    /// The next report into `snapshot`. `unchanged`: `snapshot` is this generator's
    /// previous report exactly as it was left (only [`Reporter`] can promise that), so
    /// names, node, group and the tags that hold still are already right and are not
    /// written again (comparing the names alone was 10% of the simulator's work, and
    /// half the tags never change).
    fn fill(&mut self, snapshot: &mut Snapshot, timestamp_ms: u64, unchanged: bool) {
        self.reports += 1;
        let n = self.reports;
        snapshot.timestamp_ms = timestamp_ms;
        let tags = &mut snapshot.tags;
        if !unchanged {
            set_string(&mut snapshot.node, &self.node);
            set_string(&mut snapshot.group, &self.group.name);
            tags.truncate(self.names.len() + 1);
            while tags.len() < self.names.len() + 1 {
                tags.push(Tag::error(String::new(), 0));
            }
            set_string(&mut tags[0].name, COUNTER_TAG);
            plain(&mut tags[0]);
            for (name, tag) in self.names.iter().zip(&mut tags[1..]) {
                set_string(&mut tag.name, name);
            }
        }
        tags[0].reading = Reading::Value(Value::Uint64(n));
        let erroring = self.erroring(n);
        // The tag that reported the error last time reports a value again (never the
        // one that reports it now: errors are `ERROR_EVERY` reports apart).
        let recovering = self.erroring(n - 1);
        let generated = &mut tags[1..];
        if let Some(i) = recovering {
            if let (Some((reading, metas)), Reading::Error(_)) =
                (self.parked.take(), &generated[i].reading)
            {
                generated[i].reading = reading;
                generated[i].metas = metas;
            }
            if unchanged && holds_still(i) {
                simulate_into(&mut generated[i], n, i);
            }
        }
        // Unchanged, only the tags that change are written: every other one.
        let step = if unchanged { 2 } else { 1 };
        for (i, tag) in generated.iter_mut().enumerate().step_by(step) {
            if erroring != Some(i) {
                simulate_into(tag, n, i);
            }
        }
        if let Some(i) = erroring {
            let tag = &mut generated[i];
            let reading = std::mem::replace(&mut tag.reading, Reading::Error(SIMULATED_ERROR));
            if matches!(reading, Reading::Value(_)) {
                // Kept for when it reports a value again: its buffers are reused.
                self.parked = Some((reading, std::mem::take(&mut tag.metas)));
            }
            plain(tag);
        }
    }
}

/// Whether generated tag `i` reports the same value every time (the odd-numbered ones,
/// as most real tags hold still); the others change with every report.
fn holds_still(i: usize) -> bool {
    !i.is_multiple_of(2)
}

/// The simulated groups that report on one timer, each into a snapshot of its own that
/// only this type changes: every report after the first writes only what changed (the
/// counter, the timestamp, the tags that change, the simulated error), into the same
/// buffers, with no allocation. The simulator is the daemon's load generator, so its
/// cost is in every figure measured with it.
#[derive(Debug)]
pub struct Reporter {
    generators: Vec<GroupGenerator>,
    snapshots: Vec<Snapshot>,
    /// Whether `snapshots` hold the previous reports (false before the first).
    filled: bool,
}

impl Reporter {
    /// A reporter for these groups, in this order.
    pub fn new(generators: Vec<GroupGenerator>) -> Self {
        let snapshots = generators
            .iter()
            .map(|_| Snapshot::new("", "", 0))
            .collect();
        Self {
            generators,
            snapshots,
            filled: false,
        }
    }

    /// The next report of every group, stamped `timestamp_ms`, in the generators' order.
    pub fn report(&mut self, timestamp_ms: u64) -> &[Snapshot] {
        for (generator, snapshot) in self.generators.iter_mut().zip(&mut self.snapshots) {
            generator.fill(snapshot, timestamp_ms, self.filled);
        }
        self.filled = true;
        &self.snapshots
    }

    /// The generators, in order.
    pub fn generators(&self) -> &[GroupGenerator] {
        &self.generators
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

/// Sets `reading` to the string value `make` builds, written by `fill` into the
/// previous value's buffer when `get` finds one.
fn set_text(
    reading: &mut Reading,
    get: fn(&mut Value) -> Option<&mut String>,
    make: fn(String) -> Value,
    fill: impl FnOnce(&mut String),
) {
    if let Reading::Value(v) = reading {
        if let Some(s) = get(v) {
            s.clear();
            fill(s);
            return;
        }
    }
    let mut s = String::new();
    fill(&mut s);
    *reading = Reading::Value(make(s));
}

/// Sets `reading` to the array value `make` builds from `items`, written into the
/// previous value's vector when `get` finds one.
fn set_items<T: Copy, const N: usize>(
    reading: &mut Reading,
    get: fn(&mut Value) -> Option<&mut Vec<T>>,
    make: fn(Vec<T>) -> Value,
    items: [T; N],
) {
    if let Reading::Value(v) = reading {
        if let Some(vec) = get(v) {
            vec.clear();
            vec.extend_from_slice(&items);
            return;
        }
    }
    *reading = Reading::Value(make(items.to_vec()));
}

/// Appends `v` in decimal: what `write!(s, "{v}")` writes, without `core::fmt` (a
/// third of the simulator's work went to formatting its five string tags).
fn push_uint(s: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    s.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// Appends `v` (below 100) as two digits: `write!(s, "{v:02}")`.
fn push_two(s: &mut String, v: u64) {
    s.push(char::from(b'0' + (v / 10 % 10) as u8));
    s.push(char::from(b'0' + (v % 10) as u8));
}

/// Sets `tag` (generated tag number `i`) to a plausible value for report `n`, with the
/// options a real driver sets, in place: heap values reuse their buffers. Even-numbered
/// tags change with every report; odd-numbered ones hold still ([`holds_still`]).
fn simulate_into(tag: &mut Tag, n: u64, i: usize) {
    let ty = DataType::ALL[i % DataType::ALL.len()];
    let k = if holds_still(i) { 1 } else { n } + i as u64;
    // Only the float types need it: `sin` for every tag was 7% of the daemon's CPU.
    let wave = || (k as f64 * 0.1).sin();
    let r = &mut tag.reading;
    let scalar = |r: &mut Reading, v: Value| *r = Reading::Value(v);
    match ty {
        DataType::Int8 => scalar(r, Value::Int8((k % 256) as u8 as i8)),
        DataType::Uint8 => scalar(r, Value::Uint8((k % 256) as u8)),
        DataType::Int16 => scalar(r, Value::Int16((k % 65536) as u16 as i16)),
        DataType::Uint16 => scalar(r, Value::Uint16((k % 65536) as u16)),
        DataType::Int32 => scalar(r, Value::Int32(-(k as i32))),
        DataType::Uint32 => scalar(r, Value::Uint32(k as u32)),
        DataType::Int64 => scalar(r, Value::Int64(-(k as i64) * 1_000_000_007)),
        DataType::Uint64 => scalar(r, Value::Uint64(k.wrapping_mul(1_000_000_007))),
        DataType::Float => scalar(r, Value::Float(20.0 + 5.0 * wave() as f32)),
        DataType::Double => scalar(r, Value::Double(1013.25 + 10.0 * wave())),
        DataType::Bit => scalar(r, Value::Bit(k % 2 == 1)),
        DataType::Bool => scalar(r, Value::Bool(k.is_multiple_of(3))),
        DataType::String => set_text(
            r,
            |v| match v {
                Value::String(s) => Some(s),
                _ => None,
            },
            Value::String,
            |s| {
                s.push_str("state-");
                push_uint(s, k % 5);
            },
        ),
        DataType::Bytes => set_items(
            r,
            |v| match v {
                Value::Bytes(v) => Some(v),
                _ => None,
            },
            Value::Bytes,
            [(k % 256) as u8, 0x55, 0xAA],
        ),
        DataType::Word => scalar(r, Value::Word((k % 65536) as u16)),
        DataType::Dword => scalar(r, Value::Dword(k as u32 ^ 0xDEAD_0000)),
        DataType::Lword => scalar(r, Value::Lword(k << 20)),
        DataType::Time => set_text(
            r,
            |v| match v {
                Value::Time(s) => Some(s),
                _ => None,
            },
            Value::Time,
            |s| {
                push_two(s, k / 3600 % 24);
                s.push(':');
                push_two(s, k / 60 % 60);
                s.push(':');
                push_two(s, k % 60);
            },
        ),
        DataType::DataAndTime => set_text(
            r,
            |v| match v {
                Value::DataAndTime(s) => Some(s),
                _ => None,
            },
            Value::DataAndTime,
            |s| {
                s.push_str("2026-01-01 00:00:");
                push_two(s, k % 60);
            },
        ),
        DataType::ArrayChar => set_text(
            r,
            |v| match v {
                Value::ArrayChar(s) => Some(s),
                _ => None,
            },
            Value::ArrayChar,
            |s| {
                s.push_str("chars");
                push_uint(s, k % 10);
            },
        ),
        DataType::ArrayInt8 => set_items(
            r,
            |v| match v {
                Value::ArrayInt8(v) => Some(v),
                _ => None,
            },
            Value::ArrayInt8,
            [-1, (k % 100) as i8],
        ),
        DataType::ArrayUint8 => set_items(
            r,
            |v| match v {
                Value::ArrayUint8(v) => Some(v),
                _ => None,
            },
            Value::ArrayUint8,
            [1, (k % 200) as u8],
        ),
        DataType::ArrayInt16 => set_items(
            r,
            |v| match v {
                Value::ArrayInt16(v) => Some(v),
                _ => None,
            },
            Value::ArrayInt16,
            [-300, (k % 1000) as i16],
        ),
        DataType::ArrayUint16 => set_items(
            r,
            |v| match v {
                Value::ArrayUint16(v) => Some(v),
                _ => None,
            },
            Value::ArrayUint16,
            [300, (k % 1000) as u16],
        ),
        DataType::ArrayInt32 => set_items(
            r,
            |v| match v {
                Value::ArrayInt32(v) => Some(v),
                _ => None,
            },
            Value::ArrayInt32,
            [-70_000, k as i32],
        ),
        DataType::ArrayUint32 => set_items(
            r,
            |v| match v {
                Value::ArrayUint32(v) => Some(v),
                _ => None,
            },
            Value::ArrayUint32,
            [70_000, k as u32],
        ),
        DataType::ArrayInt64 => set_items(
            r,
            |v| match v {
                Value::ArrayInt64(v) => Some(v),
                _ => None,
            },
            Value::ArrayInt64,
            [i64::MIN, k as i64],
        ),
        DataType::ArrayUint64 => set_items(
            r,
            |v| match v {
                Value::ArrayUint64(v) => Some(v),
                _ => None,
            },
            Value::ArrayUint64,
            [u64::MAX, k],
        ),
        DataType::ArrayFloat => set_items(
            r,
            |v| match v {
                Value::ArrayFloat(v) => Some(v),
                _ => None,
            },
            Value::ArrayFloat,
            [1.5, wave() as f32],
        ),
        DataType::ArrayDouble => set_items(
            r,
            |v| match v {
                Value::ArrayDouble(v) => Some(v),
                _ => None,
            },
            Value::ArrayDouble,
            [0.25, wave()],
        ),
        DataType::ArrayBool => set_items(
            r,
            |v| match v {
                Value::ArrayBool(v) => Some(v),
                _ => None,
            },
            Value::ArrayBool,
            [true, k.is_multiple_of(2)],
        ),
        DataType::ArrayString => match r {
            Reading::Value(Value::ArrayString(v)) if v.len() == 2 => {
                v[1].clear();
                v[1].push('s');
                push_uint(&mut v[1], k % 3);
            }
            _ => {
                let mut last = String::from("s");
                push_uint(&mut last, k % 3);
                *r = Reading::Value(Value::ArrayString(vec!["on".into(), last]));
            }
        },
        DataType::Custom => match r {
            // Only the number changes: keep the keys' strings.
            Reading::Value(Value::Custom(Json::Object(fields))) if fields.len() == 2 => {
                fields[0].1 = Json::Uint(k);
            }
            _ => {
                *r = Reading::Value(Value::Custom(Json::Object(vec![
                    ("seq".into(), Json::Uint(k)),
                    ("ok".into(), Json::Bool(true)),
                ])))
            }
        },
    }
    // Show the tag options a real driver sets, so the demo exercises them.
    tag.precision = if ty == DataType::Float { 2 } else { 0 };
    (tag.decimal, tag.bias) = if ty == DataType::Uint16 {
        (0.1, 0.0)
    } else {
        (0.0, 0.0)
    };
    if ty != DataType::Int16 {
        tag.metas.clear();
    } else if !matches!(&tag.metas[..], [(key, Json::String(unit))] if key == "unit" && unit == "°C")
    {
        tag.metas.clear();
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

    /// How [`fingerprint`] makes its reports.
    #[derive(Clone, Copy)]
    enum Way {
        /// A new snapshot each time ([`GroupGenerator::next_snapshot`]).
        Fresh,
        /// One snapshot, every tag written over ([`GroupGenerator::report_into`]).
        Reused,
        /// [`Reporter`]: only what changed is written.
        Reporter,
    }

    /// FNV-1a over the debug form of reports 1..=40 of the default group and of a
    /// 99-tag group: the fingerprint of the simulator's output, taken before reports
    /// were updated in place, so that the reuse cannot change what is reported. Forty
    /// reports hold four simulated errors and four tags coming back from one (odd and
    /// even tags alike).
    fn fingerprint(way: Way) -> u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for group in [
            SimGroup::default_group(),
            SimGroup {
                name: "g".into(),
                interval: Duration::from_millis(2),
                tags: 99,
            },
        ] {
            let mut g = GroupGenerator::new("sim", group.clone());
            let mut reused = g.next_snapshot(0);
            let mut reporter = Reporter::new(vec![GroupGenerator::new("sim", group)]);
            // Report 1, as above: the hashed ones are 2..=41.
            reporter.report(0);
            for t in 1..=40u64 {
                let fresh;
                let s = match way {
                    Way::Fresh => {
                        fresh = g.next_snapshot(t);
                        &fresh
                    }
                    Way::Reused => {
                        g.report_into(&mut reused, t);
                        &reused
                    }
                    Way::Reporter => &reporter.report(t)[0],
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
        assert_eq!(fingerprint(Way::Fresh), GOLDEN);
        assert_eq!(fingerprint(Way::Reused), GOLDEN);
        assert_eq!(fingerprint(Way::Reporter), GOLDEN);
    }

    /// A snapshot changed by someone else is put right by `report_into` (which writes
    /// every tag), names and metas included.
    #[test]
    fn report_into_rewrites_a_changed_snapshot() {
        let group = SimGroup {
            name: "g".into(),
            interval: Duration::from_millis(2),
            tags: 99,
        };
        let (mut a, mut b) = (
            GroupGenerator::new("sim", group.clone()),
            GroupGenerator::new("sim", group),
        );
        let mut s = a.next_snapshot(1);
        b.next_snapshot(1);
        for tag in &mut s.tags {
            tag.name.push('x');
            tag.metas.push(("k".into(), Json::Null));
            tag.reading = Reading::Error(1);
        }
        s.node.push('x');
        a.report_into(&mut s, 2);
        assert_eq!(s, b.next_snapshot(2));
    }
}
