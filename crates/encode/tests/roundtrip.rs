//! Property tests: random snapshots of every type, in both formats and styles, give
//! valid JSON whose values read back as the spec says (exactly in the compact style,
//! within the documented rounding in the neuron style), with names and strings
//! surviving escaping, errors and `upload_err` handled, and the layout cache always
//! agreeing with a fresh encoder.

use proptest::prelude::*;
use serde_json::Value as J;
use tagwire_encode::{EncodeOptions, Encoder, Format, Style, MAX_CACHED_LAYOUTS};
use tagwire_model::{Json, Reading, Snapshot, Tag, Value};

/// Strings with the characters that need escaping, non-ASCII and plain text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_]{0,12}",
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(vec![
                    '"', '\\', '/', '\u{0}', '\u{1f}', '\u{7f}', '\n', '\t', '\u{8}', '\u{c}', 'é',
                    '漢', '😀', 'a', ' '
                ]),
                any::<char>()
            ],
            0..20
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

fn f64_any() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => any::<f64>(),
        2 => -1e6f64..1e6,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-0.0),
        2 => (any::<i32>(), 0i32..8).prop_map(|(n, s)| f64::from(n) / 10f64.powi(s)),
    ]
}

fn f32_any() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => any::<f32>(),
        2 => -1e6f32..1e6,
        1 => Just(f32::NAN),
        1 => Just(f32::NEG_INFINITY),
        2 => (any::<i32>(), 0i32..6).prop_map(|(n, s)| (f64::from(n) / 10f64.powi(s)) as f32),
    ]
}

fn json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::Int),
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(Json::Uint),
        f64_any().prop_map(Json::Float),
        text().prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
            proptest::collection::vec((text(), inner), 0..5).prop_map(|members| {
                // Unique keys, so that a JSON reader keeps them all.
                let mut seen = std::collections::HashSet::new();
                Json::Object(
                    members
                        .into_iter()
                        .filter(|(k, _)| seen.insert(k.clone()))
                        .collect(),
                )
            }),
        ]
    })
}

fn value() -> impl Strategy<Value = Value> {
    use proptest::collection::vec;
    prop_oneof![
        any::<i8>().prop_map(Value::Int8),
        any::<u8>().prop_map(Value::Uint8),
        any::<i16>().prop_map(Value::Int16),
        any::<u16>().prop_map(Value::Uint16),
        any::<i32>().prop_map(Value::Int32),
        any::<u32>().prop_map(Value::Uint32),
        any::<i64>().prop_map(Value::Int64),
        any::<u64>().prop_map(Value::Uint64),
        f32_any().prop_map(Value::Float),
        f32_any().prop_map(Value::Float),
        f64_any().prop_map(Value::Double),
        f64_any().prop_map(Value::Double),
        any::<bool>().prop_map(Value::Bit),
        any::<bool>().prop_map(Value::Bool),
        text().prop_map(Value::String),
        vec(any::<u8>(), 0..6).prop_map(Value::Bytes),
        any::<u16>().prop_map(Value::Word),
        any::<u32>().prop_map(Value::Dword),
        any::<u64>().prop_map(Value::Lword),
        text().prop_map(Value::Time),
        text().prop_map(Value::DataAndTime),
        text().prop_map(Value::ArrayChar),
        vec(any::<i8>(), 0..5).prop_map(Value::ArrayInt8),
        vec(any::<u8>(), 0..5).prop_map(Value::ArrayUint8),
        vec(any::<i16>(), 0..5).prop_map(Value::ArrayInt16),
        vec(any::<u16>(), 0..5).prop_map(Value::ArrayUint16),
        vec(any::<i32>(), 0..5).prop_map(Value::ArrayInt32),
        vec(any::<u32>(), 0..5).prop_map(Value::ArrayUint32),
        vec(any::<i64>(), 0..5).prop_map(Value::ArrayInt64),
        vec(any::<u64>(), 0..5).prop_map(Value::ArrayUint64),
        vec(f32_any(), 0..5).prop_map(Value::ArrayFloat),
        vec(f64_any(), 0..5).prop_map(Value::ArrayDouble),
        vec(any::<bool>(), 0..5).prop_map(Value::ArrayBool),
        vec(text(), 0..5).prop_map(Value::ArrayString),
        json().prop_map(Value::Custom),
    ]
}

