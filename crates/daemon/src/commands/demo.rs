//! `tagwire demo`: the embedded default. A simulator feeds one uplink that delivers to
//! a receiver on loopback, all in this process: no configuration, no network. It shows
//! live progress, one real message, and a summary that checks the `counter` tag of every
//! group for gaps.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tagwire_pipeline::simulator::{SimGroup, COUNTER_TAG};
use tagwire_pipeline::{spawn_simulator, Family, Hub, Uplink, UplinkConfig};
use tokio::net::TcpListener;

use crate::shutdown::Running;
use crate::sink::{self, SinkStats};

/// What the receiver learnt from the `counter` tags.
#[derive(Default)]
struct CounterCheck {
    /// Last counter seen per group.
    last: HashMap<String, u64>,
    /// Counters that skipped ahead (messages missing).
    gaps: u64,
    /// Counters seen again (duplicates, possible after a reconnect).
    duplicates: u64,
    /// The first message, shown to the user.
    sample: Option<String>,
}

impl CounterCheck {
    fn observe(&mut self, payload: &[u8]) {
        if self.sample.is_none() {
            self.sample = Some(String::from_utf8_lossy(payload).into_owned());
        }
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(payload) else {
            return;
        };
        let (Some(group), Some(counter)) =
            (msg["group"].as_str(), msg["values"][COUNTER_TAG].as_u64())
        else {
            return;
        };
        let last = self.last.entry(group.to_string()).or_insert(0);
        if counter <= *last {
            self.duplicates += 1;
        } else {
            self.gaps += counter - *last - 1;
            *last = counter;
        }
    }
}

/// Runs the demo for `seconds` (or until Ctrl-C).
pub async fn run(seconds: u64) -> Result<ExitCode> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on loopback")?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(SinkStats::default());
    let check = Arc::new(Mutex::new(CounterCheck::default()));
    let url = format!("ws://{addr}/demo").parse().context("demo url")?;
    let uplink = Uplink::open(UplinkConfig::new("demo-uplink", url))
        .await
        .context("demo uplink")?;
    let hub = Arc::new(Hub::new(vec![Arc::clone(&uplink)]));
    let mut running = Running::start(&hub);
    let on_message: sink::OnMessage = {
        let check = Arc::clone(&check);
        Arc::new(move |_, payload: &[u8]| {
            check
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .observe(payload)
        })
    };
    let receiver = tokio::spawn(sink::serve(
        listener,
        None,
        Arc::clone(&stats),
        on_message,
        // The receiver stops after the uplinks, so that it reads their whole drain.
        running.stopped_signal(),
    ));

    let groups = vec![
        SimGroup::default_group(),
        SimGroup {
            name: "fast".into(),
            interval: Duration::from_millis(20),
            tags: 100,
        },
    ];
    println!("tagwire demo: simulator \"demo-sim\" -> uplink -> receiver at ws://{addr}/demo");
    println!(
        "  groups: \"default\" (one tag of every Neuron type, every 1 s), \"fast\" (100 tags, every 20 ms)"
    );
    println!("  format: values, style: neuron, binary frames, delivery confirmed by ping/pong");
    running.add_sources(spawn_simulator(
        "demo-sim",
        groups,
        Arc::clone(&hub),
        running.sources_signal(),
    ));

    let started = Instant::now();
    let deadline = tokio::time::sleep(Duration::from_secs(seconds));
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut sample_shown = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut deadline => break,
            _ = crate::shutdown::signal() => break,
        }
        let c = check.lock().unwrap_or_else(|e| e.into_inner());
        if !sample_shown {
            if let Some(s) = &c.sample {
                let shown: String = s.chars().take(400).collect();
                let more = if s.chars().count() > 400 { " ..." } else { "" };
                println!(
                    "  first message received ({} bytes):\n    {shown}{more}",
                    s.len()
                );
                sample_shown = true;
            }
        }
        let m = uplink.metrics();
        println!(
            "  {:>4.0}s  link {}  confirmed {:>6}  received {:>6}  queued {:>4}  gaps {}  duplicates {}",
            started.elapsed().as_secs_f64(),
            if m.connected() { "up  " } else { "down" },
            m.get(Family::SendMsgs),
            stats.messages.load(Relaxed),
            uplink.queue().occupancy().0,
            c.gaps,
            c.duplicates,
        );
    }

    // Stop the sources, let the uplink drain and close, then stop the receiver.
    running.stop().await;
    let _ = receiver.await;

    let c = check.lock().unwrap_or_else(|e| e.into_inner());
    let m = uplink.metrics();
    let secs = started.elapsed().as_secs_f64();
    let received = stats.messages.load(Relaxed);
    println!(
        "tagwire demo: {received} messages ({:.1} KB) received in {secs:.1} s; {} confirmed by the receiver; {} gaps, {} duplicates in the counter tags; {} dropped",
        stats.bytes.load(Relaxed) as f64 / 1024.0,
        m.get(Family::SendMsgs),
        c.gaps,
        c.duplicates,
        tagwire_pipeline::DropReason::ALL.iter().map(|r| m.dropped(*r)).sum::<u64>(),
    );
    if c.gaps > 0 || received == 0 {
        eprintln!("tagwire demo: data was lost; run with TAGWIRE_LOG=debug to see why");
        return Ok(ExitCode::from(crate::shutdown::EXIT_RUNTIME));
    }
    Ok(ExitCode::SUCCESS)
}
