//! Reading an ingest body within the API's limits: size, whole-body deadline, and the
//! shared budget of body bytes in memory.

use std::fmt;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::StatusCode;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::ApiLimits;

/// The smallest reservation in the body-memory budget, for bodies without a length.
const RESERVE_STEP: usize = 64 * 1024;

/// A body read whole, with its share of the body-memory budget (released on drop).
pub(super) struct Body<'a> {
    /// The bytes, contiguous (the parser works in place).
    pub bytes: Vec<u8>,
    /// The body's bytes in the budget.
    pub permit: SemaphorePermit<'a>,
}

/// Why a body was not read.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Over `max_body_bytes`.
    TooLarge(usize),
    /// Not all there within `body_timeout_ms`.
    Timeout(std::time::Duration),
    /// The body-memory budget stayed full until the deadline.
    Busy(usize),
    /// The client broke the framing or the connection.
    Broken(String),
}

impl BodyError {
    /// The answer's status.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            BodyError::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// A short name of the cause, for the log limiter.
    pub fn cause(&self) -> &'static str {
        match self {
            BodyError::TooLarge(_) => "body too large",
            BodyError::Timeout(_) => "body timeout",
            BodyError::Busy(_) => "body memory full",
            BodyError::Broken(_) => "body broken",
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::TooLarge(max) => write!(
                f,
                "body over {max} bytes ([api] max_body_bytes): send fewer snapshots per request"
            ),
            BodyError::Timeout(t) => write!(
                f,
                "the body did not arrive within {} ms ([api] body_timeout_ms): send it faster or raise the limit",
                t.as_millis()
            ),
            BodyError::Busy(max) => write!(
                f,
                "{max} bytes of bodies are already being read ([api] max_body_memory_bytes): retry later"
            ),
            BodyError::Broken(e) => write!(f, "cannot read the body: {e}"),
        }
    }
}

/// Reads `body` whole. Each chunk's bytes are reserved in `budget` before they are
/// kept, and appended to one buffer (no per-chunk overhead); everything must arrive
/// within the body timeout, counted from now.
pub(super) async fn read<'a>(
    mut body: Incoming,
    limits: &ApiLimits,
    budget: &'a Semaphore,
) -> Result<Body<'a>, BodyError> {
    let deadline = Instant::now() + limits.body_timeout;
    let timeout = || BodyError::Timeout(limits.body_timeout);
    let max = limits.max_body_bytes;
    let hint = hyper::body::Body::size_hint(&body);
    if hint.lower() as usize > max {
        return Err(BodyError::TooLarge(max));
    }
    let reserve = |n: usize| async move {
        match tokio::time::timeout_at(deadline, budget.acquire_many(n as u32)).await {
            Ok(p) => Ok(p.expect("never closed")),
            Err(_) => Err(BodyError::Busy(limits.max_body_memory_bytes)),
        }
    };
    // A declared length is reserved at once, so two large bodies never each hold half.
    let declared = hint.exact().map_or(0, |n| n as usize);
    let mut permit = reserve(declared).await?;
    let mut bytes = Vec::with_capacity(declared);
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(timeout()),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BodyError::Broken(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if bytes.len() + data.len() > max {
            return Err(BodyError::TooLarge(max));
        }
        let beyond = (bytes.len() + data.len()).saturating_sub(permit.num_permits());
        if beyond > 0 {
            // Reserve in steps, not per chunk: a body of one-byte chunks stays cheap.
            let step = beyond.max(RESERVE_STEP).min(max - permit.num_permits());
            permit.merge(reserve(step).await?);
        }
        bytes.extend_from_slice(&data);
    }
    Ok(Body { bytes, permit })
}
