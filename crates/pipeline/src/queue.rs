//! The per-uplink message queue: bounded, ordered, and honest about every drop.
//!
//! A message enters with [`MessageQueue::push`] and leaves only when the uplink says it
//! was *confirmed* ([`MessageQueue::confirm`]). Between the two it is either *waiting*
//! (never written to the current connection) or *in flight* (written, not yet confirmed
//! by a Pong). A reconnect moves every in-flight message back to waiting
//! ([`MessageQueue::rewind`]) so it is sent again, oldest first, with its original bytes
//! and timestamp.
//!
//! The queue is shared between the producers (sources, the ingest API) and one uplink
//! task, so it is a `std::sync::Mutex` around plain data plus a [`tokio::sync::Notify`]:
//! every critical section is a few pointer moves, never an await.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

/// One encoded message, ready to be written as a WebSocket data frame.
#[derive(Clone, Debug)]
pub struct Message {
    /// Position in this uplink's stream, starting at 1; carried in confirmation pings.
    pub seq: u64,
    /// The encoded JSON. Shared, so a resend never re-encodes and writing never copies.
    pub payload: Bytes,
    /// The snapshot's timestamp (ms since the Unix epoch), for logs and the disk cache.
    pub timestamp_ms: u64,
}

/// What to do when a new message does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// Drop the oldest queued messages to make room (Neuron's behaviour, and the default).
    #[default]
    DropOldest,
    /// Drop the new message and keep what is queued.
    DropNewest,
    /// Refuse the new message so the source can push back (the ingest API answers 503).
    Refuse,
}

impl std::str::FromStr for FullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "drop_oldest" => Ok(Self::DropOldest),
            "drop_newest" => Ok(Self::DropNewest),
            "refuse" => Ok(Self::Refuse),
            other => Err(format!(
                "unknown policy {other:?}: use \"drop_oldest\", \"drop_newest\" or \"refuse\""
            )),
        }
    }
}

/// Limits of one queue.
#[derive(Clone, Copy, Debug)]
pub struct QueueLimits {
    /// Most payload bytes held at once (waiting plus in flight).
    pub max_bytes: usize,
    /// Most messages held at once.
    pub max_messages: usize,
    /// What happens when a message does not fit.
    pub policy: FullPolicy,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_messages: 100_000,
            policy: FullPolicy::DropOldest,
        }
    }
}

/// The answer to [`MessageQueue::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued; `dropped_oldest` older messages were dropped to make room.
    Queued {
        /// How many old messages were dropped (policy [`FullPolicy::DropOldest`]).
        dropped_oldest: u64,
    },
    /// Not queued: dropped because the queue was full (policy [`FullPolicy::DropNewest`]).
    DroppedNewest,
    /// Not queued: refused because the queue was full (policy [`FullPolicy::Refuse`]).
    Refused,
    /// Not queued: the message alone is larger than the whole queue may hold.
    TooLarge,
}

#[derive(Debug, Default)]
struct State {
    /// Oldest first. `messages[..in_flight]` are written but unconfirmed.
    messages: VecDeque<Message>,
    in_flight: usize,
    /// Payload bytes of the in-flight messages.
    in_flight_bytes: usize,
    bytes: usize,
    next_seq: u64,
    closed: bool,
}

/// A bounded FIFO of encoded messages with confirm-to-remove semantics. See the module docs.
#[derive(Debug)]
pub struct MessageQueue {
    limits: QueueLimits,
    state: Mutex<State>,
    /// Woken when a message is pushed or the queue is closed.
    ready: Notify,
}

