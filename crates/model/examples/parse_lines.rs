//! Parses every line of stdin (NDJSON snapshots) with one reused [`Parser`], `REPS`
//! times (default 1), and prints the number of tags seen: the parse alone, for
//! profiling it under callgrind without criterion's harness around it.
//!
//! ```sh
//! cargo build --release -p tagwire-model --example parse_lines
//! valgrind --tool=callgrind target/release/examples/parse_lines < lines.ndjson
//! ```

use std::io::Read;

use tagwire_model::Parser;

fn main() {
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut input)
        .expect("stdin");
    let lines: Vec<&[u8]> = input
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut parser = Parser::new();
    let mut buf = Vec::new();
    let mut tags = 0usize;
    for _ in 0..reps {
        for line in &lines {
            buf.clear();
            buf.extend_from_slice(line);
            match parser.parse(&mut buf, 0) {
                Ok(s) => tags += s.tags.len(),
                Err(e) => eprintln!("{e}"),
            }
        }
    }
    println!("{tags} tags");
}
