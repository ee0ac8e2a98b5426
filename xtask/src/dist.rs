//! `cargo xtask dist`: release builds for the gateways, checked and packed.
//!
//! Each target is built once with the `dist` profile through cargo-zigbuild (zig links
//! against an old glibc's symbol list, or statically against musl), then checked from the
//! binary itself (static, or glibc floor; size), packed as
//! `target/dist/tagwire-<version>-<target>.tar.gz`, packaged as a `.deb` with cargo-deb
//! where the target serves a Debian architecture, and listed in `SHA256SUMS`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::elf;
use crate::setup::{require_cargo_sub, zigbuild_env};
use crate::targets::{dist_target, DistTarget, Libc, DIST_TARGETS};
use crate::util::{cargo, output, run, target_dir, workspace_root};

/// The files packed next to the binary (source path, name in the archive).
const PACKED: &[(&str, &str)] = &[
    ("README.md", "README.md"),
    ("LICENSE", "LICENSE"),
    ("deploy/tagwire.service", "tagwire.service"),
    ("deploy/tagwire.example.toml", "tagwire.example.toml"),
];

/// One built and packed target, for the summary table.
pub struct Built {
    /// The target.
    pub target: &'static DistTarget,
    /// The binary's size in bytes.
    pub size: u64,
    /// "static" or "glibc 2.17".
    pub libc: String,
    /// The archive and package file names.
    pub packages: Vec<String>,
}

/// Parses `--target T ... | --all` and runs the dist.
pub fn dist(args: &[String]) -> Result<()> {
    let mut targets: Vec<&'static DistTarget> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--all" => targets.extend(DIST_TARGETS),
            "--target" => {
                let t = it.next().context("--target needs a target triple")?;
                targets.push(dist_target(t)?);
            }
            other => match other.strip_prefix("--target=") {
                Some(t) => targets.push(dist_target(t)?),
                None => {
                    bail!("dist: unknown argument {other:?}; use --target T (repeatable) or --all")
                }
            },
        }
    }
    if targets.is_empty() {
        bail!(
            "dist: name the targets: --target T (repeatable) or --all; supported: {}",
            crate::targets::dist_triples().join(", ")
        );
    }
    // A target named twice (or with --all) is built once.
    let mut seen = Vec::new();
    targets.retain(|t| {
        let first = !seen.contains(&t.triple);
        seen.push(t.triple);
        first
    });

    let zig_env = zigbuild_env()?;
    if targets.iter().any(|t| t.deb_arch.is_some()) {
        require_cargo_sub("deb")?;
    }
    let version = version()?;
    let out = dist_dir();
    std::fs::create_dir_all(&out)?;

    let mut built = Vec::new();
    for t in targets {
        built.push(build_one(t, &version, &zig_env, &out)?);
    }
    sha256sums(&out)?;
    print!("{}", table(&built));
    println!("checksums: {}", out.join("SHA256SUMS").display());
    Ok(())
}

/// `target/dist`.
pub fn dist_dir() -> PathBuf {
    target_dir().join("dist")
}

/// The archive name of `triple` at `version`, without `.tar.gz`.
pub fn archive_stem(version: &str, triple: &str) -> String {
    format!("tagwire-{version}-{triple}")
}

