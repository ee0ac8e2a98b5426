//! `cargo xtask`: everything that is not plain `cargo build` / `cargo test`.
//!
//! - `test`: installs the real peers the end-to-end tests talk to, then runs the whole
//!   workspace's tests with those peers required ([`peers`]).
//! - `peers`: only the installation step, printing the environment it sets.
//! - `setup`: what cross builds and qemu tests need ([`setup`]).
//! - `dist`: release builds for the gateways, checked and packed ([`dist`]).
//! - `test-arm`: the test suites and the packaged binaries under qemu-user ([`test_arm`]).
//! - `qemu-run`: the cargo runner `test-arm` sets: qemu-user under a watchdog that kills
//!   and reruns a test binary hung by an emulator deadlock ([`qemu_run`]).
//! - `test-deb`: the amd64 `.deb` installed for real ([`test_deb`]).
//! - `msrv`: no dependency of the library crates needs a newer Rust than our
//!   `rust-version` ([`msrv`]).
//! - `deps`: how many crates a user of the library crates compiles, against budgets
//!   ([`deps`]).
//! - `bench`: the benchmark steps (pipeline, criterion, CLI comparison, fixed-rate) into `docs/benchmarks.md` ([`mod@bench`]).

mod bench;
mod cli_compare;
mod criterion;
mod deps;
mod dist;
mod e2e;
mod elf;
mod fixed_rate;
mod msrv;
mod peers;
mod qemu_run;
mod setup;
mod targets;
mod test_arm;
mod test_deb;
mod util;

use std::env;

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test [cargo test args]      install the interop peers, then run every test with them
  peers                       install the interop peers and print their environment
  setup                       install what cross builds need: rustup targets, qemu-user and
                              cross gcc (Debian), cargo-deb (cargo install), zig and
                              cargo-zigbuild (PyPI, in target/tools/zig)
  dist --target T ... | --all release builds, checked (static / glibc floor, size) and packed
                              in target/dist: .tar.gz, .deb, SHA256SUMS
  test-arm [--target A ...]   aarch64, armv7, riscv64 under qemu-user: the test suites, and the
                              packaged binaries of target/dist end to end
  qemu-run --deadline SECS -- QEMU ARGS
                              the cargo runner of test-arm: a binary still running after
                              SECS is reported, killed with its children and run once more
  test-deb                    install the amd64 .deb for real (dpkg -i), check it, remove, purge
  msrv                        fail when a dependency of the library crates declares a higher
                              rust-version than the workspace's
  deps [--check]              unique crates a program using the library crates compiles, as
                              a markdown table; --check fails on a row over its budget
  bench [STEP] [--quick] [--seconds N] [--filter REGEX] [--runs N] [--snapshots N]
                              the benchmarks of issue 12, each into its own section of
                              docs/benchmarks.md; STEP (all when omitted): pipeline
                              (tagwire bench at 10/100/1000 tags and an SVG), criterion
                              (the encode and parse groups), cli (tagwire encode vs the
                              serde transcoder: time, callgrind), fixed-rate
  bench fixed-rate [--binary PATH] [--seconds N] [--warmup N] [--runs N]
                              the daemon at 2,500 and 5,000 reports/s, memory-only vs
                              disk cache, N runs each interleaved (default 5 x 12 s):
                              median and range of CPU, syscalls (strace), bytes written";

fn main() {
    // One line per cause, no backtrace: these errors are for the person at the terminal.
    if let Err(e) = command() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn command() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("test") => test(rest),
        Some("peers") => {
            for (k, v) in peers::install()? {
                println!("export {k}={v}");
            }
            Ok(())
        }
        Some("setup") => setup::setup(),
        Some("dist") => dist::dist(rest),
        Some("test-arm") => test_arm::test_arm(rest),
        Some("qemu-run") => qemu_run::qemu_run(rest),
        Some("test-deb") => test_deb::test_deb(),
        Some("msrv") => msrv::msrv(),
        Some("deps") => deps::deps(rest),
        Some("bench") => bench::bench(rest),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(1);
        }
    }
}

fn test(extra: &[String]) -> Result<()> {
    let peers = peers::install()?;
    let mut cmd = util::cargo();
    cmd.args(["test", "--workspace"])
        .args(extra)
        .env("TAGWIRE_REQUIRE_PEERS", "1")
        .envs(peers.iter().map(|(k, v)| (k, v)));
    eprintln!("xtask: cargo test --workspace {}", extra.join(" "));
    let status = cmd.status().context("running cargo test")?;
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}
