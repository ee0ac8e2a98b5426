//! `cargo xtask test-arm`: what we ship, run on the gateways' CPUs under qemu-user.
//!
//! For each architecture: the test suites of `model`, `encode`, `tls-config` and
//! `ws-client` cross-built and run through the cargo runner (qemu-user with the cross
//! libc as `-L`), then the end-to-end run of each packaged binary of that architecture
//! found in `target/dist` (see [`crate::e2e`]).

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use anyhow::{bail, Context, Result};

use crate::dist::{archive_stem, dist_dir, version};
use crate::e2e;
use crate::peers;
use crate::setup::require_bin;
use crate::targets::{arm_arch, ArmArch, ARM_ARCHES};
use crate::util::cargo;

/// The crates whose test suites run under qemu.
const SUITES: &[&str] = &[
    "tagwire-model",
    "tagwire-encode",
    "tagwire-tls-config",
    "tagwire-ws-client",
];

/// How long one test binary may run under qemu before the watchdog calls it hung: four
/// times the slowest (encode's unit tests, about 140 s under `qemu-arm`).
const QEMU_DEADLINE_SECS: u64 = 600;

/// Parses `[--target A ...]` and runs every named architecture (all by default).
pub fn test_arm(args: &[String]) -> Result<()> {
    let mut arches: Vec<&'static ArmArch> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--target" => arches.push(arm_arch(it.next().context("--target needs a name")?)?),
            other => match other.strip_prefix("--target=") {
                Some(t) => arches.push(arm_arch(t)?),
                None => bail!("test-arm: unknown argument {other:?}; use --target A (repeatable)"),
            },
        }
    }
    if arches.is_empty() {
        arches.extend(ARM_ARCHES);
    }
    let peers = peers::install()?;
    let version = version()?;
    let mut summary = Vec::new();
    for arch in arches {
        let passed = suites(arch, &peers)?;
        summary.push(format!(
            "{}: {passed} tests passed under {} ({})",
            arch.name,
            arch.qemu,
            SUITES.join(", ")
        ));
        let mut ran = 0;
        for t in arch.dist_targets() {
            let archive = dist_dir().join(format!("{}.tar.gz", archive_stem(&version, t.triple)));
            if !archive.exists() {
                eprintln!(
                    "xtask test-arm: no {} (not built): skipped",
                    archive.display()
                );
                continue;
            }
            summary.push(format!("{}: {}", t.triple, e2e::run(t, &archive)?));
            ran += 1;
        }
        if ran == 0 {
            let triples: Vec<&str> = arch.dist_targets().map(|t| t.triple).collect();
            bail!(
                "test-arm {}: no packaged binary to test in {}: run `cargo xtask dist --target {}` first",
                arch.name,
                dist_dir().display(),
                triples.join("` or `--target ")
            );
        }
    }
    println!("test-arm summary:");
    for line in summary {
        println!("  {line}");
    }
    Ok(())
}

/// The test suites of [`SUITES`] for `arch`, under qemu; returns how many tests passed.
fn suites(arch: &ArmArch, peers: &[(String, String)]) -> Result<u64> {
    let qemu = require_bin(arch.qemu, "qemu-user")?;
    require_bin(arch.gcc, &format!("gcc-{}", gcc_package(arch.gcc)))?;
    let xtask = std::env::current_exe().context("cannot find the xtask binary")?;
    let var = arch.test_triple.to_uppercase().replace('-', "_");
    let mut cmd = cargo();
    cmd.args(["test", "--locked", "--target", arch.test_triple])
        .args(SUITES.iter().flat_map(|s| ["-p", s]))
        // The shipped daemon decrypts keys: its key tests (`errors`, `key_matrix`) need it.
        .args(["--features", "tagwire-tls-config/encrypted-keys"])
        .env(format!("CARGO_TARGET_{var}_LINKER"), arch.gcc)
        // qemu under our watchdog: see `qemu_run` for the emulator deadlock it guards.
        .env(
            format!("CARGO_TARGET_{var}_RUNNER"),
            format!(
                "{} qemu-run --deadline {QEMU_DEADLINE_SECS} -- {} -L {}",
                xtask.display(),
                qemu.display(),
                arch.sysroot
            ),
        )
        .env("TAGWIRE_REQUIRE_PEERS", "1")
        .envs(peers.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped());
    eprintln!(
        "xtask test-arm: cargo test --target {} -p {} (under {})",
        arch.test_triple,
        SUITES.join(" -p "),
        arch.qemu
    );
    let mut child = cmd.spawn().context("cannot start cargo test")?;
    // Echo the output and add up the "test result" lines.
    let mut passed = 0;
    let mut failed = 0;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
        }
    }
    let status = child.wait()?;
    if !status.success() || failed > 0 {
        bail!(
            "test-arm {}: test suites failed under {} ({status})",
            arch.name,
            arch.qemu
        );
    }
    if passed == 0 {
        bail!("test-arm {}: no test ran", arch.name);
    }
    Ok(passed)
}

/// The number before `what` in a "test result" line ("ok. 12 passed; 0 failed; ...").
fn count(line: &str, what: &str) -> u64 {
    line.split(';')
        .find_map(|part| part.trim().strip_suffix(what.trim()))
        .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// `aarch64-linux-gnu-gcc` -> `aarch64-linux-gnu` (Debian names the package `gcc-<that>`).
fn gcc_package(gcc: &str) -> &str {
    gcc.strip_suffix("-gcc").unwrap_or(gcc)
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_test_results() {
        let line =
            "ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(count(line, " passed"), 12);
        assert_eq!(count(line, " failed"), 0);
        assert_eq!(count("FAILED. 3 passed; 2 failed; 0 ignored", " failed"), 2);
    }
}
