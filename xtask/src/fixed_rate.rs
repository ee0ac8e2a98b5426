//! The fixed-rate step of `cargo xtask bench`: the real daemon (`tagwire run`) at a
//! fixed report rate, memory-only against the disk cache, measured from outside.
//!
//! One simulator south node of ten 100-tag groups (`interval_ms` 4 for 2,500 reports/s,
//! the load of issue 13; 2 for 5,000, issue 12's), one `values` uplink to `tagwire sink
//! --out /dev/null` on loopback, `[api]` on for `/metrics`. Per row, after a warm-up:
//! CPU from `/proc/PID/stat` (utime + stime), bytes written to the device from
//! `/proc/PID/io` (`write_bytes`), messages from `send_msgs_total`, over one window;
//! then `strace -c -f -p PID` over a second window (strace slows the daemon, so it has
//! its own message count); the write-latency line the daemon logs at stop.
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

/// One measured configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedRow {
    /// Nominal reports per second.
    pub rate: u32,
    /// "memory" or "disk".
    pub cache: &'static str,
    /// Messages delivered per second in the CPU window.
    pub msgs_per_s: f64,
    /// Daemon CPU (user + system) per delivered message, µs.
    pub cpu_us: f64,
    /// Bytes the daemon caused to be written to the device per message.
    pub written_per_msg: f64,
    /// Syscalls per message under strace.
    pub syscalls_per_msg: f64,
    /// The strace counts of interest, per message: futex, write, pwrite64, fdatasync.
    pub per_msg: Vec<(String, f64)>,
    /// The daemon's write latency (`p50=… p99=… max=…`), if it logged it.
    pub latency: String,
}

/// Syscalls itemised in the table.
const ITEMISED: [&str; 5] = ["futex", "write", "sendto", "epoll_wait", "fdatasync"];

