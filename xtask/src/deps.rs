//! `cargo xtask deps`: how many crates a user of the library crates compiles.
//!
//! Each row is a small probe program under `target/deps-probe/` that depends on some of
//! the workspace's library crates by path, with given features, and the workspace's
//! `Cargo.lock` copied beside it so the versions are ours. `cargo tree -e normal` of the
//! probe lists what a user's build pulls in; a crate counts once per version (two majors
//! of `syn` are two crates to compile). A program row counts the program itself, a crate
//! row counts the crate and not the probe: the same rules as the README's table.
//!
//! `--check` fails when a row is over its budget, so a dependency added by accident is
//! caught in CI rather than found by a user.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::util;

/// One library crate a probe depends on.
struct Dep {
    /// Directory under `crates/`.
    dir: &'static str,
    /// Package name.
    name: &'static str,
    default_features: bool,
    features: &'static [&'static str],
}

const fn dep(dir: &'static str, name: &'static str) -> Dep {
    Dep {
        dir,
        name,
        default_features: true,
        features: &[],
    }
}

const fn lean(dir: &'static str, name: &'static str) -> Dep {
    Dep {
        dir,
        name,
        default_features: false,
        features: &[],
    }
}

const fn with(dir: &'static str, name: &'static str, features: &'static [&'static str]) -> Dep {
    Dep {
        dir,
        name,
        default_features: true,
        features,
    }
}

/// A row of the table: a probe and whether the probe itself counts.
struct Row {
    what: &'static str,
    deps: &'static [Dep],
    /// A program counts itself; a single crate row counts the crate, not the probe.
    counts_probe: bool,
    /// `--check` fails above this many crates.
    budget: Option<usize>,
}

const MODEL: Dep = dep("model", "tagwire-model");
const ENCODE: Dep = dep("encode", "tagwire-encode");
const TLS: Dep = dep("tls-config", "tagwire-tls-config");
const WS: Dep = dep("ws-client", "tagwire-ws-client");

/// The four-crate push program with default features: the issue #14 target is
/// tokio-tungstenite's stack (about 70).
const FOUR_CRATE_BUDGET: usize = 72;

const ROWS: &[Row] = &[
    Row {
        what: "model + encode + tls-config + ws-client, default features",
        deps: &[MODEL, ENCODE, TLS, WS],
        counts_probe: true,
        budget: Some(FOUR_CRATE_BUDGET),
    },
    Row {
        what: "the same with tls-config's `encrypted-keys`",
        deps: &[
            MODEL,
            ENCODE,
            with("tls-config", "tagwire-tls-config", &["encrypted-keys"]),
            WS,
        ],
        counts_probe: true,
        budget: None,
    },
    Row {
        what: "the same with `encrypted-keys` and `pkcs12` (what the daemon uses)",
        deps: &[
            MODEL,
            ENCODE,
            with(
                "tls-config",
                "tagwire-tls-config",
                &["encrypted-keys", "pkcs12"],
            ),
            WS,
        ],
        counts_probe: true,
        budget: None,
    },
    Row {
        what: "model + encode + ws-client (`default-features = false`, your own rustls config)",
        deps: &[
            lean("model", "tagwire-model"),
            lean("encode", "tagwire-encode"),
            lean("ws-client", "tagwire-ws-client"),
        ],
        counts_probe: true,
        budget: None,
    },
    Row {
        what: "model + encode without the parser (`default-features = false`)",
        deps: &[
            lean("model", "tagwire-model"),
            lean("encode", "tagwire-encode"),
        ],
        counts_probe: false,
        // Issue #14: "encode + model without the parser under 10".
        budget: Some(9),
    },
    Row {
        what: "`tagwire-model` (`parse`, the default)",
        deps: &[MODEL],
        counts_probe: false,
        budget: None,
    },
    Row {
        what: "`tagwire-model`, `default-features = false`",
        deps: &[lean("model", "tagwire-model")],
        counts_probe: false,
        budget: Some(1),
    },
    Row {
        what: "`tagwire-encode`",
        deps: &[ENCODE],
        counts_probe: false,
        budget: None,
    },
    Row {
        what: "`tagwire-encode`, `default-features = false`",
        deps: &[lean("encode", "tagwire-encode")],
        counts_probe: false,
        budget: None,
    },
    Row {
        what: "`tagwire-tls-config`",
        deps: &[TLS],
        counts_probe: false,
        budget: None,
    },
    Row {
        what: "`tagwire-tls-config` with `encrypted-keys`",
        deps: &[with(
            "tls-config",
            "tagwire-tls-config",
            &["encrypted-keys"],
        )],
        counts_probe: false,
        budget: None,
    },
    Row {
        what: "`tagwire-tls-config` with `encrypted-keys` and `pkcs12`",
        deps: &[with(
            "tls-config",
            "tagwire-tls-config",
            &["encrypted-keys", "pkcs12"],
        )],
        counts_probe: false,
        budget: None,
    },
    Row {
        what: "`tagwire-ws-client`",
        deps: &[WS],
        counts_probe: false,
        budget: None,
    },
    Row {
        what: "`tagwire-ws-client`, `default-features = false`",
        deps: &[lean("ws-client", "tagwire-ws-client")],
        counts_probe: false,
        budget: None,
    },
    Row {
        what: "`tagwire-queue`",
        deps: &[dep("queue", "tagwire-queue")],
        counts_probe: false,
        budget: None,
    },
    Row {
        what: "`tagwire-pipeline`",
        deps: &[dep("pipeline", "tagwire-pipeline")],
        counts_probe: false,
        budget: None,
    },
];

