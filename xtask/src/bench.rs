//! `cargo xtask bench`: the benchmarks of issue 12, each step writing its own marked
//! section of `docs/benchmarks.md` (the rest of the file untouched):
//!
//! 1. `pipeline`: `tagwire bench` at 10, 100 and 1000 tags per snapshot, with an SVG
//!    plot of throughput and CPU per message against group size
//!    (`docs/bench-pipeline.svg`);
//! 2. `criterion`: the criterion suite of `benches/benches/encode.rs` (encode and
//!    parse groups), its medians read from `target/criterion` ([`crate::criterion`]);
//! 3. `cli`: `tagwire encode` against the serde derive transcoder, time and
//!    instructions ([`crate::cli_compare`]);
//! 4. `fixed-rate`: the daemon at 2,500 and 5,000 reports/s, memory-only against the
//!    disk cache ([`crate::fixed_rate`]).
//!
//! `cargo xtask bench [--quick]` runs them all; `cargo xtask bench STEP [options]` one
//! (`fixed-rate [--binary PATH] [--seconds N] [--warmup N] [--runs N]
//! [--callgrind-seconds N]` on any build, e.g. to compare two).
//! `--quick` shortens every step (minutes instead of half an hour; noisier figures).
//! Progress goes to stderr. Not part of `.ci/run` (it takes minutes and wants a quiet
//! machine); its parsing and rendering are unit-tested with fixture data.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

use crate::{cli_compare, criterion, fixed_rate, util};

/// Tags per snapshot of each run.
const GROUP_SIZES: [usize; 3] = [10, 100, 1000];
const BEGIN: &str = "<!-- cargo xtask bench: begin (generated, do not edit) -->";
const END: &str = "<!-- cargo xtask bench: end -->";
const STEPS: [&str; 4] = ["pipeline", "criterion", "cli", "fixed-rate"];
const USAGE: &str = "usage: cargo xtask bench [STEP] [--quick] [--seconds N] [--filter REGEX] \
                     [--runs N] [--snapshots N]\n\
                     STEP: pipeline, criterion, cli or fixed-rate (all when omitted); \
                     fixed-rate takes [--binary PATH] [--seconds N] [--warmup N] [--runs N] \
                     [--callgrind-seconds N]";

/// One row of `tagwire bench`'s table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// "ws", "wss" or "raw".
    pub scheme: String,
    /// Messages per second.
    pub msgs_per_s: f64,
    /// CPU cores busy.
    pub cores: f64,
    /// CPU microseconds per message.
    pub cpu_us: f64,
    /// Rate as a fraction of the raw-TCP baseline's.
    pub vs_raw: f64,
}
/// What one `tagwire bench` printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Tags per snapshot.
    pub tags: usize,
    /// Its ws, wss and raw rows.
    pub rows: Vec<Row>,
    /// Peak RSS in MiB.
    pub peak_rss_mib: f64,
}

/// The options of a run (each step reads its own).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Shorter runs everywhere.
    pub quick: bool,
    /// Seconds per `tagwire bench` run (pipeline step).
    pub seconds: Option<u64>,
    /// A criterion filter (regular expression on benchmark ids), e.g. `parse/`.
    pub filter: Option<String>,
    /// Timed runs of each program (cli step).
    pub runs: Option<usize>,
    /// Snapshots in the cli step's timed input.
    pub snapshots: Option<usize>,
}

/// Reads the options after the step name.
pub fn options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        quick: false,
        seconds: None,
        filter: None,
        runs: None,
        snapshots: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = |what: &str| {
            it.next()
                .with_context(|| format!("{flag} takes {what}\n{USAGE}"))
        };
        match flag.as_str() {
            "--quick" => o.quick = true,
            "--seconds" => o.seconds = Some(number(flag, value("a number")?)?),
            "--runs" => o.runs = Some(number(flag, value("a number")?)?),
            "--snapshots" => o.snapshots = Some(number(flag, value("a number")?)?),
            "--filter" => o.filter = Some(value("a regular expression")?.clone()),
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
    }
    Ok(o)
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T> {
    v.parse()
        .ok()
        .with_context(|| format!("{flag} takes a positive whole number, not {v:?}"))
}

