//! The uplink against an in-process WebSocket server: confirmation by Pong, rewind and
//! resend after a cut, drop accounting per policy, drain at shutdown, keep-alive
//! timeout, and a current-thread runtime with a disk cache. Every test counts what was
//! sent (the simulator's `counter` tag) and what arrived.

mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use support::{wait_for, Behaviour, TestServer};
use tagwire_pipeline::simulator::{GroupGenerator, SimGroup};
use tagwire_pipeline::{
    DiskCacheConfig, DropReason, Enqueue, Family, FullPolicy, Hub, QueueLimits, SyncPolicy, Uplink,
    UplinkConfig,
};
use tagwire_ws_client::KeepAlive;
use tokio::sync::watch;

const WITHIN: Duration = Duration::from_secs(10);

fn config(url: &str) -> UplinkConfig {
    let mut config = UplinkConfig::new("test", url.parse().unwrap());
    config.backoff_floor = Duration::from_millis(20);
    config.backoff_ceiling = Duration::from_millis(100);
    config
}

/// The `counter` tag of a message the simulator made (values format, neuron style).
fn counter(payload: &Bytes) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
    v["values"]["counter"].as_u64().expect("a counter tag")
}

fn counters(payloads: &[Bytes]) -> Vec<u64> {
    payloads.iter().map(counter).collect()
}

/// Enqueues `n` snapshots of one simulated group; returns their counters.
async fn enqueue(uplink: &Uplink, generator: &mut GroupGenerator, n: usize) -> Vec<Enqueue> {
    let mut outcomes = Vec::new();
    for _ in 0..n {
        outcomes.push(
            uplink
                .enqueue(&generator.next_snapshot(1_650_006_388_943))
                .await,
        );
    }
    outcomes
}

fn generator() -> GroupGenerator {
    GroupGenerator::new("sim", SimGroup::default_group())
}

#[tokio::test]
async fn messages_leave_the_queue_only_when_a_pong_confirms_them() {
    // A server that reads everything but never answers a Ping: nothing is confirmed.
    let mute = TestServer::start(Behaviour {
        answer_pings: false,
        ..Behaviour::default()
    })
    .await;
    let mut mute_config = config(&mute.url);
    // It will never confirm: do not wait the default 5 s for it at the stop.
    mute_config.drain_timeout = Duration::from_millis(200);
    let uplink = Uplink::open(mute_config).await.unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let task = uplink.spawn(stop_rx);
    let mut sim = generator();
    enqueue(&uplink, &mut sim, 20).await;
    wait_for("20 messages at the mute server", WITHIN, || {
        mute.seen.messages().len() == 20
    })
    .await;
    wait_for("a confirmation ping", WITHIN, || {
        mute.seen.pings.load(SeqCst) > 0
    })
    .await;
    assert_eq!(uplink.metrics().get(Family::SendMsgs), 0);
    assert_eq!(
        uplink.queue().occupancy().0,
        20,
        "unconfirmed messages stay queued"
    );
    let _ = stop.send(true);
    task.await.unwrap();

    // The same against a server that answers: all confirmed, the queue empties.
    let server = TestServer::start(Behaviour::default()).await;
    let uplink = Uplink::open(config(&server.url)).await.unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let task = uplink.spawn(stop_rx);
    let mut sim = generator();
    enqueue(&uplink, &mut sim, 20).await;
    wait_for("20 confirmed", WITHIN, || {
        uplink.metrics().get(Family::SendMsgs) == 20
    })
    .await;
    assert_eq!(uplink.queue().occupancy(), (0, 0));
    assert_eq!(
        counters(&server.seen.messages()),
        (1..=20).collect::<Vec<_>>()
    );
    let sent_bytes: usize = server.seen.messages().iter().map(Bytes::len).sum();
    assert_eq!(uplink.metrics().get(Family::SendBytes), sent_bytes as u64);
    let _ = stop.send(true);
    task.await.unwrap();
}

#[tokio::test]
async fn a_cut_connection_rewinds_and_every_unconfirmed_message_is_sent_again() {
    let server = TestServer::start(Behaviour {
        cut_first_after: Some(7),
        ..Behaviour::default()
    })
    .await;
    let uplink = Uplink::open(config(&server.url)).await.unwrap();
    let mut sim = generator();
    // Queued before the task starts, so that they go out in one batch (one Ping after
    // all of them) and the cut happens with all of them unconfirmed.
    enqueue(&uplink, &mut sim, 30).await;
    let (stop, stop_rx) = watch::channel(false);
    let task = uplink.spawn(stop_rx);
    wait_for("30 confirmed", WITHIN, || {
        uplink.metrics().get(Family::SendMsgs) == 30
    })
    .await;
    let seen = counters(&server.seen.messages());
    assert_eq!(server.seen.connections.load(SeqCst), 2);
    assert_eq!(&seen[..7], &[1, 2, 3, 4, 5, 6, 7], "the first connection");
    assert_eq!(
        &seen[7..],
        (1..=30).collect::<Vec<_>>(),
        "everything again, oldest first, on the second"
    );
    let m = uplink.metrics();
    assert_eq!(m.get(Family::Reconnects), 1);
    assert_eq!(
        m.get(Family::ResentMsgs),
        30,
        "all 30 were in flight at the cut"
    );
    assert_eq!(m.get(Family::SendMsgErrors), 1);
    let _ = stop.send(true);
    task.await.unwrap();
}