/// The tagwire package's version, from cargo metadata.
pub fn version() -> Result<String> {
    let meta = output(cargo().args(["metadata", "--no-deps", "--format-version", "1"]))?;
    let meta: serde_json::Value = serde_json::from_str(&meta).context("cargo metadata")?;
    meta["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "tagwire"))
        .and_then(|p| p["version"].as_str())
        .map(str::to_owned)
        .context("cargo metadata lists no package \"tagwire\"")
}

fn build_one(
    t: &'static DistTarget,
    version: &str,
    zig_env: &[(&str, String)],
    out: &Path,
) -> Result<Built> {
    // zigbuild takes the glibc version as a suffix of the triple.
    let zig_target = match t.libc {
        Libc::Static => t.triple.to_string(),
        Libc::Glibc(major, minor) => format!("{}.{major}.{minor}", t.triple),
    };
    eprintln!("xtask dist: cargo zigbuild --profile dist -p tagwire --target {zig_target}");
    let mut cmd = cargo();
    cmd.args(["zigbuild", "--locked", "--profile", "dist", "-p", "tagwire"])
        .args(["--target", &zig_target]);
    for (k, v) in zig_env {
        cmd.env(k, v);
    }
    run(&mut cmd)?;

    let binary = target_dir().join(t.triple).join("dist").join("tagwire");
    let (size, libc) = check_binary(t, &binary, t.size_limit)?;

    let stem = archive_stem(version, t.triple);
    let mut packages = vec![pack(&binary, &stem, out)?];
    if let Some(arch) = t.deb_arch {
        packages.push(deb(t, arch, version, out)?);
    }
    Ok(Built {
        target: t,
        size,
        libc,
        packages,
    })
}

/// Checks what the binary needs from the device and its size; returns (size, libc label).
/// A binary above its floor or `limit` bytes fails the dist with the figure.
pub fn check_binary(t: &DistTarget, binary: &Path, limit: u64) -> Result<(u64, String)> {
    let needs = elf::read_needs(binary)?;
    let libc = match t.libc {
        Libc::Static => {
            if !needs.is_static() {
                bail!(
                    "{}: {} is not static (interpreter: {}, shared libraries: {:?})",
                    t.triple,
                    binary.display(),
                    needs.interpreter,
                    needs.libraries
                );
            }
            "static".to_string()
        }
        Libc::Glibc(major, minor) => {
            let Some((a, b)) = needs.glibc else {
                bail!(
                    "{}: {} needs no GLIBC_ version at all: not a glibc binary?",
                    t.triple,
                    binary.display()
                );
            };
            if (a, b) > (major, minor) {
                bail!(
                    "{}: {} needs GLIBC_{a}.{b}, above this target's floor {major}.{minor}: it would not start on older gateways",
                    t.triple,
                    binary.display()
                );
            }
            format!("glibc {a}.{b}")
        }
    };
    let size = std::fs::metadata(binary)?.len();
    if size > limit {
        bail!(
            "{}: {} is {} bytes ({:.2} MB), over the limit of {} bytes ({:.2} MB)",
            t.triple,
            binary.display(),
            size,
            size as f64 / 1e6,
            limit,
            limit as f64 / 1e6
        );
    }
    Ok((size, libc))
}

/// `target/dist/<stem>.tar.gz`: the binary with the README, LICENSE, the systemd unit
/// and the example config, in a directory named `<stem>`.
fn pack(binary: &Path, stem: &str, out: &Path) -> Result<String> {
    let stage = out.join("stage");
    let dir = stage.join(stem);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(binary, dir.join("tagwire"))?;
    let root = workspace_root();
    for (src, name) in PACKED {
        std::fs::copy(root.join(src), dir.join(name))
            .with_context(|| format!("cannot copy {src}"))?;
    }
    let name = format!("{stem}.tar.gz");
    run(Command::new("tar")
        .current_dir(&stage)
        .args([
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--sort=name",
            "-czf",
        ])
        .arg(out.join(&name))
        .arg(stem))?;
    std::fs::remove_dir_all(&dir)?;
    Ok(name)
}

/// The `.deb` of `t` (cargo-deb, from the binary already built: no second build).
fn deb(t: &DistTarget, arch: &str, version: &str, out: &Path) -> Result<String> {
    let name = format!("tagwire_{version}-1_{arch}.deb");
    eprintln!("xtask dist: cargo deb -> {name}");
    let mut cmd = cargo();
    cmd.args([
        "deb",
        "-p",
        "tagwire",
        "--no-build",
        "--no-strip",
        "--profile",
        "dist",
    ])
    .args(["--target", t.triple, "--deb-revision", "1", "--output"])
    .arg(out.join(&name));
    // A glibc build depends on libc6: the variant named after its architecture says so
    // (crates/daemon/Cargo.toml).
    if matches!(t.libc, Libc::Glibc(..)) {
        cmd.args(["--variant", arch]);
    }
    run(&mut cmd)?;
    Ok(name)
}

/// `SHA256SUMS` of every archive and package in `out`.
fn sha256sums(out: &Path) -> Result<()> {
    let mut files: Vec<String> = std::fs::read_dir(out)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar.gz") || n.ends_with(".deb"))
        .collect();
    files.sort();
    let sums = output(Command::new("sha256sum").current_dir(out).args(&files))?;
    std::fs::write(out.join("SHA256SUMS"), sums)?;
    Ok(())
}

/// The summary: target, binary size, glibc floor or "static", packages.
fn table(built: &[Built]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<32} {:>12} {:<11} packages",
        "target", "binary", "libc"
    );
    for b in built {
        let _ = writeln!(
            s,
            "{:<32} {:>9} kB {:<11} {}",
            b.target.triple,
            b.size.div_ceil(1000),
            b.libc,
            b.packages.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(libc: Libc) -> DistTarget {
        DistTarget {
            triple: "test-host",
            libc,
            deb_arch: None,
            qemu: None,
            size_limit: u64::MAX,
        }
    }

    /// The checks on a real binary: this test executable, dynamically linked to the
    /// host's glibc (2.2.5 at least, 2.17 or more on any current Debian).
    #[test]
    fn a_binary_above_its_floor_or_the_size_limit_fails_with_the_figure() {
        let exe = std::env::current_exe().unwrap();
        let size = std::fs::metadata(&exe).unwrap().len();

        let (got, libc) = check_binary(&host(Libc::Glibc(99, 0)), &exe, u64::MAX).unwrap();
        assert_eq!(got, size);
        assert!(libc.starts_with("glibc 2."), "{libc}");

        let e = check_binary(&host(Libc::Glibc(2, 0)), &exe, u64::MAX).unwrap_err();
        assert!(e.to_string().contains("needs GLIBC_2."), "{e}");
        assert!(e.to_string().contains("floor 2.0"), "{e}");

        let e = check_binary(&host(Libc::Static), &exe, u64::MAX).unwrap_err();
        assert!(e.to_string().contains("is not static"), "{e}");

        let e = check_binary(&host(Libc::Glibc(99, 0)), &exe, size - 1).unwrap_err();
        assert!(e.to_string().contains(&format!("is {size} bytes")), "{e}");
    }

    #[test]
    fn unknown_targets_name_the_supported_ones() {
        let e = dist(&["--target".into(), "nonsense".into()]).unwrap_err();
        for t in DIST_TARGETS {
            assert!(e.to_string().contains(t.triple), "{e}");
        }
    }
}