fn progress(step: &str, what: &str) {
    eprintln!("[xtask bench {step}] {what}");
}

/// Runs the benchmark steps and writes the docs.
pub fn bench(args: &[String]) -> Result<()> {
    let (steps, rest): (Vec<&str>, &[String]) = match args.first().map(String::as_str) {
        Some("fixed-rate") => return fixed_rate_step(&args[1..]),
        Some(step) if STEPS.contains(&step) => (vec![step], &args[1..]),
        Some(flag) if !flag.starts_with("--") => bail!("unknown step {flag:?}\n{USAGE}"),
        _ => (STEPS.to_vec(), args),
    };
    let o = options(rest)?;
    for (n, step) in steps.iter().enumerate() {
        progress(step, &format!("step {} of {}", n + 1, steps.len()));
        match *step {
            "pipeline" => pipeline_step(&o)?,
            "criterion" => criterion_step(&o)?,
            "cli" => cli_step(&o)?,
            _ => {
                // fixed-rate builds the release binary itself (a no-op after `pipeline`).
                let mut args = Vec::new();
                if o.quick {
                    args.extend(
                        ["--seconds", "3", "--runs", "1", "--callgrind-seconds", "4"]
                            .map(str::to_owned),
                    );
                }
                fixed_rate_step(&args)?;
            }
        }
    }
    Ok(())
}

/// `tagwire bench` by group size, its section and the SVG plot.
fn pipeline_step(o: &Options) -> Result<()> {
    let seconds = o.seconds.unwrap_or(if o.quick { 2 } else { 5 });
    let binary = util::release_tagwire()?;
    let mut runs = Vec::new();
    for tags in GROUP_SIZES {
        progress(
            "pipeline",
            &format!("tagwire bench --tags {tags} --seconds {seconds}"),
        );
        let out = util::output(std::process::Command::new(&binary).args([
            "bench",
            "--seconds",
            &seconds.to_string(),
            "--tags",
            &tags.to_string(),
        ]))?;
        print!("{out}");
        runs.push(parse(tags, &out)?);
    }
    let root = util::workspace_root();
    std::fs::write(root.join("docs/bench-pipeline.svg"), svg(&runs))?;
    let doc = root.join("docs/benchmarks.md");
    let old = std::fs::read_to_string(&doc).unwrap_or_default();
    std::fs::write(&doc, splice(&old, &section(&runs, seconds)))?;
    progress(
        "pipeline",
        &format!("wrote {} and docs/bench-pipeline.svg", show(&doc)),
    );
    Ok(())
}

/// The criterion arguments of a run: shorter warm-up and measurement with `--quick`.
pub fn criterion_args(o: &Options) -> Vec<String> {
    let timing: &[&str] = if o.quick {
        &[
            "--warm-up-time",
            "0.2",
            "--measurement-time",
            "0.5",
            "--sample-size",
            "10",
        ]
    } else {
        &["--warm-up-time", "1", "--measurement-time", "3"]
    };
    let mut args: Vec<String> = ["--noplot"]
        .iter()
        .chain(timing)
        .map(|s| s.to_string())
        .collect();
    args.extend(o.filter.clone());
    args
}

/// The criterion suite (encode and parse groups) and its section.
fn criterion_step(o: &Options) -> Result<()> {
    let args = criterion_args(o);
    let command = format!(
        "cargo bench -p tagwire-benches --bench encode -- {}",
        args.join(" ")
    );
    progress(
        "criterion",
        &format!("{command} (about {} minutes)", if o.quick { 4 } else { 15 }),
    );
    // Results written from now on are this run's (file times are compared; the slack
    // covers file systems with coarse timestamps).
    let since = SystemTime::now() - Duration::from_secs(2);
    let load_before = load_average();
    util::run(
        util::cargo()
            .args(["bench", "-p", "tagwire-benches", "--bench", "encode", "--"])
            .args(&args),
    )?;
    let estimates = criterion::read_dir(&util::target_dir().join("criterion"), since)?;
    if estimates.is_empty() {
        bail!("criterion wrote no results under target/criterion (a filter that matches nothing?)");
    }
    progress("criterion", &format!("{} results read", estimates.len()));
    let body = format!(
        "## Criterion suite (`cargo xtask bench`, step `criterion`)\n\n\
         `{command}` on this machine (`nproc`: {}; load average {load_before} before, {} \
         after), µs per message (encoder) or per snapshot line (parse), criterion's \
         medians. Ratios compare rows of one group in one run; ✗ marks a ratio that \
         misses issue 12's target. The rows are described at the top of \
         `benches/benches/encode.rs`.\n\n### Encoder\n\n{}\n### Parse\n\n\
         `tagwire owned` is `parse_snapshot` (an owned `Snapshot`), `tagwire view` a reused \
         `Parser` returning the borrowed `SnapshotView`, `serde derive` typed structs \
         borrowing the line, `simd-json tape` simd-json's tape alone.\n\n{}",
        nproc(),
        load_average(),
        criterion::encode_table(&estimates),
        criterion::parse_table(&estimates),
    );
    write_section("criterion", &body)
}

