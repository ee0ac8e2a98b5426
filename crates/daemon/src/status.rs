//! The status line: every `[log] status_interval`, one line per uplink with what happened
//! since the previous line, so that a log says the daemon is alive and moving data
//! between "connected" and stop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tagwire_pipeline::{Family, Hub, Uplink};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

/// The counters a status line reports as differences since the previous line.
const COUNTED: [Family; 5] = [
    Family::QueuedMsgs,
    Family::SendMsgs,
    Family::DroppedMsgs,
    Family::SendMsgErrors,
    Family::Reconnects,
];

/// Logs a status line per uplink of `hub` every `every` until `stop` turns true.
pub fn spawn(hub: Arc<Hub>, every: Duration, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        // By name: a reload changes the list, and a rebuilt uplink keeps its counters.
        let mut last: HashMap<String, [u64; COUNTED.len()]> = hub
            .uplinks()
            .iter()
            .map(|u| (u.config().name.clone(), counts(u)))
            .collect();
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let uplinks = hub.uplinks();
            last.retain(|name, _| uplinks.iter().any(|u| &u.config().name == name));
            for uplink in uplinks.iter() {
                // An uplink added by a reload starts from zero.
                let before = last.entry(uplink.config().name.clone()).or_default();
                let now = counts(uplink);
                let d = |i: usize| now[i].saturating_sub(before[i]);
                let m = uplink.metrics();
                info!(
                    uplink = %uplink.config().name,
                    connected = m.get(Family::LinkState) == 1,
                    interval = %tagwire_pipeline::human_duration(every),
                    queued = d(0),
                    delivered = d(1),
                    dropped = d(2),
                    send_errors = d(3),
                    reconnects = d(4),
                    cached = uplink.queue().counts(tagwire_pipeline::MessageKind::Data).held,
                    "status"
                );
                *before = now;
            }
        }
    })
}

/// The current totals of [`COUNTED`]; dropped messages summed over their reasons.
fn counts(uplink: &Uplink) -> [u64; COUNTED.len()] {
    COUNTED.map(|f| uplink.metrics().sample(f, uplink.queue()).total())
}
