//! Encodes one snapshot as Neuron's tags-format JSON and prints it.

use tagwire_encode::{EncodeOptions, Encoder, Format};
use tagwire_model::{Snapshot, Tag, Value};

fn main() {
    let snapshot = Snapshot::new("plc", "line1", 1_650_006_388_943)
        .with_tag(Tag::value("temp", Value::Float(21.5)).with_precision(1));
    let mut encoder = Encoder::new(EncodeOptions::default().with_format(Format::Tags));
    let mut out = Vec::new();
    // `false`: nothing to send (a snapshot without tags); `out` is then empty.
    if encoder.encode(&snapshot, &mut out) {
        println!("{}", String::from_utf8_lossy(&out));
    }
}
