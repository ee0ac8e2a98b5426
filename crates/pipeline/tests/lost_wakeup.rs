//! The uplink's lost wake-up after an empty take (issue 12's 1000-tag `tagwire bench`
//! anomaly), provoked deterministically. A test binary of its own: the push is made
//! from a tracing subscriber set for this thread, and no other test's thread may
//! register the event's callsite meanwhile (a race in which its cached interest can
//! miss the subscriber, and the push is never made).

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use support::{wait_for, Behaviour, TestServer};
use tagwire_pipeline::simulator::{GroupGenerator, SimGroup};
use tagwire_pipeline::{Enqueue, Family, Uplink, UplinkConfig};
use tokio::sync::watch;

const WITHIN: Duration = Duration::from_secs(10);
const TIMESTAMP: u64 = 1_650_006_388_943;

fn generator() -> GroupGenerator {
    GroupGenerator::new("sim", SimGroup::default_group())
}

/// Runs `hook` on the uplink's own thread each time the uplink reports that a take from
/// its queue came back empty (its TRACE event), before the uplink decides how to wait.
struct OnEmptyTake<F>(F);

impl<F: Fn() + Send + Sync + 'static> tracing::Subscriber for OnEmptyTake<F> {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "tagwire_pipeline::uplink"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0 == "the take came back empty" {
            (self.0)();
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The lost wake-up behind the 1000-tag `tagwire bench` anomaly (ws:// idle 250 ms at a
/// time): a producer on another thread pushed between the uplink's empty take and its
/// next look at the queue, which then read as a failed take, and the uplink slept until
/// its retry timer (250 ms) with the push's wake-up left in a branch it did not wait
/// on. Here the push is made exactly there, from a tracing subscriber on the uplink's
/// thread, and under tokio's paused clock (which moves only when every task waits) the
/// message must be confirmed before that timer could have fired.
#[tokio::test(flavor = "current_thread")]
async fn a_push_right_after_an_empty_take_wakes_the_uplink_without_a_timer() {
    // The uplink's RETRY_TAKE.
    const RETRY_TAKE: Duration = Duration::from_millis(250);

    let server = TestServer::start(Behaviour::default()).await;
    let uplink = Uplink::open(UplinkConfig::new("test", server.url.parse().unwrap()))
        .await
        .unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let fired = Arc::new(AtomicBool::new(false));
    let hook = {
        let (uplink, armed, fired) = (Arc::clone(&uplink), Arc::clone(&armed), Arc::clone(&fired));
        let snapshot = generator().next_snapshot(TIMESTAMP);
        move || {
            // Once, and only when nothing is in flight either: then no Pong is coming to
            // wake the uplink, as in the bench's stalls.
            if uplink.queue().in_flight() > 0 || !armed.swap(false, SeqCst) {
                return;
            }
            // A memory-only push completes on its first poll.
            let push = std::pin::pin!(uplink.enqueue(&snapshot));
            let outcome = push.poll(&mut Context::from_waker(Waker::noop()));
            assert!(matches!(outcome, Poll::Ready(Enqueue::Queued)));
            fired.store(true, SeqCst);
        }
    };
    let _subscriber = tracing::subscriber::set_default(OnEmptyTake(hook));
    // Whatever interest the event's callsite cached before this subscriber existed.
    tracing::callsite::rebuild_interest_cache();

    let (stop, stop_rx) = watch::channel(false);
    let task = uplink.spawn(stop_rx);
    let mut sim = generator();
    assert_eq!(
        uplink.enqueue(&sim.next_snapshot(TIMESTAMP)).await,
        Enqueue::Queued
    );
    wait_for("the first message confirmed", WITHIN, || {
        uplink.metrics().get(Family::SendMsgs) == 1
    })
    .await;

    tokio::time::pause();
    let started = tokio::time::Instant::now();
    armed.store(true, SeqCst);
    // Wakes the uplink: it writes this one, takes nothing, waits for the Pong, takes
    // nothing again with nothing in flight: the hook pushes there.
    assert_eq!(
        uplink.enqueue(&sim.next_snapshot(TIMESTAMP)).await,
        Enqueue::Queued
    );
    wait_for("the hook's push", WITHIN, || fired.load(SeqCst)).await;
    wait_for("the three messages confirmed", WITHIN, || {
        uplink.metrics().get(Family::SendMsgs) == 3
    })
    .await;
    let waited = started.elapsed();
    assert!(
        waited < RETRY_TAKE,
        "the message pushed right after an empty take waited {waited:?} (paused clock): \
         the uplink slept until its retry timer"
    );
    assert_eq!(server.seen.messages().len(), 3);
    let _ = stop.send(true);
    task.await.unwrap();
}
