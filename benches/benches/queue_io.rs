//! Who does the queue's disk I/O: the cost of handing one operation to another thread
//! (tokio's blocking pool, a dedicated thread, `block_in_place`) next to the cost of the
//! operation itself (a disk-cached push + take + confirm cycle through the queue, and
//! the same disk work dispatched both ways in one run), and the memory-only queue,
//! which never leaves the caller's task.

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use tagwire_queue::{DiskCacheConfig, MessageQueue, PushOutcome, QueueLimits, SyncPolicy};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

/// One message through the queue: push, take, confirm.
async fn cycle(queue: &MessageQueue, payload: &Bytes) {
    let outcome = queue.push(payload.clone(), 0).await;
    assert_eq!(outcome, PushOutcome::Queued { dropped_oldest: 0 });
    let batch = queue.take_batch(1, 1 << 20).await;
    queue.confirm(batch[0].seq).await;
}

fn hops(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("thread_hop");
    group.bench_function("spawn_blocking", |b| {
        b.to_async(&rt)
            .iter(|| async { tokio::task::spawn_blocking(|| 1u64).await.unwrap() })
    });
    group.bench_function("block_in_place", |b| {
        b.to_async(&rt)
            .iter(|| async { tokio::task::block_in_place(|| 1u64) })
    });
    // A dedicated I/O thread fed by a channel, answering through a oneshot.
    let (tx, rx) = mpsc::channel::<tokio::sync::oneshot::Sender<u64>>();
    let io_thread = std::thread::spawn(move || {
        for reply in rx {
            let _ = reply.send(1);
        }
    });
    group.bench_function("dedicated_thread", |b| {
        b.to_async(&rt).iter(|| async {
            let (reply, answer) = tokio::sync::oneshot::channel();
            tx.send(reply).unwrap();
            answer.await.unwrap()
        })
    });
    group.finish();
    drop(tx);
    io_thread.join().unwrap();
}

fn queue_cycles(c: &mut Criterion) {
    let rt = runtime();
    let payload = Bytes::from(vec![b'x'; 2048]);
    let mut group = c.benchmark_group("queue_cycle_2KiB");
    group.measurement_time(Duration::from_secs(5));
    let memory = MessageQueue::new(QueueLimits::default());
    group.bench_function("memory_only_inline", |b| {
        b.to_async(&rt).iter(|| cycle(&memory, &payload))
    });
    let dir = tempfile::tempdir().unwrap();
    let disk = rt.block_on(async {
        MessageQueue::open(QueueLimits::default().with_disk(Some(DiskCacheConfig::new(
            dir.path(),
            1 << 30,
            SyncPolicy::Never,
        ))))
        .await
        .unwrap()
        .0
    });
    // One push at a time: each waits for its own write (nothing to group).
    group.bench_function("disk_cache_writer_thread", |b| {
        b.to_async(&rt).iter(|| cycle(&disk, &payload))
    });
    group.finish();

    // 25 pushes started together, as from 25 sources on the same tick, then taken and
    // confirmed: group commit writes them in a few batches. Per 25 messages.
    let mut group = c.benchmark_group("queue_25_concurrent_pushes_2KiB");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("memory_only_inline", |b| {
        b.to_async(&rt).iter(|| burst(&memory, &payload))
    });
    group.bench_function("disk_cache_group_commit", |b| {
        b.to_async(&rt).iter(|| burst(&disk, &payload))
    });
    group.finish();
}

/// 25 concurrent pushes, then everything taken and confirmed.
async fn burst(queue: &MessageQueue, payload: &Bytes) {
    let pushes = (0..25).map(|_| queue.push(payload.clone(), 0));
    futures_join_all(pushes).await;
    let batch = queue.take_batch(25, 1 << 20).await;
    queue.confirm(batch.last().expect("pushed").seq).await;
}

/// Polls every future until all are done (in order on the first poll, so that they
/// reach the queue together).
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) {
    let mut futures: Vec<_> = futures.map(|f| Some(Box::pin(f))).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for slot in &mut futures {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    done = false;
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// The same disk work (append, read back, pop: what a disk-cached message costs)
/// dispatched both ways in one run, so that the comparison shares the machine's noise.
fn disk_dispatch(c: &mut Criterion) {
    use std::sync::{Arc, Mutex};
    use tagwire_queue::disk_log::{DiskLog, DiskLogOptions};

    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut options = DiskLogOptions::new(dir.path(), 1 << 30);
    options.sync = SyncPolicy::Never;
    let log = Arc::new(Mutex::new(DiskLog::open(options).unwrap().0));
    let payload = vec![b'x'; 2048];
    // One of the three steps of a message, as a job on the log.
    let step = |log: &Mutex<DiskLog>, payload: &[u8], i: u8| {
        let mut log = log.lock().unwrap();
        match i {
            0 => log.append(0, payload).unwrap(),
            1 => drop(log.read(0, 1).unwrap()),
            _ => log.pop_front(1).unwrap(),
        }
    };
    let mut group = c.benchmark_group("disk_cycle_dispatch_2KiB");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("spawn_blocking", |b| {
        b.to_async(&rt).iter(|| async {
            for i in 0..3 {
                let (log, payload) = (Arc::clone(&log), payload.clone());
                tokio::task::spawn_blocking(move || step(&log, &payload, i))
                    .await
                    .unwrap();
            }
        })
    });
    type Job = Box<dyn FnOnce() + Send>;
    let (tx, rx) = mpsc::channel::<Job>();
    let io_thread = std::thread::spawn(move || {
        for job in rx {
            job();
        }
    });
    group.bench_function("dedicated_thread", |b| {
        b.to_async(&rt).iter(|| async {
            for i in 0..3 {
                let (log, payload) = (Arc::clone(&log), payload.clone());
                let (reply, answer) = tokio::sync::oneshot::channel();
                tx.send(Box::new(move || {
                    step(&log, &payload, i);
                    let _ = reply.send(());
                }))
                .unwrap();
                answer.await.unwrap();
            }
        })
    });
    group.finish();
    drop(tx);
    io_thread.join().unwrap();
}

criterion_group!(benches, hops, queue_cycles, disk_dispatch);
criterion_main!(benches);
