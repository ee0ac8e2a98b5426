//! `cargo xtask bench`: runs `tagwire bench` at 10, 100 and 1000 tags per snapshot and
//! writes the figures into `docs/benchmarks.md` (a section between two markers, the rest
//! of the file untouched) with an SVG plot of throughput and CPU per message against
//! group size (`docs/bench-pipeline.svg`).
//!
//! Then the fixed-rate step ([`crate::fixed_rate`]): the daemon at 2,500 and 5,000
//! reports/s, memory-only against the disk cache, into its own marked section.
//! `cargo xtask bench fixed-rate [--binary PATH] [--seconds N] [--warmup N] [--runs N]`
//! runs that step alone
//! (on any build, e.g. to compare two).
//!
//! Not part of `.ci/run` (it takes minutes and wants a quiet machine). The criterion
//! suite and the CLI comparison are not run by it yet.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::{fixed_rate, util};

/// Tags per snapshot of each run.
const GROUP_SIZES: [usize; 3] = [10, 100, 1000];
const BEGIN: &str = "<!-- cargo xtask bench: begin (generated, do not edit) -->";
const END: &str = "<!-- cargo xtask bench: end -->";

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

/// Runs the benchmark and writes the docs.
pub fn bench(args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) == Some("fixed-rate") {
        return fixed_rate_step(&args[1..]);
    }
    let seconds = match args {
        [] => 5,
        [flag, n] if flag == "--seconds" => n.parse().context("--seconds takes a number")?,
        _ => bail!("usage: cargo xtask bench [--seconds N] | bench fixed-rate [--binary PATH] [--seconds N] [--warmup N] [--runs N]"),
    };
    util::run(util::cargo().args(["build", "--release", "-p", "tagwire"]))?;
    let binary = util::target_dir().join("release/tagwire");
    let mut runs = Vec::new();
    for tags in GROUP_SIZES {
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
    println!("wrote {} and docs/bench-pipeline.svg", show(&doc));
    fixed_rate_step(&["--binary".into(), binary.display().to_string()])
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
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if e > b => {
            let after = &doc[e + END.len()..];
            format!("{}{}{}", &doc[..b], section.trim_end(), after)
        }
        _ => format!("{}\n\n{}", doc.trim_end(), section),
    }
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
}
