//! The interop peers the end-to-end tests talk to: nginx, openssl, tinyproxy and
//! microsocks from Debian, a Python venv with `websockets`, Node's `ws`.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::util::{apt_install, run, target_dir, which};

/// Makes sure every peer is installed; returns the environment that tells tests where.
pub fn install() -> Result<Vec<(String, String)>> {
    let peers_dir = target_dir().join("peers");
    std::fs::create_dir_all(&peers_dir)?;
    let mut env = Vec::new();

    // Debian packages: openssl (certificates for the TLS tests), nginx (a TLS-terminating
    // proxy with client-certificate checks), tinyproxy (HTTP CONNECT proxy) and microsocks
    // (SOCKS5 proxy; runs unprivileged on loopback, unlike dante which wants a config in /etc).
    let peers = [
        ("openssl", "openssl", None),
        ("nginx", "nginx-light", Some("TAGWIRE_NGINX")),
        ("tinyproxy", "tinyproxy", Some("TAGWIRE_TINYPROXY")),
        ("microsocks", "microsocks", Some("TAGWIRE_MICROSOCKS")),
    ];
    let missing: Vec<&str> = peers
        .iter()
        .filter(|(bin, _, _)| which(bin).is_none())
        .map(|(_, pkg, _)| *pkg)
        .collect();
    apt_install(&missing)?;
    for (bin, _, var) in peers {
        if let (Some(var), Some(path)) = (var, which(bin)) {
            env.push((var.to_string(), path.display().to_string()));
        }
    }

    let python = python_venv(&peers_dir.join("venv"))?;
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

/// Python `websockets` in a venv of our own; returns the venv's python.
fn python_venv(venv: &Path) -> Result<std::path::PathBuf> {
    let python = venv.join("bin").join("python");
    if !python.exists() {
        eprintln!("xtask: creating the Python venv {}", venv.display());
        run(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
    }
    let has_websockets = Command::new(&python)
        .args(["-c", "import websockets"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_websockets {
        eprintln!("xtask: pip install websockets");
        run(Command::new(&python).args(["-m", "pip", "install", "-q", "websockets>=13,<16"]))?;
    }
    Ok(python)
}
