//! An open connection: the caller's write side, and the reader task that owns
//! the read side, answers Pings, runs the keep-alive and reports events.
//!
//! Why a reader task: fastwebsockets' `read_frame` is not cancel-safe (a frame
//! half read when the future is dropped is lost and the stream desynchronised),
//! so it cannot sit in the caller's `select!`. The task keeps one `read_frame`
//! future alive until it completes and hands results over an mpsc channel,
//! whose `recv` is cancel-safe.
//!
//! Why control frames are written from a separate future inside the task: the
//! write side is shared (`Arc<tokio::sync::Mutex<Writer>>`). If the reader
//! waited for that lock while the caller's `send` is blocked on a server that
//! is itself blocked writing to us, nobody would read and both sides would
//! stall until `write_timeout`. So the reader keeps reading while a queued
//! Pong or keep-alive Ping waits for the lock.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdMutexGuard};
use std::time::Duration;

use fastwebsockets::{Frame, OpCode as WireOpCode, Role, WebSocketError, WebSocketRead};
use tokio::io::{AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, Mutex, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tracing::debug;

use crate::deflate::{Deflater, Inflater};
use crate::error::WsError;
use crate::frame::{
    append_client_frame, close_payload, encode_client_frame, is_valid_close_code, parse_close,
    OpCode, Utf8Validator, MAX_CONTROL_PAYLOAD,
};
use crate::handshake::Negotiated;
use crate::options::{ConnectOptions, FrameKind, KeepAlive};
use crate::rsv::{MessageStart, RsvReader, Starts};
use crate::select::{first, First};

/// The transport after the handshake (TCP, a proxy tunnel, TLS), with the bytes read
/// past the response head in front.
pub(crate) type Stream = crate::http::Prefixed<Box<dyn crate::http::Io>>;

/// How many events may wait in the channel before the reader stops reading
/// (backpressure reaching the server through TCP). Large, because a caller
/// busy sending a batch to an echoing server must not stall it; bounded in
/// bytes separately, because `Message` events carry their payload (see
/// `Shared::message_budget`).
const EVENT_BUFFER: usize = 4096;

/// A write buffer that grew beyond this for one large frame or batch is shrunk
/// back, so one big write does not pin its size for the connection's lifetime.
/// Large enough for a usual batch ([`Connection::send_batch`]) to reuse it.
const KEEP_WRITE_BUFFER: usize = 1024 * 1024;

/// Something the server did, from [`Connection::next_event`].
#[derive(Debug)]
pub enum Event {
    /// A Pong arrived, with its payload (at most 125 bytes). Keep-alive pings
    /// have an empty payload, so their Pongs arrive as `Pong(vec![])`. Servers
    /// may answer only the latest of several Pings (RFC 6455 section 5.5.3).
    Pong(Vec<u8>),
    /// A complete data message arrived (all fragments), checked (size, UTF-8
    /// for text) and decompressed when permessage-deflate is on.
    ///
    /// At most [`ConnectOptions::max_message_size`] bytes: a larger message
    /// ends the connection with [`Event::Failed`]`(`[`WsError::Protocol`]`)`
    /// and Close code 1009. Messages not yet taken by
    /// [`next_event`](Connection::next_event) hold at most 16 times that many
    /// bytes together: beyond, reading pauses until the caller takes them.
    Message {
        /// Text (valid UTF-8) or binary.
        kind: FrameKind,
        /// The message's payload.
        payload: Vec<u8>,
    },
    /// The server closed the connection with a valid Close frame (answered
    /// with our Close). The last event.
    Closed {
        /// The close code, `None` when the Close frame had no payload.
        code: Option<u16>,
        /// The close reason (may be empty).
        reason: String,
    },
    /// The connection failed: protocol error by the server, Pong timeout, read
    /// error, or the server dropped TCP without a Close. The last event.
    Failed(WsError),
}

/// One open WebSocket client connection, from [`connect`](crate::connect).
///
/// Writing (`send`, `flush`, `ping`, `close`) happens in the caller's task;
/// reading happens in a background task that reports through
/// [`next_event`](Connection::next_event). Dropping the connection stops that
/// task and closes the socket without a Close handshake; use
/// [`close`](Connection::close) for a clean end.
pub struct Connection {
    writer: Arc<Mutex<Writer>>,
    shared: Arc<Shared>,
    events: mpsc::Receiver<Event>,
    reader: JoinHandle<()>,
    peer: SocketAddr,
    close_timeout: Duration,
    /// The subprotocol the server selected, if any.
    protocol: Option<String>,
    /// The compressor, when permessage-deflate was negotiated.
    deflater: Option<Deflater>,
    /// Reused buffer of a compressed message.
    compressed: Vec<u8>,
    sent: SentBytes,
}

/// Payload bytes of the data messages sent on a connection, before and after
/// compression (the same without it). Frame headers are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentBytes {
    /// Bytes given to [`Connection::send`] (and written).
    pub messages: u64,
    /// Bytes of those messages as written in frames (compressed when negotiated).
    pub wire: u64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// State shared by the caller's side and the reader task, outside the writer
/// lock so that neither waits on the other's writes to use it.
struct Shared {
    keep_alive: Option<KeepAlive>,
    pings: StdMutex<PingState>,
    /// Wakes the reader when the caller sent a Ping, so its keep-alive deadline
    /// (which may now be earlier) is recomputed.
    ping_sent: Notify,
    /// Bytes of `Message` payloads the reader may hand over before the caller
    /// takes them: `BUFFERED_MESSAGES` maximal messages, however many small
    /// ones the event channel holds.
    message_budget: tokio::sync::Semaphore,
}

impl Shared {
    /// Permits of a payload of `len` bytes (`len` never exceeds the budget,
    /// which is `max_message_size` clamped to what a semaphore holds).
    fn permits(&self, len: usize) -> u32 {
        u32::try_from(len).unwrap_or(u32::MAX)
    }

    /// Gives back the budget of a `Message` event the caller took (or dropped).
    fn message_taken(&self, event: &Event) {
        if let Event::Message { payload, .. } = event {
            self.message_budget
                .add_permits(self.permits(payload.len()) as usize);
        }
    }
}

struct PingState {
    /// When the last Ping (ours or the caller's) was sent or queued.
    last_ping: Instant,
    /// When the oldest Ping not followed by any Pong was sent.
    unanswered_since: Option<Instant>,
}

impl Shared {
    fn pings(&self) -> StdMutexGuard<'_, PingState> {
        // The lock guards plain data and no code panics while holding it;
        // recover instead of propagating a poison panic.
        self.pings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record_ping(&self, now: Instant) {
        let mut pings = self.pings();
        pings.last_ping = now;
        pings.unanswered_since.get_or_insert(now);
    }

    fn record_pong(&self) {
        self.pings().unanswered_since = None;
    }

    /// The next instant the keep-alive has something to do, if enabled.
    fn keep_alive_deadline(&self) -> Option<Instant> {
        let keep_alive = self.keep_alive?;
        let pings = self.pings();
        let ping_due = pings.last_ping + keep_alive.interval;
        Some(match pings.unanswered_since {
            Some(since) => ping_due.min(since + keep_alive.pong_timeout),
            None => ping_due,
        })
    }

    /// Decides what the keep-alive must do at `now`; records a due Ping as sent.
    fn keep_alive_check(&self, now: Instant) -> KeepAliveAction {
        let Some(keep_alive) = self.keep_alive else {
            return KeepAliveAction::Nothing;
        };
        let mut pings = self.pings();
        if pings
            .unanswered_since
            .is_some_and(|since| now >= since + keep_alive.pong_timeout)
        {
            return KeepAliveAction::Dead;
        }
        if now >= pings.last_ping + keep_alive.interval {
            // Recorded when queued rather than when written: the write may wait
            // for the caller's, and the deadline must move now or the reader
            // would spin on it.
            pings.last_ping = now;
            pings.unanswered_since.get_or_insert(now);
            return KeepAliveAction::SendPing;
        }
        KeepAliveAction::Nothing
    }
}

enum KeepAliveAction {
    Nothing,
    SendPing,
    Dead,
}

/// The write side. Only ever used under the `tokio::sync::Mutex`.
struct Writer {
    /// `None` once torn down: writes then fail with `WsError::Closed`.
    io: Option<WriteHalf<Stream>>,
    /// Reused frame buffer: the masked copy of the payload lives here.
    buf: Vec<u8>,
    /// Our Close went out (or was attempted): RFC 6455 allows one, and no data after it.
    close_sent: bool,
    /// Set while a write is in progress; still set at the next call means the
    /// previous write future was dropped mid-frame.
    in_flight: bool,
    write_timeout: Duration,
}

impl Writer {
    /// Checks that the stream is usable: not torn down, no half-written frame.
    fn usable(&mut self) -> Result<&mut WriteHalf<Stream>, WsError> {
        if self.in_flight {
            // A previous write was cancelled part-way: the peer would read our
            // next bytes as the rest of that frame. Nothing can be sent safely.
            self.in_flight = false;
            self.io = None;
            return Err(WsError::Interrupted);
        }
        self.io.as_mut().ok_or(WsError::Closed)
    }

    /// Writes one uncompressed frame (see [`Writer::write_frame_rsv`]).
    async fn write_frame(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        flush: bool,
    ) -> Result<(), WsError> {
        self.write_frame_rsv(opcode, false, payload, flush).await
    }

    /// Writes one frame (optionally flushing), bounded by `write_timeout`;
    /// `compressed` sets RSV1. Any I/O error or timeout tears the write side down.
    async fn write_frame_rsv(
        &mut self,
        opcode: OpCode,
        compressed: bool,
        payload: &[u8],
        flush: bool,
    ) -> Result<(), WsError> {
        self.usable()?;
        if self.close_sent {
            // Also guards against a second Close frame.
            return Err(WsError::Closed);
        }
        if opcode == OpCode::Close {
            self.close_sent = true;
        }
        encode_client_frame(&mut self.buf, opcode, compressed, payload);
        self.write_buf(flush).await
    }

    /// Writes the frames the caller appended to `buf` (after it was cleared) in
    /// one write: data frames, then an optional Ping, flushed. One write per
    /// batch is one syscall (one TLS record run) instead of one per frame.
    async fn write_frames(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>),
        flush: bool,
    ) -> Result<(), WsError> {
        self.usable()?;
        if self.close_sent {
            return Err(WsError::Closed);
        }
        self.buf.clear();
        fill(&mut self.buf);
        self.write_buf(flush).await
    }

    /// Writes `buf` as it is, bounded by `write_timeout`.
    async fn write_buf(&mut self, flush: bool) -> Result<(), WsError> {
        let Writer {
            io, buf, in_flight, ..
        } = self;
        let io = io.as_mut().ok_or(WsError::Closed)?;
        *in_flight = true;
        let result = timeout(self.write_timeout, async {
            io.write_all(buf).await?;
            if flush {
                io.flush().await?;
            }
            Ok::<(), io::Error>(())
        })
        .await;
        self.in_flight = false;
        if self.buf.capacity() > KEEP_WRITE_BUFFER {
            self.buf = Vec::new();
        }
        self.settle(result)
    }

    async fn flush(&mut self) -> Result<(), WsError> {
        self.usable()?;
        let Writer { io, in_flight, .. } = self;
        let io = io.as_mut().ok_or(WsError::Closed)?;
        *in_flight = true;
        let result = timeout(self.write_timeout, io.flush()).await;
        self.in_flight = false;
        self.settle(result)
    }

    fn settle(
        &mut self,
        result: Result<io::Result<()>, tokio::time::error::Elapsed>,
    ) -> Result<(), WsError> {
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.io = None;
                Err(WsError::Io(e))
            }
            Err(_) => {
                self.io = None;
                Err(WsError::WriteTimeout)
            }
        }
    }

    /// Ends the write side cleanly (TLS close_notify, TCP FIN), bounded by `limit`.
    async fn shutdown(&mut self, limit: Duration) {
        if self.in_flight {
            self.io = None;
        }
        if let Some(mut io) = self.io.take() {
            if let Err(e) = timeout(limit, io.shutdown()).await.unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "shutdown timed out",
                ))
            }) {
                debug!(error = %e, "socket shutdown failed");
            }
        }
    }
}