fn scaling() -> impl Strategy<Value = (f64, f64)> {
    prop_oneof![
        4 => Just((0.0, 0.0)),
        1 => (prop_oneof![Just(0.0), Just(1.0), Just(0.1), Just(0.001), -10.0..10.0], Just(0.0)),
        1 => (Just(0.0), -100.0..100.0),
        1 => (-10.0..10.0f64, -100.0..100.0f64),
    ]
}

fn metas() -> impl Strategy<Value = Vec<(String, Json)>> {
    let scalar = prop_oneof![
        text().prop_map(Json::String),
        any::<i64>().prop_map(Json::Int),
        f64_any().prop_map(Json::Float),
        any::<bool>().prop_map(Json::Bool),
    ];
    prop_oneof![
        3 => Just(Vec::new()),
        1 => proptest::collection::vec(("[a-z]{1,5}".prop_map(|k| format!("meta_{k}")), scalar), 1..4)
            .prop_map(|v| {
                let mut seen = std::collections::HashSet::new();
                v.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect()
            }),
    ]
}

fn tag() -> impl Strategy<Value = Tag> {
    (
        text(),
        prop_oneof![
            5 => value().prop_map(Reading::Value),
            1 => any::<i32>().prop_map(Reading::Error),
        ],
        prop_oneof![4 => Just(0u8), 1 => 0u8..=17],
        scaling(),
        metas(),
    )
        .prop_map(|(name, reading, precision, (decimal, bias), metas)| Tag {
            name,
            reading,
            precision,
            decimal,
            bias,
            metas,
        })
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    (
        text(),
        text(),
        any::<u64>(),
        proptest::collection::vec(tag(), 0..12),
    )
        .prop_map(|(node, group, timestamp_ms, mut tags)| {
            // Unique names (metas keys start with "meta_", so never "name"/"value").
            for (i, t) in tags.iter_mut().enumerate() {
                t.name = format!("{}#{i}", t.name);
            }
            Snapshot {
                node,
                group,
                timestamp_ms,
                tags,
            }
        })
}

/// What the spec says a tag becomes.
enum Expect<'a> {
    Error(i32),
    /// A real after scaling: (value, declared FLOAT unscaled, heuristic may apply).
    Real(f64, Option<f32>, bool),
    Plain(&'a Value),
}

fn expect(tag: &Tag) -> Expect<'_> {
    let v = match &tag.reading {
        Reading::Error(c) => return Expect::Error(*c),
        Reading::Value(v) => v,
    };
    let scaled = tag.decimal != 0.0 || tag.bias != 0.0;
    let raw = match *v {
        Value::Float(f) => f64::from(f),
        Value::Double(d) => d,
        Value::Int8(x) if scaled => f64::from(x),
        Value::Uint8(x) if scaled => f64::from(x),
        Value::Int16(x) if scaled => f64::from(x),
        Value::Uint16(x) if scaled => f64::from(x),
        Value::Int32(x) if scaled => f64::from(x),
        Value::Uint32(x) if scaled => f64::from(x),
        Value::Int64(x) if scaled => x as f64,
        Value::Uint64(x) if scaled => x as f64,
        _ => return Expect::Plain(v),
    };
    let (x, single, heuristic) = if scaled {
        let d = if tag.decimal != 0.0 { tag.decimal } else { 1.0 };
        (
            raw * d + tag.bias,
            None,
            matches!(v, Value::Double(_)) && tag.bias == 0.0,
        )
    } else {
        let single = if let Value::Float(f) = v {
            Some(*f)
        } else {
            None
        };
        (raw, single, true)
    };
    if !x.is_finite() {
        return Expect::Error(3008);
    }
    Expect::Real(x, single, heuristic && tag.precision == 0)
}

/// `%.15g` keeps 15 significant digits: relative error at most 5e-15.
fn close15(got: f64, want: f64) -> bool {
    (got - want).abs() <= want.abs() * 5.1e-15
}