#[tokio::test]
async fn a_full_queue_drops_or_refuses_by_policy_and_counts_it() {
    for (policy, want, survivors) in [
        (FullPolicy::DropOldest, Enqueue::Queued, vec![3, 4, 5]),
        (
            FullPolicy::DropNewest,
            Enqueue::Dropped(DropReason::QueueFullNewest),
            vec![1, 2, 3],
        ),
        (FullPolicy::Refuse, Enqueue::Refused, vec![1, 2, 3]),
    ] {
        // No task runs: nothing leaves the queue.
        let mut config = config("ws://127.0.0.1:9/");
        config.queue = QueueLimits::default()
            .with_max_messages(3)
            .with_policy(policy);
        let uplink = Uplink::open(config).await.unwrap();
        let outcomes = enqueue(&uplink, &mut generator(), 5).await;
        assert_eq!(&outcomes[..3], &[Enqueue::Queued; 3], "{policy:?}");
        assert_eq!(&outcomes[3..], &[want; 2], "{policy:?}");
        let m = uplink.metrics();
        let (queued, oldest, newest, refused) = match policy {
            FullPolicy::DropOldest => (5, 2, 0, 0),
            FullPolicy::DropNewest => (3, 0, 2, 0),
            FullPolicy::Refuse => (3, 0, 0, 2),
        };
        assert_eq!(m.get(Family::QueuedMsgs), queued, "{policy:?}");
        assert_eq!(m.dropped(DropReason::QueueFullOldest), oldest, "{policy:?}");
        assert_eq!(m.dropped(DropReason::QueueFullNewest), newest, "{policy:?}");
        assert_eq!(m.get(Family::RefusedMsgs), refused, "{policy:?}");
        let held = uplink.queue().take_batch(10, 1 << 20).await;
        let held: Vec<Bytes> = held.into_iter().map(|m| m.payload).collect();
        assert_eq!(counters(&held), survivors, "{policy:?}");
    }
}

/// The ingest API's publish: one batch per uplink, stopped at the first refusal. The
/// uplink listed first (drop policy) gets exactly the accepted prefix; the `refuse`
/// uplink that refuses soonest decides it, and nothing after the refused snapshot is
/// queued anywhere but in a `refuse` uplink that took more (documented).
#[tokio::test]
async fn publish_prefix_stops_every_uplink_at_the_first_refusal() {
    let open = |name: &str, max: usize, policy| {
        let mut config = config("ws://127.0.0.1:9/");
        config.name = name.into();
        config.queue = QueueLimits::default()
            .with_max_messages(max)
            .with_policy(policy);
        Uplink::open(config)
    };
    let drop = open("drop", 100, FullPolicy::DropOldest).await.unwrap();
    let wide = open("wide", 4, FullPolicy::Refuse).await.unwrap();
    let narrow = open("narrow", 2, FullPolicy::Refuse).await.unwrap();
    let hub = Hub::new(vec![
        Arc::clone(&drop),
        Arc::clone(&wide),
        Arc::clone(&narrow),
    ]);
    let mut g = generator();
    let snapshots: Vec<_> = (0..5).map(|_| g.next_snapshot(1)).collect();
    assert_eq!(
        hub.publish_prefix(&snapshots).await,
        (2, vec!["narrow".to_string()])
    );
    let held = |u: &Arc<Uplink>| {
        let u = Arc::clone(u);
        async move {
            let batch = u.queue().take_batch(10, 1 << 20).await;
            counters(&batch.into_iter().map(|m| m.payload).collect::<Vec<_>>())
        }
    };
    assert_eq!(held(&drop).await, [1, 2]);
    assert_eq!(held(&narrow).await, [1, 2]);
    assert_eq!(held(&wide).await, [1, 2, 3, 4]);
    // All accepted: no uplink named.
    let hub = Hub::new(vec![open("roomy", 100, FullPolicy::Refuse).await.unwrap()]);
    assert_eq!(hub.publish_prefix(&snapshots).await, (5, Vec::new()));
}

#[tokio::test]
async fn shutdown_drains_the_queue_then_closes_and_without_a_server_counts_the_rest_dropped() {
    let server = TestServer::start(Behaviour::default()).await;
    let uplink = Uplink::open(config(&server.url)).await.unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let task = uplink.spawn(stop_rx);
    wait_for("connected", WITHIN, || uplink.metrics().connected()).await;
    enqueue(&uplink, &mut generator(), 200).await;
    let _ = stop.send(true);
    task.await.unwrap();
    assert_eq!(uplink.metrics().get(Family::SendMsgs), 200);
    assert_eq!(
        counters(&server.seen.messages()),
        (1..=200).collect::<Vec<_>>()
    );
    wait_for("a Close frame", WITHIN, || {
        server.seen.closes.load(SeqCst) == 1
    })
    .await;
    assert_eq!(uplink.metrics().dropped(DropReason::Shutdown), 0);

    // Nobody listening and no disk cache: what is left is counted, not silently lost.
    let uplink = Uplink::open(config("ws://127.0.0.1:9/")).await.unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let task = uplink.spawn(stop_rx);
    enqueue(&uplink, &mut generator(), 4).await;
    let _ = stop.send(true);
    task.await.unwrap();
    assert_eq!(uplink.metrics().dropped(DropReason::Shutdown), 4);
    assert_eq!(uplink.queue().occupancy(), (0, 0));
}

