//! The fixed-rate step of `cargo xtask bench`: the real daemon (`tagwire run`) at a
//! fixed report rate, memory-only against the disk cache, measured from outside.
//!
//! One simulator south node of ten 100-tag groups (`interval_ms` 4 for 2,500 reports/s,
//! the load of issue 13; 2 for 5,000, issue 12's), one `values` uplink to `tagwire sink
//! --out /dev/null` on loopback, `[api]` on for `/metrics`.
//!
//! One run starts a fresh daemon and sink, waits out a warm-up, then takes CPU from
//! `/proc/PID/stat` (utime and stime apart), bytes written to the device from
//! `/proc/PID/io` (`write_bytes`) and messages from `send_msgs_total` over one window.
//! Runs disagree by more than the targets' margins on a shared machine, so every
//! configuration is run `--runs` times, memory and disk interleaved at each rate (a
//! drift of the machine's load hits both), and the table gives the median and the
//! min–max; the disk/memory ratio is given as the ratio of the medians and as the
//! median of the ratios of runs made side by side. The machine's load average is
//! recorded before and after. The first run of each configuration also runs `strace
//! -c -f -p PID` over a second window (strace slows the daemon, so it has its own
//! message count) and keeps the write-latency line the daemon logs at stop.
//!
//! The CPU window is timed by `perf stat -e instructions,context-switches -p PID`
//! when `perf` is installed: instructions per message vary far less between runs than
//! CPU time on a shared machine, and context switches per message show the wake-ups.
//! Where the machine has no hardware counters (most VMs: `perf` reports instructions as
//! `<not supported>`) the column says `n/a` and the section says why; where `perf` is
//! missing, both columns do.
//!
//! Linux only (procfs, strace); not run by `.ci/run`.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::util::free_port;

