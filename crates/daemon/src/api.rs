//! The management and ingest HTTP API (`[api] listen`): health, Prometheus metrics,
//! node states, and `POST /api/v1/ingest` for snapshots from other programs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tagwire_pipeline::log_limit;
use tagwire_pipeline::{now_ms, Hub};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tracing::debug;

use crate::metrics_render;

pub use limits::ApiLimits;

mod body;
mod limits;
mod parsers;

/// What the API serves.
pub struct ApiState {
    /// The uplinks, for ingest and the nodes list.
    pub hub: Arc<Hub>,
    /// Every uplink's metrics, for `/metrics`.
    pub registry: Registry,
    /// `Authorization: Bearer <token>` required when set.
    pub token: Option<String>,
    /// When the daemon started.
    pub started: Instant,
    /// Where `POST /api/v1/reload` asks `run` to reload; `None`: not offered.
    pub reload: Option<tokio::sync::mpsc::Sender<ReloadReply>>,
    /// Timeouts, connection cap and body memory (`[api]`).
    pub limits: ApiLimits,
}

/// The shared budgets every connection draws on.
struct Budgets {
    /// One permit per open API connection.
    connections: Arc<Semaphore>,
    /// One permit per body byte being read or parsed.
    body_bytes: Semaphore,
    /// One permit per byte a parse may allocate (see
    /// [`tagwire_model::parse_memory_estimate`]): a body of tiny values takes many
    /// times its size to parse.
    parse: Semaphore,
    /// The parsers, reused from body to body.
    parsers: Arc<parsers::ParserPool>,
}

/// Where `run` answers a reload asked for by the API: the log line saying what changed,
/// or every problem of the refused configuration.
pub type ReloadReply = tokio::sync::oneshot::Sender<Result<String, Vec<String>>>;

/// Serves the API on `listener` until `shutdown` becomes true.
pub async fn serve(listener: TcpListener, state: Arc<ApiState>, shutdown: watch::Receiver<bool>) {
    let budgets = Arc::new(Budgets {
        connections: Arc::new(Semaphore::new(state.limits.max_connections)),
        body_bytes: Semaphore::new(state.limits.max_body_memory_bytes),
        parse: Semaphore::new(state.limits.max_parse_memory_bytes),
        parsers: Arc::default(),
    });
    crate::accept::accept_until("api", listener, shutdown, move |tcp, peer| {
        let state = Arc::clone(&state);
        let budgets = Arc::clone(&budgets);
        // Over the cap, the connection is closed at once: the API's file descriptors
        // stay bounded, so the uplinks can always open theirs.
        let permit = Arc::clone(&budgets.connections).try_acquire_owned().ok();
        async move {
            let Some(_permit) = permit else {
                log_limit::global().warn(
                    "api",
                    "connection cap",
                    &format!(
                        "api: {} connections open ([api] max_connections): closing new ones at once",
                        state.limits.max_connections
                    ),
                );
                drop(tcp);
                return;
            };
            serve_connection(tcp, peer, state, budgets).await;
        }
    })
    .await;
}

