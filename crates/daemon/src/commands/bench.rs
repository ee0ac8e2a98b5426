//! `tagwire bench`: a capacity test of this machine. Synthetic snapshots are pushed as
//! fast as the pipeline takes them through one uplink to an in-process receiver over
//! loopback, once over ws:// and once over wss://, with delivery confirmation on, and
//! the figures that matter for sizing a gateway are reported.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tagwire_encode::{Format, Style};
use tagwire_model::Snapshot;
use tagwire_pipeline::simulator::{GroupGenerator, SimGroup};
use tagwire_pipeline::{Enqueue, Family, FullPolicy, Hub, QueueLimits, Uplink, UplinkConfig};
use tagwire_tls_config::{build_client_config, TlsParams};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::shutdown::Running;
use crate::sink::{self, SinkStats};

/// Arguments of `tagwire bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Seconds per run (one over ws://, one over wss://).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Tags per snapshot (besides `counter`).
    #[arg(long, default_value_t = 100)]
    tags: usize,
    /// "values" or "tags".
    #[arg(long, default_value = "values")]
    format: Format,
    /// "neuron" or "compact".
    #[arg(long, default_value = "neuron")]
    style: Style,
    /// Measure the disk cache instead: a fixed load with a memory-only queue and with
    /// a disk cache in DIR, side by side (CPU and bytes written per message).
    #[arg(long, value_name = "DIR")]
    disk: Option<std::path::PathBuf>,
    /// With --disk: snapshots per second.
    #[arg(long, default_value_t = 2500, requires = "disk")]
    rate: u64,
    /// With --disk: which queue(s) to run (one at a time for `strace -c -f`).
    #[arg(long, value_enum, default_value = "both", requires = "disk")]
    cache: super::bench_disk::CacheMode,
    /// With --disk: milliseconds between syncs of the disk cache.
    #[arg(long, default_value_t = 1000, requires = "disk")]
    sync_ms: u64,
    /// With --disk: how many sources share the load, each its own task pushing on the
    /// same 10 ms steps (like simulator groups, or concurrent API clients). 1 pushes
    /// every message from one task, one after the other.
    #[arg(long, default_value_t = 25, requires = "disk")]
    sources: u64,
}

/// Smallest queue of the bench uplink (see `run_one`).
const BENCH_QUEUE_MIN: usize = 1024 * 1024;
/// Rough size of one tag in a message, to size the bench queue by messages.
const BENCH_BYTES_PER_TAG: usize = 32;

/// What one run measured.
pub(super) struct Figures {
    /// "ws", "wss" or "raw".
    pub scheme: &'static str,
    /// Messages delivered.
    pub messages: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// CPU time of the process during the run (sender and receiver).
    pub cpu_seconds: f64,
}

impl BenchArgs {
    /// The encoder settings of the run.
    // Set field by field rather than with a struct literal: EncodeOptions is to become
    // #[non_exhaustive] (issue 14), which forbids literals outside its crate.
    #[allow(clippy::field_reassign_with_default)]
    fn encode_options(&self) -> tagwire_encode::EncodeOptions {
        let mut options = tagwire_encode::EncodeOptions::default();
        options.format = self.format;
        options.style = self.style;
        options
    }
}

/// Runs the benchmark and prints a table.
pub async fn run(args: BenchArgs) -> Result<ExitCode> {
    if let Some(dir) = &args.disk {
        super::bench_disk::run(super::bench_disk::DiskBench {
            dir,
            mode: args.cache,
            rate: args.rate,
            seconds: args.seconds,
            tags: args.tags,
            format: args.format,
            style: args.style,
            sync_ms: args.sync_ms,
            sources: args.sources,
        })
        .await?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "tagwire bench: {} tags per snapshot, {} format, {} style, {} s per run, delivery confirmed by ping/pong",
        args.tags, args.format, args.style, args.seconds
    );
    let mut results = Vec::new();
    for tls in [false, true] {
        results.push(run_one(&args, tls).await?);
    }
    let raw = super::bench_raw::run(
        &args.encode_options(),
        &snapshot_pool(args.tags),
        args.seconds,
    )
    .await?;
    println!(
        "\n{:<6} {:>12} {:>14} {:>10} {:>14} {:>10} {:>12}",
        "", "msgs/s", "tags/s", "MB/s", "CPU (cores)", "us CPU/msg", "vs raw TCP"
    );
    for f in results.iter().chain([&raw]) {
        let rate = f.messages as f64 / f.seconds;
        println!(
            "{:<6} {:>12.0} {:>14.0} {:>10.1} {:>14.2} {:>10.1} {:>11.2}x",
            f.scheme,
            rate,
            (f.messages * (args.tags as u64 + 1)) as f64 / f.seconds,
            f.bytes as f64 / f.seconds / 1e6,
            f.cpu_seconds / f.seconds,
            f.cpu_seconds * 1e6 / f.messages.max(1) as f64,
            rate / (raw.messages as f64 / raw.seconds),
        );
    }
    println!(
        "raw: the same encoded messages, framed once beforehand and written 64 to a write over \
         plain loopback TCP to a reader that only counts bytes (no encoding, TLS, queue or confirmation)"
    );
    println!(
        "\npeak RSS {:.1} MiB (sender and receiver in one process; the receiver's share is included)",
        peak_rss_kib() as f64 / 1024.0
    );
    Ok(ExitCode::SUCCESS)
}

