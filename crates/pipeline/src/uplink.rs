//! One uplink: a north node's encoder, queue and connection.
//!
//! Producers call [`Uplink::enqueue`] (encode once, queue). The task started by
//! [`Uplink::spawn`] owns the connection: it connects (with backoff) and writes waiting
//! messages in batches through ws-client's [`Delivery`], which sends each batch and its
//! confirming Ping (the sequence number of the batch's last message) in one write and
//! reports the Pongs as confirmations; only then do messages leave the queue. The queue
//! owns the messages and their sequence numbers; `Delivery` owns the wire protocol. A
//! lost connection rewinds the queue: unconfirmed messages are written again on the next
//! connection, oldest first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tagwire_encode::{EncodeOptions, Encoder};
use tagwire_model::Snapshot;
use tagwire_queue::{
    DiskCacheConfig, DiskLogError, FullPolicy, MessageKind, MessageQueue, PushOutcome, QueueLimits,
};
use tagwire_tls_config::ClientConfigSource;
use tagwire_ws_client::{
    connect, Confirm, ConnectOptions, Delivery, DeliveryEvent, FrameKind, WsUrl,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, trace, warn};

use crate::backoff::Backoff;
use crate::failure_log::FailureLog;
use crate::link_error::LinkError;
use crate::metrics::{DropReason, Family, RunningState, UplinkMetrics};
use crate::subscription::Subscriptions;
use crate::write_latency::{LatencySummary, WriteLatency};

/// Everything one uplink needs; built by the daemon from a `[[north]]` entry.
/// `#[non_exhaustive]`: made by [`UplinkConfig::new`], then its fields set.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UplinkConfig {
    /// The north node's name (metrics label, logs).
    pub name: String,
    /// The server.
    pub url: WsUrl,
    /// Timeouts, TLS, keep-alive of each connection.
    pub connect: ConnectOptions,
    /// Format, style and `upload_err`.
    pub encode: EncodeOptions,
    /// Data frame type (Neuron sends binary).
    pub frame: FrameKind,
    /// Which snapshots this uplink takes.
    pub subscriptions: Subscriptions,
    /// Queue bounds and full-queue policy.
    pub queue: QueueLimits,
    /// Shortest reconnect delay.
    pub backoff_floor: Duration,
    /// Longest reconnect delay.
    pub backoff_ceiling: Duration,
    /// Confirm delivery with Ping/Pong (default) or count a message sent once written.
    pub confirm: bool,
    /// At shutdown, how long to keep sending what is queued before closing.
    pub drain_timeout: Duration,
    /// Where each connection's TLS configuration comes from when the certificate files
    /// may be renewed while running: asked once before each connection, it replaces
    /// `connect.tls`.
    pub tls_source: Option<Arc<ClientConfigSource>>,
    /// With `tls_source`: how often to look for changed certificate files while
    /// connected, reconnecting to present them. `None`: a change waits for the next
    /// reconnect.
    pub tls_watch: Option<Duration>,
    /// Driver-state messages (Neuron's `upload_drv_state`) every this long, and right
    /// after each connection; `None`: none. Sent by [`driver_state::spawn`](crate::driver_state::spawn).
    pub driver_states: Option<Duration>,
}

impl UplinkConfig {
    /// A configuration with tagwire's defaults for everything but the name and the URL.
    pub fn new(name: impl Into<String>, url: WsUrl) -> Self {
        Self {
            name: name.into(),
            url,
            connect: ConnectOptions::default(),
            encode: EncodeOptions::default(),
            frame: FrameKind::Binary,
            subscriptions: Subscriptions::default(),
            queue: QueueLimits::default(),
            backoff_floor: Duration::from_millis(200),
            backoff_ceiling: Duration::from_secs(30),
            confirm: true,
            drain_timeout: Duration::from_secs(5),
            tls_source: None,
            tls_watch: None,
            driver_states: None,
        }
    }
}