impl Connection {
    pub(crate) fn start(
        upgraded: Stream,
        peer: SocketAddr,
        options: &ConnectOptions,
        negotiated: Negotiated,
    ) -> Self {
        let (read_half, write_half) = tokio::io::split(upgraded);
        let starts = Starts::default();
        let read_half = RsvReader::new(read_half, negotiated.deflate.is_some(), starts.clone());
        // The write half fastwebsockets would create is unused: we write frames ourselves.
        let (mut ws_read, _) =
            fastwebsockets::after_handshake_split(read_half, tokio::io::sink(), Role::Client);
        // We answer Pings and Closes ourselves (to flush over TLS, never send two
        // Closes, and not block reading on the writer lock).
        ws_read.set_auto_pong(false);
        ws_read.set_auto_close(false);
        // fastwebsockets rejects frames with `len >= limit`, and applies the limit
        // to control frames too: allow exactly max_message_size, and always 125.
        ws_read.set_max_message_size(options.max_message_size.max(MAX_CONTROL_PAYLOAD) + 1);

        let writer = Arc::new(Mutex::new(Writer {
            io: Some(write_half),
            buf: Vec::new(),
            close_sent: false,
            in_flight: false,
            write_timeout: options.write_timeout,
        }));
        let shared = Arc::new(Shared {
            keep_alive: options.keep_alive,
            pings: StdMutex::new(PingState {
                last_ping: Instant::now(),
                unanswered_since: None,
            }),
            ping_sent: Notify::new(),
            message_budget: tokio::sync::Semaphore::new(message_budget(options.max_message_size)),
        });
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        let reader = Reader {
            ws: ws_read,
            writer: writer.clone(),
            shared: shared.clone(),
            events: events_tx,
            max_message_size: options.max_message_size,
            close_timeout: options.close_timeout,
            partial: None,
            control: None,
            peer,
            starts,
            inflater: negotiated.deflate.as_ref().map(Inflater::new),
        };
        let reader = tokio::spawn(reader.run());
        Connection {
            writer,
            shared,
            events,
            reader,
            peer,
            close_timeout: options.close_timeout,
            protocol: negotiated.protocol,
            deflater: negotiated.deflate.as_ref().map(Deflater::new),
            compressed: Vec::new(),
            sent: SentBytes::default(),
        }
    }

