//! The baseline `tagwire encode` is measured against: what a Rust engineer would write
//! with serde derive and serde_json to do the same job. NDJSON snapshots on stdin
//! (parsed into typed structs that borrow from the line), one compact values-format
//! message per line on stdout (serialized from typed structs), a bad line reported on
//! stderr. It checks less than tagwire does (no type or range checks, no duplicate
//! names), so the comparison favours it.
//!
//! ```sh
//! cargo build --release -p tagwire-benches --bin serde_transcode
//! target/release/serde_transcode < snapshots.ndjson > messages.ndjson
//! ```

use std::borrow::Cow;
use std::io::{BufRead, BufWriter, Write};

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value as J;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapIn<'a> {
    #[serde(borrow)]
    node: Cow<'a, str>,
    #[serde(borrow)]
    group: Cow<'a, str>,
    timestamp: Option<u64>,
    #[serde(borrow)]
    tags: Vec<TagIn<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // parsed for validation as tagwire does; the message does not use them
struct TagIn<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(rename = "type")]
    ty: Option<J>,
    value: Option<J>,
    error: Option<i32>,
    precision: Option<u8>,
    decimal: Option<f64>,
    bias: Option<f64>,
    metas: Option<serde_json::Map<String, J>>,
}

/// `{"name": value, ...}` from (name, value) pairs, in order.
struct Entries<'a, V>(Vec<(&'a str, V)>);

impl<V: Serialize> Serialize for Entries<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct ValuesOut<'a> {
    node: &'a str,
    group: &'a str,
    timestamp: u64,
    values: Entries<'a, &'a J>,
    errors: Entries<'a, i32>,
    metas: Entries<'a, &'a serde_json::Map<String, J>>,
}

fn main() {
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut bad = 0u64;
    for (n, line) in stdin.split(b'\n').enumerate() {
        let line = line.expect("read stdin");
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let snap: SnapIn<'_> = match serde_json::from_slice(&line) {
            Ok(s) => s,
            Err(e) => {
                bad += 1;
                eprintln!("line {}: {e}", n + 1);
                continue;
            }
        };
        let mut msg = ValuesOut {
            node: &snap.node,
            group: &snap.group,
            timestamp: snap.timestamp.unwrap_or(0),
            values: Entries(Vec::with_capacity(snap.tags.len())),
            errors: Entries(Vec::new()),
            metas: Entries(Vec::new()),
        };
        for t in &snap.tags {
            match (&t.value, t.error) {
                (Some(v), _) => msg.values.0.push((&t.name, v)),
                (None, Some(code)) => msg.errors.0.push((&t.name, code)),
                (None, None) => {}
            }
            if let Some(m) = &t.metas {
                msg.metas.0.push((&t.name, m));
            }
        }
        serde_json::to_writer(&mut out, &msg).expect("write stdout");
        out.write_all(b"\n").expect("write stdout");
    }
    out.flush().expect("write stdout");
    if bad > 0 {
        std::process::exit(1);
    }
}