const BEGIN: &str = "<!-- cargo xtask bench fixed-rate: begin (generated, do not edit) -->";
const END: &str = "<!-- cargo xtask bench fixed-rate: end -->";
/// Groups of the simulator node; 100 tags each (99 plus `counter`).
const GROUPS: usize = 10;
/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`, 100 on Linux).
const CLK_TCK: f64 = 100.0;
/// The usage line of `cargo xtask bench fixed-rate`.
pub const USAGE: &str = "usage: cargo xtask bench fixed-rate [--binary PATH] [--seconds N] \
                         [--warmup N] [--runs N] [--callgrind-seconds N]";
/// The simulator interval of the callgrind run: 500 reports/s, slow enough for
/// valgrind, with the same ten messages per tick as at 5,000/s.
const CALLGRIND_INTERVAL_MS: u32 = 20;

/// How the step runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The binary to measure (`None`: this tree's release build, built first).
    pub binary: Option<PathBuf>,
    /// Seconds of each measured window (CPU, and strace's).
    pub seconds: u64,
    /// Seconds after the start before the CPU window opens.
    pub warmup: u64,
    /// Runs of each configuration.
    pub runs: usize,
    /// Seconds of the callgrind window (0: no callgrind run).
    pub callgrind_seconds: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            binary: None,
            seconds: 12,
            warmup: 3,
            runs: 5,
            callgrind_seconds: 10,
        }
    }
}

impl Options {
    /// Parses the step's flags (the words after `fixed-rate`).
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .with_context(|| format!("{flag} takes a value; {USAGE}"))?;
            let number = || -> Result<u64> {
                value
                    .parse()
                    .with_context(|| format!("{flag} takes a whole number, got {value:?}"))
            };
            match flag.as_str() {
                "--binary" => o.binary = Some(PathBuf::from(value)),
                "--seconds" => o.seconds = number()?,
                "--warmup" => o.warmup = number()?,
                "--runs" => o.runs = number()? as usize,
                "--callgrind-seconds" => o.callgrind_seconds = number()?,
                _ => bail!("unknown flag {flag:?}; {USAGE}"),
            }
        }
        if o.seconds == 0 || o.runs == 0 {
            bail!("--seconds and --runs must be at least 1");
        }
        Ok(o)
    }
}

/// What one run of one configuration measured over its CPU window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Messages delivered per second.
    pub msgs_per_s: f64,
    /// Daemon CPU (user + system) per delivered message, µs.
    pub cpu_us: f64,
    /// Of which user time, µs.
    pub user_us: f64,
    /// Of which system time, µs.
    pub sys_us: f64,
    /// Bytes the daemon caused to be written to the device per message.
    pub written_per_msg: f64,
    /// Instructions per message (`perf stat`), when the machine counts them.
    pub instructions_per_msg: Option<f64>,
    /// Context switches per message (`perf stat`), when `perf` ran.
    pub switches_per_msg: Option<f64>,
}

/// What `perf stat` counted over a window; `None` for an event it could not count.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PerfCounts {
    /// `instructions` (a hardware counter: absent in most VMs).
    pub instructions: Option<u64>,
    /// `context-switches` (a software counter).
    pub switches: Option<u64>,
}

/// The counts out of `perf stat -x ,` output (`value,unit,event,...` per line; the value
/// is `<not supported>` or `<not counted>` for an event it could not count).
pub fn parse_perf_stat(text: &str) -> PerfCounts {
    let mut counts = PerfCounts::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 3 {
            continue;
        }
        let value = f[0].trim().parse::<u64>().ok();
        // Event names may carry a modifier (`instructions:u`).
        match f[2].split(':').next().unwrap_or_default() {
            "instructions" => counts.instructions = value,
            "context-switches" | "cs" => counts.switches = value,
            _ => {}
        }
    }
    counts
}

/// What strace and the daemon's log gave on a configuration's first run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Traced {
    /// Syscalls per message under strace.
    pub syscalls_per_msg: f64,
    /// The strace counts of interest, per message (see [`ITEMISED`]).
    pub per_msg: Vec<(String, f64)>,
    /// The daemon's write latency (`p50=… p99=… max=…`), if it logged it.
    pub latency: String,
}

/// One configuration over all its runs.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedRow {
    /// Nominal reports per second.
    pub rate: u32,
    /// "memory" or "disk".
    pub cache: &'static str,
    /// One per run, in the order run.
    pub samples: Vec<Sample>,
    /// From the first run.
    pub traced: Traced,
}

/// The median and range of some figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// The middle value (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

/// The median and range of `values` (`None` when empty or when one is NaN).
pub fn stats(values: &[f64]) -> Option<Stats> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Stats {
        median,
        min: v[0],
        max: v[n - 1],
    })
}

impl FixedRow {
    /// The stats of one figure over the runs.
    fn stat(&self, figure: impl Fn(&Sample) -> f64) -> Stats {
        stats(&self.samples.iter().map(figure).collect::<Vec<_>>()).expect("at least one run")
    }

    /// The stats of a figure not every machine gives: `None` unless every run has it.
    fn stat_of_counted(&self, figure: impl Fn(&Sample) -> Option<f64>) -> Option<Stats> {
        let values: Option<Vec<f64>> = self.samples.iter().map(figure).collect();
        stats(&values?)
    }
}

/// A counted figure's cell: `median (min–max)`, or `n/a`.
fn counted_cell(s: Option<Stats>, decimals: usize) -> String {
    s.map_or_else(|| "n/a".to_string(), |s| range(s, decimals))
}

/// The disk/memory CPU ratio of one rate: the ratio of the medians, and the stats of
/// the ratios of runs made side by side (run i of disk over run i of memory).
pub fn ratios(memory: &FixedRow, disk: &FixedRow) -> (f64, Stats) {
    let of_medians = disk.stat(|s| s.cpu_us).median / memory.stat(|s| s.cpu_us).median;
    let paired: Vec<f64> = memory
        .samples
        .iter()
        .zip(&disk.samples)
        .map(|(m, d)| d.cpu_us / m.cpu_us)
        .collect();
    (of_medians, stats(&paired).expect("at least one pair"))
}

/// Syscalls itemised in the table (`pwrite64`: the disk cache's writes since segment
/// files are recycled and written at an offset).
const ITEMISED: [&str; 6] = [
    "futex",
    "write",
    "pwrite64",
    "sendto",
    "epoll_wait",
    "fdatasync",
];

/// The configurations: (reports/s, simulator interval in ms).
const RATES: [(u32, u32); 2] = [(2_500, 4), (5_000, 2)];
const CACHES: [&str; 2] = ["memory", "disk"];

/// Measures every configuration `options.runs` times with `binary`, memory and disk
/// interleaved at each rate; prints a progress line per run.
pub fn measure(binary: &Path, options: &Options) -> Result<Vec<FixedRow>> {
    let work = crate::util::target_dir().join("fixed-rate");
    let mut rows: Vec<FixedRow> = Vec::new();
    let total = RATES.len() * CACHES.len() * options.runs;
    let mut done = 0;
    for (rate, interval) in RATES {
        for run in 0..options.runs {
            for cache in CACHES {
                let trace = run == 0;
                let (sample, traced) = measure_one(binary, &work, interval, cache, options, trace)
                    .with_context(|| format!("fixed-rate run {rate}/s {cache}"))?;
                done += 1;
                println!(
                    "fixed-rate [{done}/{total}] {rate}/s {cache:6} run {}: {:.0} msgs/s, \
                     {:.1} µs/msg CPU ({:.1} user, {:.1} system), {:.0} B/msg written; load {}",
                    run + 1,
                    sample.msgs_per_s,
                    sample.cpu_us,
                    sample.user_us,
                    sample.sys_us,
                    sample.written_per_msg,
                    load_average().unwrap_or_default()
                );
                match rows.iter_mut().find(|r| r.rate == rate && r.cache == cache) {
                    Some(row) => row.samples.push(sample),
                    None => rows.push(FixedRow {
                        rate,
                        cache,
                        samples: vec![sample],
                        traced: traced.unwrap_or_default(),
                    }),
                }
            }
        }
    }
    Ok(rows)
}

/// The first three fields of `/proc/loadavg` (1, 5 and 15 minutes).
pub fn load_average() -> Result<String> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg")?)
}

/// `1.23 0.98 0.75` out of a `/proc/loadavg` line.
pub fn parse_loadavg(text: &str) -> Result<String> {
    let f: Vec<&str> = text.split_whitespace().take(3).collect();
    if f.len() < 3 || f.iter().any(|v| v.parse::<f64>().is_err()) {
        bail!("unexpected /proc/loadavg: {text:?}");
    }
    Ok(f.join(" "))
}

/// Kills the child when dropped (a failed run leaves no daemon behind).
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One run: a fresh sink and daemon, the CPU window, and with `trace` the strace window.
fn measure_one(
    binary: &Path,
    work: &Path,
    interval_ms: u32,
    cache: &'static str,
    options: &Options,
    trace: bool,
) -> Result<(Sample, Option<Traced>)> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;
    let sink_port = free_port()?;
    let api_port = free_port()?;
    let _sink = start_sink(binary, sink_port)?;
    let config = work.join("fixed-rate.toml");
    std::fs::write(
        &config,
        config_text(sink_port, api_port, interval_ms, cache, &work.join("cache")),
    )?;
    let log = work.join("daemon.log");
    let daemon = Command::new(binary)
        .args(["run", "--config"])
        .arg(&config)
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting tagwire run")?;
    let pid = daemon.id();
    let mut daemon = Guard(daemon);
    std::thread::sleep(Duration::from_secs(options.warmup));
    let seconds = options.seconds;
    let metrics = || sent(&http_get(api_port, "/metrics")?);
    let (cpu0, io0, m0) = (cpu_ticks(pid)?, write_bytes(pid)?, metrics()?);
    let perf = perf_window(pid, work, seconds);
    let (cpu1, io1, m1) = (cpu_ticks(pid)?, write_bytes(pid)?, metrics()?);
    let msgs = (m1 - m0).max(1) as f64;
    let per_msg = |ticks: u64| ticks as f64 / CLK_TCK * 1e6 / msgs;
    let sample = Sample {
        msgs_per_s: msgs / seconds as f64,
        cpu_us: per_msg(cpu1.0 + cpu1.1 - cpu0.0 - cpu0.1),
        user_us: per_msg(cpu1.0 - cpu0.0),
        sys_us: per_msg(cpu1.1 - cpu0.1),
        written_per_msg: (io1 - io0) as f64 / msgs,
        instructions_per_msg: perf.and_then(|p| p.instructions).map(|n| n as f64 / msgs),
        switches_per_msg: perf.and_then(|p| p.switches).map(|n| n as f64 / msgs),
    };
    let traced = if trace {
        Some(strace_window(pid, work, seconds, metrics)?)
    } else {
        None
    };
    signal(pid, "TERM")?;
    let _ = daemon.0.wait();
    let traced = traced.map(|mut t| {
        t.latency = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .find_map(latency)
            .unwrap_or_default();
        t
    });
    Ok((sample, traced))
}

/// Waits out the CPU window of `seconds` under `perf stat -p PID` (counting, not
/// sampling: it does not slow the daemon). `None` when `perf` is missing or failed; the
/// window is then waited out without it.
fn perf_window(pid: u32, work: &Path, seconds: u64) -> Option<PerfCounts> {
    let window = Duration::from_secs(seconds);
    let start = std::time::Instant::now();
    let out = work.join("perf-stat.txt");
    let status = Command::new("perf")
        .args([
            "stat",
            "-x",
            ",",
            "-e",
            "instructions,context-switches",
            "-p",
        ])
        .arg(pid.to_string())
        .arg("-o")
        .arg(&out)
        .args(["--", "sleep", &seconds.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let counted = matches!(status, Ok(s) if s.success());
    // Whatever perf did, the window lasts `seconds`.
    std::thread::sleep(window.saturating_sub(start.elapsed()));
    counted.then(|| parse_perf_stat(&std::fs::read_to_string(&out).unwrap_or_default()))
}

/// What the callgrind run gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Callgrind {
    /// Not asked for (`--callgrind-seconds 0`).
    Off,
    /// It could not run; why.
    Failed(String),
    /// Instructions of the whole daemon over a window, and the messages delivered in it.
    Counted {
        /// Messages delivered in the window.
        messages: u64,
        /// Instructions executed by the daemon in the window.
        instructions: u64,
    },
}

/// `tagwire sink` on `port`, writing to /dev/null, stopped when the guard drops.
fn start_sink(binary: &Path, port: u16) -> Result<Guard> {
    Ok(Guard(
        Command::new(binary)
            .args(["sink", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--out", "/dev/null"])
            .stderr(Stdio::null())
            .spawn()
            .context("starting tagwire sink")?,
    ))
}

/// The memory-only daemon at 500 reports/s under `valgrind --tool=callgrind`: its
/// instructions over `seconds` (counters zeroed and dumped with `callgrind_control`
/// around the window, so start-up does not count) per delivered message. Exact where
/// CPU time is not, and available where `perf` cannot count instructions.
pub fn callgrind_run(binary: &Path, work: &Path, seconds: u64) -> Result<(u64, u64)> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;
    let (sink_port, api_port) = (free_port()?, free_port()?);
    let _sink = start_sink(binary, sink_port)?;
    let config = work.join("callgrind.toml");
    let text = config_text(sink_port, api_port, CALLGRIND_INTERVAL_MS, "memory", work);
    std::fs::write(&config, text)?;
    let out = work.join("callgrind.out");
    let daemon = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(binary)
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("valgrind.log"))?)
        .spawn()
        .context("starting valgrind (apt-get install valgrind)")?;
    let pid = daemon.id();
    let mut daemon = Guard(daemon);
    let metrics = || sent(&http_get(api_port, "/metrics")?);
    // Valgrind starts slowly: wait for the first deliveries, then as long again.
    let start = std::time::Instant::now();
    while metrics().unwrap_or(0) == 0 {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the daemon under valgrind delivered nothing in 60 s");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(start.elapsed());
    let control = |what: &str| {
        crate::util::run(
            Command::new("callgrind_control")
                .arg(what)
                .arg(pid.to_string())
                .stdout(Stdio::null()),
        )
    };
    control("-z")?;
    let m0 = metrics()?;
    std::thread::sleep(Duration::from_secs(seconds));
    let m1 = metrics()?;
    control("-d")?;
    signal(pid, "TERM")?;
    let _ = daemon.0.wait();
    // The dump asked for is part 1; the one at exit (part 0, unnumbered) is not used.
    let dump = std::fs::read_to_string(work.join("callgrind.out.1"))
        .context("reading the callgrind dump")?;
    Ok((m1 - m0, parse_callgrind_summary(&dump)?))
}

/// The `summary:` (or `totals:`) instruction count of a callgrind dump.
pub fn parse_callgrind_summary(dump: &str) -> Result<u64> {
    dump.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .context("no summary line in the callgrind dump")?
        .split_whitespace()
        .next()
        .context("empty summary line")?
        .parse()
        .context("callgrind summary")
}

/// `strace -c -f -p PID` over `seconds`: syscalls per message delivered meanwhile.
fn strace_window(
    pid: u32,
    work: &Path,
    seconds: u64,
    metrics: impl Fn() -> Result<u64>,
) -> Result<Traced> {
    let strace_out = work.join("strace.txt");
    let mut strace = Guard(
        Command::new("strace")
            .args(["-c", "-f", "-p", &pid.to_string(), "-o"])
            .arg(&strace_out)
            .stderr(Stdio::null())
            .spawn()
            .context("starting strace (apt-get install strace)")?,
    );
    std::thread::sleep(Duration::from_millis(500));
    let s0 = metrics()?;
    std::thread::sleep(Duration::from_secs(seconds));
    let s1 = metrics()?;
    signal(strace.0.id(), "INT")?;
    let _ = strace.0.wait();
    let counts = parse_strace(&std::fs::read_to_string(&strace_out)?)?;
    let traced = (s1 - s0).max(1) as f64;
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    Ok(Traced {
        syscalls_per_msg: total as f64 / traced,
        per_msg: ITEMISED
            .iter()
            .map(|name| {
                let n = counts
                    .iter()
                    .find(|(c, _)| c == name)
                    .map_or(0, |(_, n)| *n);
                (name.to_string(), n as f64 / traced)
            })
            .collect(),
        latency: String::new(),
    })
}

fn config_text(sink: u16, api: u16, interval_ms: u32, cache: &str, dir: &Path) -> String {
    let mut s = format!(
        "[api]\nlisten = \"127.0.0.1:{api}\"\n\n[[south]]\nname = \"sim\"\nkind = \"simulator\"\n"
    );
    for g in 0..GROUPS {
        let _ = write!(
            s,
            "[[south.groups]]\nname = \"g{g}\"\ninterval_ms = {interval_ms}\ntags = 99\n"
        );
    }
    let _ = write!(
        s,
        "\n[[north]]\nname = \"sink\"\nurl = \"ws://127.0.0.1:{sink}/\"\nformat = \"values\"\n"
    );
    if cache == "disk" {
        let _ = write!(
            s,
            "[north.cache]\ndir = \"{}\"\ndisk_mb = 256\nsync = 1000\n",
            dir.display()
        );
    }
    s
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    crate::util::run(Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]))
}

fn http_get(port: u16, path: &str) -> Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

/// `p50=… p99=… max=…` out of the daemon's `write latency` log line.
pub fn latency(line: &str) -> Option<String> {
    let rest = &line[line.find("write latency")?..];
    let from = rest.find("p50=")?;
    let to = rest[from..].find(" (").map_or(rest.len(), |i| from + i);
    Some(rest[from..to].to_string())
}

/// The sum of `send_msgs_total` over every node in an OpenMetrics text.
pub fn sent(metrics: &str) -> Result<u64> {
    let mut found = false;
    let mut sum = 0;
    for line in metrics.lines() {
        if line.starts_with("send_msgs_total") {
            let v = line.split_whitespace().last().unwrap_or_default();
            sum += v
                .parse::<f64>()
                .with_context(|| format!("send_msgs_total value in {line:?}"))?
                as u64;
            found = true;
        }
    }
    if !found {
        bail!("no send_msgs_total in /metrics");
    }
    Ok(sum)
}

/// (utime, stime) of `/proc/PID/stat` (fields 14 and 15), in clock ticks.
fn cpu_ticks(pid: u32) -> Result<(u64, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

/// (utime, stime) out of a `/proc/PID/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from its closing parenthesis.
pub fn parse_stat(stat: &str) -> Result<(u64, u64)> {
    let rest = &stat[stat.rfind(')').context("no ')' in /proc/PID/stat")? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let get = |i: usize| -> Result<u64> {
        f.get(i - 3)
            .context("short /proc/PID/stat")?
            .parse()
            .context("/proc/PID/stat field")
    };
    Ok((get(14)?, get(15)?))
}

fn write_bytes(pid: u32) -> Result<u64> {
    parse_io(&std::fs::read_to_string(format!("/proc/{pid}/io"))?)
}

/// `write_bytes` out of `/proc/PID/io`.
pub fn parse_io(io: &str) -> Result<u64> {
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .context("no write_bytes in /proc/PID/io")?
        .trim()
        .parse()
        .context("write_bytes")
}

/// (syscall, calls) out of `strace -c`'s summary table.
pub fn parse_strace(out: &str) -> Result<Vec<(String, u64)>> {
    let mut counts = Vec::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // % time, seconds, usecs/call, calls, [errors,] syscall; skip header, rules, total.
        if f.len() < 5 || f[0].parse::<f64>().is_err() {
            continue;
        }
        let name = f[f.len() - 1];
        if name == "total" {
            continue;
        }
        counts.push((
            name.to_string(),
            f[3].parse().context("strace calls column")?,
        ));
    }
    if counts.is_empty() {
        bail!("no rows in strace's summary");
    }
    Ok(counts)
}

