//! Property test: random push / take / confirm / rewind / restart sequences against a
//! simple model (a list of accepted messages, the first `in_flight` of them sent).
//! Nothing accepted may be lost, duplicated in the queue or reordered, through restarts
//! of a disk-cached queue included. Runs on a current-thread runtime, so it also proves
//! that the disk path needs no multi-thread runtime. `PushMany` starts several pushes
//! at once, in order, so that the disk cache's writer gathers them into batches (group
//! commit): they must be accepted in the order they were started.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use proptest::prelude::*;
use tagwire_queue::{
    DiskCacheConfig, FullPolicy, MessageQueue, PushOutcome, QueueLimits, SyncPolicy,
};

#[derive(Clone, Debug)]
enum Op {
    /// Push a message with this much padding.
    Push(usize),
    /// Start this many pushes at once (each with this much padding) and wait for all.
    PushMany(usize, usize),
    /// Take up to this many messages.
    Take(usize),
    /// Confirm up to the in-flight message at this index (modulo), or a stale seq 0.
    Confirm(usize),
    Rewind,
    /// Drop the queue as a crash would (no shutdown) and open the directory again.
    Crash,
    /// Stop cleanly (`close_for_shutdown`) and open the directory again.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..200).prop_map(Op::Push),
        2 => (2usize..12, 0usize..200).prop_map(|(n, pad)| Op::PushMany(n, pad)),
        3 => (1usize..8).prop_map(Op::Take),
        3 => (0usize..10).prop_map(Op::Confirm),
        1 => Just(Op::Rewind),
        1 => Just(Op::Crash),
        1 => Just(Op::Restart),
    ]
}

/// The model: accepted payloads oldest first; the first `in_flight` were sent, with the
/// sequence numbers the queue gave them.
#[derive(Default)]
struct Model {
    held: VecDeque<Bytes>,
    in_flight_seqs: Vec<u64>,
}

fn limits(disk: Option<&std::path::Path>, memory: usize) -> QueueLimits {
    QueueLimits::default()
        .with_max_bytes(memory)
        .with_max_messages(1_000_000)
        .with_policy(FullPolicy::DropOldest)
        .with_disk(disk.map(|dir| DiskCacheConfig::new(dir, 1 << 30, SyncPolicy::Never)))
}

async fn open(disk: Option<&std::path::Path>, memory: usize) -> MessageQueue {
    MessageQueue::open(limits(disk, memory)).await.unwrap().0
}

async fn run(ops: Vec<Op>, disk: bool, memory: usize) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk.then_some(dir.path());
    let mut queue = open(disk, memory).await;
    let mut model = Model::default();
    let mut next_id = 0u64;
    for op in ops {
        match op {
            Op::Push(pad) => {
                let payload = Bytes::from(format!("{next_id}:{}", "x".repeat(pad)));
                next_id += 1;
                let outcome = queue.push(payload.clone(), next_id).await;
                // Limits are far away: every push must be accepted without drops.
                prop_assert_eq!(outcome, PushOutcome::Queued { dropped_oldest: 0 });
                model.held.push_back(payload);
            }
            Op::PushMany(n, pad) => {
                let payloads: Vec<(Bytes, u64)> = (0..n)
                    .map(|_| {
                        next_id += 1;
                        (
                            Bytes::from(format!("{next_id}:{}", "x".repeat(pad))),
                            next_id,
                        )
                    })
                    .collect();
                let outcomes = push_concurrently(&queue, payloads.clone()).await;
                for (outcome, (payload, _)) in outcomes.into_iter().zip(payloads) {
                    prop_assert_eq!(outcome, PushOutcome::Queued { dropped_oldest: 0 });
                    model.held.push_back(payload);
                }
            }
            Op::Take(n) => {
                let batch = queue.take_batch(n, 1 << 20).await;
                let sent = model.in_flight_seqs.len();
                let waiting = model.held.len() - sent;
                prop_assert!(batch.len() <= n.min(waiting));
                if sent == 0 && waiting > 0 {
                    prop_assert!(!batch.is_empty(), "one message is always allowed");
                }
                for (i, m) in batch.iter().enumerate() {
                    prop_assert_eq!(&m.payload, &model.held[sent + i], "order");
                    model.in_flight_seqs.push(m.seq);
                }
            }
            Op::Confirm(i) => {
                let up_to = if model.in_flight_seqs.is_empty() || i == 9 {
                    0
                } else {
                    model.in_flight_seqs[i % model.in_flight_seqs.len()]
                };
                let n = model
                    .in_flight_seqs
                    .iter()
                    .take_while(|s| **s <= up_to)
                    .count();
                let (count, _) = queue.confirm(up_to).await;
                prop_assert_eq!(count, n as u64);
                model.in_flight_seqs.drain(..n);
                model.held.drain(..n);
            }
            Op::Rewind => {
                prop_assert_eq!(queue.rewind(), model.in_flight_seqs.len());
                model.in_flight_seqs.clear();
            }
            Op::Crash | Op::Restart if disk.is_none() => {}
            Op::Crash => {
                drop(queue);
                queue = open(disk, memory).await;
                model.in_flight_seqs.clear();
            }
            Op::Restart => {
                prop_assert_eq!(queue.close_for_shutdown().await, 0, "nothing lost");
                drop(queue);
                queue = open(disk, memory).await;
                model.in_flight_seqs.clear();
            }
        }
        let bytes: usize = model.held.iter().map(Bytes::len).sum();
        prop_assert_eq!(queue.occupancy(), (model.held.len(), bytes));
        prop_assert_eq!(queue.in_flight(), model.in_flight_seqs.len());
    }
    // Everything still held comes out, in order.
    queue.rewind();
    let mut out = Vec::new();
    loop {
        let batch = queue.take_batch(64, 1 << 20).await;
        let Some(last) = batch.last().map(|m| m.seq) else {
            break;
        };
        out.extend(batch.into_iter().map(|m| m.payload));
        queue.confirm(last).await;
    }
    prop_assert_eq!(out, Vec::from(model.held));
    Ok(())
}

/// Starts every push in order (each is polled once before any is awaited, so they join
/// the writer's queue in this order), then waits for all of them.
async fn push_concurrently(queue: &MessageQueue, messages: Vec<(Bytes, u64)>) -> Vec<PushOutcome> {
    type Push<'a> = Pin<Box<dyn Future<Output = PushOutcome> + 'a>>;
    let mut pushes: Vec<Push<'_>> = messages
        .into_iter()
        .map(|(payload, ts)| Box::pin(queue.push(payload, ts)) as Push<'_>)
        .collect();
    let mut outcomes: Vec<Option<PushOutcome>> = pushes.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (push, outcome) in pushes.iter_mut().zip(outcomes.iter_mut()) {
            if outcome.is_none() {
                match push.as_mut().poll(cx) {
                    Poll::Ready(o) => *outcome = Some(o),
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outcomes.into_iter().map(|o| o.expect("all done")).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn memory_only_queue_matches_the_model(ops in prop::collection::vec(op(), 1..120)) {
        runtime().block_on(run(ops, false, 1 << 20))?;
    }

    /// A roomy memory budget: payloads stay in memory and on disk.
    #[test]
    fn disk_queue_matches_the_model(ops in prop::collection::vec(op(), 1..120)) {
        runtime().block_on(run(ops, true, 1 << 20))?;
    }

    /// A memory budget of a few messages: most payloads live on disk only and are read
    /// back when their turn comes.
    #[test]
    fn disk_queue_with_little_memory_matches_the_model(ops in prop::collection::vec(op(), 1..120)) {
        runtime().block_on(run(ops, true, 600))?;
    }
}
