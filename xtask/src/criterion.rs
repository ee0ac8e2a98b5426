//! The criterion step of `cargo xtask bench`: reads the medians criterion left under
//! `target/criterion/**/new/` (`benchmark.json` names a result, `estimates.json` holds
//! it) and renders the encoder and parse tables of `docs/benchmarks.md` with every
//! ratio issue 12 sets a target on. Running the suite is [`crate::bench`]'s job.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde_json::Value;

/// One criterion result: the benchmark's three-part id and its median.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// `encode/mixed100`, `parse`, …
    pub group: String,
    /// `tagwire-compact`, `serde-derive`, … (empty when the benchmark has none).
    pub function: String,
    /// `values`, `float100`, … (empty when the benchmark has none).
    pub value: String,
    /// Median time per iteration in nanoseconds.
    pub median_ns: f64,
}

/// Reads one result from the text of its `benchmark.json` and `estimates.json`.
pub fn parse_estimate(benchmark: &str, estimates: &str) -> Result<Estimate> {
    let id: Value = serde_json::from_str(benchmark).context("benchmark.json is not JSON")?;
    let est: Value = serde_json::from_str(estimates).context("estimates.json is not JSON")?;
    let text = |key: &str| id.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    let group = text("group_id");
    if group.is_empty() {
        anyhow::bail!("benchmark.json has no \"group_id\"");
    }
    let median_ns = est
        .pointer("/median/point_estimate")
        .and_then(Value::as_f64)
        .context("estimates.json has no median.point_estimate")?;
    Ok(Estimate {
        group,
        function: text("function_id"),
        value: text("value_str"),
        median_ns,
    })
}

/// Every result under `root` (criterion's directory) written at or after `since`, so
/// that a run's tables never mix in the figures of an older run.
pub fn read_dir(root: &Path, since: SystemTime) -> Result<Vec<Estimate>> {
    let mut found = Vec::new();
    walk(root, since, &mut found)?;
    Ok(found)
}

fn walk(dir: &Path, since: SystemTime, found: &mut Vec<Estimate>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let (benchmark, estimates) = (path.join("benchmark.json"), path.join("estimates.json"));
        let fresh = std::fs::metadata(&estimates)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= since);
        if path.file_name().is_some_and(|n| n == "new") && fresh {
            let read = |p: &Path| {
                std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
            };
            found.push(
                parse_estimate(&read(&benchmark)?, &read(&estimates)?)
                    .with_context(|| format!("in {}", path.display()))?,
            );
        } else {
            walk(&path, since, found)?;
        }
    }
    Ok(())
}

/// Results by (group, function, value), in microseconds.
struct Table(BTreeMap<(String, String, String), f64>);

impl Table {
    fn new(estimates: &[Estimate]) -> Self {
        Table(
            estimates
                .iter()
                .map(|e| {
                    let key = (e.group.clone(), e.function.clone(), e.value.clone());
                    (key, e.median_ns / 1000.0)
                })
                .collect(),
        )
    }

    fn get(&self, group: &str, function: &str, value: &str) -> Option<f64> {
        let key = (group.to_owned(), function.to_owned(), value.to_owned());
        self.0.get(&key).copied()
    }

    /// The groups starting with `prefix`, in the order of `order` first (the rest
    /// sorted), without the prefix.
    fn groups(&self, prefix: &str, order: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = self
            .0
            .keys()
            .filter_map(|(g, _, _)| g.strip_prefix(prefix).map(str::to_owned))
            .collect();
        names.dedup();
        let rank = |n: &String| order.iter().position(|o| o == n).unwrap_or(order.len());
        names.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
        names
    }
}

fn us(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.2}"))
}

/// `a / b` to two decimals, with the target's verdict when there is one.
fn ratio(a: Option<f64>, b: Option<f64>, meets: impl Fn(f64) -> bool) -> (String, Option<bool>) {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            let ok = meets(r);
            (format!("{r:.2}{}", if ok { "" } else { " ✗" }), Some(ok))
        }
        _ => ("–".into(), None),
    }
}

/// Counts of rows meeting one target.
#[derive(Default)]
struct Tally {
    met: usize,
    rows: usize,
}

