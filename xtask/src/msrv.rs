//! `cargo xtask msrv`: the workspace's `rust-version` is true for what the library crates
//! pull in.
//!
//! Reads `cargo metadata` (all features, so optional dependencies count too) and walks
//! the normal and build dependencies of every publishable library crate; each package
//! reached that declares a `rust-version` higher than ours fails the check, named with the
//! crate that pulls it in. Dev-dependencies (criterion, proptest, ...) are left out: they
//! never reach a user of the crates. Also checks that every publishable crate inherits
//! the workspace's `rust-version`.

use std::collections::{HashMap, HashSet, VecDeque};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::util;

/// A `rust-version` as (major, minor, patch); a missing part is 0.
type Version = (u64, u64, u64);

/// Parses `1.88` or `1.88.0`; `None` for anything else.
fn parse_version(text: &str) -> Option<Version> {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some((major, minor, patch))
}

/// One dependency whose declared `rust-version` is above ours.
#[derive(Debug, PartialEq)]
struct TooNew {
    /// `name version`.
    package: String,
    declared: String,
    /// The library crate through which it is reached.
    via: String,
}

/// Runs the check and prints what it looked at.
pub fn msrv() -> Result<()> {
    let json = util::output(util::cargo().args([
        "metadata",
        "--format-version",
        "1",
        "--all-features",
        "--locked",
    ]))?;
    let metadata: Value = serde_json::from_str(&json).context("parsing cargo metadata")?;
    let report = check(&metadata)?;
    eprintln!(
        "xtask msrv: rust-version {} holds for {} crates ({} declare one, highest {})",
        report.ours, report.checked, report.declaring, report.highest
    );
    Ok(())
}

/// What [`check`] found when everything is fine.
struct Report {
    ours: String,
    checked: usize,
    declaring: usize,
    highest: String,
}

fn check(metadata: &Value) -> Result<Report> {
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata has no packages")?;
    let by_id: HashMap<&str, &Value> = packages
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let members: HashSet<&str> = metadata["workspace_members"]
        .as_array()
        .context("cargo metadata has no workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Publishable library crates: members with a lib target and `publish` not `false`
    // (cargo metadata gives `publish: []` for `publish = false`).
    let libraries: Vec<&Value> = members
        .iter()
        .filter_map(|id| by_id.get(id).copied())
        .filter(|p| p["publish"].as_array().is_none_or(|r| !r.is_empty()))
        .filter(|p| {
            p["targets"].as_array().is_some_and(|ts| {
                ts.iter().any(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "lib"))
                })
            })
        })
        .collect();
    if libraries.is_empty() {
        bail!("no publishable library crate in the workspace");
    }
    let ours_text = libraries[0]["rust_version"]
        .as_str()
        .context("the library crates declare no rust-version: set workspace.package.rust-version")?
        .to_owned();
    let ours = parse_version(&ours_text)
        .with_context(|| format!("the workspace's rust-version {ours_text:?} is not a version"))?;
    for lib in &libraries {
        if lib["rust_version"].as_str() != Some(ours_text.as_str()) {
            bail!(
                "{} declares rust-version {:?}, the others {ours_text}: use rust-version.workspace = true",
                lib["name"],
                lib["rust_version"]
            );
        }
    }

    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .context("cargo metadata has no resolve graph")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let mut too_new = Vec::new();
    // Every package reached, for the counts; each library walks its own graph, so a
    // package that is too new is named with every library that pulls it in.
    let mut all = HashSet::new();
    let mut declaring = HashSet::new();
    let mut highest = (0, 0, 0);
    let mut highest_text = String::from("none");
    for lib in &libraries {
        let lib_name = lib["name"].as_str().unwrap_or("?");
        let mut seen = HashSet::new();
        let mut queue: VecDeque<&str> = VecDeque::from([lib["id"].as_str().unwrap_or("")]);
        while let Some(id) = queue.pop_front() {
            let Some(node) = nodes.get(id) else { continue };
            for dep in node["deps"].as_array().into_iter().flatten() {
                let runtime = dep["dep_kinds"].as_array().is_some_and(|kinds| {
                    kinds
                        .iter()
                        .any(|k| k["kind"].is_null() || k["kind"] == "build")
                });
                let Some(dep_id) = dep["pkg"].as_str() else {
                    continue;
                };
                if !runtime || !seen.insert(dep_id) {
                    continue;
                }
                queue.push_back(dep_id);
                all.insert(dep_id);
                let Some(package) = by_id.get(dep_id) else {
                    continue;
                };
                let Some(declared) = package["rust_version"].as_str() else {
                    continue;
                };
                declaring.insert(dep_id);
                let Some(version) = parse_version(declared) else {
                    continue;
                };
                if version > highest {
                    highest = version;
                    highest_text = format!("{declared} ({})", package["name"]);
                }
                if version > ours {
                    too_new.push(TooNew {
                        package: format!(
                            "{} {}",
                            package["name"].as_str().unwrap_or("?"),
                            package["version"].as_str().unwrap_or("?")
                        ),
                        declared: declared.to_owned(),
                        via: lib_name.to_owned(),
                    });
                }
            }
        }
    }
    if !too_new.is_empty() {
        let list: Vec<String> = too_new
            .iter()
            .map(|t| format!("  {} needs Rust {} (via {})", t.package, t.declared, t.via))
            .collect();
        bail!(
            "dependencies need a newer Rust than the workspace's rust-version {ours_text}:\n{}\n\
             raise workspace.package.rust-version in Cargo.toml, or pin an older version \
             (cargo update -p NAME --precise VERSION)",
            list.join("\n")
        );
    }
    Ok(Report {
        ours: ours_text,
        checked: all.len(),
        declaring: declaring.len(),
        highest: highest_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A workspace with one library `lib` depending on `dep` (normal) and `tool` (dev).
    fn metadata(ours: &str, dep: &str, tool: &str) -> Value {
        json!({
            "workspace_members": ["lib"],
            "packages": [
                {"id": "lib", "name": "lib", "version": "0.1.0", "rust_version": ours,
                 "publish": null, "targets": [{"kind": ["lib"]}]},
                {"id": "dep", "name": "dep", "version": "1.0.0", "rust_version": dep,
                 "publish": null, "targets": [{"kind": ["lib"]}]},
                {"id": "tool", "name": "tool", "version": "2.0.0", "rust_version": tool,
                 "publish": null, "targets": [{"kind": ["lib"]}]}
            ],
            "resolve": {"nodes": [
                {"id": "lib", "deps": [
                    {"pkg": "dep", "dep_kinds": [{"kind": null}]},
                    {"pkg": "tool", "dep_kinds": [{"kind": "dev"}]}
                ]},
                {"id": "dep", "deps": []},
                {"id": "tool", "deps": []}
            ]}
        })
    }

    #[test]
    fn a_dependency_newer_than_ours_fails_and_is_named() {
        let err = check(&metadata("1.85", "1.88", "1.60")).err().unwrap();
        let text = format!("{err:#}");
        assert!(
            text.contains("dep 1.0.0 needs Rust 1.88 (via lib)"),
            "{text}"
        );
    }

    #[test]
    fn dev_dependencies_do_not_count() {
        let report = check(&metadata("1.88", "1.88.0", "1.95")).unwrap();
        assert_eq!(report.checked, 1);
        assert_eq!(report.highest, "1.88.0 (\"dep\")");
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(parse_version("1.100").unwrap() > parse_version("1.88.1").unwrap());
        assert_eq!(parse_version("1.88"), Some((1, 88, 0)));
        assert_eq!(parse_version("x"), None);
    }
}
