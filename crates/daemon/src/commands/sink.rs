//! `tagwire sink`: the command around [`crate::sink`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::sink::{self, SinkStats};

/// Arguments of `tagwire sink`.
#[derive(clap::Args)]
pub struct SinkArgs {
    /// Address to listen on, e.g. 127.0.0.1:9000.
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// Serve wss:// with this certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM, unencrypted).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM).
    #[arg(long, requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// Write messages to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit after this many messages.
    #[arg(long)]
    count: Option<u64>,
}

/// Runs the sink until `--count` messages arrived or Ctrl-C / SIGTERM.
pub async fn run(args: SinkArgs) -> Result<ExitCode> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => match sink::tls_acceptor(c, k, args.client_ca.as_deref()) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("tagwire sink: {e:#}");
                return Ok(ExitCode::from(crate::shutdown::EXIT_USAGE));
            }
        },
        _ => None,
    };
    let out: Box<dyn Write + Send> = match &args.out {
        Some(p) => Box::new(
            File::create(p).with_context(|| format!("--out: cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let out = Arc::new(Mutex::new(BufWriter::new(out)));
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("--listen: cannot listen on {}", args.listen))?;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    eprintln!(
        "tagwire sink: listening on {scheme}://{}{}",
        listener.local_addr()?,
        if args.client_ca.is_some() {
            " (client certificates required)"
        } else {
            ""
        }
    );

    let stats = Arc::new(SinkStats::default());
    // Messages written to the output and flushed, which the final summary reports: a
    // message the sink could not write is counted as received only.
    let written = Arc::new(AtomicU64::new(0));
    let (done_tx, mut done_rx) = watch::channel(false);
    let on_message: sink::OnMessage = {
        let out = Arc::clone(&out);
        let written = Arc::clone(&written);
        let limit = args.count;
        Arc::new(move |_is_text, payload: &[u8]| {
            let mut w = out.lock().unwrap_or_else(|e| e.into_inner());
            // Messages are JSON, which never contains a raw newline: one message a line.
            // Flushed at once, so that a message is in the file (or on stdout) by the
            // time the sender's next Ping is answered.
            match w
                .write_all(payload)
                .and_then(|_| w.write_all(b"\n"))
                .and_then(|_| w.flush())
            {
                Ok(()) => {
                    let n = written.fetch_add(1, Relaxed) + 1;
                    if limit.is_some_and(|limit| n >= limit) {
                        let _ = done_tx.send(true);
                    }
                }
                Err(e) => eprintln!("tagwire sink: cannot write a message: {e}"),
            }
        })
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(sink::serve(
        listener,
        tls,
        Arc::clone(&stats),
        on_message,
        stop_rx,
    ));

    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    let mut last = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let n = stats.messages.load(Relaxed);
                eprintln!("tagwire sink: {n} messages ({:.1} msg/s over the last 5 s)", (n - last) as f64 / 5.0);
                last = n;
            }
            _ = done_rx.changed() => break,
            _ = crate::shutdown::signal() => break,
        }
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    out.lock().unwrap_or_else(|e| e.into_inner()).flush()?;
    let secs = started.elapsed().as_secs_f64();
    let n = stats.messages.load(Relaxed);
    let w = written.load(Relaxed);
    let unwritten = if w == n {
        String::new()
    } else {
        format!(" ({} could not be written)", n - w)
    };
    eprintln!(
        "tagwire sink: {n} messages received, {w} written{unwritten}, {} bytes, {} connection(s) in {secs:.1} s ({:.1} msg/s)",
        stats.bytes.load(Relaxed),
        stats.connections.load(Relaxed),
        n as f64 / secs.max(0.001)
    );
    Ok(ExitCode::SUCCESS)
}