/// `median (min–max)` with `decimals` places.
fn range(s: Stats, decimals: usize) -> String {
    format!(
        "{:.d$} ({:.d$}–{:.d$})",
        s.median,
        s.min,
        s.max,
        d = decimals
    )
}

/// The markdown section (between its markers). `load` is the load average before and
/// after the runs.
pub fn section(
    rows: &[FixedRow],
    callgrind: &Callgrind,
    options: &Options,
    binary: &Path,
    load: (&str, &str),
) -> String {
    let runs = rows.first().map_or(0, |r| r.samples.len());
    let mut s = format!(
        "{BEGIN}\n### Fixed-rate daemon runs (`cargo xtask bench`, step `fixed-rate`)\n\n\
         `tagwire run` ({}), ten simulator groups of 100 tags, one `values` uplink to \
         `tagwire sink --out /dev/null` on loopback; memory-only or `[north.cache]` \
         (`sync = 1000`). Each configuration run {runs} times, memory and disk \
         interleaved, a fresh daemon each time: CPU (`/proc/PID/stat`) and bytes written \
         (`/proc/PID/io`) over {} s after {} s of warm-up, per delivered message \
         (`send_msgs_total`); median (min–max) over the runs. Syscalls from `strace -c \
         -f -p` over another {} s of each configuration's first run. Load average \
         (1, 5, 15 min) before: {}; after: {}.\n\n\
         | reports/s | cache | msgs/s | CPU µs/msg | user µs | system µs | instructions/msg | switches/msg | written B/msg | syscalls/msg | {} | write latency |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|{}---|\n",
        binary.display(),
        options.seconds,
        options.warmup,
        options.seconds,
        load.0,
        load.1,
        ITEMISED.join(" | "),
        "---:|".repeat(ITEMISED.len()),
    );
    for r in rows {
        let _ = write!(
            s,
            "| {} | {} | {:.0} | {} | {:.1} | {:.1} | {} | {} | {:.0} | {:.2} |",
            r.rate,
            r.cache,
            r.stat(|x| x.msgs_per_s).median,
            range(r.stat(|x| x.cpu_us), 1),
            r.stat(|x| x.user_us).median,
            r.stat(|x| x.sys_us).median,
            counted_cell(r.stat_of_counted(|x| x.instructions_per_msg), 0),
            counted_cell(r.stat_of_counted(|x| x.switches_per_msg), 2),
            r.stat(|x| x.written_per_msg).median,
            r.traced.syscalls_per_msg
        );
        for (_, v) in &r.traced.per_msg {
            let _ = write!(s, " {v:.2} |");
        }
        let _ = writeln!(s, " {} |", r.traced.latency.trim());
    }
    let all = |f: fn(&Sample) -> Option<f64>| {
        rows.iter().flat_map(|r| &r.samples).all(|x| f(x).is_some())
    };
    if !all(|x| x.switches_per_msg) {
        s.push_str(
            "\nInstructions and context switches per message: **n/a**, `perf` did not run \
             (install it: `apt-get install linux-perf`).\n",
        );
    } else if !all(|x| x.instructions_per_msg) {
        s.push_str(
            "\nInstructions per message: **n/a** on this machine: `perf stat` reports \
             `instructions` as `<not supported>` (no hardware counters, as in most VMs). \
             Compare builds by their instructions under callgrind instead (the daemon under \
             `valgrind --tool=callgrind`, counters zeroed and dumped around a window with \
             `callgrind_control`); context switches are counted.\n",
        );
    }
    match callgrind {
        Callgrind::Off => {}
        Callgrind::Failed(why) => {
            let _ = writeln!(
                s,
                "\nInstructions per message under callgrind: **n/a** ({why})."
            );
        }
        Callgrind::Counted {
            messages,
            instructions,
        } => {
            let _ = writeln!(
                s,
                "\nInstructions per message under callgrind (memory-only, {} reports/s: \
                 the same ten messages per tick, slow enough for valgrind; {} s window, \
                 start-up excluded): **{:.0}** ({instructions} instructions, {messages} \
                 messages). The figure to compare builds by: it does not depend on the load.",
                1000 / CALLGRIND_INTERVAL_MS * GROUPS as u32,
                options.callgrind_seconds,
                *instructions as f64 / (*messages).max(1) as f64
            );
        }
    }
    for pair in rows.chunks(2) {
        if let [m, d] = pair {
            let (of_medians, paired) = ratios(m, d);
            let _ = writeln!(
                s,
                "\nAt {}/s: disk / memory CPU **{of_medians:.2}×** (ratio of the medians); \
                 run by run {}; syscalls added by the disk cache **{:+.2}/msg**.",
                m.rate,
                range(paired, 2),
                d.traced.syscalls_per_msg - m.traced.syscalls_per_msg
            );
        }
    }
    s.push_str(END);
    s.push('\n');
    s
}

