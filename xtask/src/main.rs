//! `cargo xtask`: everything that is not plain `cargo build` / `cargo test`.
//!
//! - `cargo xtask test`: installs the real peers the end-to-end tests talk to (a Python
//!   venv with `websockets`, Node's `ws`, nginx and openssl from Debian when missing),
//!   then runs the whole workspace's tests with those peers required, so that a missing
//!   peer fails the run instead of skipping tests.
//! - `cargo xtask peers`: only the installation step, printing the environment it sets.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("peers") => {
            for (k, v) in install_peers()? {
                println!("export {k}={v}");
            }
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 test [cargo test args]   install the interop peers, then run every test with them\n  \
                 peers                    install the interop peers and print their environment"
            );
            std::process::exit(1);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn test(extra: &[String]) -> Result<()> {
    let peers = install_peers()?;
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root())
        .args(["test", "--workspace"])
        .args(extra)
        .env("TAGWIRE_REQUIRE_PEERS", "1");
    for (k, v) in &peers {
        cmd.env(k, v);
    }
    eprintln!("xtask: cargo test --workspace {}", extra.join(" "));
    let status = cmd.status().context("running cargo test")?;
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}

/// Makes sure every peer is installed; returns the environment that tells tests where.
fn install_peers() -> Result<Vec<(String, String)>> {
    let root = workspace_root();
    let peers_dir = root.join("target").join("peers");
    std::fs::create_dir_all(&peers_dir)?;
    let mut env = Vec::new();

    // Debian packages: openssl (certificates for the TLS tests), nginx (a TLS-terminating
    // proxy with client-certificate checks), tinyproxy (HTTP CONNECT proxy) and microsocks
    // (SOCKS5 proxy; runs unprivileged on loopback, unlike dante which wants a config in /etc).
    let missing: Vec<&str> = [
        ("openssl", "openssl"),
        ("nginx", "nginx-light"),
        ("tinyproxy", "tinyproxy"),
        ("microsocks", "microsocks"),
    ]
    .into_iter()
    .filter(|(bin, _)| which(bin).is_none())
    .map(|(_, pkg)| pkg)
    .collect();
    if !missing.is_empty() {
        eprintln!("xtask: installing Debian packages {missing:?}");
        run(apt_get().args(["update", "-qq"]))?;
        install_without_services(&missing)?;
    }
    if let Some(nginx) = which("nginx") {
        env.push(("TAGWIRE_NGINX".into(), nginx.display().to_string()));
    }
    if let Some(tinyproxy) = which("tinyproxy") {
        env.push(("TAGWIRE_TINYPROXY".into(), tinyproxy.display().to_string()));
    }
    if let Some(microsocks) = which("microsocks") {
        env.push((
            "TAGWIRE_MICROSOCKS".into(),
            microsocks.display().to_string(),
        ));
    }

    // Python `websockets` in a venv of our own.
    let venv = peers_dir.join("venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        eprintln!("xtask: creating the Python venv {}", venv.display());
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    let has_websockets = Command::new(&python)
        .args(["-c", "import websockets"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_websockets {
        eprintln!("xtask: pip install websockets");
        run(Command::new(&python).args(["-m", "pip", "install", "-q", "websockets>=13,<16"]))?;
    }
    env.push(("TAGWIRE_PYTHON".into(), python.display().to_string()));

    // Node `ws`.
    let node_dir = peers_dir.join("node");
    std::fs::create_dir_all(&node_dir)?;
    if !node_dir.join("node_modules").join("ws").exists() {
        eprintln!("xtask: npm install ws");
        run(Command::new("npm").current_dir(&node_dir).args([
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "ws@8",
        ]))?;
    }
    env.push((
        "TAGWIRE_NODE_PATH".into(),
        node_dir.join("node_modules").display().to_string(),
    ));
    Ok(env)
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn which(bin: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Installs Debian packages without leaving a system service running or enabled: Debian
/// starts and enables nginx and tinyproxy on install, but the tests run their own on
/// loopback, and a developer's machine should not keep a web server after `cargo xtask
/// test`. Starts are denied by a temporary `policy-rc.d` (when there is none already;
/// as root only, since writing it needs root), and the units are disabled afterwards.
fn install_without_services(packages: &[&str]) -> Result<()> {
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = is_root() && !policy.exists();
    if ours {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(
            policy,
            "#!/bin/sh\n# cargo xtask: no service starts while installing peers\nexit 101\n",
        )?;
        std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755))?;
    }
    let installed = run(apt_get()
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages));
    if ours {
        let _ = std::fs::remove_file(policy);
    }
    installed?;
    if which("systemctl").is_some() {
        for service in ["nginx", "tinyproxy"] {
            let mut cmd = if is_root() {
                Command::new("systemctl")
            } else {
                let mut c = Command::new("sudo");
                c.arg("systemctl");
                c
            };
            // Works without a running systemd (it removes the enablement links); a unit
            // that is not installed is no error worth stopping for.
            let _ = cmd
                .args(["disable", "--now", "--quiet", service])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    Ok(())
}

/// `apt-get`, through sudo unless we are root.
fn apt_get() -> Command {
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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}
