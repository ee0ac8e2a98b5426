//! The CLI step of `cargo xtask bench`: `tagwire encode --style compact` against the
//! serde derive transcoder (`benches/src/bin/serde_transcode.rs`) on the same NDJSON
//! input (`benches/gen_snapshots.py`): wall and CPU time of N runs each, instruction
//! counts under callgrind when valgrind is installed, and the section of
//! `docs/benchmarks.md` with the ratios (issue 12's target: at most 0.5 on both).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::util;

/// What one program did over the runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measure {
    /// Wall-clock seconds per run.
    pub wall_s: Vec<f64>,
    /// User + system CPU seconds per run.
    pub cpu_s: Vec<f64>,
    /// Instructions under callgrind on the smaller input, when measured.
    pub instructions: Option<u64>,
    /// Lines it wrote for the input (messages).
    pub messages: u64,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Snapshots in the timed input.
    pub snapshots: usize,
    /// Tags per snapshot.
    pub tags: usize,
    /// Snapshots in the callgrind input.
    pub callgrind_snapshots: usize,
    /// Whether both wrote the same bytes for the input.
    pub same_output: bool,
    /// `tagwire encode`.
    pub tagwire: Measure,
    /// The serde transcoder.
    pub serde: Measure,
}

/// Sizes of one comparison run.
pub struct Plan {
    /// Snapshots in the timed input.
    pub snapshots: usize,
    /// Snapshots in the callgrind input.
    pub callgrind_snapshots: usize,
    /// Timed runs of each program.
    pub runs: usize,
}

/// Tags per snapshot: issue 12's comparison is on 100-tag snapshots.
const TAGS: usize = 100;

