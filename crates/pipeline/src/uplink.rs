//! One uplink: a north node's encoder, queue and connection.
//!
//! Producers call [`Uplink::offer`] (encode once, queue). The task started by
//! [`Uplink::spawn`] owns the connection: it connects (with backoff), writes waiting
//! messages in batches, and, with confirmation on, sends after each batch a Ping whose
//! payload is the sequence number of the last message written. RFC 6455 servers answer a
//! Ping only after reading every frame before it, so the Pong confirms everything up to
//! that number and only then do messages leave the queue. A lost connection rewinds the
//! queue: unconfirmed messages are written again on the next connection, oldest first.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tagwire_encode::{EncodeOptions, Encoder};
use tagwire_model::Snapshot;
use tagwire_ws_client::{connect, ConnectOptions, Connection, Event, FrameKind, WsUrl};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::disk_log::{DiskLogError, SyncPolicy};
use crate::metrics::{DropReason, RunningState, UplinkMetrics};
use crate::queue::{DiskCacheConfig, MessageQueue, PushOutcome, QueueLimits};
use crate::subscription::Subscriptions;

/// Everything one uplink needs; built by the daemon from a `[[north]]` entry.
#[derive(Clone, Debug)]
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
        }
    }
}

/// What became of one snapshot offered to an uplink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
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
/// While messages are unconfirmed, ping at least this often.
const CONFIRM_INTERVAL: Duration = Duration::from_millis(250);
/// Repeated connection failures are logged at most this often.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// One north node's uplink. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Uplink {
    config: UplinkConfig,
    queue: MessageQueue,
    metrics: UplinkMetrics,
    /// The encoder and its reusable buffer. A std mutex: encoding never awaits.
    encoder: Mutex<(Encoder, Vec<u8>)>,
}

/// How a connection's life ended.
enum SessionEnd {
    /// Shutdown was asked for; the queue was drained as far as the drain timeout allowed.
    Shutdown,
    /// The connection failed; reconnect.
    Lost(String),
}

