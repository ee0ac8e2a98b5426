//! Confirmed delivery over one connection: what makes a pushing client lose
//! nothing when the connection drops.
//!
//! RFC 6455 servers answer a Ping only after reading every frame sent before it
//! (section 5.5.2). So after each batch of messages, [`Delivery`] sends a Ping
//! whose payload is the sequence number of the batch's last message (8 bytes,
//! big-endian); the Pong echoing it proves the server read everything up to
//! that number. The batch and its Ping go out in one write.
//!
//! The caller owns the messages and their sequence numbers (tagwire's uplink
//! takes both from its queue); this layer owns the wire protocol: it keeps a
//! cheap handle (`Bytes`) of each unconfirmed message, reports confirmations in
//! order, and hands the unconfirmed ones back after a drop, oldest first, for
//! the caller to send again on the next connection.

use std::collections::VecDeque;

use bytes::Bytes;
use tracing::debug;

use crate::connection::{Connection, Event};
use crate::error::WsError;
use crate::options::FrameKind;

/// When a written message counts as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Confirm {
    /// When the server's Pong to the Ping sent after it arrives (the default):
    /// a message written into a connection that then drops is handed back.
    #[default]
    ByPong,
    /// As soon as it is written to the socket. Faster for servers that do not
    /// answer Pings, but what sits in socket buffers at a drop is lost.
    OnWrite,
}

/// What one [`Delivery::send_batch`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Sequence number of the batch's last message (the Ping's payload).
    pub last: u64,
    /// Messages in the batch.
    pub messages: usize,
    /// They count as delivered already ([`Confirm::OnWrite`]); with
    /// [`Confirm::ByPong`] a [`DeliveryEvent::Confirmed`] follows.
    pub confirmed: bool,
}

/// Something that happened on a [`Delivery`], from [`Delivery::next_event`].
#[derive(Debug)]
pub enum DeliveryEvent {
    /// The server read every message up to and including sequence number
    /// `through`: `messages` of them (`bytes` payload bytes) were confirmed
    /// by this Pong and are no longer held.
    Confirmed {
        /// The highest confirmed sequence number.
        through: u64,
        /// Messages newly confirmed.
        messages: usize,
        /// Their payload bytes.
        bytes: u64,
    },
    /// The server sent a data message (at most `max_message_size` bytes).
    Message {
        /// Text (valid UTF-8) or binary.
        kind: FrameKind,
        /// The payload.
        payload: Vec<u8>,
    },
    /// The server closed the connection. The last event: take the unconfirmed
    /// messages with [`Delivery::take_unconfirmed`].
    Closed {
        /// The close code, `None` when the Close frame had none.
        code: Option<u16>,
        /// The close reason (may be empty).
        reason: String,
    },
    /// The connection failed. The last event: take the unconfirmed messages
    /// with [`Delivery::take_unconfirmed`].
    Failed(WsError),
}

/// The payloads of a run of `(seq, payload)` pairs. A named iterator rather
/// than a closure over `map`: a closure returning a borrow makes the future of
/// `send_batch` fail the `Send` bound of `tokio::spawn` (rust-lang/rust#64552).
#[derive(Clone)]
struct Payloads<'a>(std::collections::vec_deque::Iter<'a, (u64, Bytes)>);

impl<'a> Iterator for Payloads<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.0.next().map(|(_, payload)| &payload[..])
    }
}

/// Sends payloads over one [`Connection`] and confirms them by Ping/Pong.
///
/// ```no_run
/// use bytes::Bytes;
/// use tagwire_ws_client::{connect, Confirm, ConnectOptions, Delivery, DeliveryEvent, FrameKind, WsUrl};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let url = WsUrl::parse("ws://127.0.0.1:9001/push")?;
/// let conn = connect(&url, &ConnectOptions::default()).await?;
/// let mut delivery = Delivery::new(conn, FrameKind::Text, Confirm::ByPong);
/// let batch = (1..=3u64).map(|seq| (seq, Bytes::from(format!(r#"{{"n":{seq}}}"#))));
/// delivery.send_batch(batch).await?;
/// while delivery.unconfirmed() > 0 {
///     match delivery.next_event().await {
///         Some(DeliveryEvent::Confirmed { through, .. }) => println!("confirmed up to {through}"),
///         Some(DeliveryEvent::Message { payload, .. }) => println!("{} bytes from the server", payload.len()),
///         Some(DeliveryEvent::Closed { .. } | DeliveryEvent::Failed(_)) | None => {
///             let resend = delivery.take_unconfirmed();
///             println!("{} messages to send again on a new connection", resend.len());
///             break;
///         }
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Delivery {
    conn: Connection,
    kind: FrameKind,
    confirm: Confirm,
    /// Written and not yet confirmed, oldest first (with `Confirm::ByPong`).
    unconfirmed: VecDeque<(u64, Bytes)>,
    /// Sequence number of the last message written (or given to a failed write).
    last_written: Option<u64>,
    /// The highest sequence number confirmed on this connection.
    last_confirmed: Option<u64>,
}

impl Delivery {
    /// Confirmed delivery over `conn`, sending data frames of `kind`.
    pub fn new(conn: Connection, kind: FrameKind, confirm: Confirm) -> Self {
        Self {
            conn,
            kind,
            confirm,
            unconfirmed: VecDeque::new(),
            last_written: None,
            last_confirmed: None,
        }
    }

