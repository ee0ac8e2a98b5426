//! `cargo xtask qemu-run`: the cargo runner of `test-arm`, qemu-user under a watchdog.
//!
//! qemu-user can deadlock when a multi-threaded guest program forks: a lock of qemu's own
//! (or of the host libc), held by another thread at the moment of the fork, stays locked
//! in the child, which then never reaches `exec`. Our test binaries run tests on several
//! threads and start `openssl`, Python and nginx, and one CI run hung for the rest of its
//! 90 minutes in a test that takes half a second (`self_signed_cas_in_each_string_type_…`
//! under `qemu-arm`, which passed 55 of 55 times when run again on the same kind of
//! machine).
//!
//! So each test binary gets a deadline (`test-arm` gives 600 s, four times the slowest
//! binary's time under `qemu-arm`).
//! One that passes it is reported with its process tree (state and kernel wait channel of
//! each process, to tell a fork deadlock from a test waiting on a peer), killed with every
//! process it started, and run once more from the start. A binary that *fails* is never
//! run again, and one that hangs twice fails the run: only an emulator hang is retried.

use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How often the watchdog looks at the child.
const POLL: Duration = Duration::from_millis(100);

/// How many times a binary that hangs is started in all.
const ATTEMPTS: u32 = 2;

/// Parses `--deadline SECS -- PROGRAM [ARGS]` and runs PROGRAM under the watchdog,
/// exiting with its exit code.
pub fn qemu_run(args: &[String]) -> Result<()> {
    let (deadline, command) = parse_args(args)?;
    let status = run_with_deadline(command, deadline, ATTEMPTS)?;
    // The test binary's own exit code tells cargo whether its tests passed.
    std::process::exit(status.code().unwrap_or(101));
}

fn parse_args(args: &[String]) -> Result<(Duration, &[String])> {
    let usage = "usage: cargo xtask qemu-run --deadline SECS -- PROGRAM [ARGS]";
    let split = args
        .iter()
        .position(|a| a == "--")
        .with_context(|| format!("qemu-run: no `--` before the program; {usage}"))?;
    let (options, command) = (&args[..split], &args[split + 1..]);
    let secs = match options {
        [flag, secs] if flag == "--deadline" => secs
            .parse::<u64>()
            .ok()
            .filter(|&s| s > 0)
            .with_context(|| {
                format!("qemu-run: --deadline {secs:?} is not a number of seconds above 0")
            })?,
        _ => bail!("qemu-run: unknown options {options:?}; {usage}"),
    };
    if command.is_empty() {
        bail!("qemu-run: no program after `--`; {usage}");
    }
    Ok((Duration::from_secs(secs), command))
}

/// Runs `command` (program and arguments) until it exits, starting it again when it runs
/// past `deadline`, at most `attempts` times in all. Returns the exit status of the run
/// that finished; an error when every attempt hung.
pub fn run_with_deadline(
    command: &[String],
    deadline: Duration,
    attempts: u32,
) -> Result<ExitStatus> {
    let (program, args) = command.split_first().context("no program to run")?;
    for attempt in 1..=attempts {
        let mut child = Command::new(program)
            .args(args)
            .spawn()
            .with_context(|| format!("cannot start {program}"))?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if started.elapsed() >= deadline {
                break;
            }
            thread::sleep(POLL);
        }
        let tree = descendants(child.id(), &process_table());
        eprintln!(
            "xtask qemu-run: {} still running after {} s (attempt {attempt} of {attempts}); \
             qemu-user can deadlock when a multi-threaded program forks. Its processes:\n{}",
            command.join(" "),
            deadline.as_secs(),
            describe(&tree)
        );
        // The children first, so none of them outlives the parent as an orphan.
        for &pid in tree.iter().rev() {
            kill(pid);
        }
        let _ = child.wait();
        if attempt < attempts {
            eprintln!("xtask qemu-run: killed them; running the binary again from the start");
        }
    }
    bail!(
        "{} hung {attempts} times (each killed after {} s): not an emulator hiccup; \
         run it by hand under qemu to see which test waits",
        command.join(" "),
        deadline.as_secs()
    )
}