impl MessageQueue {
    /// An empty queue with these limits.
    pub fn new(limits: QueueLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State {
                next_seq: 1,
                ..State::default()
            }),
            ready: Notify::new(),
        }
    }

    /// The limits this queue was made with.
    pub fn limits(&self) -> QueueLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock can only come from a bug in this module; the
        // data (a deque and counters) stays consistent, so keep going rather than cascade.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `payload`, applying the full-queue policy.
    pub fn push(&self, payload: Bytes, timestamp_ms: u64) -> PushOutcome {
        let size = payload.len();
        if size > self.limits.max_bytes {
            return PushOutcome::TooLarge;
        }
        let mut st = self.lock();
        let fits = |st: &State| {
            st.bytes + size <= self.limits.max_bytes && st.messages.len() < self.limits.max_messages
        };
        let mut dropped_oldest = 0;
        if !fits(&st) {
            match self.limits.policy {
                FullPolicy::DropNewest => return PushOutcome::DroppedNewest,
                FullPolicy::Refuse => return PushOutcome::Refused,
                FullPolicy::DropOldest => {
                    while !fits(&st) {
                        // The oldest message not yet written goes first: an in-flight one
                        // is already on the wire and will probably arrive, so dropping it
                        // would free memory but count as lost what is not. In-flight bytes
                        // are capped at half the queue (take_batch), so this nearly always
                        // makes room; only a huge message reaches into the in-flight ones.
                        let victim = if st.in_flight < st.messages.len() {
                            st.in_flight
                        } else {
                            0
                        };
                        let Some(old) = st.messages.remove(victim) else {
                            break;
                        };
                        st.bytes -= old.payload.len();
                        if victim < st.in_flight {
                            st.in_flight -= 1;
                            st.in_flight_bytes -= old.payload.len();
                        }
                        dropped_oldest += 1;
                    }
                }
            }
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        st.bytes += size;
        st.messages.push_back(Message {
            seq,
            payload,
            timestamp_ms,
        });
        drop(st);
        self.ready.notify_one();
        PushOutcome::Queued { dropped_oldest }
    }

    /// Takes up to `max_messages` / about `max_bytes` waiting messages and marks them in
    /// flight. Returns clones (cheap: the payload is shared). In-flight bytes are capped at
    /// half the queue's byte limit (one message is always allowed when none is in flight),
    /// so that a server that reads slowly leaves room for new messages without dropping
    /// ones already on the wire.
    pub fn take_batch(&self, max_messages: usize, max_bytes: usize) -> Vec<Message> {
        let mut st = self.lock();
        let in_flight_cap = self.limits.max_bytes / 2;
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < max_messages {
            let Some(msg) = st.messages.get(st.in_flight) else {
                break;
            };
            let size = msg.payload.len();
            if !batch.is_empty() && bytes + size > max_bytes {
                break;
            }
            if st.in_flight > 0 && st.in_flight_bytes + size > in_flight_cap {
                break;
            }
            bytes += size;
            batch.push(msg.clone());
            st.in_flight += 1;
            st.in_flight_bytes += size;
        }
        batch
    }

    /// Removes every in-flight message with `seq <= up_to`: the server has read them.
    /// Returns how many messages and bytes were confirmed.
    pub fn confirm(&self, up_to: u64) -> (u64, u64) {
        let mut st = self.lock();
        let (mut count, mut bytes) = (0u64, 0u64);
        while st.in_flight > 0 {
            match st.messages.front() {
                Some(m) if m.seq <= up_to => {
                    let m = st.messages.pop_front().expect("front exists");
                    st.bytes -= m.payload.len();
                    st.in_flight -= 1;
                    st.in_flight_bytes -= m.payload.len();
                    count += 1;
                    bytes += m.payload.len() as u64;
                }
                _ => break,
            }
        }
        (count, bytes)
    }

    /// Moves every in-flight message back to waiting (after a connection was lost) and
    /// returns how many will be sent again.
    pub fn rewind(&self) -> usize {
        let mut st = self.lock();
        st.in_flight_bytes = 0;
        std::mem::take(&mut st.in_flight)
    }

    /// Sequence number of the newest in-flight message, if any.
    pub fn last_in_flight_seq(&self) -> Option<u64> {
        let st = self.lock();
        st.in_flight
            .checked_sub(1)
            .and_then(|i| st.messages.get(i))
            .map(|m| m.seq)
    }

    /// Number of in-flight (written, unconfirmed) messages.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// Number of messages waiting to be written.
    pub fn waiting(&self) -> usize {
        let st = self.lock();
        st.messages.len() - st.in_flight
    }

    /// `(messages, bytes)` held, waiting and in flight together.
    pub fn occupancy(&self) -> (usize, usize) {
        let st = self.lock();
        (st.messages.len(), st.bytes)
    }

    /// Removes and returns everything held, oldest first (for persisting at shutdown).
    pub fn drain_all(&self) -> Vec<Message> {
        let mut st = self.lock();
        st.in_flight = 0;
        st.in_flight_bytes = 0;
        st.bytes = 0;
        st.messages.drain(..).collect()
    }

    /// Marks the queue closed (no more producers) and wakes the consumer.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Resolves when a message was pushed (or the queue closed) since the last call.
    /// Cancel-safe.
    pub async fn wait_ready(&self) {
        self.ready.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(max_bytes: usize, max_messages: usize, policy: FullPolicy) -> MessageQueue {
        MessageQueue::new(QueueLimits {
            max_bytes,
            max_messages,
            policy,
        })
    }

    fn push(q: &MessageQueue, s: &'static str) -> PushOutcome {
        q.push(Bytes::from_static(s.as_bytes()), 0)
    }

    #[test]
    fn messages_leave_only_when_confirmed_and_rewind_resends_in_order() {
        let q = q(1000, 100, FullPolicy::DropOldest);
        for s in ["a", "b", "c"] {
            push(&q, s);
        }
        let batch = q.take_batch(2, 1000);
        assert_eq!(batch.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(q.last_in_flight_seq(), Some(2));
        assert_eq!(q.confirm(1), (1, 1));
        assert_eq!(q.rewind(), 1);
        let batch = q.take_batch(10, 1000);
        assert_eq!(batch.iter().map(|m| m.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(q.confirm(3), (2, 2));
        assert_eq!(q.occupancy(), (0, 0));
    }

    #[test]
    fn confirm_ignores_messages_not_yet_written() {
        let q = q(1000, 100, FullPolicy::DropOldest);
        push(&q, "a");
        push(&q, "b");
        q.take_batch(1, 1000);
        // A stale or forged pong for seq 2 must not remove message 2, which was never sent.
        assert_eq!(q.confirm(2), (1, 1));
        assert_eq!(q.waiting(), 1);
    }

    #[test]
    fn drop_oldest_drops_the_oldest_unsent_messages_first() {
        let q = q(4, 100, FullPolicy::DropOldest);
        push(&q, "a");
        push(&q, "b");
        q.take_batch(1, 100); // "a" in flight: on the wire, probably arriving
        push(&q, "c");
        push(&q, "d");
        assert_eq!(push(&q, "ee"), PushOutcome::Queued { dropped_oldest: 2 });
        assert_eq!(q.in_flight(), 1, "the in-flight message stays");
        assert_eq!(q.confirm(1), (1, 1));
        let seqs: Vec<_> = q.take_batch(10, 100).iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            [4],
            "b and c were dropped (and e waits: 2 bytes may be in flight)"
        );
        q.confirm(4);
        assert_eq!(q.take_batch(10, 100)[0].seq, 5);
    }

    #[test]
    fn drop_oldest_reaches_in_flight_messages_only_when_nothing_else_is_left() {
        let q = q(4, 100, FullPolicy::DropOldest);
        push(&q, "aa");
        q.take_batch(1, 100);
        assert_eq!(push(&q, "bbb"), PushOutcome::Queued { dropped_oldest: 1 });
        assert_eq!((q.in_flight(), q.waiting()), (0, 1));
    }

    #[test]
    fn in_flight_bytes_are_capped_at_half_the_queue() {
        let q = q(8, 100, FullPolicy::DropOldest);
        for s in ["aa", "bb", "cc", "dd"] {
            push(&q, s);
        }
        assert_eq!(
            q.take_batch(10, 100).len(),
            2,
            "4 of 8 bytes may be in flight"
        );
        assert!(q.take_batch(10, 100).is_empty());
        q.confirm(1);
        assert_eq!(q.take_batch(10, 100).len(), 1);
    }

    #[test]
    fn drop_newest_and_refuse_keep_what_is_queued() {
        for (policy, want) in [
            (FullPolicy::DropNewest, PushOutcome::DroppedNewest),
            (FullPolicy::Refuse, PushOutcome::Refused),
        ] {
            let q = q(1000, 2, policy);
            push(&q, "a");
            push(&q, "b");
            assert_eq!(push(&q, "c"), want);
            assert_eq!(q.occupancy(), (2, 2));
        }
    }

    #[test]
    fn a_message_larger_than_the_queue_is_rejected_alone() {
        let q = q(2, 10, FullPolicy::DropOldest);
        push(&q, "a");
        assert_eq!(push(&q, "abc"), PushOutcome::TooLarge);
        assert_eq!(q.occupancy(), (1, 1));
    }

    #[test]
    fn batches_respect_the_byte_budget_but_always_take_one() {
        let q = q(1000, 100, FullPolicy::DropOldest);
        push(&q, "aaaa");
        push(&q, "bbbb");
        assert_eq!(q.take_batch(10, 2).len(), 1);
        assert_eq!(q.take_batch(10, 4).len(), 1);
    }
}