/// `tagwire encode` against the serde transcoder, and its section.
fn cli_step(o: &Options) -> Result<()> {
    let plan = cli_compare::Plan {
        snapshots: o.snapshots.unwrap_or(if o.quick { 2_000 } else { 20_000 }),
        callgrind_snapshots: if o.quick { 200 } else { 2_000 },
        runs: o.runs.unwrap_or(if o.quick { 1 } else { 5 }),
    };
    let c = cli_compare::measure(&plan, |what| progress("cli", what))?;
    let body = cli_compare::section(&c, plan.runs);
    print!("{body}");
    write_section("cli", &body)
}

/// Writes `body` between the markers of `step` in `docs/benchmarks.md`.
fn write_section(step: &str, body: &str) -> Result<()> {
    let doc = util::workspace_root().join("docs/benchmarks.md");
    let old = std::fs::read_to_string(&doc).unwrap_or_default();
    std::fs::write(&doc, splice_step(&old, step, body))?;
    progress(step, &format!("wrote its section of {}", show(&doc)));
    Ok(())
}

/// `doc` with the section of `step` (between its own markers) replaced by `body`, or
/// appended when there is none yet.
pub fn splice_step(doc: &str, step: &str, body: &str) -> String {
    let begin = format!("<!-- cargo xtask bench {step}: begin (generated, do not edit) -->");
    let end = format!("<!-- cargo xtask bench {step}: end -->");
    let section = format!("{begin}\n{}\n{end}\n", body.trim_end());
    util::replace_marked(doc, &begin, &end, &section)
}

fn nproc() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// The 1-minute load average, as text ("?" where /proc is missing).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Runs the fixed-rate step and writes its section of `docs/benchmarks.md`.
fn fixed_rate_step(args: &[String]) -> Result<()> {
    fixed_rate::step(args)
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

/// Reads the rows and the peak RSS out of `tagwire bench`'s output.
pub fn parse(tags: usize, out: &str) -> Result<Run> {
    let mut rows = Vec::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let scheme = f.first().copied().unwrap_or_default();
        // Table rows: scheme, msgs/s, tags/s, MB/s, cores, µs/msg, ratio ("0.05x").
        if matches!(scheme, "ws" | "wss" | "raw") && f.len() == 7 && f[6].ends_with('x') {
            let num = |i: usize| -> Result<f64> {
                f[i].trim_end_matches('x')
                    .parse()
                    .with_context(|| format!("column {i} of {line:?}"))
            };
            rows.push(Row {
                scheme: scheme.to_string(),
                msgs_per_s: num(1)?,
                cores: num(4)?,
                cpu_us: num(5)?,
                vs_raw: num(6)?,
            });
        }
    }
    let peak_rss_mib = out
        .lines()
        .find_map(|l| l.strip_prefix("peak RSS "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .context("no peak RSS line in the output of tagwire bench")?;
    if rows.len() != 3 {
        bail!(
            "expected the ws, wss and raw rows in the output of tagwire bench, found {}",
            rows.len()
        );
    }
    Ok(Run {
        tags,
        rows,
        peak_rss_mib,
    })
}

fn row<'a>(run: &'a Run, scheme: &str) -> Option<&'a Row> {
    run.rows.iter().find(|r| r.scheme == scheme)
}