/// Builds both programs, makes the inputs, times and counts; the inputs are deleted
/// afterwards (the timed one is about 5 KB per snapshot).
pub fn measure(plan: &Plan, progress: impl Fn(&str)) -> Result<Comparison> {
    // Two builds, not one: built together, the two packages' features would be unified
    // into a `tagwire` binary different from the one `cargo build -p tagwire` makes
    // (and every dependency rebuilt each time the other way is used).
    util::release_tagwire()?;
    util::run(util::cargo().args([
        "build",
        "--release",
        "-p",
        "tagwire-benches",
        "--bin",
        "serde_transcode",
    ]))?;
    let release = util::target_dir().join("release");
    let dir = util::target_dir().join("bench-cli");
    std::fs::create_dir_all(&dir)?;
    let result = measure_in(plan, &release, &dir, &progress);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure_in(
    plan: &Plan,
    release: &Path,
    dir: &Path,
    progress: &impl Fn(&str),
) -> Result<Comparison> {
    let input = dir.join("snapshots.ndjson");
    let small = dir.join("callgrind.ndjson");
    progress(&format!(
        "generating {} snapshots of {TAGS} tags",
        plan.snapshots
    ));
    generate(plan.snapshots, &input)?;
    generate(plan.callgrind_snapshots, &small)?;
    let programs: [(PathBuf, &[&str]); 2] = [
        (release.join("tagwire"), &["encode", "--style", "compact"]),
        (release.join("serde_transcode"), &[]),
    ];
    // One run each into files: the counts and the bytes are compared, and the page
    // cache holds the input for the timed runs.
    let mut outputs = Vec::new();
    for (i, (bin, args)) in programs.iter().enumerate() {
        let out = dir.join(format!("out{i}.ndjson"));
        let status = Command::new(bin)
            .args(*args)
            .stdin(std::fs::File::open(&input)?)
            .stdout(std::fs::File::create(&out)?)
            .status()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        if !status.success() {
            bail!("{} failed on the generated input ({status})", bin.display());
        }
        outputs.push(std::fs::read(&out)?);
        std::fs::remove_file(&out)?;
    }
    let mut measures = [Measure::default(), Measure::default()];
    for (m, out) in measures.iter_mut().zip(&outputs) {
        m.messages = out.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    for run in 1..=plan.runs {
        // Alternated, so that a change in the machine's load hits both alike.
        for ((bin, args), m) in programs.iter().zip(measures.iter_mut()) {
            progress(&format!("run {run}/{}: {}", plan.runs, show(bin)));
            let (wall, cpu) = timed(bin, args, &input)?;
            m.wall_s.push(wall);
            m.cpu_s.push(cpu);
        }
    }
    if util::which("valgrind").is_some() {
        for ((bin, args), m) in programs.iter().zip(measures.iter_mut()) {
            progress(&format!("callgrind: {}", show(bin)));
            m.instructions = Some(callgrind(bin, args, &small)?);
        }
    } else {
        progress("valgrind is not installed: no instruction counts");
    }
    let [tagwire, serde] = measures;
    Ok(Comparison {
        snapshots: plan.snapshots,
        tags: TAGS,
        callgrind_snapshots: plan.callgrind_snapshots,
        same_output: outputs[0] == outputs[1],
        tagwire,
        serde,
    })
}

fn show(bin: &Path) -> String {
    bin.file_name().map_or_else(
        || bin.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn generate(snapshots: usize, to: &Path) -> Result<()> {
    let script = util::workspace_root().join("benches/gen_snapshots.py");
    let status = Command::new("python3")
        .arg(&script)
        .args([snapshots.to_string(), TAGS.to_string()])
        .stdout(std::fs::File::create(to)?)
        .status()
        .context("cannot start python3 (needed for benches/gen_snapshots.py)")?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    Ok(())
}

/// Wall seconds and the child's user + system CPU seconds (the shell's `times`, which
/// reports its children after they exit: 10 ms resolution, fine for runs of 0.1 s and
/// more).
fn timed(bin: &Path, args: &[&str], input: &Path) -> Result<(f64, f64)> {
    let start = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            "bin=$1; input=$2; shift 2; \"$bin\" \"$@\" < \"$input\" > /dev/null || exit $?; times",
        )
        .arg("sh")
        .arg(bin)
        .arg(input)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot start sh")?;
    let wall = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("{} failed ({})", bin.display(), out.status);
    }
    Ok((wall, parse_times(&String::from_utf8_lossy(&out.stdout))?))
}

/// The children's user + system seconds from the output of the shell's `times` (its
/// second line: `0m0.350s 0m0.020s`).
pub fn parse_times(out: &str) -> Result<f64> {
    let line = out
        .lines()
        .nth(1)
        .with_context(|| format!("no children's line in the output of times: {out:?}"))?;
    let secs = |field: &str| -> Result<f64> {
        let (m, s) = field
            .strip_suffix('s')
            .and_then(|f| f.split_once('m'))
            .with_context(|| format!("{field:?} is not MmS.SSSs"))?;
        Ok(m.parse::<f64>()? * 60.0 + s.parse::<f64>()?)
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        [user, sys] => Ok(secs(user)? + secs(sys)?),
        _ => bail!("expected user and system time in {line:?}"),
    }
}

fn callgrind(bin: &Path, args: &[&str], input: &Path) -> Result<u64> {
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(bin)
        .args(args)
        .stdin(std::fs::File::open(input)?)
        .stdout(Stdio::null())
        .output()
        .context("cannot start valgrind")?;
    if !out.status.success() {
        bail!("valgrind {} failed ({})", bin.display(), out.status);
    }
    parse_callgrind(&String::from_utf8_lossy(&out.stderr))
}

/// The instruction count from callgrind's summary on stderr (`==123== I   refs:  1,234`,
/// or `Collected : 1234` in older versions).
pub fn parse_callgrind(stderr: &str) -> Result<u64> {
    stderr
        .lines()
        .find_map(|l| {
            let (_, n) = l
                .split_once("I   refs:")
                .or_else(|| l.split_once("Collected :"))?;
            n.trim().replace(',', "").parse().ok()
        })
        .with_context(|| format!("no instruction count in callgrind's output: {stderr:?}"))
}

/// The median of some runs (the one definition, shared with the fixed-rate step).
fn median(v: &[f64]) -> Option<f64> {
    crate::fixed_rate::stats(v).map(|s| s.median)
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.2}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn verdict(r: f64) -> &'static str {
    if r <= 0.5 {
        "met"
    } else {
        "**not met**"
    }
}

/// The markdown body of the CLI section (the caller adds the markers).
pub fn section(c: &Comparison, runs: usize) -> String {
    let mut s = format!(
        "## `tagwire encode` against the serde derive transcoder (`cargo xtask bench`, step `cli`)\n\n\
         `tagwire encode --style compact` (release build of this tree) and \
         `serde_transcode` (`benches/src/bin/serde_transcode.rs`) on the same input, \
         `python3 benches/gen_snapshots.py {n} {t}` ({n} snapshots × {t} tags), output to \
         /dev/null, {runs} run(s) each, alternated; CPU is user + system of the child \
         (the shell's `times`). Messages written: tagwire {mt}, transcoder {ms}; \
         identical bytes: {same}. Target: tagwire / transcoder ≤ 0.5.\n\n\
         | measure | tagwire | serde transcoder | ratio (≤ 0.5) | |\n|---|---:|---:|---:|---|\n",
        n = c.snapshots,
        t = c.tags,
        mt = c.tagwire.messages,
        ms = c.serde.messages,
        same = if c.same_output { "yes" } else { "no" },
    );
    for (what, ours, theirs) in [
        ("wall s", &c.tagwire.wall_s, &c.serde.wall_s),
        ("CPU s", &c.tagwire.cpu_s, &c.serde.cpu_s),
    ] {
        if let (Some(a), Some(b)) = (median(ours), median(theirs)) {
            let r = a / b.max(1e-9);
            let _ = writeln!(
                s,
                "| {what} (runs; ratio of medians) | {} | {} | {r:.3} | {} |",
                list(ours),
                list(theirs),
                verdict(r)
            );
        }
    }
    match (c.tagwire.instructions, c.serde.instructions) {
        (Some(a), Some(b)) => {
            let r = a as f64 / b.max(1) as f64;
            let _ = writeln!(
                s,
                "| instructions (callgrind, {} snapshots) | {:.1} M | {:.1} M | {r:.3} | {} |",
                c.callgrind_snapshots,
                a as f64 / 1e6,
                b as f64 / 1e6,
                verdict(r)
            );
        }
        _ => s.push_str("\nInstructions not counted: valgrind is not installed.\n"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_childrens_cpu_time_from_times() {
        let out = "0m0.001s 0m0.002s\n0m0.350s 0m0.020s\n";
        assert!((parse_times(out).unwrap() - 0.37).abs() < 1e-9);
        assert!((parse_times("0m0.0s 0m0.0s\n1m2.5s 0m0.5s").unwrap() - 63.0).abs() < 1e-9);
        assert!(
            parse_times("0m0.001s 0m0.002s\n").is_err(),
            "no children's line"
        );
        assert!(parse_times("a\n0.35 0.02\n").is_err());
    }

    #[test]
    fn reads_callgrinds_instruction_count() {
        let err = "==29094== Callgrind, a call-graph generating cache profiler\n\
                   ==29094== Events    : Ir\n==29094== Collected : 359281050\n==29094== \n\
                   ==29094== I   refs:      359,281,050\n";
        assert_eq!(parse_callgrind(err).unwrap(), 359_281_050);
        assert_eq!(
            parse_callgrind("==1== I   refs:      12,345\n").unwrap(),
            12_345
        );
        assert!(parse_callgrind("==1== error: no such file\n").is_err());
    }

    fn measure(wall: &[f64], cpu: &[f64], instructions: Option<u64>) -> Measure {
        Measure {
            wall_s: wall.to_vec(),
            cpu_s: cpu.to_vec(),
            instructions,
            messages: 20_000,
        }
    }

    #[test]
    fn renders_medians_ratios_and_verdicts() {
        let c = Comparison {
            snapshots: 20_000,
            tags: 100,
            callgrind_snapshots: 2_000,
            same_output: false,
            tagwire: measure(&[0.31, 0.29, 0.40], &[0.30, 0.28, 0.35], Some(347_600_000)),
            serde: measure(&[0.60, 0.58, 0.59], &[0.58, 0.57, 0.58], Some(699_700_000)),
        };
        let s = section(&c, 3);
        // Medians 0.31 / 0.59 and 0.30 / 0.58, not means or first runs.
        assert!(
            s.contains("| wall s (runs; ratio of medians) | 0.31 / 0.29 / 0.40 | 0.60 / 0.58 / 0.59 | 0.525 | **not met** |"),
            "{s}"
        );
        assert!(s.contains("| CPU s (runs; ratio of medians) | 0.30 / 0.28 / 0.35 | 0.58 / 0.57 / 0.58 | 0.517 | **not met** |"), "{s}");
        assert!(
            s.contains(
                "| instructions (callgrind, 2000 snapshots) | 347.6 M | 699.7 M | 0.497 | met |"
            ),
            "{s}"
        );
        assert!(
            s.contains("Messages written: tagwire 20000, transcoder 20000; identical bytes: no.")
        );
        let without = Comparison {
            tagwire: measure(&[0.3], &[0.3], None),
            ..c
        };
        assert!(section(&without, 1).contains("valgrind is not installed"));
    }
}
