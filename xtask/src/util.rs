//! Small helpers shared by the xtask commands: the workspace root, running commands,
//! finding tools, `apt-get` as root or through sudo.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the workspace),
/// else `target/` of the workspace.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// `cargo`, the one that runs us when there is one.
pub fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs `cmd`, failing with the command line when it cannot start or fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout (stderr goes to ours).
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first `bin` on PATH (or in /usr/sbin, /sbin, where Debian puts nginx).
pub fn which(bin: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// `apt-get`, through sudo unless we are root.
pub fn apt_get() -> Command {
    let mut cmd = if is_root() {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    };
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

/// A root command (`dpkg`, ...), through sudo unless we are root.
pub fn as_root(program: &str) -> Command {
    if is_root() {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.arg(program);
        c
    }
}

/// Installs the Debian packages of `pkgs` that are not installed yet (one `apt-get update`
/// first, only when something is missing), saying which.
pub fn apt_install(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !deb_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: apt-get install {}", missing.join(" "));
    run(apt_get().args(["update", "-qq"]))?;
    // Debian starts and enables the services of nginx and tinyproxy on install; the tests
    // run their own on loopback, and a developer's machine should not keep a web server
    // after `cargo xtask test`. Starts are denied by a temporary policy-rc.d (as root, when
    // there is none already), and the units are disabled afterwards.
    let policy = std::path::Path::new("/usr/sbin/policy-rc.d");
    let ours = is_root() && !policy.exists();
    if ours {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(
            policy,
            "#!/bin/sh\n# cargo xtask: no service starts\nexit 101\n",
        )?;
        std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755))?;
    }
    let installed = run(apt_get()
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing));
    if ours {
        let _ = std::fs::remove_file(policy);
    }
    installed?;
    for service in ["nginx", "tinyproxy"] {
        if missing.iter().any(|p| p.starts_with(service)) && which("systemctl").is_some() {
            let mut cmd = if is_root() {
                Command::new("systemctl")
            } else {
                let mut c = Command::new("sudo");
                c.arg("systemctl");
                c
            };
            // Works without a running systemd (it removes the enablement links).
            let _ = cmd
                .args(["disable", "--now", "--quiet", service])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    Ok(())
}

/// Whether the Debian package `pkg` is installed.
pub fn deb_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.ends_with(b"install ok installed"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A loopback port that is free now, for a server started next.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `doc` with the text from `begin` through `end` replaced by `section` (which carries
/// its own markers), or `section` appended when the markers are not there: how the
/// generated sections of `docs/benchmarks.md` are rewritten without touching the rest.
pub fn replace_marked(doc: &str, begin: &str, end: &str, section: &str) -> String {
    match (doc.find(begin), doc.find(end)) {
        (Some(b), Some(e)) if e > b => {
            format!(
                "{}{}{}",
                &doc[..b],
                section.trim_end(),
                &doc[e + end.len()..]
            )
        }
        _ => format!("{}\n\n{}", doc.trim_end(), section),
    }
}

/// Builds the release `tagwire` of this tree and returns its path: a benchmark must not
/// measure whatever older build is lying in `target/release`.
pub fn release_tagwire() -> Result<PathBuf> {
    run(cargo().args(["build", "--release", "-p", "tagwire", "--bin", "tagwire"]))?;
    Ok(target_dir().join("release/tagwire"))
}
