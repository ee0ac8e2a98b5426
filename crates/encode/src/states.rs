//! The driver-state message (Neuron's `upload_drv_state`): which south nodes exist and
//! how they are, `docs/formats.md` §10.
//!
//! ```text
//! {"timestamp": 1650006388943, "states": [{"node": "modbus", "link": 1, "running": 3}]}
//! ```
//!
//! Neuron's MQTT plugin builds it with jansson (the `timestamp` member, then `states`,
//! each state `node`, `link`, `running`) and dumps it with the default layout, like
//! the data messages: `", "` and `": "`. The `compact` style drops the white space and
//! escapes strings as for data messages.

use crate::escape::{write_str, Hex};
use crate::{write_int, Style};

/// One south node in a driver-state message, with Neuron's codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeState<'a> {
    /// The south node's name (`"node"` in its data messages).
    pub node: &'a str,
    /// Neuron's link state: 0 disconnected, 1 connected.
    pub link: u8,
    /// Neuron's running state: 1 init, 2 ready, 3 running, 4 stopped.
    pub running: u8,
}

/// Appends the driver-state message for `states` (in the order given) at
/// `timestamp_ms` to `out`, in `style`.
///
/// ```
/// use tagwire_encode::{encode_driver_states, NodeState, Style};
///
/// let states = [NodeState { node: "modbus", link: 1, running: 3 }];
/// let mut out = Vec::new();
/// encode_driver_states(Style::Neuron, 1_650_006_388_943, &states, &mut out);
/// assert_eq!(
///     out,
///     br#"{"timestamp": 1650006388943, "states": [{"node": "modbus", "link": 1, "running": 3}]}"#
/// );
/// ```
pub fn encode_driver_states(
    style: Style,
    timestamp_ms: u64,
    states: &[NodeState<'_>],
    out: &mut Vec<u8>,
) {
    let (comma, colon, hex): (&[u8], &[u8], Hex) = match style {
        Style::Neuron => (b", ", b": ", Hex::Upper),
        Style::Compact => (b",", b":", Hex::Lower),
    };
    let key = |out: &mut Vec<u8>, name: &str| {
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.push(b'"');
        out.extend_from_slice(colon);
    };
    out.push(b'{');
    key(out, "timestamp");
    write_int(out, timestamp_ms);
    out.extend_from_slice(comma);
    key(out, "states");
    out.push(b'[');
    for (i, state) in states.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(comma);
        }
        out.push(b'{');
        key(out, "node");
        write_str(out, state.node, hex);
        out.extend_from_slice(comma);
        key(out, "link");
        write_int(out, state.link);
        out.extend_from_slice(comma);
        key(out, "running");
        write_int(out, state.running);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}