impl Tally {
    fn add(&mut self, verdict: Option<bool>) {
        if let Some(ok) = verdict {
            self.rows += 1;
            self.met += usize::from(ok);
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {} rows", self.met, self.rows)
    }
}

/// The encoder table: µs per message for each `encode/*` group and format, and the
/// ratios derive prebuilt / tagwire (target ≥ 1.3, per style) and tagwire compact /
/// floor (target ≤ 1.5). A ratio that misses its target is marked ✗.
pub fn encode_table(estimates: &[Estimate]) -> String {
    let t = Table::new(estimates);
    let order = ["mixed100", "neuron100", "big1000"];
    let mut s = String::from(
        "| group | format | tagwire neuron | tagwire compact | derive prebuilt (neuron sp.) | \
         derive prebuilt (compact) | derive built (compact) | floor (compact) | \
         derive/tagwire compact (≥1.3) | derive/tagwire neuron (≥1.3) | \
         tagwire compact/floor (≤1.5) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let (mut compact, mut neuron, mut floor) =
        (Tally::default(), Tally::default(), Tally::default());
    for name in t.groups("encode/", &order) {
        let group = format!("encode/{name}");
        for format in ["values", "tags"] {
            let get = |f: &str| t.get(&group, f, format);
            let (tw_n, tw_c) = (get("tagwire-neuron"), get("tagwire-compact"));
            if tw_n.is_none() && tw_c.is_none() {
                continue;
            }
            let (pre_n, pre_c) = (
                get("derive-prebuilt-neuron"),
                get("derive-prebuilt-compact"),
            );
            let fl = get("floor-compact");
            let (r_c, ok_c) = ratio(pre_c, tw_c, |r| r >= 1.3);
            let (r_n, ok_n) = ratio(pre_n, tw_n, |r| r >= 1.3);
            let (r_f, ok_f) = ratio(tw_c, fl, |r| r <= 1.5);
            compact.add(ok_c);
            neuron.add(ok_n);
            floor.add(ok_f);
            let _ = writeln!(
                s,
                "| {name} | {format} | {} | {} | {} | {} | {} | {} | {r_c} | {r_n} | {r_f} |",
                us(tw_n),
                us(tw_c),
                us(pre_n),
                us(pre_c),
                us(get("derive-built-compact")),
                us(fl),
            );
        }
    }
    let _ = write!(
        s,
        "\nTargets met: derive/tagwire compact ≥ 1.3 on {compact}, derive/tagwire neuron ≥ 1.3 \
         on {neuron}, tagwire compact/floor ≤ 1.5 on {floor}.\n"
    );
    s
}

/// The parse table: µs per snapshot line for the owned parse, the view, serde derive
/// and simd-json's bare tape, with derive/owned, derive/view (target ≥ 2) and
/// view/tape.
pub fn parse_table(estimates: &[Estimate]) -> String {
    let t = Table::new(estimates);
    let mut lines: Vec<&str> =
        t.0.keys()
            .filter(|(g, _, _)| g == "parse")
            .map(|(_, _, v)| v.as_str())
            .collect();
    lines.sort_unstable();
    lines.dedup();
    let order = ["neuron100", "float100", "str100", "big1000"];
    let rank = |n: &&str| order.iter().position(|o| o == n).unwrap_or(order.len());
    lines.sort_by_key(rank);
    let mut s = String::from(
        "| line | tagwire owned µs | tagwire view µs | serde derive µs | simd-json tape µs | \
         derive/owned | derive/view (≥2) | view/tape |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut view_target = Tally::default();
    for line in lines {
        let get = |f: &str| t.get("parse", f, line);
        let (owned, view, derive, tape) = (
            get("tagwire"),
            get("tagwire-view"),
            get("serde-derive"),
            get("simd-json-tape"),
        );
        let (r_owned, _) = ratio(derive, owned, |_| true);
        let (r_view, ok) = ratio(derive, view, |r| r >= 2.0);
        let (r_tape, _) = ratio(view, tape, |_| true);
        view_target.add(ok);
        let _ = writeln!(
            s,
            "| {line} | {} | {} | {} | {} | {r_owned} | {r_view} | {r_tape} |",
            us(owned),
            us(view),
            us(derive),
            us(tape)
        );
    }
    let _ = write!(s, "\nTarget met: derive/view ≥ 2 on {view_target}.\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(group: &str, function: &str, value: &str, median_ns: f64) -> Estimate {
        Estimate {
            group: group.into(),
            function: function.into(),
            value: value.into(),
            median_ns,
        }
    }

    /// What criterion 0.5 writes (abridged: the other statistics are ignored).
    const BENCHMARK: &str = r#"{"group_id":"parse","function_id":"tagwire-view","value_str":"float100","throughput":{"Bytes":6666},"full_id":"parse/tagwire-view/float100","directory_name":"parse/tagwire-view/float100","title":"parse/tagwire-view/float100"}"#;
    const ESTIMATES: &str = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":15100.0,"upper_bound":15900.0},"point_estimate":15500.5,"standard_error":20.0},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":14900.0,"upper_bound":15100.0},"point_estimate":15020.0,"standard_error":12.0},"median_abs_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1},"slope":null,"std_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1}}"#;

    #[test]
    fn reads_the_id_and_the_median_not_the_mean() {
        assert_eq!(
            parse_estimate(BENCHMARK, ESTIMATES).unwrap(),
            est("parse", "tagwire-view", "float100", 15020.0)
        );
        // A benchmark without a function or value (a plain bench_function) still reads.
        let bare = r#"{"group_id":"queue","function_id":null,"value_str":null}"#;
        assert_eq!(
            parse_estimate(bare, ESTIMATES).unwrap(),
            est("queue", "", "", 15020.0)
        );
        let err = parse_estimate(BENCHMARK, r#"{"mean":{"point_estimate":1.0}}"#).unwrap_err();
        assert!(err.to_string().contains("median.point_estimate"), "{err}");
        assert!(parse_estimate("{}", ESTIMATES).is_err());
        assert!(parse_estimate(BENCHMARK, "not json").is_err());
    }

    #[test]
    fn reads_only_the_new_results_of_this_run() {
        let root = std::env::temp_dir().join(format!("xtask-criterion-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (dir, bench) in [
            ("parse/tagwire-view/float100/new", BENCHMARK),
            // criterion's previous run sits in base/: not read.
            ("parse/tagwire-view/float100/base", BENCHMARK),
        ] {
            let dir = root.join(dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("benchmark.json"), bench).unwrap();
            std::fs::write(dir.join("estimates.json"), ESTIMATES).unwrap();
        }
        let found = read_dir(&root, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(found, [est("parse", "tagwire-view", "float100", 15020.0)]);
        // Results older than the run are left out.
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(read_dir(&root, later).unwrap().is_empty());
        assert!(read_dir(&root.join("absent"), SystemTime::UNIX_EPOCH)
            .unwrap()
            .is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn renders_the_encoder_rows_with_every_ratio_and_the_verdicts() {
        let g = "encode/neuron100";
        let mut rows = vec![
            est(g, "tagwire-neuron", "values", 1000.0),
            est(g, "tagwire-compact", "values", 800.0),
            est(g, "derive-prebuilt-neuron", "values", 1500.0),
            est(g, "derive-prebuilt-compact", "values", 1000.0),
            est(g, "derive-built-compact", "values", 2000.0),
            est(g, "floor-compact", "values", 400.0),
        ];
        // A second group with only tagwire rows: its ratios are dashes, not zeros.
        rows.push(est("encode/int10", "tagwire-compact", "tags", 250.0));
        let table = encode_table(&rows);
        assert!(
            table.contains(
                "| neuron100 | values | 1.00 | 0.80 | 1.50 | 1.00 | 2.00 | 0.40 | 1.25 ✗ | 1.50 | 2.00 ✗ |"
            ),
            "{table}"
        );
        assert!(
            table.contains("| int10 | tags | – | 0.25 | – | – | – | – | – | – | – |"),
            "{table}"
        );
        // neuron100 (a named shape) comes before the synthetic groups.
        assert!(table.find("neuron100").unwrap() < table.find("int10").unwrap());
        assert!(
            !table.contains("| neuron100 | tags"),
            "no row without figures"
        );
        assert!(
            table.contains("compact ≥ 1.3 on 0 of 1 rows, derive/tagwire neuron ≥ 1.3 on 1 of 1 rows, tagwire compact/floor ≤ 1.5 on 0 of 1 rows"),
            "{table}"
        );
    }

    #[test]
    fn renders_the_parse_rows_with_every_ratio() {
        let rows = [
            est("parse", "tagwire", "float100", 30750.0),
            est("parse", "tagwire-view", "float100", 15020.0),
            est("parse", "serde-derive", "float100", 28150.0),
            est("parse", "simd-json-tape", "float100", 9840.0),
            est("parse", "tagwire-view", "neuron100", 10000.0),
            est("parse", "serde-derive", "neuron100", 25000.0),
            // Encoder results are not parse rows.
            est("encode/int10", "tagwire-compact", "values", 1.0),
        ];
        let table = parse_table(&rows);
        assert!(
            table.contains("| float100 | 30.75 | 15.02 | 28.15 | 9.84 | 0.92 | 1.87 ✗ | 1.53 |"),
            "{table}"
        );
        assert!(
            table.contains("| neuron100 | – | 10.00 | 25.00 | – | – | 2.50 | – |"),
            "{table}"
        );
        assert!(table.find("neuron100").unwrap() < table.find("float100").unwrap());
        assert!(!table.contains("int10"));
        assert!(table.contains("derive/view ≥ 2 on 1 of 2 rows"), "{table}");
    }
}
