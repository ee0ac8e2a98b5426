//! `tagwire run`: the daemon.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::api;
use crate::process_metrics::ProcessCollector;
use crate::reload::{self, Daemon};
use crate::shutdown;

/// Runs sources and uplinks until SIGINT/SIGTERM, then stops gracefully: sources first,
/// then every uplink drains its queue (bounded by its drain timeout) and sends a Close.
/// SIGHUP (or `POST /api/v1/reload`) re-reads the configuration (see [`crate::reload`]).
pub async fn run(path: &Path) -> Result<ExitCode> {
    let (cfg, root) = match reload::load(path).await {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("tagwire: {} is not usable:", path.display());
            for p in &problems {
                eprintln!("  {p}");
            }
            return Ok(ExitCode::from(crate::shutdown::EXIT_USAGE));
        }
    };
    if cfg.north.is_empty() {
        tracing::warn!("no [[north]] uplink configured: snapshots have nowhere to go");
    }
    // Opening a disk cache reads it back, before anything runs.
    let (mut daemon, hub) = match Daemon::open(&cfg, &root).await {
        Ok(d) => d,
        Err(problems) => {
            for p in &problems {
                eprintln!("tagwire: {p}");
            }
            return Ok(ExitCode::from(crate::shutdown::EXIT_USAGE));
        }
    };
    let started = std::time::Instant::now();
    let (stop_api, api_rx) = watch::channel(false);
    let (reload_tx, mut reload_rx) = mpsc::channel::<api::ReloadReply>(4);
    let api_task = match cfg.api.listen {
        None => {
            info!("management and ingest API off ([api] listen = \"off\")");
            None
        }
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("[api] listen: cannot listen on {addr}"))?;
            info!(listen = %listener.local_addr()?, "management and ingest API listening");
            let (limits, lowered) = cfg.api.limits.clone().within_open_files();
            if let Some(nofile) = lowered {
                warn!(
                    max_connections = limits.max_connections,
                    open_files_limit = nofile,
                    "[api] max_connections lowered to half the open-file limit, so the uplinks keep their descriptors"
                );
            }
            Some(tokio::spawn(api::serve(
                listener,
                Arc::new(api::ApiState {
                    hub: Arc::clone(&hub),
                    registry: {
                        let mut r = tagwire_pipeline::metrics::hub_registry(Arc::clone(&hub));
                        r.register_collector(Box::new(ProcessCollector::new(
                            Arc::clone(&hub),
                            started,
                        )));
                        r
                    },
                    token: cfg.api.token.clone(),
                    started,
                    limits,
                    reload: Some(reload_tx),
                }),
                api_rx,
            )))
        }
    };
    daemon.start(&cfg, &root);
    for u in hub.uplinks().iter() {
        log_uplink_settings(u.config());
    }
    info!(
        uplinks = hub.uplinks().len(),
        sources = cfg.south.len(),
        "tagwire running; SIGINT or SIGTERM stops it gracefully, SIGHUP reloads the configuration"
    );

    let stop = shutdown::signal();
    tokio::pin!(stop);
    let mut hangup = shutdown::hangup();
    loop {
        let reply = tokio::select! {
            _ = &mut stop => break,
            _ = hangup.recv() => None,
            r = reload_rx.recv() => r,
        };
        info!("reloading {}", path.display());
        let result = daemon.reload(path).await;
        match &result {
            Ok(line) => {
                info!("{line}");
                for u in hub.uplinks().iter() {
                    log_uplink_settings(u.config());
                }
            }
            Err(problems) => {
                for p in problems {
                    warn!("reload refused: {p}");
                }
                warn!(
                    problems = problems.len(),
                    "reload refused: the running configuration is kept"
                );
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
    info!("stopping: sources first, then uplinks drain their queues");
    let uplinks = daemon.stop().await;
    let _ = stop_api.send(true);
    if let Some(task) = api_task {
        let _ = task.await;
    }
    for u in &uplinks {
        log_final_counts(u);
    }
    Ok(ExitCode::SUCCESS)
}

/// What an uplink will do, once at start, so that a log shows the settings in force.
fn log_uplink_settings(c: &tagwire_pipeline::UplinkConfig) {
    let cache = match &c.queue.disk {
        Some(d) => format!(
            "memory {} MiB + disk {} MiB in {} (sync {})",
            c.queue.max_bytes >> 20,
            d.max_bytes >> 20,
            d.dir.display(),
            sync_word(d.sync)
        ),
        None => format!("memory {} MiB, no disk cache", c.queue.max_bytes >> 20),
    };
    info!(
        uplink = %c.name,
        url = %c.url.for_logs(),
        format = %c.encode.format,
        style = %c.encode.style,
        upload_err = c.encode.upload_err,
        frame = %frame_word(c.frame),
        confirm = c.confirm,
        policy = %c.queue.policy,
        %cache,
        "uplink configured"
    );
    if let Some(cert) = crate::cert_report::client_certificate(c) {
        info!("{}", crate::cert_report::describe(c, &cert));
        if let Some(warning) = crate::cert_report::warning(c, &cert) {
            warn!("{warning}");
        }
    }
}

/// `frame` as the configuration spells it.
fn frame_word(frame: tagwire_ws_client::FrameKind) -> &'static str {
    match frame {
        tagwire_ws_client::FrameKind::Binary => "binary",
        tagwire_ws_client::FrameKind::Text => "text",
    }
}

/// `sync` as the configuration spells it: `"always"`, or the interval between syncs.
fn sync_word(sync: tagwire_pipeline::SyncPolicy) -> String {
    match sync {
        tagwire_pipeline::SyncPolicy::Always => "always".into(),
        tagwire_pipeline::SyncPolicy::Interval(d) => {
            format!("every {}", tagwire_pipeline::human_duration(d))
        }
        tagwire_pipeline::SyncPolicy::Never => "never".into(),
    }
}

/// One line per uplink at exit, so that a stop always says what became of the data:
/// `delivered + dropped = queued` (with at-least-once, `resent` may also have arrived twice).
pub(crate) fn log_final_counts(uplink: &tagwire_pipeline::Uplink) {
    info!(
        "final counts uplink={} {}",
        uplink.config().name,
        crate::metrics_render::final_counts(uplink)
    );
    if let Some(l) = uplink.write_latency() {
        info!(
            "write latency uplink={} p50={}ms p99={}ms max={}ms (report to first write, {} messages)",
            uplink.config().name,
            l.p50_ms,
            l.p99_ms,
            l.max_ms,
            l.count
        );
    }
}