/// What became of one snapshot given to [`Uplink::enqueue`]: queued or not (delivery
/// comes later). `#[must_use]`: a refused snapshot is the producer's to retry or count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Enqueue {
    /// Encoded and queued.
    Queued,
    /// Not for this uplink (subscriptions) or nothing to send (`upload_err = false`).
    Skipped,
    /// Dropped: the queue was full (policy `drop_newest`) or the message too large.
    Dropped(DropReason),
    /// Refused: the queue is full and the policy is `refuse`.
    Refused,
}

/// Messages written per batch before the uplink pings and looks at events.
const BATCH_MESSAGES: usize = 64;
/// Bytes written per batch (at least one message).
const BATCH_BYTES: usize = 256 * 1024;
/// Most messages written but unconfirmed: bounds what a dead connection makes us resend.
const MAX_IN_FLIGHT: usize = 4096;
/// When messages wait but the queue handed none over (a disk cache that could not read
/// them back yet, or failed to), try again after this long: no push may come to wake us.
const RETRY_TAKE: Duration = Duration::from_millis(250);

/// One north node's uplink. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Uplink {
    config: UplinkConfig,
    /// Shared with the uplink that replaces this one at a reload ([`Uplink::rebuild`]).
    queue: Arc<MessageQueue>,
    /// Shared likewise, so that counters go on across a reload.
    metrics: Arc<UplinkMetrics>,
    /// Set by [`Uplink::hand_over`]: the next stop leaves the queue to a successor.
    handover: std::sync::atomic::AtomicBool,
    /// The encoder and the size of the last message, to size the next buffer. A std
    /// mutex: encoding never awaits.
    encoder: Mutex<(Encoder, usize)>,
    /// Messages written on a lost connection and not yet written again: the next ones
    /// taken are counted as resent, and only when they are taken.
    rewound: AtomicUsize,
    /// Messages still queued when the uplink stopped (kept in the disk cache).
    kept_at_stop: AtomicUsize,
    /// Connections made by this uplink's task so far: the "after connect" hook of the
    /// driver-state task.
    connections: watch::Sender<u64>,
    /// Report-to-write latencies (shared with a rebuilt successor, like the counters).
    latency: Arc<WriteLatency>,
}

/// How a connection's life ended.
enum SessionEnd {
    /// Shutdown was asked for; the queue was drained as far as the drain timeout allowed.
    Shutdown,
    /// The connection failed; reconnect.
    Lost(LinkError),
}

impl Uplink {
    /// A new, not yet running uplink. With a disk cache this opens it (off the caller's
    /// thread) and takes back what a previous run left there, which then goes out first.
    pub async fn open(config: UplinkConfig) -> Result<Arc<Self>, DiskLogError> {
        let encoder = Encoder::new(config.encode);
        let metrics = UplinkMetrics::default();
        metrics.set_running_state(RunningState::Ready);
        let (queue, recovery) = MessageQueue::open(config.queue.clone()).await?;
        // Data taken back from the disk: queued in this run's counts too, so that
        // `queued = delivered + dropped + still queued` holds at every stop (driver
        // states taken back are in the queue's own tally).
        metrics.add(Family::QueuedMsgs, queue.counts(MessageKind::Data).queued);
        if let (Some(r), Some(disk)) = (recovery, &config.queue.disk) {
            let dir = disk.dir.display();
            if r.found_damage() {
                warn!(uplink = %config.name, %dir, records = r.records,
                    damaged_regions = r.damaged_regions, skipped_bytes = r.skipped_bytes,
                    truncated_bytes = r.truncated_bytes, head_reset = r.head_reset,
                    "disk cache was damaged: every intact message was salvaged, the damaged bytes were skipped");
            } else if r.records > 0 {
                info!(uplink = %config.name, %dir, records = r.records, bytes = r.bytes,
                    "disk cache: messages from the previous run will be sent first");
            }
        }
        Ok(Arc::new(Self {
            queue: Arc::new(queue),
            metrics: Arc::new(metrics),
            handover: Default::default(),
            encoder: Mutex::new((encoder, 4096)),
            config,
            rewound: AtomicUsize::new(0),
            kept_at_stop: AtomicUsize::new(0),
            connections: watch::channel(0).0,
            latency: Arc::default(),
        }))
    }

