//! `cargo xtask setup`: everything cross builds and the qemu tests need, installed
//! idempotently (each step says what it does, and skips what is already there); and the
//! checks the other commands use to name the setup step that installs a missing tool.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Result};

use crate::targets::{ARM_ARCHES, DIST_TARGETS};
use crate::util::{apt_install, cargo, output, run, target_dir, which};

/// The cargo subcommands built from source, pinned so every machine builds the same way.
const CARGO_TOOLS: &[(&str, &str)] = &[("cargo-deb", "3.8.0")];

/// The `ziglang` Python package (zig as a wheel: no Debian package has a recent zig).
const ZIGLANG: &str = "ziglang==0.15.2";

/// cargo-zigbuild as PyPI ships it: a prebuilt binary wheel, installed into the same venv
/// as zig in seconds instead of a ten-minute `cargo install` on a 2-core machine.
const CARGO_ZIGBUILD: &str = "cargo-zigbuild==0.24.1";

/// Debian packages: qemu-user runs the foreign binaries; the cross C toolchains and
/// libcs build and run the test suites (ring compiles C and assembly); python3-venv holds
/// zig; gcc for building the cargo tools themselves.
const DEBIAN_PACKAGES: &[&str] = &[
    "qemu-user",
    "gcc-aarch64-linux-gnu",
    "libc6-dev-arm64-cross",
    "gcc-arm-linux-gnueabihf",
    "libc6-dev-armhf-cross",
    "gcc-riscv64-linux-gnu",
    "libc6-dev-riscv64-cross",
    "python3-venv",
    "gcc",
    "libc6-dev",
];

/// Runs every setup step.
pub fn setup() -> Result<()> {
    rust_targets()?;
    eprintln!(
        "xtask setup [2/4]: Debian packages {}",
        DEBIAN_PACKAGES.join(" ")
    );
    apt_install(DEBIAN_PACKAGES)?;
    cargo_tools()?;
    zig()?;
    eprintln!("xtask setup: done");
    Ok(())
}

/// Step 1: `rustup target add` for every dist and test-arm target that is missing.
fn rust_targets() -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    let mut wanted: Vec<&str> = DIST_TARGETS.iter().map(|t| t.triple).collect();
    wanted.extend(ARM_ARCHES.iter().map(|a| a.test_triple));
    wanted.sort_unstable();
    wanted.dedup();
    let missing: Vec<&str> = wanted
        .into_iter()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    eprintln!(
        "xtask setup [1/4]: rustup targets{}",
        if missing.is_empty() {
            " (all installed)".to_string()
        } else {
            format!(": adding {}", missing.join(" "))
        }
    );
    if !missing.is_empty() {
        run(Command::new("rustup")
            .args(["target", "add"])
            .args(&missing))?;
    }
    Ok(())
}

/// Step 3: `cargo install --locked` of cargo-deb when missing.
fn cargo_tools() -> Result<()> {
    for (tool, version) in CARGO_TOOLS {
        let sub = tool.trim_start_matches("cargo-");
        if cargo_sub_works(sub) {
            eprintln!("xtask setup [3/4]: {tool} (installed)");
            continue;
        }
        eprintln!("xtask setup [3/4]: cargo install --locked {tool}@{version}");
        run(cargo().args(["install", "--locked", &format!("{tool}@{version}")]))?;
    }
    Ok(())
}

/// Step 4: zig and cargo-zigbuild, from PyPI (`ziglang`, `cargo-zigbuild`), in a venv
/// under `target/tools/zig`.
fn zig() -> Result<()> {
    let venv = zig_venv();
    let python = venv.join("bin").join("python");
    if !python.exists() {
        eprintln!("xtask setup [4/4]: creating the venv {}", venv.display());
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    let pinned = ZIGLANG.split("==").nth(1).unwrap_or_default();
    let version = Command::new(&python)
        .args(["-m", "ziglang", "version"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if version.as_deref() == Some(pinned) && cargo_sub_works("zigbuild") {
        eprintln!("xtask setup [4/4]: zig {pinned} and {CARGO_ZIGBUILD} (installed)");
        return Ok(());
    }
    eprintln!(
        "xtask setup [4/4]: pip install {ZIGLANG} {CARGO_ZIGBUILD} into {}",
        venv.display()
    );
    run(Command::new(&python).args(["-m", "pip", "install", "-q", ZIGLANG, CARGO_ZIGBUILD]))
}

fn zig_venv() -> PathBuf {
    target_dir().join("tools").join("zig")
}

/// `PATH` with the tools venv's `bin` first, so that cargo finds `cargo-zigbuild` there.
fn tools_path() -> String {
    let mut dirs = vec![zig_venv().join("bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn cargo_sub_works(sub: &str) -> bool {
    cargo()
        .env("PATH", tools_path())
        .args([sub, "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The environment that makes cargo-zigbuild use our zig; fails naming the setup step
/// when zig or cargo-zigbuild is missing.
pub fn zigbuild_env() -> Result<Vec<(&'static str, String)>> {
    require_cargo_sub("zigbuild")?;
    let python = zig_venv().join("bin").join("python");
    let ok = Command::new(&python)
        .args(["-m", "ziglang", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        bail!(
            "zig not found ({} -m ziglang): `cargo xtask setup` installs it (step 4: {ZIGLANG})",
            python.display()
        );
    }
    Ok(vec![
        ("CARGO_ZIGBUILD_PYTHON_PATH", python.display().to_string()),
        ("PATH", tools_path()),
    ])
}

/// Fails naming the setup step when `cargo <sub>` does not run.
pub fn require_cargo_sub(sub: &str) -> Result<()> {
    if !cargo_sub_works(sub) {
        let step = if sub == "zigbuild" {
            format!("step 4: pip install {CARGO_ZIGBUILD}")
        } else {
            format!("step 3: cargo install --locked cargo-{sub}")
        };
        bail!("`cargo {sub}` not found: `cargo xtask setup` installs it ({step})");
    }
    Ok(())
}

/// The path of `bin`, or an error naming the setup step and the Debian package with it.
pub fn require_bin(bin: &str, package: &str) -> Result<PathBuf> {
    which(bin).ok_or_else(|| {
        anyhow::anyhow!(
            "{bin} not found: `cargo xtask setup` installs it (step 2: Debian package {package})"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_the_setup_step() {
        let e = require_bin("tagwire-no-such-tool", "qemu-user").unwrap_err();
        assert!(e.to_string().contains("`cargo xtask setup`"), "{e}");
        assert!(
            e.to_string().contains("step 2: Debian package qemu-user"),
            "{e}"
        );
        let e = require_cargo_sub("tagwire-no-such-subcommand").unwrap_err();
        assert!(
            e.to_string()
                .contains("step 3: cargo install --locked cargo-tagwire-no-such-subcommand"),
            "{e}"
        );
        let e = require_cargo_sub("zigbuild-no-such").unwrap_err();
        assert!(e.to_string().contains("step 3: cargo install"), "{e}");
        assert!(require_bin("sh", "dash").is_ok());
    }
}
