//! The driver-state vectors (`tests/vectors/driver_states.*`, `docs/formats.md` §10),
//! byte for byte: every message of `driver_states.json` through
//! [`encode_driver_states`] in both styles, against the expected lines.

use std::path::PathBuf;

use serde_json::Value as J;
use tagwire_encode::{encode_driver_states, NodeState, Style};

fn read(name: &str) -> String {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn check(style: Style, file: &str) {
    let inputs: Vec<J> = serde_json::from_str(&read("driver_states.json")).unwrap();
    let expected: Vec<String> = read(file).lines().map(str::to_owned).collect();
    assert_eq!(inputs.len(), expected.len(), "{file}: one line per message");
    for (n, (input, want)) in inputs.iter().zip(&expected).enumerate() {
        let states: Vec<NodeState> = input["states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| NodeState {
                node: s["node"].as_str().unwrap(),
                link: s["link"].as_u64().unwrap() as u8,
                running: s["running"].as_u64().unwrap() as u8,
            })
            .collect();
        let mut out = b"kept".to_vec();
        encode_driver_states(
            style,
            input["timestamp"].as_u64().unwrap(),
            &states,
            &mut out,
        );
        assert_eq!(&out[..4], b"kept", "appends, never clears");
        let got = std::str::from_utf8(&out[4..]).unwrap();
        assert_eq!(got, want, "{file} line {}", n + 1);
        // Whatever the style, it is JSON that reads back to the input.
        assert_eq!(
            &serde_json::from_str::<J>(got).unwrap(),
            input,
            "{file} line {}",
            n + 1
        );
    }
}

#[test]
fn neuron_style_is_janssons_default_layout() {
    check(Style::Neuron, "driver_states.neuron.txt");
}

#[test]
fn compact_style_has_no_white_space() {
    check(Style::Compact, "driver_states.compact.txt");
}