fn check_real(got: &J, v: f64, single: Option<f32>, heuristic: bool, precision: u8, style: Style) {
    let g = got
        .as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {got}"));
    if precision > 0 {
        let half_unit = 0.5 * 10f64.powi(-i32::from(precision));
        assert!(
            (g - v).abs() <= half_unit * 1.000_001 + v.abs() * 1e-16,
            "%.{precision}f of {v:e} read back as {g:e}"
        );
        return;
    }
    match style {
        Style::Compact => match single {
            Some(f) => assert_eq!(g as f32, f, "compact FLOAT {f:e} read back as {g:e}"),
            None => assert_eq!(g, v, "compact DOUBLE {v:e} read back as {g:e}"),
        },
        Style::Neuron => {
            if heuristic && v.abs() < 9.2e18 {
                // h(v) keeps at most five decimals and may cut at the first, second
                // or third one where "00"/"99" begins: off by at most 0.001 (a00yz ->
                // a, a99yz -> a+1) plus the rounding of the fifth decimal.
                assert!(
                    (g - v).abs() <= 1.01e-3 + v.abs() * 1e-14,
                    "heuristic of {v:e} read back as {g:e}"
                );
            } else {
                assert!(close15(g, v), "%.15g of {v:e} read back as {g:e}");
            }
        }
    }
}

fn check_f64_element(got: &J, v: f64, style: Style) {
    if !v.is_finite() {
        assert!(got.is_null(), "non-finite element must be null, got {got}");
        return;
    }
    let g = got.as_f64().unwrap();
    match style {
        Style::Compact => assert_eq!(g, v),
        Style::Neuron => assert!(close15(g, v), "{v:e} read back as {g:e}"),
    }
}

fn check_json(got: &J, want: &Json, style: Style) {
    match want {
        Json::Null => assert!(got.is_null()),
        Json::Bool(b) => assert_eq!(got, &J::Bool(*b)),
        Json::Int(i) => assert_eq!(got.as_i64(), Some(*i), "{got}"),
        Json::Uint(u) => assert_eq!(got.as_u64(), Some(*u), "{got}"),
        Json::Float(f) => check_f64_element(got, *f, style),
        Json::String(s) => assert_eq!(got.as_str(), Some(s.as_str())),
        Json::Array(items) => {
            let g = got.as_array().unwrap();
            assert_eq!(g.len(), items.len());
            g.iter()
                .zip(items)
                .for_each(|(a, b)| check_json(a, b, style));
        }
        Json::Object(members) => {
            let g = got.as_object().unwrap();
            assert_eq!(g.len(), members.len());
            for ((gk, gv), (k, v)) in g.iter().zip(members) {
                assert_eq!(gk, k);
                check_json(gv, v, style);
            }
        }
    }
}

fn check_plain(got: &J, v: &Value, style: Style) {
    fn ints<T: Copy + Into<i128>>(got: &J, want: &[T]) {
        let g = got.as_array().unwrap();
        assert_eq!(g.len(), want.len());
        for (a, b) in g.iter().zip(want) {
            let a = a.as_i64().map(i128::from).or(a.as_u64().map(i128::from));
            assert_eq!(a, Some((*b).into()));
        }
    }
    let int = |want: i128| {
        let g = got
            .as_i64()
            .map(i128::from)
            .or(got.as_u64().map(i128::from));
        assert_eq!(g, Some(want), "{got}");
    };
    match v {
        Value::Int8(x) => int((*x).into()),
        Value::Uint8(x) => int((*x).into()),
        Value::Int16(x) => int((*x).into()),
        Value::Uint16(x) => int((*x).into()),
        Value::Int32(x) => int((*x).into()),
        Value::Uint32(x) => int((*x).into()),
        Value::Int64(x) => int((*x).into()),
        Value::Uint64(x) => int((*x).into()),
        Value::Word(x) => int((*x).into()),
        Value::Dword(x) => int((*x).into()),
        Value::Lword(x) => int((*x).into()),
        Value::Bit(b) => int(i128::from(*b)),
        Value::Bool(b) => assert_eq!(got, &J::Bool(*b)),
        Value::String(s) | Value::Time(s) | Value::DataAndTime(s) | Value::ArrayChar(s) => {
            assert_eq!(got.as_str(), Some(s.as_str()))
        }
        Value::Bytes(b) => ints(got, b),
        Value::ArrayInt8(a) => ints(got, a),
        Value::ArrayUint8(a) => ints(got, a),
        Value::ArrayInt16(a) => ints(got, a),
        Value::ArrayUint16(a) => ints(got, a),
        Value::ArrayInt32(a) => ints(got, a),
        Value::ArrayUint32(a) => ints(got, a),
        Value::ArrayInt64(a) => ints(got, a),
        Value::ArrayUint64(a) => ints(got, a),
        Value::ArrayFloat(a) => {
            let g = got.as_array().unwrap();
            assert_eq!(g.len(), a.len());
            for (x, f) in g.iter().zip(a) {
                if !f.is_finite() {
                    assert!(x.is_null());
                } else if style == Style::Compact {
                    assert_eq!(x.as_f64().unwrap() as f32, *f);
                } else {
                    assert!(close15(x.as_f64().unwrap(), f64::from(*f)));
                }
            }
        }
        Value::ArrayDouble(a) => {
            let g = got.as_array().unwrap();
            assert_eq!(g.len(), a.len());
            g.iter()
                .zip(a)
                .for_each(|(x, d)| check_f64_element(x, *d, style));
        }
        Value::ArrayBool(a) => {
            let want: Vec<J> = a.iter().map(|b| J::Bool(*b)).collect();
            assert_eq!(got, &J::Array(want));
        }
        Value::ArrayString(a) => {
            let want: Vec<J> = a.iter().map(|s| J::String(s.clone())).collect();
            assert_eq!(got, &J::Array(want));
        }
        Value::Custom(j) => check_json(got, j, style),
        Value::Float(_) | Value::Double(_) => unreachable!("FLOAT/DOUBLE are reals"),
    }
}

