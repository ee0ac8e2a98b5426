//! Driver states (Neuron's `upload_drv_state`): right after each connection of an
//! uplink and then every interval while it stays connected, one message saying how the
//! south nodes it subscribes to are, through the uplink's own queue (so it is ordered
//! with the data and confirmed like it, but counted apart: see
//! [`MessageKind::DriverState`](tagwire_queue::MessageKind::DriverState)).
//!
//! The south nodes and their states are the [`Hub`]'s ([`Hub::set_south`]), so that a
//! reload that adds or removes a source changes the next message. The uplink only
//! says when it connected ([`Uplink::connections`]); everything else is here.

use std::sync::Arc;
use std::time::Duration;

use tagwire_encode::{encode_driver_states, NodeState};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::RunningState;
use crate::{now_ms, Hub, Uplink};

/// Neuron's link state of a south node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkState {
    /// Not connected to its device.
    Disconnected = 0,
    /// Connected to its device.
    Connected = 1,
}

/// One south node as driver-state messages report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SouthNode {
    /// The node's name (`"node"` in its data messages).
    pub name: String,
    /// Whether it reaches its device.
    pub link: LinkState,
    /// Whether it runs.
    pub running: RunningState,
}

impl SouthNode {
    /// A node that runs and reaches its device (what a running simulator is).
    pub fn running(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            link: LinkState::Connected,
            running: RunningState::Running,
        }
    }
}

/// The driver-state message of `uplink` now: the hub's south nodes that its
/// subscriptions take, in the hub's order, in the uplink's style.
pub fn message(uplink: &Uplink, hub: &Hub, timestamp_ms: u64) -> Vec<u8> {
    let south = hub.south();
    let subscriptions = &uplink.config().subscriptions;
    let states: Vec<NodeState<'_>> = south
        .iter()
        .filter(|n| subscriptions.takes_node(&n.name))
        .map(|n| NodeState {
            node: &n.name,
            link: n.link as u8,
            running: n.running as u8,
        })
        .collect();
    let mut out = Vec::with_capacity(32 + 48 * states.len());
    encode_driver_states(
        uplink.config().encode.style,
        timestamp_ms,
        &states,
        &mut out,
    );
    out
}

/// Starts the driver-state task of `uplink` when its configuration asks for one
/// (`driver_states`), until `shutdown` turns true. Start it with the uplink's own task.
///
/// A message is queued right after each connection, then every interval while the
/// uplink stays connected; none while it is disconnected, since a state that waits for
/// a connection is stale when it arrives, and the connection brings a fresh one.
pub fn spawn(
    uplink: &Arc<Uplink>,
    hub: &Arc<Hub>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let every: Duration = uplink.config().driver_states?;
    let uplink = Arc::clone(uplink);
    let hub = Arc::clone(hub);
    let mut connections = uplink.connections();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A connection made before this task looked counts as "just connected".
        let mut send_now = *connections.borrow_and_update() > 0;
        loop {
            if send_now && uplink.metrics().connected() {
                // This message covers every connection made so far: mark them seen, or a
                // connection that became ready in the same turn as the tick (the first
                // tick is due at once, and fires on the runtime's next turn, often the
                // one that completes the handshake) sends a second, identical message.
                connections.borrow_and_update();
                let at = now_ms();
                let payload = message(&uplink, &hub, at);
                uplink.push_state(payload.into(), at).await;
                // The interval counts from this message.
                tick.reset();
            }
            tokio::select! {
                changed = connections.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    send_now = true;
                }
                _ = tick.tick() => send_now = true,
                _ = shutdown.changed() => return,
            }
        }
    }))
}
