//! The management and ingest HTTP API (`[api] listen`): health, Prometheus metrics,
//! node states, and `POST /api/v1/ingest` for snapshots from other programs.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tagwire_pipeline::{now_ms, DropReason, Hub};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::debug;

/// Largest ingest body accepted (413 above).
pub const MAX_INGEST_BYTES: usize = 8 * 1024 * 1024;

/// What the API serves.
pub struct ApiState {
    /// The uplinks, for metrics and ingest.
    pub hub: Arc<Hub>,
    /// South nodes by name (for `/api/v1/nodes`).
    pub south: Vec<String>,
    /// `Authorization: Bearer <token>` required when set.
    pub token: Option<String>,
    /// When the daemon started.
    pub started: Instant,
}

/// Serves the API on `listener` until `shutdown` becomes true.
pub async fn serve(listener: TcpListener, state: Arc<ApiState>, shutdown: watch::Receiver<bool>) {
    crate::accept::accept_until("api", listener, shutdown, move |tcp, peer| {
        let state = Arc::clone(&state);
        async move {
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, std::convert::Infallible>(handle(req, &state, peer).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await
            {
                debug!(%peer, error = %e, "api: connection ended with an error");
            }
        }
    })
    .await;
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

fn json_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/json",
        serde_json::json!({ "error": message }).to_string(),
    )
}

async fn handle(
    req: Request<Incoming>,
    state: &ApiState,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    if let Some(token) = &state.token {
        let ok = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
        if !ok {
            debug!(%peer, path = %req.uri().path(), "api: request without a valid token");
            return json_error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send \"Authorization: Bearer <token>\" with the [api] token",
            );
        }
    }
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/health") => respond(
            StatusCode::OK,
            "application/json",
            serde_json::json!({
                "status": "ok",
                "uptime_s": state.started.elapsed().as_secs(),
                "version": env!("CARGO_PKG_VERSION"),
            })
            .to_string(),
        ),
        (&Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            prometheus_text(&state.hub),
        ),
        (&Method::GET, "/api/v1/nodes") => respond(
            StatusCode::OK,
            "application/json",
            nodes_json(state).to_string(),
        ),
        (&Method::POST, "/api/v1/ingest") => ingest(req, state).await,
        (_, "/health" | "/metrics" | "/api/v1/nodes" | "/api/v1/ingest") => json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this path",
        ),
        _ => json_error(
            StatusCode::NOT_FOUND,
            "no such path: see GET /health, GET /metrics, GET /api/v1/nodes, POST /api/v1/ingest",
        ),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn ingest(req: Request<Incoming>, state: &ApiState) -> Response<Full<Bytes>> {
    let body = match Limited::new(req.into_body(), MAX_INGEST_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("body over {MAX_INGEST_BYTES} bytes: send fewer snapshots per request"),
            )
        }
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
            )
        }
    };
    let mut body = body.to_vec();
    let snapshots = match tagwire_model::parse_snapshots(&mut body, now_ms()) {
        Ok(s) => s,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let hub = Arc::clone(&state.hub);
    // Encoding (and, with a disk cache, writing) is blocking work: keep it off the
    // async threads.
    let result = tokio::task::spawn_blocking(move || {
        // Stop at the first refusal so the client knows exactly what to send again.
        for (i, s) in snapshots.iter().enumerate() {
            let delivery = hub.publish(s);
            if !delivery.refused.is_empty() {
                return (i, delivery.refused);
            }
        }
        (snapshots.len(), Vec::new())
    })
    .await;
    match result {
        Ok((n, refused)) if refused.is_empty() => respond(
            StatusCode::ACCEPTED,
            "application/json",
            serde_json::json!({ "accepted": n }).to_string(),
        ),
        Ok((n, refused)) => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "application/json",
            serde_json::json!({
                "error": format!(
                    "queue full with policy \"refuse\" on uplink(s) {}: retry later from snapshot {} of this body",
                    refused.join(", "),
                    n + 1
                ),
                "accepted": n,
            })
            .to_string(),
        ),
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("ingest failed: {e}"),
        ),
    }
}