    /// Whether permessage-deflate was negotiated: messages are sent compressed.
    pub fn is_compressed(&self) -> bool {
        self.deflater.is_some()
    }

    /// The payload bytes sent so far, before and after compression.
    pub fn sent_bytes(&self) -> SentBytes {
        self.sent
    }

    /// The subprotocol the server selected (`Sec-WebSocket-Protocol` of its
    /// response, always one of those offered), or `None` when it selected none.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Writes one data frame (FIN set, no fragmentation).
    ///
    /// Does not necessarily flush: call [`flush`](Connection::flush) after a
    /// batch. The payload is copied before masking, so `payload` is never
    /// modified and can be resent. A `Text` payload must be valid UTF-8.
    ///
    /// Bounded by `write_timeout`; on a timeout or I/O error the connection is
    /// torn down. Not cancel-safe: dropping the future mid-frame breaks the
    /// connection (the next call reports [`WsError::Interrupted`]).
    pub async fn send(&mut self, kind: FrameKind, payload: &[u8]) -> Result<(), WsError> {
        let opcode = match kind {
            FrameKind::Text => {
                if std::str::from_utf8(payload).is_err() {
                    return Err(WsError::InvalidInput(
                        "text frame payload is not valid UTF-8 (send it as FrameKind::Binary)"
                            .into(),
                    ));
                }
                OpCode::Text
            }
            FrameKind::Binary => OpCode::Binary,
        };
        // Compressed here, in send order, so the context the server's decompressor
        // keeps matches ours. A compressed message that fails to go out leaves the
        // contexts apart, but such a failure ends the connection anyway.
        let wire: &[u8] = match &mut self.deflater {
            Some(deflater) => {
                deflater.compress(payload, &mut self.compressed);
                &self.compressed
            }
            None => payload,
        };
        let result = self
            .writer
            .lock()
            .await
            .write_frame_rsv(opcode, self.deflater.is_some(), wire, false)
            .await;
        if result.is_ok() {
            self.sent.messages += payload.len() as u64;
            self.sent.wire += wire.len() as u64;
        }
        if self.compressed.capacity() > KEEP_WRITE_BUFFER {
            self.compressed = Vec::new();
        }
        self.after_write(result)
    }

