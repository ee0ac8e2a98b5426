//! One module per subcommand, each with a `run` entry point.

pub mod bench;
pub mod bench_disk;
pub mod bench_raw;
pub mod check;
pub mod demo;
pub mod encode;
pub mod run;
pub mod sink;
