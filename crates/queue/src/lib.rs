//! # tagwire-queue
//!
//! The per-uplink message queue: bounded, ordered, optionally backed by a crash-safe
//! disk cache, and honest about every drop.
//!
//! A message enters with [`MessageQueue::push`] and leaves only when the consumer says
//! it was *confirmed* ([`MessageQueue::confirm`]). Between the two it is either
//! *waiting* (never written to the current connection) or *in flight* (written, not
//! yet confirmed). A reconnect moves every in-flight message back to waiting
//! ([`MessageQueue::rewind`]) so it is sent again, oldest first, with its original
//! bytes and timestamp.
//!
//! **With a disk cache** ([`DiskCacheConfig`]) every message is appended to a
//! [`DiskLog`](disk_log::DiskLog) before `push` returns, and removed from it when
//! confirmed or dropped: the log mirrors the queue, so a crash (even `kill -9`) loses
//! nothing that was accepted, and the next start sends it. Memory then holds only as
//! many payloads as `max_bytes` allows; the others are read back from disk when their
//! turn comes. When the disk is full or fails, the queue falls back to memory, says so
//! in the log, and goes back to the disk when it can.
//!
//! ## Who blocks
//!
//! The queue decides, not its callers: the operations that may touch the disk are
//! `async`. With a disk cache, pushes are written in batches by the queue's writer
//! thread (group commit: one write per batch, each push completing when its batch is
//! in the kernel's hands), and the rare operations that read or sync run on tokio's
//! blocking pool; confirmations and in-memory takes stay in the caller's task. A
//! memory-only queue runs everything inline and never leaves the caller's task. Any
//! tokio runtime works, current-thread included. See [`MessageQueue`].
//!
//! ## Example
//!
//! ```
//! use bytes::Bytes;
//! use tagwire_queue::{MessageQueue, PushOutcome, QueueLimits};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let queue = MessageQueue::new(QueueLimits::default());
//! assert_eq!(
//!     queue.push(Bytes::from_static(b"{}"), 1_650_006_388_943).await,
//!     PushOutcome::Queued { dropped_oldest: 0 }
//! );
//! let batch = queue.take_batch(10, 1 << 20).await;
//! assert_eq!(batch[0].seq, 1);
//! // Leaves only when confirmed.
//! assert_eq!(queue.confirm(1).await, (1, 2));
//! assert_eq!(queue.occupancy(), (0, 0));
//! # });
//! ```
#![deny(missing_docs)]

mod core;
pub mod disk_log;
mod kind;
mod limits;
pub mod log_limit;
mod queue;
mod writer;

pub use disk_log::{DiskLogError, Recovery, SyncPolicy};
pub use kind::{KindCounts, MessageKind};
pub use limits::{DiskCacheConfig, FullPolicy, QueueLimits};
pub use queue::{Message, MessageQueue, PushOutcome};
