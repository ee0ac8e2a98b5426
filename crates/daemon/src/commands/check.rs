//! `tagwire check`: validate a configuration without connecting.

use std::path::Path;
use std::process::ExitCode;

use crate::config;
use crate::shutdown::EXIT_USAGE;

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