fn check_tag_value(got: &J, tag: &Tag, style: Style) {
    match expect(tag) {
        Expect::Error(_) => unreachable!(),
        Expect::Real(v, single, h) => check_real(got, v, single, h, tag.precision, style),
        Expect::Plain(v) => check_plain(got, v, style),
    }
}

fn check_message(snap: &Snapshot, options: EncodeOptions, sent: bool, text: &str) {
    let n_values = snap
        .tags
        .iter()
        .filter(|t| !matches!(expect(t), Expect::Error(_)))
        .count();
    assert_eq!(sent, options.upload_err || n_values > 0, "sent");
    if !sent {
        return;
    }
    let msg: J = serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(msg["node"].as_str(), Some(snap.node.as_str()));
    assert_eq!(msg["group"].as_str(), Some(snap.group.as_str()));
    assert_eq!(msg["timestamp"].as_u64(), Some(snap.timestamp_ms));
    let kept: Vec<&Tag> = snap
        .tags
        .iter()
        .filter(|t| options.upload_err || !matches!(expect(t), Expect::Error(_)))
        .collect();
    match options.format {
        Format::Values => {
            let keys: Vec<&str> = msg
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                ["node", "group", "timestamp", "values", "errors", "metas"]
            );
            let values = msg["values"].as_object().unwrap();
            let errors = msg["errors"].as_object().unwrap();
            let metas = msg["metas"].as_object().unwrap();
            let mut vi = values.iter();
            let mut ei = errors.iter();
            let mut mi = metas.iter();
            for t in &kept {
                match expect(t) {
                    Expect::Error(code) => {
                        let (k, v) = ei.next().expect("error entry");
                        assert_eq!(k, &t.name);
                        assert_eq!(v.as_i64(), Some(i64::from(code)));
                    }
                    _ => {
                        let (k, v) = vi.next().expect("value entry");
                        assert_eq!(k, &t.name);
                        check_tag_value(v, t, options.style);
                    }
                }
                if !t.metas.is_empty() {
                    let (k, v) = mi.next().expect("metas entry");
                    assert_eq!(k, &t.name);
                    check_json(v, &Json::Object(t.metas.clone()), options.style);
                }
            }
            assert!(vi.next().is_none() && ei.next().is_none() && mi.next().is_none());
        }
        Format::Tags => {
            let keys: Vec<&str> = msg
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, ["node", "group", "timestamp", "tags"]);
            let tags = msg["tags"].as_array().unwrap();
            assert_eq!(tags.len(), kept.len());
            for (obj, t) in tags.iter().zip(&kept) {
                let obj = obj.as_object().unwrap();
                let mut it = obj.iter();
                let (k, v) = it.next().unwrap();
                assert_eq!((k.as_str(), v.as_str()), ("name", Some(t.name.as_str())));
                let (k, v) = it.next().unwrap();
                match expect(t) {
                    Expect::Error(code) => {
                        assert_eq!(k, "error");
                        assert_eq!(v.as_i64(), Some(i64::from(code)));
                    }
                    _ => {
                        assert_eq!(k, "value");
                        check_tag_value(v, t, options.style);
                    }
                }
                for ((k, v), (mk, mv)) in it.zip(&t.metas) {
                    assert_eq!(k, mk);
                    check_json(v, mv, options.style);
                }
                assert_eq!(obj.len(), 2 + t.metas.len());
            }
        }
    }
}