async fn run_one(args: &BenchArgs, tls: bool) -> Result<Figures> {
    let scheme = if tls { "wss" } else { "ws" };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (acceptor, ca_pem) = if tls {
        let (a, pem) = self_signed_acceptor()?;
        (Some(a), Some(pem))
    } else {
        (None, None)
    };
    let stats = Arc::new(SinkStats::default());

    let url = format!("{scheme}://localhost:{port}/bench").parse()?;
    let mut config = UplinkConfig::new("bench", url);
    config.encode.format = args.format;
    config.encode.style = args.style;
    // Back-pressure instead of drops: the producer waits when the queue is full. The
    // producer keeps the queue full, so its size is resident memory: room for about 256
    // messages (half of them in flight) keeps a loopback link busy, where the daemon's
    // default 16 MiB only added to the peak RSS reported (21 MiB at 100 tags with it,
    // 16 MiB with 1 MiB, at the same CPU per message).
    config.queue = QueueLimits::default()
        .with_policy(FullPolicy::Refuse)
        .with_max_bytes((args.tags * BENCH_BYTES_PER_TAG * 256).max(BENCH_QUEUE_MIN));
    if let Some(pem) = ca_pem {
        config.connect.tls = Some(
            build_client_config(&TlsParams::default().with_ca(pem)).context("bench TLS client")?,
        );
    }
    let Rig {
        uplink,
        running,
        receiver,
    } = Rig::start(config, listener, acceptor, Arc::clone(&stats)).await?;
    let pool = snapshot_pool(args.tags);

    let duration = Duration::from_secs(args.seconds.max(1));
    let producer_uplink = Arc::clone(&uplink);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    // The producer is a thread of its own, like a source outside the runtime, so that a
    // tight loop of memory-only pushes (which never yield) cannot starve the uplink.
    let runtime = tokio::runtime::Handle::current();
    let producer = std::thread::spawn(move || {
        let mut i = 0;
        while started.elapsed() < duration {
            match runtime.block_on(producer_uplink.enqueue(&pool[i % pool.len()])) {
                Enqueue::Refused => std::thread::sleep(Duration::from_micros(200)),
                _ => i += 1,
            }
        }
    });
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while started.elapsed() < duration {
        tick.tick().await;
        println!(
            "  {scheme:<3} {:>3.0}s  {:>9} confirmed",
            started.elapsed().as_secs_f64(),
            uplink.metrics().get(Family::SendMsgs)
        );
    }
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("the bench producer thread panicked"))?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let messages = uplink.metrics().get(Family::SendMsgs);
    let bytes = uplink.metrics().get(Family::SendBytes);
    running.stop().await;
    let _ = receiver.await;
    Ok(Figures {
        scheme,
        messages,
        bytes,
        seconds,
        cpu_seconds: cpu,
    })
}

/// A TLS acceptor with a fresh self-signed certificate for `localhost`, and that
/// certificate in PEM for the client's `ca`.
fn self_signed_acceptor() -> Result<(TlsAcceptor, String)> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .context("generating the bench certificate")?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let config = rustls::ServerConfig::builder_with_provider(tagwire_tls_config::crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    Ok((TlsAcceptor::from(Arc::new(config)), certified.cert.pem()))
}

/// One bench run's moving parts: an uplink, its running pipeline and the in-process
/// receiver it delivers to.
pub(super) struct Rig {
    /// The uplink under test.
    pub uplink: Arc<Uplink>,
    /// Its pipeline; `stop` drains it.
    pub running: Running,
    /// The receiver's task; it ends once the uplinks have stopped.
    pub receiver: tokio::task::JoinHandle<()>,
}

impl Rig {
    /// Opens the uplink of `config` and starts it against a receiver on `listener`.
    pub(super) async fn start(
        config: UplinkConfig,
        listener: TcpListener,
        acceptor: Option<TlsAcceptor>,
        stats: Arc<SinkStats>,
    ) -> Result<Rig> {
        let uplink = Uplink::open(config).await?;
        let hub = Arc::new(Hub::new(vec![Arc::clone(&uplink)]));
        let running = Running::start(&hub);
        let receiver = tokio::spawn(sink::serve(
            listener,
            acceptor,
            stats,
            Arc::new(|_, _: &[u8]| {}),
            running.stopped_signal(),
        ));
        Ok(Rig {
            uplink,
            running,
            receiver,
        })
    }
}

/// A pool of snapshots of `tags` tags built beforehand, so that the figures are the
/// pipeline's (encode, queue, frame, TLS, confirm), not the generator's.
pub(super) fn snapshot_pool(tags: usize) -> Vec<Snapshot> {
    let mut generator = GroupGenerator::new(
        "bench",
        SimGroup {
            name: "g".into(),
            interval: Duration::from_millis(1),
            tags,
        },
    );
    (0..64)
        .map(|_| generator.next_snapshot(tagwire_pipeline::now_ms()))
        .collect()
}

/// User plus system CPU time of this process, in seconds.
pub(super) fn cpu_seconds() -> f64 {
    // /proc/self/stat fields 14 and 15 (utime, stime) in clock ticks; the command name
    // (field 2) may contain spaces, so count from the closing parenthesis.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Linux's USER_HZ is 100 on every architecture tagwire targets.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of this process, in KiB.
pub(super) fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