/// Every process's parent, from `/proc/PID/stat`.
fn process_table() -> BTreeMap<u32, u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            Some((pid, parent_in_stat(&stat)?))
        })
        .collect()
}

/// The parent PID in the text of `/proc/PID/stat`: the second field after the command
/// name, which is in parentheses and may itself contain spaces and parentheses.
fn parent_in_stat(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// `root` and every process below it in `parents` (child -> parent), parents before their
/// children.
fn descendants(root: u32, parents: &BTreeMap<u32, u32>) -> Vec<u32> {
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|&(&pid, &ppid)| ppid == parent && pid != parent)
                .map(|(&pid, _)| pid),
        );
        i += 1;
    }
    tree
}

/// One line per process: PID, state, kernel wait channel, command line.
fn describe(pids: &[u32]) -> String {
    pids.iter()
        .map(|pid| {
            let read = |file: &str| fs::read(format!("/proc/{pid}/{file}")).unwrap_or_default();
            let stat = String::from_utf8_lossy(&read("stat")).into_owned();
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next())
                .unwrap_or("?")
                .to_owned();
            let wchan = String::from_utf8_lossy(&read("wchan")).into_owned();
            let cmdline: Vec<String> = read("cmdline")
                .split(|&b| b == 0)
                .filter(|part| !part.is_empty())
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect();
            format!("  {pid} {state} {wchan} {}", cmdline.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn kill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn parent_is_read_after_a_command_name_with_spaces_and_parentheses() {
        assert_eq!(parent_in_stat("42 (a b) c) S 7 42 42 0"), Some(7));
        assert_eq!(parent_in_stat("garbage"), None);
    }

    #[test]
    fn descendants_are_the_whole_subtree_and_nothing_else() {
        let parents = BTreeMap::from([(2, 1), (3, 2), (4, 2), (5, 3), (6, 1), (9, 8)]);
        assert_eq!(descendants(2, &parents), [2, 3, 4, 5]);
        assert_eq!(descendants(9, &parents), [9]);
    }

    #[test]
    fn arguments_need_a_deadline_and_a_program() {
        let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let good = args("--deadline 5 -- qemu-arm -L /x bin");
        let parsed = parse_args(&good).unwrap();
        assert_eq!(parsed.0, Duration::from_secs(5));
        assert_eq!(parsed.1, ["qemu-arm", "-L", "/x", "bin"]);
        for bad in [
            "--deadline 0 -- a",
            "--deadline x -- a",
            "-- a",
            "--deadline 5 --",
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_exit_status_is_passed_through_and_a_failure_is_not_run_again() {
        let dir = tempdir();
        let runs = dir.join("runs");
        let script = format!("echo x >> {}; exit 3", runs.display());
        let status = run_with_deadline(&sh(&script), Duration::from_secs(60), 2).unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(fs::read_to_string(&runs).unwrap().lines().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_hang_is_killed_with_its_children_and_run_again() {
        let dir = tempdir();
        let marker = dir.join("hung-once");
        let pids = dir.join("pids");
        // First run: a child that would outlive us, then hang; second run: succeed.
        let script = format!(
            "if [ -e {m} ]; then exit 0; fi; touch {m}; sleep 1000 & echo $! > {p}; sleep 1000",
            m = marker.display(),
            p = pids.display()
        );
        let status = run_with_deadline(&sh(&script), Duration::from_secs(1), 2).unwrap();
        assert!(status.success());
        let orphan = fs::read_to_string(&pids).unwrap().trim().to_owned();
        // Killed, then reaped by init: give it a moment to disappear.
        let gone = (0..50).any(|_| {
            thread::sleep(Duration::from_millis(100));
            fs::read_to_string(format!("/proc/{orphan}/stat")).map_or(true, |stat| {
                stat.rfind(')')
                    .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'))
            })
        });
        assert!(gone, "the hung binary's child {orphan} was not killed");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn hanging_every_time_fails() {
        let err = run_with_deadline(&sh("sleep 1000"), Duration::from_secs(1), 2).unwrap_err();
        assert!(err.to_string().contains("hung 2 times"), "{err}");
    }

    /// A fresh directory whose path the shell takes without quoting.
    fn tempdir() -> std::path::PathBuf {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("xtask-qemu-run-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