fn no_whitespace_outside_strings(text: &str) -> bool {
    let (mut in_str, mut esc) = (false, false);
    for c in text.chars() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if c.is_whitespace() {
            return false;
        }
    }
    true
}

const ALL_OPTIONS: [EncodeOptions; 8] = {
    let mut all = [EncodeOptions::new(); 8];
    let mut i = 0;
    while i < 8 {
        all[i].format = if i & 1 == 0 {
            Format::Values
        } else {
            Format::Tags
        };
        all[i].style = if i & 2 == 0 {
            Style::Neuron
        } else {
            Style::Compact
        };
        all[i].upload_err = i & 4 == 0;
        i += 1;
    }
    all
};

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("tests/roundtrip.proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn messages_read_back(snap in snapshot()) {
        for options in ALL_OPTIONS {
            let mut encoder = Encoder::new(options);
            // The buffer is appended to, never cleared.
            let mut out = b"previous".to_vec();
            let sent = encoder.encode(&snap, &mut out);
            prop_assert!(out.starts_with(b"previous"));
            if !sent {
                prop_assert_eq!(out.len(), 8, "nothing appended when not sent");
            }
            let text = std::str::from_utf8(&out[8..]).expect("UTF-8");
            if options.style == Style::Compact {
                prop_assert!(no_whitespace_outside_strings(text), "{}", text);
            }
            check_message(&snap, options, sent, text);
        }
    }

    /// The same node/group with a changing tag list: a warm encoder (cache) always
    /// writes what a fresh encoder writes.
    #[test]
    fn layout_changes_are_picked_up(
        node in text(),
        group in text(),
        lists in proptest::collection::vec(proptest::collection::vec("[ab\"\\\\é]{0,3}", 0..6), 1..6),
    ) {
        for options in [ALL_OPTIONS[0], ALL_OPTIONS[1], ALL_OPTIONS[2], ALL_OPTIONS[3]] {
            let mut warm = Encoder::new(options);
            for names in &lists {
                let mut snap = Snapshot::new(node.clone(), group.clone(), 1);
                for (i, n) in names.iter().enumerate() {
                    snap.tags.push(Tag::value(n.clone(), Value::Int32(i as i32)));
                }
                let cold = Encoder::new(options).encode_to_vec(&snap);
                prop_assert_eq!(warm.encode_to_vec(&snap), cold);
            }
        }
    }
}

#[test]
fn cache_is_bounded_and_stays_correct() {
    let mut warm = Encoder::new(EncodeOptions::default());
    let snap = |i: usize| {
        Snapshot::new("n", format!("g{i}"), 7).with_tag(Tag::value(format!("t{i}"), Value::Int8(1)))
    };
    for round in 0..2 {
        for i in 0..(MAX_CACHED_LAYOUTS * 2) {
            let s = snap(i);
            assert_eq!(
                warm.encode_to_vec(&s),
                Encoder::new(EncodeOptions::default()).encode_to_vec(&s),
                "round {round}, group {i}"
            );
            assert!(warm.cached_layouts() <= MAX_CACHED_LAYOUTS);
        }
    }
    assert_eq!(warm.cached_layouts(), MAX_CACHED_LAYOUTS);
    warm.clear_cache();
    assert_eq!(warm.cached_layouts(), 0);
}

