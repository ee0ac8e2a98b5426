//! The criterion baselines write exactly tagwire's compact message for every shape the
//! `encode` benchmark times: derive and the floor are only comparisons if they do the
//! same job. (The benchmark checks it too before timing, but only when it runs.)

#[path = "../benches/support/derive.rs"]
#[allow(dead_code)] // the benchmark uses the rest
mod derive;
#[path = "../../crates/encode/examples/support/shapes.rs"]
#[allow(dead_code)]
mod shapes;

use shapes::{mixed100, neuron100, shaped, Mix};
use tagwire_encode::Format;
use tagwire_model::parse_snapshot;

#[test]
fn derive_and_the_floor_write_tagwires_bytes_for_every_shape() {
    let vectors = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/encode/tests/vectors/snapshots.ndjson"
    ))
    .expect("the vectors live in crates/encode/tests/vectors/");
    let mut shapes = vec![
        ("mixed100".to_owned(), mixed100()),
        ("neuron100".into(), neuron100()),
    ];
    for n in [10, 100, 1000] {
        for mix in Mix::ALL {
            shapes.push((format!("{}{n}", mix.name()), shaped(n, mix)));
        }
    }
    // The vectors' 1000-tag snapshot, as the benchmark's big1000 group reads it.
    let big = vectors
        .lines()
        .map(|l| parse_snapshot(&mut l.as_bytes().to_vec(), 0).expect("vector parses"))
        .find(|s| s.tags.len() == 1000)
        .expect("a 1000-tag snapshot in the vectors");
    shapes.push(("big1000".into(), big));
    for (name, snap) in &shapes {
        for format in [Format::Values, Format::Tags] {
            derive::assert_same_bytes(name, snap, format);
        }
    }
}