#[tokio::test]
async fn a_server_that_stops_answering_pings_is_left_after_the_keep_alive_timeout() {
    let server = TestServer::start(Behaviour {
        answer_pings: false,
        ..Behaviour::default()
    })
    .await;
    let mut config = config(&server.url);
    config.connect.keep_alive = Some(KeepAlive::new(
        Duration::from_millis(50),
        Duration::from_millis(150),
    ));
    let uplink = Uplink::open(config).await.unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let task = uplink.spawn(stop_rx);
    enqueue(&uplink, &mut generator(), 3).await;
    wait_for("a reconnect after the pong timeout", WITHIN, || {
        uplink.metrics().get(Family::Reconnects) >= 1
    })
    .await;
    assert!(server.seen.connections.load(SeqCst) >= 2);
    assert!(uplink.metrics().get(Family::SendMsgErrors) >= 1);
    assert!(uplink.metrics().get(Family::ResentMsgs) >= 3);
    assert_eq!(uplink.metrics().get(Family::SendMsgs), 0);
    let _ = stop.send(true);
    task.await.unwrap();
}

/// `block_in_place` panics on a current-thread runtime; the queue owning its blocking
/// means the whole pipeline, disk cache included, runs on one.
#[tokio::test(flavor = "current_thread")]
async fn the_pipeline_with_a_disk_cache_runs_on_a_current_thread_runtime() {
    let server = TestServer::start(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server.url);
    config.queue.disk = Some(DiskCacheConfig::new(
        dir.path(),
        1 << 20,
        SyncPolicy::Interval(Duration::from_millis(50)),
    ));
    let uplink = Uplink::open(config).await.unwrap();
    let hub = Arc::new(Hub::new(vec![Arc::clone(&uplink)]));
    let (stop, stop_rx) = watch::channel(false);
    let tasks = hub.spawn_uplinks(&stop_rx);
    let sources = tagwire_pipeline::spawn_simulator(
        "sim",
        vec![SimGroup {
            interval: Duration::from_millis(5),
            ..SimGroup::default_group()
        }],
        Arc::clone(&hub),
        stop_rx.clone(),
    );
    wait_for("50 confirmed", WITHIN, || {
        uplink.metrics().get(Family::SendMsgs) >= 50
    })
    .await;
    let _ = stop.send(true);
    for t in sources.into_iter().chain(tasks) {
        t.await.unwrap();
    }
    let seen = counters(&server.seen.messages());
    let queued = uplink.metrics().get(Family::QueuedMsgs);
    assert_eq!(
        seen,
        (1..=queued).collect::<Vec<_>>(),
        "all, in order, once"
    );
    assert_eq!(uplink.metrics().get(Family::SendMsgs), queued);
}

/// Producers woken at the same moment go out in one batch, with one Ping for all their
/// messages, on the daemon's default current-thread runtime: there the uplink does not
/// yield before taking a batch (tasks woken together run in the order woken, so the
/// producers have pushed before the uplink runs), and a yield would cost a syscall.
#[tokio::test(flavor = "current_thread")]
async fn producers_woken_together_share_one_batch_on_a_current_thread_runtime() {
    const PRODUCERS: usize = 8;
    let server = TestServer::start(Behaviour::default()).await;
    let uplink = Uplink::open(config(&server.url)).await.unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let task = uplink.spawn(stop_rx);
    let mut connected = uplink.connections();
    connected.wait_for(|n| *n > 0).await.unwrap();
    let (go, go_rx) = watch::channel(false);
    let mut sim = generator();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let (uplink, mut go) = (Arc::clone(&uplink), go_rx.clone());
            let snapshot = sim.next_snapshot(1_650_006_388_943);
            tokio::spawn(async move {
                go.wait_for(|go| *go).await.unwrap();
                uplink.enqueue(&snapshot).await
            })
        })
        .collect();
    // Every producer waits for the word before it is given.
    tokio::time::sleep(Duration::from_millis(50)).await;
    go.send(true).unwrap();
    for p in producers {
        assert_eq!(p.await.unwrap(), Enqueue::Queued);
    }
    wait_for("all confirmed", WITHIN, || {
        uplink.metrics().get(Family::SendMsgs) == PRODUCERS as u64
    })
    .await;
    assert_eq!(server.seen.messages().len(), PRODUCERS);
    assert_eq!(
        server.seen.pings.load(SeqCst),
        1,
        "one batch, one confirming Ping"
    );
    let _ = stop.send(true);
    task.await.unwrap();
}