/// The probe package's name, left out of crate rows.
const PROBE: &str = "tagwire-deps-probe";

/// Counts every row, prints a markdown table, and with `--check` fails on a row over
/// its budget.
pub fn deps(args: &[String]) -> Result<()> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => bail!("usage: cargo xtask deps [--check]"),
    };
    let root = util::workspace_root();
    let probes = util::target_dir().join("deps-probe");
    let mut over = Vec::new();
    println!("| what | unique crates | budget |\n| --- | ---: | ---: |");
    for (i, row) in ROWS.iter().enumerate() {
        let dir = probes.join(format!("row{i}"));
        write_probe(&dir, &root, row)?;
        let tree = util::output(
            util::cargo()
                .current_dir(&dir)
                .args(["tree", "-e", "normal", "--prefix", "none"]),
        )
        .with_context(|| format!("cargo tree of the probe for {}", row.what))?;
        let count = count_crates(&tree, row.counts_probe);
        let budget = row.budget.map_or(String::new(), |b| b.to_string());
        println!("| {} | {count} | {budget} |", row.what);
        if let Some(budget) = row.budget.filter(|&b| count > b) {
            over.push(format!("{}: {count} crates, budget {budget}", row.what));
        }
    }
    if check && !over.is_empty() {
        bail!(
            "over the dependency budget (see what pulls a crate in with `cargo tree -i NAME` \
             in the probe directory {}):\n  {}",
            probes.display(),
            over.join("\n  ")
        );
    }
    Ok(())
}

/// Writes the probe program of `row` into `dir`.
fn write_probe(dir: &Path, root: &Path, row: &Row) -> Result<()> {
    fs::create_dir_all(dir.join("src")).with_context(|| format!("creating {}", dir.display()))?;
    let mut manifest = format!(
        "[package]\nname = \"{PROBE}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         # A workspace of its own: the probe is not a member of tagwire's.\n[workspace]\n\n\
         [dependencies]\n"
    );
    for dep in row.deps {
        let features = dep
            .features
            .iter()
            .map(|f| format!("\"{f}\""))
            .collect::<Vec<_>>()
            .join(", ");
        manifest.push_str(&format!(
            "{} = {{ path = {:?}, default-features = {}, features = [{features}] }}\n",
            dep.name,
            root.join("crates").join(dep.dir),
            dep.default_features,
        ));
    }
    fs::write(dir.join("Cargo.toml"), manifest)?;
    fs::write(dir.join("src/main.rs"), "fn main() {}\n")?;
    // Our lockfile, so the probe resolves to the versions the workspace is tested with.
    fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).context("copying Cargo.lock")?;
    Ok(())
}

/// Unique `name version` pairs in `cargo tree --prefix none` output; the probe package
/// itself only when `counts_probe`.
fn count_crates(tree: &str, counts_probe: bool) -> usize {
    let crates: BTreeSet<(&str, &str)> = tree
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .filter(|(name, _)| counts_probe || *name != PROBE)
        .collect();
    crates.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TREE: &str = "tagwire-deps-probe v0.0.0 (/t/p)
tagwire-model v0.1.0 (/w/crates/model)
simd-json v0.17.3
syn v2.0.1
syn v3.0.10
syn v3.0.10 (*)
ref-cast-impl v1.0.27 (proc-macro)

";

    #[test]
    fn counts_each_version_once_and_the_probe_only_for_programs() {
        // syn twice in one version is one crate, two versions are two crates.
        assert_eq!(count_crates(TREE, false), 5);
        assert_eq!(count_crates(TREE, true), 6);
    }
}