/// Huge groups must not pin memory: the layouts stay within the byte budget (least
/// recently used out), the group in use is kept, and messages stay correct.
#[test]
fn cache_is_bounded_by_bytes_least_recently_used_out() {
    let big = |g: usize| {
        let mut s = Snapshot::new("n", format!("g{g}"), 7);
        for i in 0..20_000 {
            s.tags
                .push(Tag::value(format!("tag-{g}-{i:06}"), Value::Int8(1)));
        }
        s
    };
    let groups: Vec<Snapshot> = (0..6).map(big).collect();
    let mut warm = Encoder::new(EncodeOptions::default());
    assert_eq!(warm.layout_budget(), tagwire_encode::DEFAULT_LAYOUT_BUDGET);
    warm.encode_to_vec(&groups[0]).unwrap();
    let one = warm.cached_layout_bytes();
    // 20k names of 16 bytes: at least names + prefixes.
    assert!(one > 20_000 * 32, "one layout counts {one} bytes");
    warm.set_layout_budget(one * 5 / 2);
    for (g, s) in groups.iter().enumerate() {
        let cold = Encoder::new(EncodeOptions::default()).encode_to_vec(s);
        assert_eq!(warm.encode_to_vec(s), cold, "group {g}");
        assert!(
            warm.cached_layout_bytes() <= one * 5 / 2 + one / 4,
            "group {g}: {} bytes",
            warm.cached_layout_bytes()
        );
        assert!(warm.cached_layouts() <= 2);
    }
    // Least recently used out: with room for two layouts, A and B cached and A used
    // again, C must push out B (sizes differ, so the byte count tells which is left).
    let sized = |name: &str, n: usize| {
        let mut s = Snapshot::new("n", name, 7);
        for i in 0..n {
            s.tags
                .push(Tag::value(format!("tag-{i:06}"), Value::Int8(1)));
        }
        s
    };
    let (a, b, c) = (sized("a", 20_000), sized("b", 21_000), sized("c", 22_000));
    let alone = |s: &Snapshot| {
        let mut e = Encoder::new(EncodeOptions::default());
        e.encode_to_vec(s).unwrap();
        e.cached_layout_bytes()
    };
    let mut lru = Encoder::new(EncodeOptions::default());
    lru.set_layout_budget(alone(&c) * 2 + alone(&c) / 4);
    for s in [&a, &b, &a, &c] {
        lru.encode_to_vec(s).unwrap();
    }
    assert_eq!(lru.cached_layouts(), 2);
    assert_eq!(
        lru.cached_layout_bytes(),
        alone(&a) + alone(&c),
        "B should have gone"
    );
    // A budget smaller than one layout keeps exactly the one in use.
    warm.set_layout_budget(1);
    warm.encode_to_vec(&groups[1]).unwrap();
    assert_eq!(warm.cached_layouts(), 1);
    warm.clear_cache();
    assert_eq!(warm.cached_layout_bytes(), 0);
}

/// A tag renamed in place (same position, same length, the layout otherwise
/// unchanged) is sent under its new name by a warm encoder, in every format and style,
/// whether it holds a value, an error or metas: the plan's name check is what stops
/// the old cached name from going out.
#[test]
fn a_renamed_tag_is_never_sent_under_its_old_name() {
    let snap = |names: [&str; 4]| {
        Snapshot::new("n", "g", 1)
            .with_tag(Tag::value(names[0], Value::Int32(1)))
            .with_tag(Tag::error(names[1], 3002))
            .with_tag(Tag::value(names[2], Value::Double(0.5)).with_meta("unit", "C"))
            .with_tag(Tag::value(names[3], Value::String("s".into())))
    };
    let before = snap(["ta", "tb", "tc", "td"]);
    for renamed in [
        snap(["xa", "tb", "tc", "td"]),
        snap(["ta", "xb", "tc", "td"]),
        snap(["ta", "tb", "xc", "td"]),
        snap(["ta", "tb", "tc", "xd"]),
    ] {
        for options in ALL_OPTIONS {
            let mut warm = Encoder::new(options);
            warm.encode_to_vec(&before).expect("sent");
            let cold = Encoder::new(options).encode_to_vec(&renamed);
            let got = warm.encode_to_vec(&renamed);
            assert_eq!(
                got.as_deref().map(String::from_utf8_lossy),
                cold.as_deref().map(String::from_utf8_lossy),
                "{options:?}"
            );
            // And back again: the old names return.
            let cold = Encoder::new(options).encode_to_vec(&before);
            assert_eq!(warm.encode_to_vec(&before), cold, "{options:?}");
        }
    }
}

/// Groups that differ only in node or group name, encoded back to back and in turn by
/// one encoder, each get their own header: the cache's shortcut for the group used
/// last and its check of a cached entry's node/group together keep another group's
/// header from being reused (it fails with both reduced to the key alone).
#[test]
fn groups_encoded_in_turn_keep_their_own_header() {
    let snap = |node: &str, group: &str| {
        Snapshot::new(node, group, 7).with_tag(Tag::value("t", Value::Int32(1)))
    };
    let order = [
        snap("n", "g"),
        snap("n", "g"),
        snap("n", "h"),
        snap("m", "h"),
        snap("m", "h"),
        snap("n", "g"),
    ];
    for options in ALL_OPTIONS {
        let mut warm = Encoder::new(options);
        for s in &order {
            let cold = Encoder::new(options).encode_to_vec(s);
            assert_eq!(
                warm.encode_to_vec(s),
                cold,
                "{options:?} {}/{}",
                s.node,
                s.group
            );
        }
    }
}
