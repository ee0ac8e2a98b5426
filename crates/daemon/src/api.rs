//! The management and ingest HTTP API (`[api] listen`): health, Prometheus metrics,
//! node states, and `POST /api/v1/ingest` for snapshots from other programs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tagwire_pipeline::{now_ms, Hub};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::debug;

use crate::metrics_render;

/// Largest ingest body accepted (413 above).
pub const MAX_INGEST_BYTES: usize = 8 * 1024 * 1024;

/// What the API serves.
pub struct ApiState {
    /// The uplinks, for ingest and the nodes list.
    pub hub: Arc<Hub>,
    /// Every uplink's metrics, for `/metrics`.
    pub registry: Registry,
    /// South nodes by name (for `/api/v1/nodes`).
    pub south: Vec<String>,
    /// `Authorization: Bearer <token>` required when set.
    pub token: Option<String>,
    /// When the daemon started.
    pub started: Instant,
    /// Where `POST /api/v1/reload` asks `run` to reload; `None`: not offered.
    pub reload: Option<tokio::sync::mpsc::Sender<ReloadReply>>,
}

/// Where `run` answers a reload asked for by the API: the log line saying what changed,
/// or every problem of the refused configuration.
pub type ReloadReply = tokio::sync::oneshot::Sender<Result<String, Vec<String>>>;

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
            metrics_render::EXPOSITION_CONTENT_TYPE,
            metrics_render::exposition(&state.registry),
        ),
        (&Method::GET, "/api/v1/nodes") => respond(
            StatusCode::OK,
            "application/json",
            nodes_json(state).to_string(),
        ),
        (&Method::POST, "/api/v1/ingest") => ingest(req, state).await,
        (&Method::POST, "/api/v1/reload") => reload(state).await,
        (_, "/health" | "/metrics" | "/api/v1/nodes" | "/api/v1/ingest" | "/api/v1/reload") => json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this path",
        ),
        _ => json_error(
            StatusCode::NOT_FOUND,
            "no such path: see GET /health, GET /metrics, GET /api/v1/nodes, POST /api/v1/ingest, POST /api/v1/reload",
        ),
    }
}

/// `POST /api/v1/reload`: 200 `{"reloaded": "<what changed>"}`, or 400 `{"error": ...,
/// "problems": [...]}` with the running configuration kept.
async fn reload(state: &ApiState) -> Response<Full<Bytes>> {
    let unavailable = || {
        json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "reload is not available: the daemon is stopping",
        )
    };
    let Some(tx) = &state.reload else {
        return unavailable();
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if tx.send(reply).await.is_err() {
        return unavailable();
    }
    match answer.await {
        Ok(Ok(line)) => respond(
            StatusCode::OK,
            "application/json",
            serde_json::json!({ "reloaded": line }).to_string(),
        ),
        Ok(Err(problems)) => respond(
            StatusCode::BAD_REQUEST,
            "application/json",
            serde_json::json!({
                "error": "the new configuration is not usable: the running one is kept",
                "problems": problems,
            })
            .to_string(),
        ),
        Err(_) => unavailable(),
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
    // simd-json parses in place and needs a mutable buffer: take the collected body's
    // own when it is not shared (one contiguous chunk), copy only otherwise.
    let mut body = Vec::from(body);
    let snapshots = match tagwire_model::parse_snapshots(&mut body, now_ms()) {
        Ok(s) => s,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    // Stop at the first refusal so the client knows exactly what to send again.
    let mut result = (snapshots.len(), Vec::new());
    for (i, s) in snapshots.iter().enumerate() {
        let enqueued = state.hub.publish(s).await;
        if !enqueued.refused.is_empty() {
            result = (i, enqueued.refused);
            break;
        }
    }
    match result {
        (n, refused) if refused.is_empty() => respond(
            StatusCode::ACCEPTED,
            "application/json",
            serde_json::json!({ "accepted": n }).to_string(),
        ),
        (n, refused) => respond(
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
    }
}

fn nodes_json(state: &ApiState) -> serde_json::Value {
    let north: Vec<_> = state
        .hub
        .uplinks()
        .iter()
        .map(|u| {
            let mut node = serde_json::Map::new();
            node.insert("name".into(), u.config().name.clone().into());
            node.insert("url".into(), u.config().url.for_logs().into());
            node.insert("subprotocol".into(), u.metrics().subprotocol().into());
            node.extend(metrics_render::node_json(u));
            serde_json::Value::Object(node)
        })
        .collect();
    let south: Vec<_> = state
        .south
        .iter()
        .map(|name| serde_json::json!({ "name": name, "running_state": 3 }))
        .collect();
    serde_json::json!({ "north": north, "south": south })
}