    /// The uplink that replaces `old` when its configuration changed at a reload: same
    /// queue (so nothing queued or cached is lost, and what is queued goes out first) and
    /// same counters, with the new `config` for everything else. A new format or style
    /// applies to messages encoded from now on; queued ones keep the bytes they were
    /// accepted with. The queue's own limits (`[north.cache]`) stay those of `old` until
    /// the next start. Spawn it only once `old`'s task has returned (see [`hand_over`](Self::hand_over)).
    pub fn rebuild(old: &Uplink, config: UplinkConfig) -> Arc<Self> {
        Arc::new(Self {
            queue: Arc::clone(&old.queue),
            metrics: Arc::clone(&old.metrics),
            handover: Default::default(),
            // The rewound messages the old task did not resend yet are resends here.
            rewound: AtomicUsize::new(old.rewound.load(Ordering::Relaxed)),
            kept_at_stop: AtomicUsize::new(0),
            latency: Arc::clone(&old.latency),
            encoder: Mutex::new((Encoder::new(config.encode), 4096)),
            connections: watch::channel(0).0,
            config,
        })
    }

    /// Makes the next stop of this uplink's task a handover: it closes its connection at
    /// once (no drain) and leaves every queued and unconfirmed message in the queue for
    /// the uplink [`rebuild`](Self::rebuild) made.
    pub fn hand_over(&self) {
        self.handover
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn handing_over(&self) -> bool {
        self.handover.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Messages still queued when the uplink stopped: kept in the disk cache for the
    /// next start (0 before the stop, and without a disk cache, where they count as
    /// dropped).
    pub fn kept_at_stop(&self) -> usize {
        self.kept_at_stop.load(Ordering::Relaxed)
    }

    /// The configuration.
    pub fn config(&self) -> &UplinkConfig {
        &self.config
    }

    /// Live counters.
    pub fn metrics(&self) -> &UplinkMetrics {
        &self.metrics
    }

    /// How long messages waited from their report (the snapshot's timestamp) to their
    /// first write; `None` before the first write.
    pub fn write_latency(&self) -> Option<LatencySummary> {
        self.latency.summary()
    }

    /// The queue (for occupancy figures).
    pub fn queue(&self) -> &MessageQueue {
        &self.queue
    }

    /// The number of connections this uplink's task made so far; changes right after
    /// each connection (the driver-state task waits on it).
    pub fn connections(&self) -> watch::Receiver<u64> {
        self.connections.subscribe()
    }

    /// Queues a driver-state message (already encoded). Its fate is counted by the
    /// queue ([`MessageQueue::counts`] of [`MessageKind::DriverState`]), never in the
    /// data counters. Returns whether it was queued.
    pub async fn push_state(&self, payload: Bytes, timestamp_ms: u64) -> bool {
        let outcome = self
            .queue
            .push_kind(payload, timestamp_ms, MessageKind::DriverState)
            .await;
        matches!(outcome, PushOutcome::Queued { .. })
    }

    /// Encodes `snapshot` for this uplink, if subscribed, and queues it.
    pub async fn enqueue(&self, snapshot: &Snapshot) -> Enqueue {
        self.enqueue_many(std::slice::from_ref(snapshot)).await[0]
    }

    /// Encodes straight into the buffer that becomes the message (no copy), sized from
    /// the previous message so that it rarely grows. `None`: nothing to send.
    fn encode(&self, snapshot: &Snapshot) -> Option<Bytes> {
        let mut guard = self.encoder.lock().unwrap_or_else(|e| e.into_inner());
        let (encoder, last_len) = &mut *guard;
        // An eighth of headroom: snapshots of one uplink vary little in size.
        let mut buf = Vec::with_capacity(*last_len + *last_len / 8 + 64);
        if !encoder.encode(snapshot, &mut buf) {
            return None;
        }
        *last_len = buf.len();
        if buf.capacity() - buf.len() > buf.len() / 4 {
            // It grew past the estimate: do not let queued messages hold the slack.
            buf.shrink_to_fit();
        }
        Some(Bytes::from(buf))
    }

    /// Queues an already encoded message.
    pub async fn push(&self, payload: Bytes, timestamp_ms: u64) -> Enqueue {
        let outcome = self.queue.push(payload, timestamp_ms).await;
        self.account(outcome)
    }

    /// Encodes every snapshot of `snapshots` this uplink subscribes to and queues them
    /// together ([`MessageQueue::push_many`]: with a disk cache, one write for all).
    /// One answer per snapshot, in order, as [`enqueue`](Self::enqueue) would give.
    pub async fn enqueue_many(&self, snapshots: &[Snapshot]) -> Vec<Enqueue> {
        self.enqueue_batch(snapshots, false).await
    }

    /// [`enqueue_many`](Self::enqueue_many), all or a prefix
    /// ([`MessageQueue::push_prefix`]): once a snapshot is refused, every later one
    /// this uplink subscribes to is answered `Refused` without being queued.
    pub async fn enqueue_prefix(&self, snapshots: &[Snapshot]) -> Vec<Enqueue> {
        self.enqueue_batch(snapshots, true).await
    }

    /// Whether this uplink's queue may refuse (policy `refuse`).
    pub fn may_refuse(&self) -> bool {
        self.config.queue.policy == FullPolicy::Refuse
    }

    async fn enqueue_batch(&self, snapshots: &[Snapshot], prefix: bool) -> Vec<Enqueue> {
        let mut answers = vec![Enqueue::Skipped; snapshots.len()];
        let mut encoded = Vec::with_capacity(snapshots.len());
        let mut queued_at = Vec::with_capacity(snapshots.len());
        for (i, snapshot) in snapshots.iter().enumerate() {
            let subscribed = self
                .config
                .subscriptions
                .matches(&snapshot.node, &snapshot.group);
            if let Some(payload) = subscribed.then(|| self.encode(snapshot)).flatten() {
                encoded.push((payload, snapshot.timestamp_ms));
                queued_at.push(i);
            }
        }
        if encoded.is_empty() {
            return answers;
        }
        let outcomes = if prefix {
            self.queue.push_prefix(encoded).await
        } else {
            self.queue.push_many(encoded).await
        };
        for (i, outcome) in queued_at.into_iter().zip(outcomes) {
            answers[i] = self.account(outcome);
        }
        answers
    }

    /// Counts a push's outcome in the metrics and says what became of the message.
    fn account(&self, outcome: PushOutcome) -> Enqueue {
        match outcome {
            PushOutcome::Queued { dropped_oldest } => {
                self.metrics.add(Family::QueuedMsgs, 1);
                if dropped_oldest > 0 {
                    self.metrics
                        .add_dropped(DropReason::QueueFullOldest, dropped_oldest);
                }
                Enqueue::Queued
            }
            PushOutcome::DroppedNewest => {
                self.metrics.add_dropped(DropReason::QueueFullNewest, 1);
                Enqueue::Dropped(DropReason::QueueFullNewest)
            }
            PushOutcome::TooLarge => {
                self.metrics.add_dropped(DropReason::TooLarge, 1);
                Enqueue::Dropped(DropReason::TooLarge)
            }
            PushOutcome::Refused => {
                self.metrics.add(Family::RefusedMsgs, 1);
                Enqueue::Refused
            }
        }
    }

    /// Starts the connection task. It runs until `shutdown` becomes true, then drains the
    /// queue for at most the drain timeout, closes the connection and returns.
    pub fn spawn(self: &Arc<Self>, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        if let Some(period) = self
            .config
            .queue
            .disk
            .as_ref()
            .map(DiskCacheConfig::tick_period)
        {
            // Appends sync when the interval has passed, but a quiet period must not leave
            // the last ones unsynced: a timer bounds what a power cut can lose. The same
            // timer writes the batched removal position (`head`), which bounds the
            // duplicates a `kill -9` causes.
            let this = Arc::clone(self);
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            let lost = this.queue.sync().await;
                            if lost > 0 {
                                this.metrics.add_dropped(DropReason::CacheLost, lost);
                            }
                        }
                        _ = stop.changed() => break,
                    }
                }
            });
        }
        let this = Arc::clone(self);
        tokio::spawn(async move { this.run(shutdown).await })
    }

    async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let name = &self.config.name;
        self.metrics.set_running_state(RunningState::Running);
        let mut backoff = Backoff::new(self.config.backoff_floor, self.config.backoff_ceiling);
        let mut failures = FailureLog::default();
        let mut connected_before = false;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let options = self.connect_options();
            let attempt = tokio::select! {
                r = connect(&self.config.url, &options) => r,
                _ = shutdown.changed() => break,
            };
            let end = match attempt {
                Err(err) => {
                    let err = LinkError::Connect(err);
                    failures.record(name, &self.config.url, &err);
                    SessionEnd::Lost(err)
                }
                Ok(conn) => {
                    if connected_before {
                        self.metrics.add(Family::Reconnects, 1);
                    }
                    connected_before = true;
                    failures.recovered(name, &self.config.url, &conn);
                    self.metrics.set_subprotocol(conn.protocol());
                    self.metrics.set_connected(true);
                    self.connections.send_modify(|n| *n += 1);
                    let confirm = if self.config.confirm {
                        Confirm::ByPong
                    } else {
                        Confirm::OnWrite
                    };
                    let delivery = Delivery::new(conn, self.config.frame, confirm);
                    let end = self.session(delivery, &mut shutdown, &mut backoff).await;
                    self.metrics.set_connected(false);
                    // The queue holds every unconfirmed message itself: rewinding it is
                    // what `Delivery::take_unconfirmed` would hand back.
                    let resend = self.queue.rewind();
                    // Rewound messages go first; they count as resent when written.
                    self.rewound.store(resend, Ordering::Relaxed);
                    if resend > 0 {
                        self.metrics.add(Family::SendMsgErrors, 1);
                    }
                    if let SessionEnd::Lost(why) = &end {
                        failures.record(name, &self.config.url, why);
                        if resend > 0 {
                            info!(uplink = %name, unconfirmed = resend, "messages not yet confirmed will be sent again after the reconnect");
                        }
                    }
                    end
                }
            };
            match end {
                SessionEnd::Shutdown => break,
                SessionEnd::Lost(_) => {
                    let delay = backoff.next_delay();
                    debug!(uplink = %name, ?delay, "reconnecting after delay");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => break,
                    }
                }
            }
        }
        if self.handing_over() {
            // The successor takes the queue as it is (rewound after the session).
            debug!(uplink = %name, "handed over to the reloaded configuration");
            return;
        }
        let held = self.queue.counts(MessageKind::Data).held as usize;
        let lost = self.queue.close_for_shutdown().await;
        self.kept_at_stop
            .store(held.saturating_sub(lost), Ordering::Relaxed);
        if lost > 0 {
            self.metrics.add_dropped(DropReason::Shutdown, lost as u64);
            warn!(uplink = %name, messages = lost, "stopped with undelivered messages and no disk cache to keep them");
        } else if held > 0 {
            info!(uplink = %name, messages = held, "stopped; undelivered messages are in the disk cache for the next start");
        }
        self.metrics.set_running_state(RunningState::Stopped);
    }

    /// The options of the next connection, with the TLS configuration of the files as
    /// they are now when they may be renewed.
    fn connect_options(&self) -> std::borrow::Cow<'_, ConnectOptions> {
        let mut options = std::borrow::Cow::Borrowed(&self.config.connect);
        if let Some(source) = &self.config.tls_source {
            options.to_mut().tls = Some(source.current());
        }
        options
    }

    /// Runs one connection until it fails or shutdown is asked for.
    async fn session(
        &self,
        mut delivery: Delivery,
        shutdown: &mut watch::Receiver<bool>,
        backoff: &mut Backoff,
    ) -> SessionEnd {
        // Kept across loop turns: a timer made anew each turn would never fire while
        // messages flow.
        let tls_watch = self
            .config
            .tls_watch
            .filter(|_| self.config.tls_source.is_some());
        let mut next_tls_check = tokio::time::Instant::now() + tls_watch.unwrap_or_default();
        // A current-thread runtime runs the tasks woken together in the order woken, so
        // the producers ready with the one whose push woke this task have pushed theirs
        // before it runs: no yield is needed. There a yield costs one more
        // `epoll_wait` per batch (tokio polls its driver with a zero timeout before it
        // runs a yielded task again): 0.1 syscalls per message at 5,000/s, measured with
        // `strace -c`. A multi-threaded runtime may run this task at once on another
        // worker.
        let gather_by_yielding = tokio::runtime::Handle::current().runtime_flavor()
            != tokio::runtime::RuntimeFlavor::CurrentThread;
        loop {
            // `Some(waited)`: the take below came back empty, and whether messages were
            // waiting just before it. `None`: no take (too many messages in flight).
            let mut empty_take = None;
            if self.queue.in_flight() < MAX_IN_FLIGHT {
                // Looked at before the take, not after it: a producer on another thread
                // may push between an empty take and a later look. Judged after, that
                // push read as a failed take, whose only way out is the RETRY_TAKE
                // timer (the push's `wait_ready` permit sat in a disabled branch): the
                // 1000-tag `tagwire bench` idled 250 ms at a time with a full queue.
                let waited = self.queue.waiting() > 0;
                match self.write_batch(&mut delivery).await {
                    Ok(true) => {
                        // Look at what the server said (pongs, closes) without waiting, then
                        // go on writing.
                        while let Some(ev) = delivery.try_next_event() {
                            if let Err(end) = self.handle_event(ev, backoff).await {
                                return end;
                            }
                        }
                        continue;
                    }
                    Ok(false) => empty_take = Some(waited),
                    Err(end) => return end,
                }
            }
            // A take that found nothing waiting arms `wait_ready`: the next push (even one
            // that came after the take) wakes this task. A take that failed with messages
            // waiting (a disk cache that could not read them back yet, the queue's
            // in-flight cap) does not, or every push would wake it for nothing: a Pong or
            // RETRY_TAKE does.
            let (nothing_waits, take_failed) = match empty_take {
                Some(waited) => (!waited, waited),
                None => (self.queue.waiting() == 0, false),
            };
            tokio::select! {
                ev = delivery.next_event() => match ev {
                    Some(ev) => if let Err(end) = self.handle_event(ev, backoff).await { return end },
                    None => return SessionEnd::Lost(LinkError::Ended),
                },
                _ = self.queue.wait_ready(), if nothing_waits => {
                    // Let the producers that became ready at the same moment (simulator
                    // groups on one tick, a burst of ingests) push theirs first: the
                    // batch then takes them all, and their pushes do not wake this task
                    // again (one wake and one write per batch, not per message).
                    if gather_by_yielding {
                        tokio::task::yield_now().await;
                    }
                }
                _ = tokio::time::sleep(RETRY_TAKE), if take_failed => {}
                _ = shutdown.changed() => {
                    if self.handing_over() {
                        let _ = delivery.close(1000, "tagwire reloading").await;
                    } else {
                        self.drain(delivery, backoff).await;
                    }
                    return SessionEnd::Shutdown;
                }
                _ = tokio::time::sleep_until(next_tls_check), if tls_watch.is_some() => {
                    next_tls_check += tls_watch.unwrap_or_default();
                    if self.config.tls_source.as_ref().is_some_and(|s| s.files_changed()) {
                        info!(uplink = %self.config.name, "the certificate files changed: reconnecting to present the new ones (tls_watch_s)");
                        return SessionEnd::Lost(LinkError::CertificatesRenewed);
                    }
                }
            }
        }
    }

    /// Writes one batch of waiting messages (and its confirming Ping, in the same
    /// write); Ok(false) when nothing was waiting.
    async fn write_batch(&self, delivery: &mut Delivery) -> Result<bool, SessionEnd> {
        let batch = self.queue.take_batch(BATCH_MESSAGES, BATCH_BYTES).await;
        if batch.is_empty() {
            // Its message is fixed: the regression test of the lost wake-up (see
            // `session`) pushes from a tracing subscriber here, between the take and
            // the session's decision (tests/lost_wakeup.rs).
            trace!(uplink = %self.config.name, "the take came back empty");
            return Ok(false);
        }
        let again = self.rewound.load(Ordering::Relaxed).min(batch.len());
        if again > 0 {
            self.rewound.fetch_sub(again, Ordering::Relaxed);
            let data = batch[..again]
                .iter()
                .filter(|m| m.kind == MessageKind::Data)
                .count();
            self.metrics.add(Family::ResentMsgs, data as u64);
        }
        if again < batch.len() {
            // First writes only: a resent message's wait is the outage, not the path.
            let now_us = WriteLatency::now_us();
            for m in &batch[again..] {
                self.latency.record(m.timestamp_ms, now_us);
            }
        }
        let before = delivery.connection().sent_bytes();
        let written = delivery
            .send_batch(batch.into_iter().map(|m| (m.seq, m.payload)))
            .await;
        // Counted for what was written: nothing when the batch's one write failed.
        let after = delivery.connection().sent_bytes();
        self.metrics
            .add(Family::WrittenMsgBytes, after.messages - before.messages);
        self.metrics
            .add(Family::WrittenWireBytes, after.wire - before.wire);
        match written {
            Ok(Some(written)) if written.confirmed => {
                let (count, bytes) = self.queue.confirm(written.last).await;
                self.metrics.add(Family::SendMsgs, count);
                self.metrics.add(Family::SendBytes, bytes);
            }
            Ok(_) => {}
            Err(e) => return Err(SessionEnd::Lost(LinkError::Ws(e))),
        }
        Ok(true)
    }

    /// Applies one event from the server; Err ends the session.
    async fn handle_event(
        &self,
        ev: DeliveryEvent,
        backoff: &mut Backoff,
    ) -> Result<(), SessionEnd> {
        match ev {
            DeliveryEvent::Confirmed { through, .. } => {
                // The queue's own counts are the ones reported: it holds the messages.
                let (count, size) = self.queue.confirm(through).await;
                if count > 0 {
                    self.metrics.add(Family::SendMsgs, count);
                    self.metrics.add(Family::SendBytes, size);
                    // The server reads what we send: the connection is healthy.
                    backoff.reset();
                }
                Ok(())
            }
            DeliveryEvent::Message { .. } => {
                self.metrics.add(Family::RecvMsgs, 1);
                Ok(())
            }
            DeliveryEvent::Closed { code, reason } => {
                Err(SessionEnd::Lost(LinkError::ClosedByServer { code, reason }))
            }
            DeliveryEvent::Failed(e) => Err(SessionEnd::Lost(LinkError::Ws(e))),
        }
    }

    /// Shutdown: keep writing and confirming until the queue is empty or the drain
    /// timeout passes, then close the connection properly.
    async fn drain(&self, mut delivery: Delivery, backoff: &mut Backoff) {
        let deadline = tokio::time::Instant::now() + self.config.drain_timeout;
        loop {
            let (held, _) = self.queue.occupancy();
            if held == 0 {
                break;
            }
            match self.write_batch(&mut delivery).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(_) => return,
            }
            if !self.config.confirm {
                break;
            }
            let ev = tokio::select! {
                ev = delivery.next_event() => ev,
                _ = tokio::time::sleep_until(deadline) => {
                    warn!(uplink = %self.config.name, "drain timeout reached with messages unconfirmed");
                    break;
                }
            };
            match ev {
                Some(ev) => {
                    if self.handle_event(ev, backoff).await.is_err() {
                        return;
                    }
                }
                None => return,
            }
        }
        if let (Err(e), _) = delivery.close(1000, "tagwire shutting down").await {
            debug!(uplink = %self.config.name, error = %e, "close handshake did not complete");
        }
    }
}