    /// Writes a batch of data frames (FIN set, no fragmentation), then a Ping
    /// carrying `ping` when given, in **one** write, and flushes.
    ///
    /// The same as [`send`](Connection::send) for each payload followed by
    /// [`ping`](Connection::ping), but the frames are built into one buffer
    /// and written at once: one syscall (and one run of TLS records) per
    /// batch instead of one per frame. Payloads are copied before masking and
    /// never modified. Every `Text` payload must be valid UTF-8 and `ping` at
    /// most 125 bytes; otherwise nothing is written.
    ///
    /// Bounded by `write_timeout`; on a timeout or I/O error the connection is
    /// torn down. Not cancel-safe (see [`send`](Connection::send)).
    pub async fn send_batch<'a, I>(
        &mut self,
        kind: FrameKind,
        payloads: I,
        ping: Option<&[u8]>,
    ) -> Result<(), WsError>
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: Clone,
    {
        let payloads = payloads.into_iter();
        let opcode = match kind {
            FrameKind::Text => {
                if payloads.clone().any(|p| std::str::from_utf8(p).is_err()) {
                    return Err(WsError::InvalidInput(
                        "text frame payload is not valid UTF-8 (send it as FrameKind::Binary)"
                            .into(),
                    ));
                }
                OpCode::Text
            }
            FrameKind::Binary => OpCode::Binary,
        };
        if let Some(ping) = ping {
            check_ping_payload(ping)?;
        }
        let mut sent = SentBytes::default();
        let result = {
            let Connection {
                deflater,
                compressed,
                writer,
                shared,
                ..
            } = self;
            let mut writer = writer.lock().await;
            if ping.is_some() && writer.io.is_some() && !writer.close_sent {
                // Before writing, as in `ping`: its Pong may be read before the write returns.
                shared.record_ping(Instant::now());
            }
            let fill = |buf: &mut Vec<u8>| {
                for payload in payloads {
                    // Compressed in send order (see `send`).
                    let wire: &[u8] = match deflater.as_mut() {
                        Some(deflater) => {
                            deflater.compress(payload, compressed);
                            compressed
                        }
                        None => payload,
                    };
                    append_client_frame(buf, opcode, deflater.is_some(), wire);
                    sent.messages += payload.len() as u64;
                    sent.wire += wire.len() as u64;
                }
                if let Some(ping) = ping {
                    append_client_frame(buf, OpCode::Ping, false, ping);
                }
            };
            writer.write_frames(fill, true).await
        };
        if result.is_ok() {
            self.sent.messages += sent.messages;
            self.sent.wire += sent.wire;
            if ping.is_some() {
                self.shared.ping_sent.notify_one();
            }
        }
        if self.compressed.capacity() > KEEP_WRITE_BUFFER {
            self.compressed = Vec::new();
        }
        self.after_write(result)
    }

    /// Flushes frames written by [`send`](Connection::send) (needed over TLS,
    /// harmless over TCP). Bounded by `write_timeout`.
    pub async fn flush(&mut self) -> Result<(), WsError> {
        let result = self.writer.lock().await.flush().await;
        self.after_write(result)
    }

    /// Sends a Ping carrying `payload` (at most 125 bytes) and flushes.
    ///
    /// Its Pong is reported as [`Event::Pong`] with the same payload. With
    /// keep-alive enabled, the Pong timeout also runs for this Ping.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), WsError> {
        check_ping_payload(payload)?;
        let result = {
            let mut writer = self.writer.lock().await;
            if writer.io.is_some() && !writer.close_sent {
                // Recorded before writing: the Pong can arrive (and be recorded
                // by the reader) before write_frame returns, and a Ping recorded
                // after its Pong would look unanswered forever.
                self.shared.record_ping(Instant::now());
            }
            writer.write_frame(OpCode::Ping, payload, true).await
        };
        if result.is_ok() {
            self.shared.ping_sent.notify_one();
        }
        self.after_write(result)
    }

    /// The next thing the server did, in order. `None` once the connection is
    /// finished and every event was taken.
    ///
    /// Cancel-safe: use it in `tokio::select!` freely; no event is lost when
    /// another branch wins. Up to 4096 events are buffered; when the caller
    /// does not take them, reading pauses (and TCP pushes back on the server).
    pub async fn next_event(&mut self) -> Option<Event> {
        let event = self.events.recv().await;
        if let Some(event) = &event {
            self.shared.message_taken(event);
        }
        event
    }

    /// The next event if one is waiting now, without waiting for one.
    pub fn try_next_event(&mut self) -> Option<Event> {
        let event = self.events.try_recv().ok();
        if let Some(event) = &event {
            self.shared.message_taken(event);
        }
        event
    }

    /// Closes the connection cleanly: sends Close(`code`, `reason`) once, waits
    /// up to `close_timeout` for the server's Close (events in between are
    /// dropped), then shuts the socket down.
    ///
    /// `code` must be one a client may send: 1000-1003, 1007-1014 or
    /// 3000-4999 (1000 is the normal "done"). `reason` is cut to 123 bytes.
    /// If the server closed first, or the connection already failed, this just
    /// shuts down and returns `Ok`.
    pub async fn close(mut self, code: u16, reason: &str) -> Result<(), WsError> {
        if !is_valid_close_code(code) {
            return Err(WsError::InvalidInput(format!(
                "close code {code} may not be sent; use 1000 (normal), 1001 (going away), \
                 1011 (error) or an application code 4000-4999"
            )));
        }
        let sent = {
            let mut writer = self.writer.lock().await;
            if writer.close_sent || writer.io.is_none() {
                // The server closed first (and was answered), or the connection is gone.
                Ok(false)
            } else {
                writer
                    .write_frame(OpCode::Close, &close_payload(code, reason), true)
                    .await
                    .map(|()| true)
            }
        };
        let result = match sent {
            Ok(true) => {
                debug!(peer = %self.peer, code, "Close sent, waiting for the server's");
                self.wait_for_close().await
            }
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
        self.writer.lock().await.shutdown(self.close_timeout).await;
        self.reader.abort();
        result
    }

    async fn wait_for_close(&mut self) -> Result<(), WsError> {
        let limit = self.close_timeout;
        let wait = async {
            while let Some(event) = self.next_event().await {
                match event {
                    Event::Closed { code, reason } => {
                        debug!(?code, ?reason, "server answered our Close");
                        return Ok(());
                    }
                    Event::Failed(e) => return Err(e),
                    Event::Pong(_) | Event::Message { .. } => {}
                }
            }
            Ok(())
        };
        timeout(limit, wait)
            .await
            .unwrap_or(Err(WsError::CloseTimeout))
    }

    /// The address this connection's TCP socket is connected to: the server's, or
    /// the proxy's when [`ConnectOptions::proxy`] is set.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// After a write that tore the connection down, stop the reader too, so the
    /// socket closes now and `next_event` ends after the buffered events.
    fn after_write(&self, result: Result<(), WsError>) -> Result<(), WsError> {
        if let Err(e) = &result {
            if e.tears_down() {
                debug!(peer = %self.peer, error = %e, "write failed, tearing the connection down");
                self.reader.abort();
            }
        }
        result
    }
}

