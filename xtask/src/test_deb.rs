//! `cargo xtask test-deb`: the amd64 `.deb` installed for real on this (amd64 Debian)
//! machine with `dpkg -i`: its files are where the systemd unit expects them,
//! `tagwire check` passes on the installed config, `dpkg -r` keeps the edited conffile,
//! and a purge leaves the machine as it was.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::dist::{dist_dir, version};
use crate::util::{as_root, output, run};

const CONFIG: &str = "/etc/tagwire/tagwire.toml";
const UNIT: &str = "/usr/lib/systemd/system/tagwire.service";

/// Runs the install / check / remove / purge sequence; the package is purged whatever
/// happens.
pub fn test_deb() -> Result<()> {
    let deb = dist_dir().join(format!("tagwire_{}-1_amd64.deb", version()?));
    if !deb.exists() {
        bail!(
            "{} not found: run `cargo xtask dist --target x86_64-unknown-linux-musl` first",
            deb.display()
        );
    }
    if status().is_some() {
        bail!(
            "the package tagwire is already installed here ({}): remove it first (`dpkg --purge tagwire`), so this test cannot touch a real installation",
            status().unwrap_or_default()
        );
    }
    let result = install_and_check(&deb);
    let purge = run(as_root("dpkg").args(["--purge", "tagwire"]));
    result?;
    purge?;
    ensure!(
        !Path::new(CONFIG).exists(),
        "{CONFIG} is still there after dpkg --purge"
    );
    ensure!(
        status().is_none(),
        "tagwire is still known to dpkg after the purge"
    );
    println!("test-deb: purged; nothing left behind");
    Ok(())
}

fn install_and_check(deb: &Path) -> Result<()> {
    run(as_root("dpkg").arg("-i").arg(deb))?;
    println!("test-deb: dpkg -i {}", deb.display());

    // The files the unit names exist: the binary of each Exec line and its --config.
    let unit = std::fs::read_to_string(UNIT).with_context(|| format!("{UNIT} not installed"))?;
    let mut named = Vec::new();
    for line in unit.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.starts_with("Exec") {
            let words: Vec<&str> = value.split_whitespace().collect();
            named.push(
                words[0]
                    .trim_start_matches(['-', '@', '+', '!'])
                    .to_string(),
            );
            if let Some(i) = words.iter().position(|w| *w == "--config") {
                named.push(
                    words
                        .get(i + 1)
                        .context("--config without a path")?
                        .to_string(),
                );
            }
        }
    }
    named.sort();
    named.dedup();
    ensure!(!named.is_empty(), "{UNIT} has no Exec line");
    for path in &named {
        ensure!(
            Path::new(path).is_file(),
            "{UNIT} names {path}, which the package did not install"
        );
    }
    ensure!(
        unit.contains("StateDirectory=tagwire"),
        "{UNIT}: no StateDirectory=tagwire for the disk cache"
    );
    let conffiles = output(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "tagwire"]))?;
    ensure!(
        conffiles.contains(CONFIG),
        "{CONFIG} is not a conffile: {conffiles:?}"
    );
    println!(
        "test-deb: the unit's files are installed: {}",
        named.join(", ")
    );

    let check = Command::new("/usr/bin/tagwire")
        .args(["check", "--config", CONFIG])
        .output()?;
    ensure!(
        check.status.success(),
        "tagwire check --config {CONFIG} failed ({}): {}{}",
        check.status,
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    println!("test-deb: tagwire check --config {CONFIG} passes");

    // An edit the administrator made must survive `dpkg -r`.
    let marker = format!("# edited by cargo xtask test-deb ({})", std::process::id());
    let edited = format!("{}\n{marker}\n", std::fs::read_to_string(CONFIG)?);
    std::fs::write(CONFIG, edited).with_context(|| format!("cannot edit {CONFIG}"))?;
    run(as_root("dpkg").args(["-r", "tagwire"]))?;
    ensure!(
        !Path::new("/usr/bin/tagwire").exists(),
        "/usr/bin/tagwire is still there after dpkg -r"
    );
    let kept = std::fs::read_to_string(CONFIG)
        .with_context(|| format!("{CONFIG} is gone after dpkg -r"))?;
    ensure!(
        kept.contains(&marker),
        "{CONFIG} lost the edit after dpkg -r"
    );
    ensure!(
        status().as_deref() == Some("deinstall ok config-files"),
        "dpkg status after -r: {:?}",
        status()
    );
    println!("test-deb: dpkg -r removed the binary and kept the edited {CONFIG}");
    Ok(())
}

/// dpkg's status of the package, None when dpkg does not know it.
fn status() -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "tagwire"])
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !s.is_empty() && s != "unknown ok not-installed").then_some(s)
}
