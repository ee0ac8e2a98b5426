//! The disk cache's writer: one thread per disk-cached queue that appends pushed
//! messages in batches (group commit).
//!
//! A push adds its message (a producer with several ready, all of them in one go:
//! [`MessageQueue::push_many`](crate::MessageQueue::push_many)) to [`Pending`] and waits
//! for its outcome; the thread takes every pending message at once, runs
//! [`Core::push_batch`](crate::core::Core) on them (one `write`, and one `fdatasync`
//! under `sync = "always"`), completes each push, and goes round again while more
//! arrived meanwhile. The thread is woken only when it is
//! idle, so a burst of pushes costs one wake-up and one write. A push that finds the
//! thread idle and the write cheap does it in its own task instead
//! ([`Writer::is_idle`], `MessageQueue::write_inline`).
//!
//! A dedicated thread rather than tokio's blocking pool, by measurement: with pushes
//! that never meet (one source pushing one message after the other) the hand-off to the
//! pool cost 88-93 µs of CPU per message against 54-58 µs to this thread, and the two
//! were level when pushes meet (`tagwire bench --disk`, `docs/benchmarks.md`).
//!
//! The thread holds the queue's state only while it writes a batch (a weak reference
//! otherwise), and lets go of it before completing the batch's pushes: a caller that
//! drops the queue after its last push returned really closes the disk log, so a
//! restart may open the same directory at once. Dropping the queue stops the thread.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use tokio::sync::oneshot;

use crate::queue::{Push, Shared};
use crate::PushOutcome;

/// Messages pushed and not yet taken by the writer thread, and the thread's state.
#[derive(Debug, Default)]
struct Pending {
    messages: Vec<(Push, oneshot::Sender<PushOutcome>)>,
    /// The thread waits for messages (a push must wake it).
    idle: bool,
    /// A writer thread exists (false after a panic in the disk code: the next push
    /// starts a new one).
    running: bool,
    /// The queue was dropped: the thread ends.
    closed: bool,
}

/// The queue's side of its writer thread.
#[derive(Debug)]
pub(crate) struct Writer {
    channel: Arc<Channel>,
    shared: Weak<Shared>,
}

#[derive(Debug, Default)]
struct Channel {
    pending: Mutex<Pending>,
    wake: Condvar,
}

impl Channel {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Writer {
    /// A writer for the queue state `shared`; its thread starts with the first push.
    pub(crate) fn new(shared: Weak<Shared>) -> Self {
        Self {
            channel: Arc::default(),
            shared,
        }
    }

    /// Whether the thread has nothing to do (waiting, or not started): a push
    /// written in the caller's task meanwhile neither waits for it nor delays it.
    pub(crate) fn is_idle(&self) -> bool {
        let pending = self.channel.lock();
        pending.messages.is_empty() && (pending.idle || !pending.running)
    }

    /// Whether the thread has been started (tests: pushes written in their own task
    /// never start it).
    #[cfg(test)]
    pub(crate) fn is_started(&self) -> bool {
        self.channel.lock().running
    }

    /// Hands several messages to the writer thread at once, under one lock and with at
    /// most one wake-up, so that they are written together (a producer with several
    /// messages ready need not wait for each write in turn). One receiver per message,
    /// in order.
    pub(crate) fn submit(
        &self,
        messages: impl IntoIterator<Item = Push>,
    ) -> Vec<oneshot::Receiver<PushOutcome>> {
        let (start, wake, receivers) = {
            let mut pending = self.channel.lock();
            let receivers: Vec<_> = messages
                .into_iter()
                .map(|push| {
                    let (tx, rx) = oneshot::channel();
                    pending.messages.push((push, tx));
                    rx
                })
                .collect();
            let start = !std::mem::replace(&mut pending.running, true);
            (start, std::mem::take(&mut pending.idle), receivers)
        };
        if start {
            let channel = Arc::clone(&self.channel);
            let shared = Weak::clone(&self.shared);
            if let Err(e) = std::thread::Builder::new()
                .name("tagwire-disk".into())
                .spawn(move || run(&channel, &shared))
            {
                // Without a thread nothing can be written: fail these pushes loudly
                // rather than let them wait for ever; the next push tries again.
                let mut pending = self.channel.lock();
                pending.running = false;
                pending.messages.clear();
                tracing::error!(error = %e, "disk cache: cannot start the writer thread");
            }
        } else if wake {
            self.channel.wake.notify_one();
        }
        receivers
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.channel.lock().closed = true;
        self.channel.wake.notify_one();
    }
}

/// The writer thread: waits for messages, writes them batch by batch.
fn run(channel: &Channel, shared: &Weak<Shared>) {
    /// If the disk code panics: lets the next push start a new thread, and fails the
    /// pushes already waiting (their senders are dropped) instead of leaving them
    /// waiting for ever.
    struct OnPanic<'a>(&'a Channel);
    impl Drop for OnPanic<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let mut pending = self.0.lock();
                pending.running = false;
                pending.messages.clear();
            }
        }
    }
    let _on_panic = OnPanic(channel);
    loop {
        let messages = {
            let mut pending = channel.lock();
            while pending.messages.is_empty() {
                if pending.closed {
                    pending.running = false;
                    return;
                }
                pending.idle = true;
                pending = channel
                    .wake
                    .wait(pending)
                    .unwrap_or_else(|e| e.into_inner());
            }
            pending.idle = false;
            std::mem::take(&mut pending.messages)
        };
        // The queue is gone: dropping the senders tells any push still listening.
        let Some(state) = shared.upgrade() else {
            return;
        };
        let (batch, senders): (Vec<_>, Vec<_>) = messages.into_iter().unzip();
        let outcomes = state.write_batch(batch);
        drop(state);
        let mut orphaned = Vec::new();
        for (tx, outcome) in senders.into_iter().zip(outcomes) {
            // A push whose future was dropped no longer listens; its message is
            // queued all the same, as documented, and this thread wakes the consumer
            // for it (a completed push does so itself).
            if let Err(outcome) = tx.send(outcome) {
                orphaned.push(outcome);
            }
        }
        if let Some(state) = shared_if(!orphaned.is_empty(), shared) {
            state.wake_consumer(&orphaned);
        }
    }
}

/// The queue state, if `wanted` and the queue still exists.
fn shared_if(wanted: bool, shared: &Weak<Shared>) -> Option<Arc<Shared>> {
    wanted.then(|| shared.upgrade()).flatten()
}