/// The markdown section (between the markers).
fn section(runs: &[Run], seconds: u64) -> String {
    let mut s = format!(
        "{BEGIN}\n## Pipeline throughput by group size (`cargo xtask bench`)\n\n\
         `tagwire bench --seconds {seconds} --tags N` (release build) for N = 10, 100, 1000 on \
         this machine (`nproc`: {}); sender and receiver in one process. `vs raw` is the \
         rate as a fraction of the raw-TCP baseline's.\n\n\
         | tags | row | msgs/s | CPU (cores) | CPU µs/msg | vs raw | peak RSS MiB |\n\
         |---:|---|---:|---:|---:|---:|---:|\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for run in runs {
        for r in &run.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.2} | {:.1} | {:.2}× | {:.1} |",
                run.tags, r.scheme, r.msgs_per_s, r.cores, r.cpu_us, r.vs_raw, run.peak_rss_mib
            );
        }
    }
    s.push_str(
        "\n![ws:// msgs/s and CPU µs per message against tags per snapshot](bench-pipeline.svg)\n",
    );
    s.push_str(END);
    s.push('\n');
    s
}

/// `doc` with the generated section replaced (or appended when there is none).
pub fn splice(doc: &str, section: &str) -> String {
    util::replace_marked(doc, BEGIN, END, section)
}

/// A hand-written SVG: ws:// msgs/s (left axis) and CPU µs per message (right axis)
/// against tags per snapshot on a log scale.
pub fn svg(runs: &[Run]) -> String {
    const W: f64 = 640.0;
    const H: f64 = 360.0;
    const M: f64 = 60.0;
    let points = |value: &dyn Fn(&Row) -> f64| -> Vec<(f64, f64)> {
        runs.iter()
            .filter_map(|run| Some((run.tags as f64, value(row(run, "ws")?))))
            .collect()
    };
    let rate = points(&|r| r.msgs_per_s);
    let cpu = points(&|r| r.cpu_us);
    let (x_min, x_max) = (
        rate.iter()
            .map(|p| p.0)
            .fold(f64::MAX, f64::min)
            .max(1.0)
            .log10(),
        rate.iter().map(|p| p.0).fold(1.0, f64::max).log10(),
    );
    let x = |t: f64| M + (t.log10() - x_min) / (x_max - x_min).max(1e-9) * (W - 2.0 * M);
    let y = |v: f64, top: f64| H - M - v / top.max(1e-9) * (H - 2.0 * M);
    let top_rate = rate.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1;
    let top_cpu = cpu.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1;
    let line = |pts: &[(f64, f64)], top: f64| {
        pts.iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v, top)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n\
         <line x1=\"{M}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <line x1=\"{M}\" y1=\"{M}\" x2=\"{M}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <line x1=\"{r}\" y1=\"{M}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <text x=\"{M}\" y=\"30\" fill=\"#1f77b4\">ws:// msgs/s (max {top_rate:.0})</text>\n\
         <text x=\"{r}\" y=\"30\" text-anchor=\"end\" fill=\"#d62728\">CPU µs/msg (max {top_cpu:.1})</text>\n",
        b = H - M,
        r = W - M,
    );
    for run in runs {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{} tags</text>",
            x(run.tags as f64),
            H - M + 20.0,
            run.tags
        );
    }
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>",
        line(&rate, top_rate)
    );
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 3\" points=\"{}\"/>",
        line(&cpu, top_cpu)
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str =
        "tagwire bench: 100 tags per snapshot, values format, neuron style, 3 s per run
  ws    1s      20000 confirmed

             msgs/s         tags/s       MB/s    CPU (cores) us CPU/msg   vs raw TCP