impl Uplink {
    /// A new, not yet running uplink. With a disk cache this opens it (blocking I/O) and
    /// takes back what a previous run left there, which then goes out first.
    pub fn new(config: UplinkConfig) -> Result<Arc<Self>, DiskLogError> {
        let encoder = Encoder::new(config.encode);
        let metrics = UplinkMetrics::default();
        metrics.set_running_state(RunningState::Ready);
        let (queue, recovery) = MessageQueue::open(config.queue.clone())?;
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
            queue,
            metrics,
            encoder: Mutex::new((encoder, Vec::with_capacity(4096))),
            config,
        }))
    }

    /// Runs a queue operation; with a disk cache it does blocking I/O, so it leaves the
    /// async worker thread free while it runs.
    fn with_queue<T>(&self, op: impl FnOnce(&MessageQueue) -> T) -> T {
        if self.queue.has_disk() {
            tokio::task::block_in_place(|| op(&self.queue))
        } else {
            op(&self.queue)
        }
    }

    /// The configuration.
    pub fn config(&self) -> &UplinkConfig {
        &self.config
    }

    /// Live counters.
    pub fn metrics(&self) -> &UplinkMetrics {
        &self.metrics
    }

    /// The queue (for occupancy figures).
    pub fn queue(&self) -> &MessageQueue {
        &self.queue
    }

    /// Encodes `snapshot` for this uplink, if subscribed, and queues it.
    pub fn offer(&self, snapshot: &Snapshot) -> Offer {
        if !self
            .config
            .subscriptions
            .matches(&snapshot.node, &snapshot.group)
        {
            return Offer::Skipped;
        }
        let payload = {
            let mut guard = self.encoder.lock().unwrap_or_else(|e| e.into_inner());
            let (encoder, buf) = &mut *guard;
            buf.clear();
            if !encoder.encode(snapshot, buf) {
                return Offer::Skipped;
            }
            Bytes::copy_from_slice(buf)
        };
        self.push(payload, snapshot.timestamp_ms)
    }

    /// Queues an already encoded message. With a disk cache this does blocking I/O:
    /// call it (and [`offer`](Self::offer)) from a blocking context.
    pub fn push(&self, payload: Bytes, timestamp_ms: u64) -> Offer {
        match self.queue.push(payload, timestamp_ms) {
            PushOutcome::Queued { dropped_oldest } => {
                self.metrics
                    .queued_msgs_total
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if dropped_oldest > 0 {
                    self.metrics
                        .add_dropped(DropReason::QueueFullOldest, dropped_oldest);
                }
                Offer::Queued
            }
            PushOutcome::DroppedNewest => {
                self.metrics.add_dropped(DropReason::QueueFullNewest, 1);
                Offer::Dropped(DropReason::QueueFullNewest)
            }
            PushOutcome::TooLarge => {
                self.metrics.add_dropped(DropReason::TooLarge, 1);
                Offer::Dropped(DropReason::TooLarge)
            }
            PushOutcome::Refused => {
                self.metrics
                    .refused_msgs_total
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Offer::Refused
            }
        }
    }

    /// Starts the connection task. It runs until `shutdown` becomes true, then drains the
    /// queue for at most the drain timeout, closes the connection and returns.
    pub fn spawn(self: &Arc<Self>, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        if let Some(DiskCacheConfig {
            sync: SyncPolicy::Interval(period),
            ..
        }) = self.config.queue.disk
        {
            // Appends sync when the interval has passed, but a quiet period must not leave
            // the last ones unsynced: a timer bounds what a power cut can lose.
            let this = Arc::clone(self);
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                loop {
                    tokio::select! {
                        _ = tick.tick() => this.with_queue(MessageQueue::sync),
                        _ = stop.changed() => break,
                    }
                }
            });
        }
        let this = Arc::clone(self);
        tokio::spawn(async move { this.run(shutdown).await })
    }

    async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        use std::sync::atomic::Ordering::Relaxed;
        let name = &self.config.name;
        self.metrics.set_running_state(RunningState::Running);
        let mut backoff = Backoff::new(self.config.backoff_floor, self.config.backoff_ceiling);
        let mut failures = FailureLog::default();
        let mut connected_before = false;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let attempt = tokio::select! {
                r = connect(&self.config.url, &self.config.connect) => r,
                _ = shutdown.changed() => break,
            };
            let end = match attempt {
                Err(err) => {
                    failures.record(name, &self.config.url, &err.to_string());
                    SessionEnd::Lost(err.to_string())
                }
                Ok(conn) => {
                    if connected_before {
                        self.metrics.reconnects_total.fetch_add(1, Relaxed);
                    }
                    connected_before = true;
                    failures.recovered(name, &self.config.url, &conn);
                    self.metrics.set_subprotocol(conn.protocol());
                    self.metrics.set_connected(true);
                    let end = self.session(conn, &mut shutdown, &mut backoff).await;
                    self.metrics.set_connected(false);
                    let resend = self.with_queue(MessageQueue::rewind);
                    if resend > 0 {
                        self.metrics
                            .resent_msgs_total
                            .fetch_add(resend as u64, Relaxed);
                        self.metrics.send_msg_errors_total.fetch_add(1, Relaxed);
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
        let (held, _) = self.queue.occupancy();
        let lost = self.with_queue(MessageQueue::close_for_shutdown);
        if lost > 0 {
            self.metrics.add_dropped(DropReason::Shutdown, lost as u64);
            warn!(uplink = %name, messages = lost, "stopped with undelivered messages and no disk cache to keep them");
        } else if held > 0 {
            info!(uplink = %name, messages = held, "stopped; undelivered messages are in the disk cache for the next start");
        }
        self.metrics.set_running_state(RunningState::Stopped);
    }

    /// Runs one connection until it fails or shutdown is asked for.
    async fn session(
        &self,
        mut conn: Connection,
        shutdown: &mut watch::Receiver<bool>,
        backoff: &mut Backoff,
    ) -> SessionEnd {
        let mut confirm_tick = tokio::time::interval(CONFIRM_INTERVAL);
        confirm_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_pinged = 0u64;
        loop {
            if self.queue.in_flight() < MAX_IN_FLIGHT {
                match self.write_batch(&mut conn, &mut last_pinged).await {
                    Ok(true) => {
                        // Look at what the server said (pongs, closes) without waiting, then
                        // go on writing.
                        while let Some(ev) = poll_now(&mut conn).await {
                            if let Err(end) = self.handle_event(ev, backoff) {
                                return end;
                            }
                        }
                        continue;
                    }
                    Ok(false) => {}
                    Err(end) => return end,
                }
            }
            let nothing_waits = self.queue.waiting() == 0;
            tokio::select! {
                ev = conn.next_event() => match ev {
                    Some(ev) => if let Err(end) = self.handle_event(ev, backoff) { return end },
                    None => return SessionEnd::Lost("the connection ended".into()),
                },
                _ = self.queue.wait_ready(), if nothing_waits => {}
                _ = confirm_tick.tick() => {
                    if let Some(seq) = self.queue.last_in_flight_seq() {
                        if self.config.confirm && seq > last_pinged {
                            if let Err(e) = conn.ping(&seq.to_be_bytes()).await {
                                return SessionEnd::Lost(e.to_string());
                            }
                            last_pinged = seq;
                        }
                    }
                }
                _ = shutdown.changed() => {
                    self.drain(conn, backoff).await;
                    return SessionEnd::Shutdown;
                }
            }
        }
    }

    /// Writes one batch of waiting messages; Ok(false) when nothing was waiting.
    async fn write_batch(
        &self,
        conn: &mut Connection,
        last_pinged: &mut u64,
    ) -> Result<bool, SessionEnd> {
        use std::sync::atomic::Ordering::Relaxed;
        let batch = self.with_queue(|q| q.take_batch(BATCH_MESSAGES, BATCH_BYTES));
        let Some(last) = batch.last().map(|m| m.seq) else {
            return Ok(false);
        };
        let lost = |e: tagwire_ws_client::WsError| SessionEnd::Lost(e.to_string());
        let before = conn.sent_bytes();
        let sent = async {
            for msg in &batch {
                conn.send(self.config.frame, &msg.payload).await?;
            }
            Ok(())
        }
        .await;
        // Counted for what was written, even when a later message of the batch failed.
        let after = conn.sent_bytes();
        self.metrics
            .written_msg_bytes_total
            .fetch_add(after.messages - before.messages, Relaxed);
        self.metrics
            .written_wire_bytes_total
            .fetch_add(after.wire - before.wire, Relaxed);
        sent.map_err(lost)?;
        conn.flush().await.map_err(lost)?;
        if self.config.confirm {
            conn.ping(&last.to_be_bytes()).await.map_err(lost)?;
            *last_pinged = last;
        } else {
            let (count, bytes) = self.with_queue(|q| q.confirm(last));
            self.metrics.send_msgs_total.fetch_add(count, Relaxed);
            self.metrics.send_bytes_total.fetch_add(bytes, Relaxed);
        }
        Ok(true)
    }

    /// Applies one event from the server; Err ends the session.
    fn handle_event(&self, ev: Event, backoff: &mut Backoff) -> Result<(), SessionEnd> {
        use std::sync::atomic::Ordering::Relaxed;
        match ev {
            Event::Pong(payload) => {
                // Keep-alive pings carry no payload; ours carry 8 bytes of sequence number.
                if let Ok(bytes) = <[u8; 8]>::try_from(payload.as_slice()) {
                    let seq = u64::from_be_bytes(bytes);
                    let (count, size) = self.with_queue(|q| q.confirm(seq));
                    if count > 0 {
                        self.metrics.send_msgs_total.fetch_add(count, Relaxed);
                        self.metrics.send_bytes_total.fetch_add(size, Relaxed);
                        // The server reads what we send: the connection is healthy.
                        backoff.reset();
                    }
                }
                Ok(())
            }
            Event::Message { .. } => {
                self.metrics.recv_msgs_total.fetch_add(1, Relaxed);
                Ok(())
            }
            Event::Closed { code, reason } => Err(SessionEnd::Lost(format!(
                "the server closed the connection (code {}, reason {:?})",
                code.map_or_else(|| "none".to_string(), |c| c.to_string()),
                reason
            ))),
            Event::Failed(e) => Err(SessionEnd::Lost(e.to_string())),
        }
    }

    /// Shutdown: keep writing and confirming until the queue is empty or the drain
    /// timeout passes, then close the connection properly.
    async fn drain(&self, mut conn: Connection, backoff: &mut Backoff) {
        let deadline = tokio::time::Instant::now() + self.config.drain_timeout;
        let mut last_pinged = 0;
        loop {
            let (held, _) = self.queue.occupancy();
            if held == 0 {
                break;
            }
            match self.write_batch(&mut conn, &mut last_pinged).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(_) => return,
            }
            if !self.config.confirm {
                break;
            }
            let ev = tokio::select! {
                ev = conn.next_event() => ev,
                _ = tokio::time::sleep_until(deadline) => {
                    warn!(uplink = %self.config.name, "drain timeout reached with messages unconfirmed");
                    break;
                }
            };
            match ev {
                Some(ev) => {
                    if self.handle_event(ev, backoff).is_err() {
                        return;
                    }
                }
                None => return,
            }
        }
        if let Err(e) = conn.close(1000, "tagwire shutting down").await {
            debug!(uplink = %self.config.name, error = %e, "close handshake did not complete");
        }
    }
}