fn nodes_json(state: &ApiState) -> serde_json::Value {
    let north: Vec<_> = state
        .hub
        .uplinks()
        .iter()
        .map(|u| {
            let m = u.metrics();
            let (cached_msgs, cached_bytes) = u.queue().occupancy();
            serde_json::json!({
                "name": u.config().name,
                "url": u.config().url.for_logs(),
                "running_state": m.running_state(),
                "link_state": u8::from(m.connected()),
                "subprotocol": m.subprotocol(),
                "send_msgs_total": m.send_msgs_total.load(Relaxed),
                "send_bytes_total": m.send_bytes_total.load(Relaxed),
                "send_msg_errors_total": m.send_msg_errors_total.load(Relaxed),
                "recv_msgs_total": m.recv_msgs_total.load(Relaxed),
                "resent_msgs_total": m.resent_msgs_total.load(Relaxed),
                "reconnects_total": m.reconnects_total.load(Relaxed),
                "written_msg_bytes_total": m.written_msg_bytes_total.load(Relaxed),
                "written_wire_bytes_total": m.written_wire_bytes_total.load(Relaxed),
                "cached_msgs": cached_msgs,
                "cached_bytes": cached_bytes,
                "dropped_msgs_total": DropReason::ALL.iter()
                    .map(|r| (r.as_str().to_string(), serde_json::json!(m.dropped(*r))))
                    .collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    let south: Vec<_> = state
        .south
        .iter()
        .map(|name| serde_json::json!({ "name": name, "running_state": 3 }))
        .collect();
    serde_json::json!({ "north": north, "south": south })
}

/// The Prometheus text exposition of every uplink's metrics.
pub fn prometheus_text(hub: &Hub) -> String {
    type Getter = fn(&tagwire_pipeline::Uplink) -> u64;
    let families: [(&str, &str, &str, Getter); 13] = [
        ("link_state", "gauge", "1 when connected", |u| {
            u64::from(u.metrics().connected())
        }),
        (
            "running_state",
            "gauge",
            "Neuron's codes: 1 init, 2 ready, 3 running, 4 stopped",
            |u| u64::from(u.metrics().running_state()),
        ),
        (
            "send_msgs_total",
            "counter",
            "messages delivered (confirmed by the server)",
            |u| u.metrics().send_msgs_total.load(Relaxed),
        ),
        (
            "send_bytes_total",
            "counter",
            "payload bytes delivered",
            |u| u.metrics().send_bytes_total.load(Relaxed),
        ),
        (
            "send_msg_errors_total",
            "counter",
            "failed sends and connections lost with messages in flight",
            |u| u.metrics().send_msg_errors_total.load(Relaxed),
        ),
        (
            "recv_msgs_total",
            "counter",
            "data frames received from the server",
            |u| u.metrics().recv_msgs_total.load(Relaxed),
        ),
        (
            "resent_msgs_total",
            "counter",
            "messages sent again after a reconnect (possible duplicates)",
            |u| u.metrics().resent_msgs_total.load(Relaxed),
        ),
        (
            "reconnects_total",
            "counter",
            "connections made after the first",
            |u| u.metrics().reconnects_total.load(Relaxed),
        ),
        (
            "written_msg_bytes_total",
            "counter",
            "payload bytes written, resends included, before compression",
            |u| u.metrics().written_msg_bytes_total.load(Relaxed),
        ),
        (
            "written_wire_bytes_total",
            "counter",
            "the same payload bytes as sent on the wire (after permessage-deflate when negotiated)",
            |u| u.metrics().written_wire_bytes_total.load(Relaxed),
        ),
        (
            "queued_msgs_total",
            "counter",
            "messages accepted into the queue",
            |u| u.metrics().queued_msgs_total.load(Relaxed),
        ),
        (
            "cached_msgs",
            "gauge",
            "messages held, waiting or unconfirmed",
            |u| u.queue().occupancy().0 as u64,
        ),
        ("cached_bytes", "gauge", "payload bytes held", |u| {
            u.queue().occupancy().1 as u64
        }),
    ];
    let mut out = String::new();
    for (name, kind, help, get) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for u in hub.uplinks() {
            let _ = writeln!(
                out,
                "{name}{{node=\"{}\"}} {}",
                escape_label(&u.config().name),
                get(u)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP dropped_msgs_total messages dropped, by reason\n# TYPE dropped_msgs_total counter"
    );
    for u in hub.uplinks() {
        for r in DropReason::ALL {
            let _ = writeln!(
                out,
                "dropped_msgs_total{{node=\"{}\",reason=\"{}\"}} {}",
                escape_label(&u.config().name),
                r.as_str(),
                u.metrics().dropped(r)
            );
        }
    }
    out
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