ws            22520        2274518       65.1           0.46       20.4        0.03x
wss           24073        2431400       69.6           0.52       21.6        0.03x
raw          701835       70885319     2029.3           0.49        0.7        1.00x
raw: the same encoded messages, framed once beforehand and written 64 to a write
peak RSS 15.2 MiB (sender and receiver in one process; the receiver's share is included)
";

    #[test]
    fn parses_the_rows_and_the_peak_rss() {
        let run = parse(100, OUT).unwrap();
        assert_eq!(run.rows.len(), 3);
        assert_eq!(
            run.rows[0],
            Row {
                scheme: "ws".into(),
                msgs_per_s: 22520.0,
                cores: 0.46,
                cpu_us: 20.4,
                vs_raw: 0.03
            }
        );
        assert_eq!(run.rows[2].vs_raw, 1.0);
        assert_eq!(run.peak_rss_mib, 15.2);
        // A table without the raw row is an error, not a silent gap.
        let without_raw: String = OUT
            .lines()
            .filter(|l| !l.starts_with("raw "))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(parse(100, &without_raw).is_err());
    }

    #[test]
    fn renders_a_plot_with_one_point_per_group_size_and_splices_the_section() {
        let runs: Vec<Run> = [10, 100, 1000]
            .iter()
            .map(|&tags| {
                let mut run = parse(100, OUT).unwrap();
                run.tags = tags;
                run.rows[0].msgs_per_s = 1e6 / tags as f64;
                run.rows[0].cpu_us = tags as f64 / 5.0;
                run
            })
            .collect();
        let plot = svg(&runs);
        let polylines: Vec<&str> = plot
            .lines()
            .filter(|l| l.starts_with("<polyline"))
            .collect();
        assert_eq!(polylines.len(), 2);
        for p in polylines {
            let points = p
                .split("points=\"")
                .nth(1)
                .unwrap()
                .trim_end_matches("\"/>");
            assert_eq!(points.split(' ').count(), 3, "{p}");
        }
        // Throughput falls with group size: the first point is the highest (smallest y).
        let first: Vec<f64> = plot
            .lines()
            .find(|l| l.contains("#1f77b4\" stroke-width"))
            .unwrap()
            .split("points=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches("\"/>")
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(first[0] < first[1] && first[1] < first[2], "{first:?}");

        let section = section(&runs, 3);
        let doc = "# Benchmarks\n\nhand-written\n";
        let once = splice(doc, &section);
        assert!(once.starts_with(doc.trim_end()));
        assert!(once.contains("| 1000 | raw |"));
        // Running again replaces the section instead of adding a second one.
        let twice = splice(&once, &section);
        assert_eq!(twice.matches(BEGIN).count(), 1);
        assert_eq!(twice.trim_end(), once.trim_end());
    }
    #[test]
    fn reads_the_options_and_rejects_unknown_ones_by_name() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = options(&args(&["--quick", "--filter", "parse/", "--runs", "3"])).unwrap();
        assert!(o.quick);
        assert_eq!(
            (o.filter.as_deref(), o.runs, o.seconds),
            (Some("parse/"), Some(3), None)
        );
        assert_eq!(
            criterion_args(&o),
            args(&[
                "--noplot",
                "--warm-up-time",
                "0.2",
                "--measurement-time",
                "0.5",
                "--sample-size",
                "10",
                "parse/"
            ])
        );
        let err = options(&args(&["--runs", "many"])).unwrap_err().to_string();
        assert!(err.contains("--runs") && err.contains("\"many\""), "{err}");
        let err = options(&args(&["--fast"])).unwrap_err().to_string();
        assert!(err.contains("\"--fast\"") && err.contains("usage"), "{err}");
        assert!(options(&args(&["--seconds"]))
            .unwrap_err()
            .to_string()
            .contains("--seconds takes"));
        assert!(bench(&args(&["critterion"]))
            .unwrap_err()
            .to_string()
            .contains("unknown step"));
    }

    #[test]
    fn each_step_replaces_only_its_own_section() {
        let doc = "# Benchmarks\n\nhand-written\n";
        let once = splice_step(doc, "cli", "## CLI\n\nfirst\n");
        let both = splice_step(&once, "criterion", "## Criterion\n");
        let again = splice_step(&both, "cli", "## CLI\n\nsecond\n");
        assert!(again.starts_with(doc.trim_end()));
        assert!(
            again.contains("second") && !again.contains("first"),
            "{again}"
        );
        assert!(again.contains("## Criterion"));
        assert_eq!(again.matches("bench cli: begin").count(), 1);
        // The pipeline's own markers are not touched by a step's splice.
        let with_pipeline = splice(&again, "<!-- cargo xtask bench: begin (generated, do not edit) -->\nP\n<!-- cargo xtask bench: end -->\n");
        assert_eq!(
            splice_step(&with_pipeline, "cli", "## CLI\n\nsecond\n"),
            with_pipeline
        );
    }
}