/// Polls the connection's event stream once without waiting.
async fn poll_now(conn: &mut Connection) -> Option<Event> {
    tokio::select! {
        biased;
        ev = conn.next_event() => ev,
        _ = std::future::ready(()) => None,
    }
}

/// Logs a connection problem once with its cause, then at most once a minute while it
/// lasts, so a dead server does not flood the log of a gateway that runs for months.
#[derive(Default)]
struct FailureLog {
    failing_since: Option<Instant>,
    failures: u64,
    last_logged: Option<Instant>,
    last_cause: String,
}

impl FailureLog {
    fn record(&mut self, name: &str, url: &WsUrl, cause: &str) {
        let now = Instant::now();
        self.failures += 1;
        let since = *self.failing_since.get_or_insert(now);
        let cause_changed = cause != self.last_cause;
        let due = self
            .last_logged
            .is_none_or(|t| now.duration_since(t) >= FAILURE_LOG_INTERVAL);
        if cause_changed || due {
            warn!(
                uplink = %name, url = %url.for_logs(), failures = self.failures,
                failing_for = ?now.duration_since(since),
                "cannot deliver: {cause}; retrying with backoff, messages stay queued"
            );
            self.last_logged = Some(now);
            self.last_cause = cause.to_string();
        } else {
            debug!(uplink = %name, "connection attempt failed: {cause}");
        }
    }

    fn recovered(&mut self, name: &str, url: &WsUrl, conn: &Connection) {
        let peer = conn.peer_addr();
        let subprotocol = conn.protocol().unwrap_or("none");
        match self.failing_since.take() {
            Some(since) => info!(
                uplink = %name, url = %url.for_logs(), %peer, %subprotocol, failures = self.failures,
                "connected again after {:?}", since.elapsed()
            ),
            None => info!(uplink = %name, url = %url.for_logs(), %peer, %subprotocol, "connected"),
        }
        self.failures = 0;
        self.last_logged = None;
        self.last_cause.clear();
    }
}