/// How many maximal messages may wait for the caller. More than one, because a
/// caller busy writing a batch to a server that echoes it must not stop the
/// reader (the server would stop reading too, and both stall); few, because a
/// gateway's memory is small (1 MiB with the default 64 KiB `max_message_size`).
const BUFFERED_MESSAGES: usize = 16;

/// The reader's budget of buffered message bytes (see `Shared::message_budget`):
/// `BUFFERED_MESSAGES` maximal messages, at least one and at most what a
/// semaphore and `acquire_many` allow.
fn message_budget(max_message_size: usize) -> usize {
    max_message_size
        .saturating_mul(BUFFERED_MESSAGES)
        .min(u32::MAX as usize)
        .min(tokio::sync::Semaphore::MAX_PERMITS)
}

/// A Ping payload fits a control frame.
fn check_ping_payload(payload: &[u8]) -> Result<(), WsError> {
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(WsError::InvalidInput(format!(
            "ping payload is {} bytes; at most {MAX_CONTROL_PAYLOAD} are allowed",
            payload.len()
        )));
    }
    Ok(())
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// How the read loop ended.
enum Ending {
    /// The server sent a valid Close; ours is sent (or was sent before).
    ServerClosed { code: Option<u16>, reason: String },
    /// The connection failed; `close_code` is what to tell the server, if anything.
    Failed {
        error: WsError,
        close_code: Option<u16>,
    },
    /// `Connection` was dropped: nobody to report to.
    Abandoned,
}