/// `doc` with this step's section replaced (or appended).
pub fn splice(doc: &str, section: &str) -> String {
    crate::util::replace_marked(doc, BEGIN, END, section)
}

/// `cargo xtask bench fixed-rate ARGS`: measures (building this tree's release binary
/// first unless `--binary` names one) and writes its section of `docs/benchmarks.md`.
pub fn step(args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    let binary = match &options.binary {
        Some(b) => b.clone(),
        None => crate::util::release_tagwire()?,
    };
    if !binary.exists() {
        bail!(
            "{}: no such binary (cargo build --release -p tagwire, or --binary PATH)",
            binary.display()
        );
    }
    println!(
        "fixed-rate: {} runs of 4 configurations, {} s warm-up + {} s each (plus strace on \
         the first), then callgrind for {} s: about {} min",
        options.runs,
        options.warmup,
        options.seconds,
        options.callgrind_seconds,
        (options.runs as u64 * 4 * (options.warmup + options.seconds + 1)
            + 4 * (options.seconds + 1)
            + 2 * options.callgrind_seconds
            + 20)
            .div_ceil(60)
    );
    let before = load_average()?;
    let rows = measure(&binary, &options)?;
    let after = load_average()?;
    let callgrind = if options.callgrind_seconds == 0 {
        Callgrind::Off
    } else {
        println!(
            "fixed-rate: the daemon under callgrind, {} s window",
            options.callgrind_seconds
        );
        let work = crate::util::target_dir().join("fixed-rate");
        match callgrind_run(&binary, &work, options.callgrind_seconds) {
            Ok((messages, instructions)) => Callgrind::Counted {
                messages,
                instructions,
            },
            Err(e) => Callgrind::Failed(format!("{e:#}")),
        }
    };
    let section = section(&rows, &callgrind, &options, &binary, (&before, &after));
    print!("{section}");
    let doc = crate::util::workspace_root().join("docs/benchmarks.md");
    let old = std::fs::read_to_string(&doc).unwrap_or_default();
    std::fs::write(&doc, splice(&old, &section))?;
    println!("wrote {}", doc.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_io_loadavg_metrics_and_strace() {
        let stat = "1234 (tag wire) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0";
        assert_eq!(parse_stat(stat).unwrap(), (250, 50));
        assert!(parse_stat("1234 (x) S 1 2").is_err());
        let io = "rchar: 10\nwchar: 20\nread_bytes: 0\nwrite_bytes: 4096\n";
        assert_eq!(parse_io(io).unwrap(), 4096);
        assert_eq!(
            parse_loadavg("1.52 0.98 0.75 3/412 12345\n").unwrap(),
            "1.52 0.98 0.75"
        );
        assert!(parse_loadavg("1.52 x").is_err());
        let m = "# TYPE send_msgs_total counter\nsend_msgs_total{node=\"a\"} 100\n\
                 send_msgs_total{node=\"b\"} 23\nlink_state{node=\"a\"} 1\n";
        assert_eq!(sent(m).unwrap(), 123);
        assert!(sent("link_state 1\n").is_err());
        let strace = "% time     seconds  usecs/call     calls    errors syscall\n\
            ------ ----------- ----------- --------- --------- ----------------\n \
             40.00    0.004000           4      1000           sendto\n \
             30.00    0.003000           3       900       120 futex\n \
             30.00    0.003000           3        50           fdatasync\n\
            ------ ----------- ----------- --------- --------- ----------------\n\
            100.00    0.010000           3      1950       120 total\n";
        assert_eq!(
            parse_strace(strace).unwrap(),
            vec![
                ("sendto".to_string(), 1000),
                ("futex".to_string(), 900),
                ("fdatasync".to_string(), 50)
            ]
        );
        assert!(parse_strace("nothing\n").is_err());
        let log = "2026-11-29T22:00:00Z INFO write latency uplink=sink p50=0.75ms p99=1.5ms \
                   max=8ms (report to first write, 43780 messages)";
        assert_eq!(latency(log).unwrap(), "p50=0.75ms p99=1.5ms max=8ms");
        assert_eq!(latency("INFO stopped"), None);
    }

    #[test]
    fn parses_perf_stat_with_and_without_hardware_counters() {
        let vm = "# started on Mon Nov 30 04:52:44 2026\n\n\
                  <not supported>,,instructions,0,100.00,,\n\
                  5,,context-switches,6895483,100.00,,\n";
        let counts = parse_perf_stat(vm);
        assert_eq!(counts.instructions, None);
        assert_eq!(counts.switches, Some(5));
        let metal = "61234567,,instructions:u,1000,100.00,0.9,insn per cycle\n\
                     812,,cs,1000,100.00,,\n";
        assert_eq!(
            parse_perf_stat(metal),
            PerfCounts {
                instructions: Some(61_234_567),
                switches: Some(812)
            }
        );
        assert_eq!(parse_perf_stat(""), PerfCounts::default());
    }

    #[test]
    fn instructions_are_shown_when_counted_and_explained_when_not() {
        let render = |rows: &[FixedRow]| {
            section(
                rows,
                &Callgrind::Off,
                &Options::default(),
                Path::new("tagwire"),
                ("1.00 0.50 0.25", "1.10 0.60 0.30"),
            )
        };
        // A VM: no instructions, switches counted.
        let vm = [row("memory", &[20.0], 1.0), row("disk", &[25.0], 2.5)];
        let s = render(&vm);
        assert!(s.contains("| n/a | 0.20 (0.20–0.20) |"), "{s}");
        assert!(s.contains("`<not supported>`"), "{s}");
        // Counted on every run: median and range, no explanation.
        let mut counted = vm.clone();
        for (r, n) in counted
            .iter_mut()
            .zip([[60_000.0, 58_000.0, 62_000.0], [70e3, 70e3, 70e3]])
        {
            r.samples = n
                .iter()
                .map(|n| Sample {
                    instructions_per_msg: Some(*n),
                    ..sample(20.0)
                })
                .collect();
        }
        let s = render(&counted);
        assert!(
            s.contains("| 60000 (58000–62000) | 0.20 (0.20–0.20) |"),
            "{s}"
        );
        assert!(!s.contains("n/a"), "{s}");
        // One run without: not a median of some runs.
        counted[0].samples[1].instructions_per_msg = None;
        assert!(render(&counted).contains("| n/a |"));
        // No perf at all.
        let mut none = vm.clone();
        none[0].samples[0].switches_per_msg = None;
        assert!(render(&none).contains("`perf` did not run"));
    }

    #[test]
    fn reads_a_callgrind_summary_and_says_why_there_is_none() {
        let dump = "# callgrind format\nversion: 1\nevents: Ir\nsummary: 292300462\n\nfn=(1) x\n";
        assert_eq!(parse_callgrind_summary(dump).unwrap(), 292_300_462);
        assert_eq!(parse_callgrind_summary("totals: 12\n").unwrap(), 12);
        assert!(parse_callgrind_summary("events: Ir\n").is_err());
        let s = section(
            &[row("memory", &[20.0], 1.0), row("disk", &[25.0], 2.5)],
            &Callgrind::Failed("starting valgrind (apt-get install valgrind)".into()),
            &Options::default(),
            Path::new("tagwire"),
            ("1 1 1", "1 1 1"),
        );
        assert!(
            s.contains("under callgrind: **n/a** (starting valgrind (apt-get install valgrind))"),
            "{s}"
        );
    }

    #[test]
    fn options_have_defaults_and_name_a_bad_flag() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(Options::parse(&[]).unwrap(), Options::default());
        let o = Options::parse(&args(&["--runs", "3", "--seconds", "8", "--binary", "b"])).unwrap();
        assert_eq!((o.runs, o.seconds, o.warmup), (3, 8, 3));
        assert_eq!(o.callgrind_seconds, 10);
        let off = Options::parse(&args(&["--callgrind-seconds", "0"])).unwrap();
        assert_eq!(off.callgrind_seconds, 0);
        assert_eq!(o.binary, Some(PathBuf::from("b")));
        let e = Options::parse(&args(&["--runs", "x"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--runs") && e.contains("\"x\""), "{e}");
        let e = Options::parse(&args(&["--fast", "1"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--fast") && e.contains("usage"), "{e}");
        assert!(Options::parse(&args(&["--seconds"])).is_err());
        assert!(Options::parse(&args(&["--runs", "0"])).is_err());
    }

    #[test]
    fn stats_give_the_median_and_range() {
        let s = stats(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (3.0, 1.0, 5.0));
        // An even count: the mean of the two middle values.
        assert_eq!(stats(&[4.0, 1.0, 2.0, 10.0]).unwrap().median, 3.0);
        assert_eq!(stats(&[7.0]).unwrap().median, 7.0);
        assert_eq!(stats(&[]), None);
        assert_eq!(stats(&[1.0, f64::NAN]), None);
    }

    fn sample(cpu_us: f64) -> Sample {
        Sample {
            msgs_per_s: 2500.0,
            cpu_us,
            user_us: cpu_us * 0.75,
            sys_us: cpu_us * 0.25,
            written_per_msg: 0.0,
            instructions_per_msg: None,
            switches_per_msg: Some(0.2),
        }
    }

    fn row(cache: &'static str, cpus: &[f64], sys: f64) -> FixedRow {
        FixedRow {
            rate: 2500,
            cache,
            samples: cpus.iter().map(|c| sample(*c)).collect(),
            traced: Traced {
                syscalls_per_msg: sys,
                per_msg: ITEMISED.iter().map(|n| (n.to_string(), 0.5)).collect(),
                latency: "p50=0.5ms p99=1ms max=2ms".into(),
            },
        }
    }

    #[test]
    fn ratios_of_medians_and_of_pairs_differ_when_runs_drift() {
        // Run 2 is slow for both (the machine got busy): the paired ratios see it.
        let m = row("memory", &[10.0, 30.0, 12.0], 1.0);
        let d = row("disk", &[12.0, 33.0, 18.0], 2.5);
        let (of_medians, paired) = ratios(&m, &d);
        assert!((of_medians - 18.0 / 12.0).abs() < 1e-9, "{of_medians}");
        assert!((paired.median - 1.2).abs() < 1e-9, "{paired:?}");
        assert!((paired.min - 1.1).abs() < 1e-9 && (paired.max - 1.5).abs() < 1e-9);
    }

    #[test]
    fn renders_medians_ranges_ratios_and_splices_its_own_section() {
        let s = section(
            &[
                row("memory", &[20.0, 22.0, 18.0], 1.0),
                row("disk", &[25.0, 26.0, 27.0], 2.5),
            ],
            &Callgrind::Counted {
                messages: 5000,
                instructions: 300_000_000,
            },
            &Options::default(),
            Path::new("tagwire"),
            ("1.00 0.50 0.25", "1.10 0.60 0.30"),
        );
        assert!(s.contains("| 20.0 (18.0–22.0) | 15.0 | 5.0 |"), "{s}");
        assert!(s.contains("disk / memory CPU **1.30×**"), "{s}");
        assert!(s.contains("run by run 1.25 (1.18–1.50)"), "{s}");
        assert!(s.contains("**+1.50/msg**"), "{s}");
        assert!(
            s.contains("before: 1.00 0.50 0.25; after: 1.10 0.60 0.30"),
            "{s}"
        );
        assert!(s.contains("run 3 times"), "{s}");
        assert!(
            s.contains("under callgrind (memory-only, 500 reports/s"),
            "{s}"
        );
        assert!(
            s.contains("**60000** (300000000 instructions, 5000 messages)"),
            "{s}"
        );
        let doc = format!("# B\n\n{s}\nafter\n");
        let again = splice(&doc, &s.replace("1.30", "9.99"));
        assert!(again.contains("9.99") && again.ends_with("after\n") && again.starts_with("# B"));
        assert_eq!(again.matches(BEGIN).count(), 1);
    }
}
