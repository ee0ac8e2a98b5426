//! Driver-state messages at the pipeline's level: which south nodes an uplink reports,
//! in its style, and that state messages are never counted as data: taken back from a
//! disk cache, confirmed, or sent again after a cut connection.

mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use support::{wait_for, Behaviour, TestServer};

use bytes::Bytes;
use tagwire_encode::Style;
use tagwire_pipeline::driver_state::message;
use tagwire_pipeline::{
    DiskCacheConfig, Enqueue, Family, FullPolicy, Hub, LinkState, MessageKind, QueueLimits,
    RunningState, SouthNode, Subscription, Subscriptions, SyncPolicy, Uplink, UplinkConfig,
};

fn config(style: Style, subscriptions: Vec<Subscription>) -> UplinkConfig {
    let mut c = UplinkConfig::new("up", "ws://127.0.0.1:9/".parse().unwrap());
    c.encode.style = style;
    c.subscriptions = Subscriptions(subscriptions);
    c
}

#[tokio::test]
async fn the_message_lists_the_subscribed_south_nodes_in_the_uplinks_style() {
    let hub = Hub::default();
    hub.set_south(vec![
        SouthNode::running("line1"),
        SouthNode {
            name: "plc \"2\"".into(),
            link: LinkState::Disconnected,
            running: RunningState::Stopped,
        },
        SouthNode::running("utilities"),
    ]);
    let all = Uplink::open(config(Style::Neuron, vec![])).await.unwrap();
    assert_eq!(
        String::from_utf8(message(&all, &hub, 7)).unwrap(),
        r#"{"timestamp": 7, "states": [{"node": "line1", "link": 1, "running": 3}, {"node": "plc \"2\"", "link": 0, "running": 4}, {"node": "utilities", "link": 1, "running": 3}]}"#
    );
    // Subscribed to one group of line1 and to plc*: those two nodes, in hub order.
    let some = Uplink::open(config(
        Style::Compact,
        vec![
            Subscription::new("plc*", "*"),
            Subscription::new("line1", "fast"),
        ],
    ))
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8(message(&some, &hub, 7)).unwrap(),
        r#"{"timestamp":7,"states":[{"node":"line1","link":1,"running":3},{"node":"plc \"2\"","link":0,"running":4}]}"#
    );
    // No node taken: the message still says the gateway is up.
    let none = Uplink::open(config(Style::Neuron, vec![Subscription::new("x", "*")]))
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(message(&none, &hub, 7)).unwrap(),
        r#"{"timestamp": 7, "states": []}"#
    );
}

#[tokio::test]
async fn states_taken_back_from_the_disk_cache_are_not_counted_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(Style::Neuron, vec![]);
    c.queue = QueueLimits::default()
        .with_policy(FullPolicy::DropOldest)
        .with_disk(Some(DiskCacheConfig::new(
            dir.path().join("up"),
            1 << 20,
            SyncPolicy::Interval(Duration::from_secs(1)),
        )));
    {
        let uplink = Uplink::open(c.clone()).await.unwrap();
        assert_eq!(
            uplink.push(Bytes::from_static(b"{\"d\":1}"), 1).await,
            Enqueue::Queued
        );
        assert!(uplink.push_state(Bytes::from_static(b"{\"s\":1}"), 2).await);
        assert_eq!(
            uplink.push(Bytes::from_static(b"{\"d\":2}"), 3).await,
            Enqueue::Queued
        );
        assert_eq!(uplink.metrics().get(Family::QueuedMsgs), 2, "data only");
        // Dropped without a stop: as after kill -9.
    }
    let uplink = Uplink::open(c).await.unwrap();
    assert_eq!(
        uplink.metrics().get(Family::QueuedMsgs),
        2,
        "the two data messages"
    );
    let states = uplink.queue().counts(MessageKind::DriverState);
    assert_eq!((states.queued, states.held), (1, 1));
    assert_eq!(uplink.queue().counts(MessageKind::Data).held, 2);
}

#[tokio::test]
async fn states_resent_after_a_cut_are_not_counted_as_resent_data() {
    let server = TestServer::start(Behaviour {
        cut_first_after: Some(7),
        ..Behaviour::default()
    })
    .await;
    let mut c = UplinkConfig::new("up", server.url.parse().unwrap());
    c.backoff_floor = Duration::from_millis(20);
    c.backoff_ceiling = Duration::from_millis(100);
    let uplink = Uplink::open(c).await.unwrap();
    // Queued before the task starts: one batch, all in flight at the cut. Every third
    // message is a state: 10 data, 5 states.
    for i in 0..15u64 {
        let payload = Bytes::from(format!("{{\"n\":{i}}}"));
        if i % 3 == 2 {
            assert!(uplink.push_state(payload, i).await);
        } else {
            assert_eq!(uplink.push(payload, i).await, Enqueue::Queued);
        }
    }
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = uplink.spawn(stop_rx);
    wait_for("everything confirmed", Duration::from_secs(10), || {
        uplink.queue().occupancy().0 == 0
    })
    .await;
    assert_eq!(server.seen.connections.load(SeqCst), 2);
    assert_eq!(
        server.seen.messages().len(),
        7 + 15,
        "all 15 again after the cut"
    );
    let m = uplink.metrics();
    assert_eq!(m.get(Family::ResentMsgs), 10, "the data messages only");
    assert_eq!(m.get(Family::SendMsgs), 10);
    let states = uplink.queue().counts(MessageKind::DriverState);
    assert_eq!((states.queued, states.confirmed), (5, 5));
    let _ = stop.send(true);
    task.await.unwrap();
}