impl Ending {
    fn protocol(message: impl Into<String>, close_code: u16) -> Self {
        Ending::Failed {
            error: WsError::Protocol(message.into()),
            close_code: Some(close_code),
        }
    }
}

/// A fragmented data message being received.
struct Partial {
    kind: FrameKind,
    /// The payload so far (decompressed), at most `max_message_size` bytes.
    data: Vec<u8>,
    utf8: Utf8Validator,
    /// The message is compressed (permessage-deflate, RSV1 on its first frame).
    compressed: bool,
    /// Its UTF-8 was checked already (by fastwebsockets).
    utf8_checked: bool,
}

/// Control frames waiting for the writer lock.
#[derive(Default)]
struct Outbox {
    /// Only the latest Ping needs its Pong (RFC 6455 section 5.5.3), so a newer one replaces it.
    pong: Option<Vec<u8>>,
    ping: bool,
}

type ControlWrite = Pin<Box<dyn Future<Output = Result<(), WsError>> + Send>>;

impl Outbox {
    /// Starts writing everything queued, under one lock acquisition.
    fn start(&mut self, writer: &Arc<Mutex<Writer>>) -> Option<ControlWrite> {
        if self.pong.is_none() && !self.ping {
            return None;
        }
        let pong = self.pong.take();
        let ping = std::mem::take(&mut self.ping);
        let writer = writer.clone();
        Some(Box::pin(async move {
            let mut writer = writer.lock().await;
            if let Some(payload) = pong {
                writer.write_frame(OpCode::Pong, &payload, !ping).await?;
            }
            if ping {
                debug!("keep-alive ping");
                writer.write_frame(OpCode::Ping, &[], true).await?;
            }
            Ok(())
        }))
    }
}

struct Reader {
    ws: WebSocketRead<RsvReader<ReadHalf<Stream>>>,
    writer: Arc<Mutex<Writer>>,
    shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
    max_message_size: usize,
    close_timeout: Duration,
    partial: Option<Partial>,
    /// The control-frame write in progress, if any.
    control: Option<ControlWrite>,
    peer: SocketAddr,
    /// How each data message started on the wire (see `rsv`).
    starts: Starts,
    /// The decompressor, when permessage-deflate was negotiated.
    inflater: Option<Inflater>,
}

/// fastwebsockets' `read_frame` takes a callback for the frames it must send
/// (auto-pong, auto-close); both are off, so it is never called.
fn no_obligated_send(_: Frame<'_>) -> std::future::Ready<Result<(), std::convert::Infallible>> {
    std::future::ready(Ok(()))
}