/// Measures every row with `binary`; `seconds` per window.
pub fn measure(binary: &Path, seconds: u64) -> Result<Vec<FixedRow>> {
    let work = crate::util::target_dir().join("fixed-rate");
    let mut rows = Vec::new();
    for (rate, interval) in [(2_500, 4), (5_000, 2)] {
        for cache in ["memory", "disk"] {
            let row = measure_one(binary, &work, rate, interval, cache, seconds)
                .with_context(|| format!("fixed-rate run {rate}/s {cache}"))?;
            println!("{row:?}");
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Kills the child when dropped (a failed run leaves no daemon behind).
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn measure_one(
    binary: &Path,
    work: &Path,
    rate: u32,
    interval_ms: u32,
    cache: &'static str,
    seconds: u64,
) -> Result<FixedRow> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;
    let sink_port = free_port()?;
    let api_port = free_port()?;
    let _sink = Guard(
        Command::new(binary)
            .args(["sink", "--listen", &format!("127.0.0.1:{sink_port}")])
            .args(["--out", "/dev/null"])
            .stderr(Stdio::null())
            .spawn()
            .context("starting tagwire sink")?,
    );
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
    std::thread::sleep(Duration::from_secs(3));
    let metrics = || sent(&http_get(api_port, "/metrics")?);
    let (cpu0, io0, m0) = (cpu_ticks(pid)?, write_bytes(pid)?, metrics()?);
    std::thread::sleep(Duration::from_secs(seconds));
    let (cpu1, io1, m1) = (cpu_ticks(pid)?, write_bytes(pid)?, metrics()?);
    let msgs = (m1 - m0).max(1) as f64;
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
    signal(pid, "TERM")?;
    let _ = daemon.0.wait();
    let write_latency = std::fs::read_to_string(&log)?
        .lines()
        .find_map(latency)
        .unwrap_or_default();
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    Ok(FixedRow {
        rate,
        cache,
        msgs_per_s: msgs / seconds as f64,
        cpu_us: (cpu1 - cpu0) as f64 / CLK_TCK * 1e6 / msgs,
        written_per_msg: (io1 - io0) as f64 / msgs,
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
        latency: write_latency,
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

/// utime + stime of `/proc/PID/stat` (fields 14 and 15), in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

/// utime + stime out of a `/proc/PID/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from its closing parenthesis.
pub fn parse_stat(stat: &str) -> Result<u64> {
    let rest = &stat[stat.rfind(')').context("no ')' in /proc/PID/stat")? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let get = |i: usize| -> Result<u64> {
        f.get(i - 3)
            .context("short /proc/PID/stat")?
            .parse()
            .context("/proc/PID/stat field")
    };
    Ok(get(14)? + get(15)?)
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

/// The markdown section (between its markers).
pub fn section(rows: &[FixedRow], seconds: u64, binary: &Path) -> String {
    let mut s = format!(
        "{BEGIN}\n### Fixed-rate daemon runs (`cargo xtask bench`, step `fixed-rate`)\n\n\
         `tagwire run` ({}), ten simulator groups of 100 tags, one `values` uplink to \
         `tagwire sink --out /dev/null` on loopback; memory-only or `[north.cache]` \
         (`sync = 1000`). CPU and bytes written over {seconds} s after 3 s of warm-up, \
         syscalls from `strace -c -f -p` over another {seconds} s; per delivered message \
         (`send_msgs_total`).\n\n\
         | reports/s | cache | msgs/s | CPU µs/msg | written B/msg | syscalls/msg | {} | write latency |\n\
         |---:|---|---:|---:|---:|---:|{}---|\n",
        binary.display(),
        ITEMISED.join(" | "),
        "---:|".repeat(ITEMISED.len()),
    );
    for r in rows {
        let _ = write!(
            s,
            "| {} | {} | {:.0} | {:.1} | {:.0} | {:.2} |",
            r.rate, r.cache, r.msgs_per_s, r.cpu_us, r.written_per_msg, r.syscalls_per_msg
        );
        for (_, v) in &r.per_msg {
            let _ = write!(s, " {v:.2} |");
        }
        let _ = writeln!(s, " {} |", r.latency.trim());
    }
    for pair in rows.chunks(2) {
        if let [m, d] = pair {
            let _ = writeln!(
                s,
                "\nAt {}/s: disk / memory CPU **{:.2}×**, syscalls added by the disk cache \
                 **{:+.2}/msg**.",
                m.rate,
                d.cpu_us / m.cpu_us,
                d.syscalls_per_msg - m.syscalls_per_msg
            );
        }
    }
    s.push_str(END);
    s.push('\n');
    s
}

/// `doc` with this step's section replaced (or appended).
pub fn splice(doc: &str, section: &str) -> String {
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!(
                "{}{}{}",
                &doc[..b],
                section.trim_end(),
                &doc[e + END.len()..]
            )
        }
        _ => format!("{}\n\n{}", doc.trim_end(), section),
    }
}

/// The binary to measure: `--binary PATH` or the release build.
pub fn binary(arg: Option<&String>) -> PathBuf {
    arg.map_or_else(
        || crate::util::target_dir().join("release/tagwire"),
        PathBuf::from,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_io_metrics_and_strace() {
        let stat = "1234 (tag wire) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0";
        assert_eq!(parse_stat(stat).unwrap(), 300);
        let io = "rchar: 10\nwchar: 20\nread_bytes: 0\nwrite_bytes: 4096\n";
        assert_eq!(parse_io(io).unwrap(), 4096);
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
    fn renders_ratios_and_splices_its_own_section() {
        let row = |cache, cpu_us, sys| FixedRow {
            rate: 2500,
            cache,
            msgs_per_s: 2500.0,
            cpu_us,
            written_per_msg: 0.0,
            syscalls_per_msg: sys,
            per_msg: ITEMISED.iter().map(|n| (n.to_string(), 0.5)).collect(),
            latency: "p50=0.5ms p99=1ms max=2ms".into(),
        };
        let s = section(
            &[row("memory", 20.0, 1.0), row("disk", 25.0, 2.5)],
            10,
            Path::new("tagwire"),
        );
        assert!(s.contains("disk / memory CPU **1.25×**"), "{s}");
        assert!(s.contains("**+1.50/msg**"), "{s}");
        let doc = format!("# B\n\n{s}\nafter\n");
        let again = splice(&doc, &s.replace("1.25", "9.99"));
        assert!(again.contains("9.99") && again.ends_with("after\n") && again.starts_with("# B"));
        assert_eq!(again.matches(BEGIN).count(), 1);
    }
}
