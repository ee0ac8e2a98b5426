//! `tagwire check`: validate a configuration without connecting.

use std::path::Path;
use std::process::ExitCode;

use crate::shutdown::EXIT_USAGE;
use crate::{cert_report, config};

/// Loads `path` as `run` would (certificates and keys included) and prints either a
/// summary or every problem found.
pub fn run(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(cfg) => {
            println!(
                "{}: usable ({} south, {} north)",
                path.display(),
                cfg.south.len(),
                cfg.north.len()
            );
            for uplink in &cfg.north {
                if let Some(cert) = cert_report::client_certificate(uplink) {
                    println!("{}", cert_report::describe(uplink, &cert));
                    if let Some(warning) = cert_report::warning(uplink, &cert) {
                        println!("{warning}");
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems.0 {
                println!("{p}");
            }
            ExitCode::from(EXIT_USAGE)
        }
    }
}