/// Awaits `f` when there is one; otherwise never completes (a disabled `select!` branch).
async fn maybe<F: Future + Unpin>(f: Option<&mut F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl Reader {
    async fn run(mut self) {
        let ending = self.read_loop().await;
        if matches!(
            ending,
            Ending::Failed {
                close_code: Some(_),
                ..
            }
        ) {
            // A Close will follow: let a Pong or Ping being written finish first,
            // rather than cut it mid-frame. (Not when the peer is dead or the
            // socket broken: no point waiting.)
            if let Some(write) = self.control.take() {
                let _ = write.await;
            }
        }
        self.control = None;
        let mut writer = self.writer.lock().await;
        let event = match ending {
            Ending::ServerClosed { code, reason } => {
                // Debug formatting escapes whatever control characters the server put in the reason.
                debug!(peer = %self.peer, ?code, ?reason, "server closed the connection");
                writer.shutdown(self.close_timeout).await;
                Event::Closed { code, reason }
            }
            Ending::Failed { error, close_code } => {
                debug!(peer = %self.peer, %error, "connection failed");
                if let Some(code) = close_code {
                    // Tell the server why (best effort, bounded by write_timeout);
                    // the writer refuses if a Close already went out.
                    let reason = match &error {
                        WsError::Protocol(message) => message.as_str(),
                        _ => "",
                    };
                    let _ = writer
                        .write_frame(OpCode::Close, &close_payload(code, reason), true)
                        .await;
                }
                // Drop without shutdown: a dead or hostile peer gets no more of our time.
                writer.io = None;
                Event::Failed(error)
            }
            Ending::Abandoned => return,
        };
        drop(writer);
        // Release the read half now: the socket closes once both halves are
        // gone, which should not wait for the caller to take the event.
        let Reader { ws, events, .. } = self;
        drop(ws);
        // An error only means the Connection is gone, and with it the interest.
        let _ = events.send(event).await;
    }

    async fn read_loop(&mut self) -> Ending {
        let mut outbox = Outbox::default();
        loop {
            // Read one frame. The read future stays alive across the select
            // iterations below (it is not cancel-safe) while control frames are
            // written and the keep-alive timer is served.
            let read_result = {
                let mut no_send = no_obligated_send;
                let read = self.ws.read_frame(&mut no_send);
                tokio::pin!(read);
                loop {
                    if self.control.is_none() {
                        self.control = outbox.start(&self.writer);
                    }
                    let deadline = self.shared.keep_alive_deadline();
                    // Biased: a frame read first, then our control write, a ping
                    // request, the keep-alive timer.
                    let branch = first(
                        &mut read,
                        first(
                            maybe(self.control.as_mut()),
                            first(self.shared.ping_sent.notified(), sleep_until_opt(deadline)),
                        ),
                    )
                    .await;
                    match branch {
                        First::A(result) => break result,
                        First::B(First::A(result)) => {
                            self.control = None;
                            match result {
                                // Our Close already went out (close() in progress): the
                                // server will be told nothing more, which is fine.
                                Ok(()) | Err(WsError::Closed) => {}
                                Err(error) => {
                                    return Ending::Failed {
                                        error,
                                        close_code: None,
                                    }
                                }
                            }
                        }
                        First::B(First::B(First::A(()))) => {}
                        First::B(First::B(First::B(()))) => {
                            match self.shared.keep_alive_check(Instant::now()) {
                                KeepAliveAction::Nothing => {}
                                KeepAliveAction::SendPing => outbox.ping = true,
                                KeepAliveAction::Dead => {
                                    return Ending::Failed {
                                        error: WsError::PongTimeout,
                                        close_code: None,
                                    };
                                }
                            }
                        }
                    }
                }
            };
            let frame = match read_result {
                Ok(frame) => frame,
                Err(e) => return map_read_error(e, self.max_message_size),
            };
            let event = match frame.opcode {
                WireOpCode::Ping => {
                    outbox.pong = Some(frame.payload.to_vec());
                    None
                }
                WireOpCode::Pong => {
                    if frame.payload.len() > MAX_CONTROL_PAYLOAD {
                        return Ending::protocol("Pong frame payload exceeds 125 bytes", 1002);
                    }
                    self.shared.record_pong();
                    Some(Event::Pong(frame.payload.to_vec()))
                }
                WireOpCode::Close => {
                    if frame.payload.len() > MAX_CONTROL_PAYLOAD {
                        return Ending::protocol("Close frame payload exceeds 125 bytes", 1002);
                    }
                    let body = match parse_close(&frame.payload) {
                        Ok(body) => body,
                        Err((message, code)) => return Ending::protocol(message, code),
                    };
                    // Let a control write in progress finish (it holds the lock and
                    // may be mid-frame), then answer with our Close unless one was
                    // already sent: echo the code, as RFC 6455 section 5.5.1 suggests.
                    if let Some(write) = self.control.take() {
                        let _ = write.await;
                    }
                    let reply = match body.code {
                        Some(code) => close_payload(code, ""),
                        None => Vec::new(),
                    };
                    let mut writer = self.writer.lock().await;
                    if !writer.close_sent {
                        if let Err(e) = writer.write_frame(OpCode::Close, &reply, true).await {
                            debug!(error = %e, "could not answer the server's Close");
                        }
                    }
                    return Ending::ServerClosed {
                        code: body.code,
                        reason: body.reason,
                    };
                }
                WireOpCode::Text | WireOpCode::Binary | WireOpCode::Continuation => {
                    // The record of a message's first frame, kept by the RsvReader.
                    let start = (frame.opcode != WireOpCode::Continuation
                        && self.inflater.is_some())
                    .then(|| {
                        self.starts
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .pop_front()
                    })
                    .flatten();
                    match on_data(
                        &mut self.partial,
                        self.inflater.as_mut(),
                        self.max_message_size,
                        frame.opcode,
                        start,
                        frame.fin,
                        &frame.payload,
                    ) {
                        Ok(event) => event,
                        Err(ending) => return ending,
                    }
                }
            };
            if let Some(event) = event {
                if let Event::Message { payload, .. } = &event {
                    // Waits while earlier payloads fill the budget: reading pauses
                    // and TCP pushes back on the server.
                    let permits = self.shared.permits(payload.len());
                    match self.shared.message_budget.acquire_many(permits).await {
                        Ok(permit) => permit.forget(),
                        Err(_) => return Ending::Abandoned,
                    }
                }
                if self.events.send(event).await.is_err() {
                    return Ending::Abandoned;
                }
            }
        }
    }
}

/// Tracks data messages across fragments; returns the event for a complete one.
///
/// A free function over the fields it needs, because the frame's payload
/// still borrows the reader's `ws` field when it is called. `start` is how the
/// message began on the wire when permessage-deflate is on (a compressed text
/// message reaches here as binary).
fn on_data(
    partial_slot: &mut Option<Partial>,
    inflater: Option<&mut Inflater>,
    max_message_size: usize,
    opcode: WireOpCode,
    start: Option<MessageStart>,
    fin: bool,
    payload: &[u8],
) -> Result<Option<Event>, Ending> {
    let partial = match opcode {
        WireOpCode::Continuation => partial_slot.as_mut().ok_or_else(|| {
            Ending::protocol("continuation frame without a message to continue", 1002)
        })?,
        _ => {
            if partial_slot.is_some() {
                return Err(Ending::protocol(
                    "new data message started before the fragmented one was finished",
                    1002,
                ));
            }
            let text = start.map_or(opcode == WireOpCode::Text, |s| s.text);
            partial_slot.insert(Partial {
                kind: if text {
                    FrameKind::Text
                } else {
                    FrameKind::Binary
                },
                data: Vec::new(),
                utf8: Utf8Validator::default(),
                compressed: start.is_some_and(|s| s.compressed),
                // fastwebsockets already checked an unfragmented, uncompressed text frame.
                utf8_checked: fin && opcode == WireOpCode::Text,
            })
        }
    };
    partial.absorb(inflater, payload, fin, max_message_size)?;
    if !fin {
        return Ok(None);
    }
    let partial = partial_slot.take().expect("set above");
    if partial.kind == FrameKind::Text && !partial.utf8_checked {
        partial.utf8.finish().map_err(|_| invalid_utf8())?;
    }
    Ok(Some(Event::Message {
        kind: partial.kind,
        payload: partial.data,
    }))
}

fn invalid_utf8() -> Ending {
    Ending::protocol("text message is not valid UTF-8", 1007)
}

impl Partial {
    /// Counts (and for text checks) one frame's payload, decompressed first when the
    /// message is compressed; the limit applies to the decompressed size.
    fn absorb(
        &mut self,
        inflater: Option<&mut Inflater>,
        payload: &[u8],
        fin: bool,
        max_message_size: usize,
    ) -> Result<(), Ending> {
        let check_text = self.kind == FrameKind::Text && !self.utf8_checked;
        let mut take = |bytes: &[u8]| {
            if self.data.len() + bytes.len() > max_message_size {
                return Err(Ending::protocol(
                    format!("message larger than max_message_size ({max_message_size} bytes)"),
                    1009,
                ));
            }
            if check_text {
                self.utf8.feed(bytes).map_err(|_| invalid_utf8())?;
            }
            self.data.extend_from_slice(bytes);
            Ok(())
        };
        match (self.compressed, inflater) {
            (true, Some(inflater)) => inflater
                .inflate(payload, fin, take)
                .map_err(|message| Ending::protocol(message, 1007))?,
            _ => take(payload),
        }
    }
}

fn map_read_error(error: WebSocketError, max_message_size: usize) -> Ending {
    match error {
        WebSocketError::IoError(e) => Ending::Failed {
            error: WsError::Io(e),
            close_code: None,
        },
        WebSocketError::UnexpectedEOF => Ending::Failed {
            error: WsError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection without a Close frame",
            )),
            close_code: None,
        },
        WebSocketError::ReservedBitsNotZero => Ending::protocol(
            "frame with reserved bits (RSV1-3) set, but no extension was negotiated",
            1002,
        ),
        // The only InvalidValue on the read path: the opcode is not one of RFC 6455's.
        WebSocketError::InvalidValue => Ending::protocol("frame with a reserved opcode", 1002),
        WebSocketError::ControlFrameFragmented => {
            Ending::protocol("fragmented control frame", 1002)
        }
        WebSocketError::PingFrameTooLarge => {
            Ending::protocol("Ping frame payload exceeds 125 bytes", 1002)
        }
        WebSocketError::FrameTooLarge => Ending::protocol(
            format!("frame larger than max_message_size ({max_message_size} bytes)"),
            1009,
        ),
        WebSocketError::InvalidUTF8 => Ending::protocol("text message is not valid UTF-8", 1007),
        other => Ending::protocol(other.to_string(), 1002),
    }
}