/// One connection: hyper with the header read timeout, plus an idle watchdog that
/// closes the connection once no request has been in progress for the idle timeout.
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    state: Arc<ApiState>,
    budgets: Arc<Budgets>,
) {
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = Arc::clone(&activity);
        let state = Arc::clone(&state);
        hyper::service::service_fn(move |req| {
            let state = Arc::clone(&state);
            let budgets = Arc::clone(&budgets);
            let activity = Arc::clone(&activity);
            async move {
                activity.begin();
                let response = handle(req, &state, &budgets, peer).await;
                activity.end();
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.limits.header_timeout);
    let conn = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(conn);
    let idle = state.limits.idle_timeout;
    let mut closing = false;
    loop {
        let wait = activity.idle_deadline(idle);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    debug!(%peer, error = %e, "api: connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(wait.into()), if !closing => {
                if activity.idle_for(idle) {
                    debug!(%peer, "api: closing an idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// Whether a request is in progress on a connection, and when the last one ended.
struct Activity {
    started: Instant,
    busy: AtomicBool,
    /// Milliseconds after `started` when the last request ended (or the connection opened).
    last_end_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            busy: AtomicBool::new(false),
            last_end_ms: AtomicU64::new(0),
        }
    }

    fn begin(&self) {
        self.busy.store(true, Ordering::Relaxed);
    }

    fn end(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_end_ms.store(ms, Ordering::Relaxed);
        self.busy.store(false, Ordering::Relaxed);
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        if self.busy.load(Ordering::Relaxed) {
            // While a request runs, look again after another idle period.
            return Instant::now() + idle;
        }
        let last = self.started + Duration::from_millis(self.last_end_ms.load(Ordering::Relaxed));
        (last + idle).max(Instant::now() + Duration::from_millis(10))
    }

    fn idle_for(&self, idle: Duration) -> bool {
        let last = Duration::from_millis(self.last_end_ms.load(Ordering::Relaxed));
        !self.busy.load(Ordering::Relaxed) && self.started.elapsed() >= last + idle
    }
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
    budgets: &Budgets,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    if let Some(token) = &state.token {
        let ok = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
        if !ok {
            debug!(%peer, path = %req.uri().path(), "api: request without a valid token");
            let mut r = json_error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send \"Authorization: Bearer <token>\" with the [api] token",
            );
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Bearer realm=\"tagwire\""),
            );
            return r;
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
        (&Method::POST, "/api/v1/ingest") => ingest(req, state, budgets).await,
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

/// The credentials of an `Authorization` header with the `Bearer` scheme, whose name is
/// case-insensitive (RFC 9110 section 11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A refusal that also closes the connection: the rest of the body is never read.
fn closing_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut r = json_error(status, message);
    r.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    r
}

async fn ingest(
    req: Request<Incoming>,
    state: &ApiState,
    budgets: &Budgets,
) -> Response<Full<Bytes>> {
    let limits = &state.limits;
    let body = match body::read(req.into_body(), limits, &budgets.body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            if e.status() != StatusCode::BAD_REQUEST {
                log_limit::global().warn(
                    "api",
                    e.cause(),
                    &format!("api: ingest body refused: {e}"),
                );
            }
            return closing_error(e.status(), &e.to_string());
        }
    };
    // Parsing expands a body many times over and takes milliseconds per megabyte: it
    // runs on the blocking pool, so the uplinks' workers never wait for it, and only
    // within the parse memory budget.
    let cost = tagwire_model::parse_memory_estimate(&body.bytes);
    if cost > limits.max_parse_memory_bytes {
        let message = format!(
            "this body would take about {} MiB to parse, over [api] max_parse_memory_bytes ({} MiB): send fewer values per request",
            cost >> 20,
            limits.max_parse_memory_bytes >> 20
        );
        log_limit::global().warn(
            "api",
            "parse too large",
            &format!("api: ingest body refused: {message}"),
        );
        return closing_error(StatusCode::PAYLOAD_TOO_LARGE, &message);
    }
    let parsed = {
        // Waits while other parses use the budget (the body's own bytes stay reserved).
        let _parse_budget = budgets
            .parse
            .acquire_many(cost as u32)
            .await
            .expect("never closed");
        let body::Body { mut bytes, permit } = body;
        let received_ms = now_ms();
        let parsers = Arc::clone(&budgets.parsers);
        let parsed = tokio::task::spawn_blocking(move || parsers.parse(&mut bytes, received_ms))
            .await
            .expect("the parser does not panic");
        drop(permit);
        parsed
    };
    let snapshots = match parsed {
        Ok(s) => s,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    // One batch per uplink (with a disk cache, one write for the whole body), stopped
    // at the first refusal so the client knows exactly what to send again.
    match state.hub.publish_prefix(&snapshots).await {
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
    // From the running configuration (a reload changes it), as the hub knows it.
    let south: Vec<_> = state
        .hub
        .south()
        .iter()
        .map(|n| {
            serde_json::json!({
                "name": n.name,
                "running_state": n.running as u8,
                "link_state": n.link as u8,
            })
        })
        .collect();
    serde_json::json!({ "north": north, "south": south })
}