    /// The connection (for [`Connection::sent_bytes`], [`Connection::protocol`], ...).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Writes a batch of `(sequence number, payload)` pairs, then (with
    /// [`Confirm::ByPong`]) a Ping carrying the last sequence number, all in
    /// one write. `Ok(None)` for an empty batch.
    ///
    /// Sequence numbers must increase strictly across all batches of this
    /// connection (a batch that breaks this is refused whole, with
    /// [`WsError::InvalidInput`], before anything is written). They need not be
    /// contiguous. The payloads are kept (a reference count, not a copy) until
    /// confirmed; on an error they stay unconfirmed, to be taken back with
    /// [`take_unconfirmed`](Self::take_unconfirmed).
    ///
    /// Not cancel-safe (see [`Connection::send`]): a cancelled write breaks
    /// the connection, and the batch stays unconfirmed.
    pub async fn send_batch<I>(&mut self, batch: I) -> Result<Option<Written>, WsError>
    where
        I: IntoIterator<Item = (u64, Bytes)>,
    {
        let first_new = self.unconfirmed.len();
        let mut previous = self.last_written;
        for (seq, payload) in batch {
            if previous.is_some_and(|p| seq <= p) {
                self.unconfirmed.truncate(first_new);
                return Err(WsError::InvalidInput(format!(
                    "sequence number {seq} does not follow {}: sequence numbers must increase \
                     strictly across the batches of a connection",
                    previous.unwrap_or_default()
                )));
            }
            previous = Some(seq);
            self.unconfirmed.push_back((seq, payload));
        }
        let messages = self.unconfirmed.len() - first_new;
        let Some(last) = previous.filter(|_| messages > 0) else {
            return Ok(None);
        };
        self.last_written = Some(last);
        let ping = last.to_be_bytes();
        let by_pong = self.confirm == Confirm::ByPong;
        let payloads = Payloads(self.unconfirmed.range(first_new..));
        self.conn
            .send_batch(self.kind, payloads, by_pong.then_some(&ping[..]))
            .await?;
        if !by_pong {
            self.unconfirmed.clear();
            self.last_confirmed = Some(last);
        }
        Ok(Some(Written {
            last,
            messages,
            confirmed: !by_pong,
        }))
    }

    /// The next thing that happened, in order: confirmations, messages from
    /// the server, the end of the connection. `None` once every event was taken.
    ///
    /// Cancel-safe: no event is lost when another `select!` branch wins.
    pub async fn next_event(&mut self) -> Option<DeliveryEvent> {
        loop {
            let event = self.conn.next_event().await?;
            if let Some(event) = self.on_event(event) {
                return Some(event);
            }
        }
    }

    /// The next event if one is waiting now, without waiting for one.
    pub fn try_next_event(&mut self) -> Option<DeliveryEvent> {
        loop {
            let event = self.conn.try_next_event()?;
            if let Some(event) = self.on_event(event) {
                return Some(event);
            }
        }
    }

    /// Messages written and not yet confirmed.
    pub fn unconfirmed(&self) -> usize {
        self.unconfirmed.len()
    }

    /// The highest sequence number confirmed on this connection, if any.
    pub fn last_confirmed(&self) -> Option<u64> {
        self.last_confirmed
    }

    /// Takes the unconfirmed messages, oldest first, for the caller to send
    /// again on a new connection (after [`DeliveryEvent::Closed`] or
    /// [`DeliveryEvent::Failed`], or an error of [`send_batch`](Self::send_batch)).
    pub fn take_unconfirmed(&mut self) -> Vec<(u64, Bytes)> {
        self.unconfirmed.drain(..).collect()
    }

    /// Closes the connection cleanly (see [`Connection::close`]) and hands back
    /// what was still unconfirmed: Pongs arriving during the close handshake
    /// are not waited for, so wait for [`unconfirmed`](Self::unconfirmed) to
    /// reach 0 first when nothing should be resent.
    pub async fn close(self, code: u16, reason: &str) -> (Result<(), WsError>, Vec<(u64, Bytes)>) {
        let Delivery {
            conn, unconfirmed, ..
        } = self;
        (conn.close(code, reason).await, unconfirmed.into())
    }

    /// Turns a connection event into a delivery event; `None` for what the
    /// caller need not see (keep-alive Pongs, stale or unknown confirmations).
    fn on_event(&mut self, event: Event) -> Option<DeliveryEvent> {
        match event {
            Event::Pong(payload) => {
                // Keep-alive Pongs are empty; ours carry 8 bytes of sequence number.
                let seq = u64::from_be_bytes(<[u8; 8]>::try_from(payload.as_slice()).ok()?);
                self.confirm_through(seq)
            }
            Event::Message { kind, payload } => Some(DeliveryEvent::Message { kind, payload }),
            Event::Closed { code, reason } => Some(DeliveryEvent::Closed { code, reason }),
            Event::Failed(error) => Some(DeliveryEvent::Failed(error)),
        }
    }

    fn confirm_through(&mut self, seq: u64) -> Option<DeliveryEvent> {
        if self.last_written.is_none_or(|last| seq > last) {
            // Never written on this connection: a server echoing garbage must
            // not make us forget messages it never read.
            debug!(seq, "Pong for a sequence number never sent, ignored");
            return None;
        }
        let mut messages = 0;
        let mut bytes = 0;
        while let Some((_, payload)) = self.unconfirmed.front().filter(|(s, _)| *s <= seq) {
            bytes += payload.len() as u64;
            messages += 1;
            self.unconfirmed.pop_front();
        }
        if messages == 0 {
            // A repeated or older Pong: nothing new.
            return None;
        }
        self.last_confirmed = Some(seq);
        Some(DeliveryEvent::Confirmed {
            through: seq,
            messages,
            bytes,
        })
    }
}
