//! `tagwire bench --disk DIR`: what the disk cache costs. The same fixed load (by
//! default 2,500 snapshots a second) goes through one ws:// uplink to the in-process
//! receiver twice in one run, once with a memory-only queue and once with the disk
//! cache in `DIR`, and CPU time per message and bytes written to the device per
//! message (`/proc/self/io` `write_bytes`) are printed side by side. Syscalls are
//! counted from outside: run one mode at a time under `strace -c -f` (`--cache`).
//!
//! The load comes from `--sources` tasks pushing on the same 10 ms steps, as the
//! daemon's sources do (one task per simulated group, one per API request): pushes
//! that meet at the disk cache are written together (group commit). `--sources 1`
//! pushes every message from one task, one after the other, where no two pushes ever
//! meet.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tagwire_encode::{Format, Style};
use tagwire_pipeline::{
    DiskCacheConfig, Enqueue, Family, FullPolicy, QueueLimits, SyncPolicy, UplinkConfig,
};
use tokio::net::TcpListener;

use super::bench::{cpu_seconds, peak_rss_kib, snapshot_pool, Rig};
use crate::sink::SinkStats;

/// Which queue(s) `tagwire bench --disk` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CacheMode {
    /// Memory-only, then the disk cache, in one run (the comparison).
    Both,
    /// Memory-only queue only (for `strace -c -f`).
    Memory,
    /// Disk cache only (for `strace -c -f`).
    Disk,
}

/// What `run` needs from the command line.
pub struct DiskBench<'a> {
    pub dir: &'a Path,
    pub mode: CacheMode,
    pub rate: u64,
    pub seconds: u64,
    pub tags: usize,
    pub format: Format,
    pub style: Style,
    /// Milliseconds between syncs of the disk cache (the daemon's default is 1000).
    pub sync_ms: u64,
    /// Tasks sharing the load, each pushing its share on the same 10 ms steps.
    pub sources: u64,
}

struct Figures {
    label: &'static str,
    messages: u64,
    payload_bytes: u64,
    cpu_seconds: f64,
    write_bytes: u64,
    seconds: f64,
}

/// Runs the comparison and prints a table.
pub async fn run(b: DiskBench<'_>) -> Result<()> {
    println!(
        "tagwire bench --disk {}: {} snapshots/s of {} tags from {} source task(s), {} s per run, ws:// to an in-process receiver",
        b.dir.display(),
        b.rate,
        b.tags,
        b.sources.max(1),
        b.seconds
    );
    let mut results = Vec::new();
    if b.mode != CacheMode::Disk {
        results.push(run_one(&b, None).await?);
    }
    if b.mode != CacheMode::Memory {
        let dir = b.dir.join(format!("bench-{}", std::process::id()));
        let figures = run_one(&b, Some(dir.clone())).await;
        let _ = std::fs::remove_dir_all(&dir);
        results.push(figures?);
    }
    println!(
        "\n{:<8} {:>9} {:>10} {:>14} {:>16} {:>14}",
        "queue", "msgs/s", "payload B", "CPU µs/msg", "written B/msg", "written/payload"
    );
    for f in &results {
        let per_msg = |v: f64| v / f.messages.max(1) as f64;
        println!(
            "{:<8} {:>9.0} {:>10.0} {:>14.1} {:>16.1} {:>14.2}",
            f.label,
            f.messages as f64 / f.seconds,
            per_msg(f.payload_bytes as f64),
            per_msg(f.cpu_seconds * 1e6),
            per_msg(f.write_bytes as f64),
            f.write_bytes as f64 / f.payload_bytes.max(1) as f64,
        );
    }
    if let [memory, disk] = &results[..] {
        let cpu = |f: &Figures| f.cpu_seconds / f.messages.max(1) as f64;
        println!(
            "\ndisk cache / memory-only CPU per message: {:.2}x (sender and receiver share the process: both runs include the receiver)",
            cpu(disk) / cpu(memory)
        );
    }
    println!("peak RSS {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
    Ok(())
}

async fn run_one(b: &DiskBench<'_>, disk: Option<PathBuf>) -> Result<Figures> {
    let label = if disk.is_some() { "disk" } else { "memory" };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let stats = Arc::new(SinkStats::default());
    let url = format!("ws://localhost:{port}/bench").parse()?;
    let mut config = UplinkConfig::new("bench", url);
    config.encode.format = b.format;
    config.encode.style = b.style;
    config.queue = QueueLimits::default()
        .with_policy(FullPolicy::Refuse)
        .with_disk(disk.map(|dir| {
            let sync = SyncPolicy::Interval(Duration::from_millis(b.sync_ms.max(1)));
            DiskCacheConfig::new(dir, 256 << 20, sync)
        }));
    let Rig {
        uplink,
        running,
        receiver,
    } = Rig::start(config, listener, None, Arc::clone(&stats)).await?;
    let pool = Arc::new(snapshot_pool(b.tags));

    let duration = Duration::from_secs(b.seconds.max(1));
    let (cpu_before, written_before) = (cpu_seconds(), write_bytes());
    let started = Instant::now();
    // Paced in 10 ms steps, like sources polling devices: the load is the same in both
    // runs whatever each costs. The sources split the messages of a step between them.
    let sources = b.sources.clamp(1, (b.rate / 100).max(1));
    let per_step = (b.rate / 100).max(1);
    let accepted = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..sources)
        .map(|source| {
            let share = per_step / sources + u64::from(source < per_step % sources);
            let (uplink, pool, accepted) = (
                Arc::clone(&uplink),
                Arc::clone(&pool),
                Arc::clone(&accepted),
            );
            tokio::spawn(async move {
                let mut step = tokio::time::interval(Duration::from_millis(10));
                let mut i = source as usize;
                while started.elapsed() < duration {
                    step.tick().await;
                    for _ in 0..share {
                        if !matches!(
                            uplink.enqueue(&pool[i % pool.len()]).await,
                            Enqueue::Refused
                        ) {
                            accepted.fetch_add(1, Ordering::Relaxed);
                            i += sources as usize;
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    let accepted = accepted.load(Ordering::Relaxed);
    // Let the last confirmations arrive.
    let deadline = Instant::now() + Duration::from_secs(5);
    while uplink.metrics().get(Family::SendMsgs) < accepted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let written = write_bytes() - written_before;
    let messages = uplink.metrics().get(Family::SendMsgs);
    let payload_bytes = uplink.metrics().get(Family::SendBytes);
    running.stop().await;
    let _ = receiver.await;
    Ok(Figures {
        label,
        messages,
        payload_bytes,
        cpu_seconds: cpu,
        write_bytes: written,
        seconds,
    })
}

/// Bytes this process caused to be sent to storage (`/proc/self/io` `write_bytes`).
fn write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
