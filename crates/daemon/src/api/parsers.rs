//! The ingest API's parsers, kept between requests: a [`Parser`] holds simd-json's
//! buffers and the tag and name tables, which grow to the largest snapshot it has
//! parsed; a new one per request allocated them all again.
//!
//! Bounded two ways, so that the pool never holds memory the README's memory model
//! does not count: at most [`MAX_IDLE`] parsers wait (more parse at once only while the
//! parse-memory budget lets them, and the extra ones are dropped afterwards), and a
//! parser that has just parsed a body over [`MAX_KEPT_BODY`] is dropped rather than
//! kept, since its buffers grew with that body.

#[cfg(test)]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tagwire_model::{Parser, Snapshot, SnapshotError};

/// Parsers kept idle (gateways have 1–4 cores, and parses run on the blocking pool).
pub(super) const MAX_IDLE: usize = 4;
/// The largest body whose parser is kept afterwards.
pub(super) const MAX_KEPT_BODY: usize = 1 << 20;

/// Idle parsers, ready for the next body.
#[derive(Default)]
pub(super) struct ParserPool {
    idle: Mutex<Vec<Parser>>,
    /// Parsers made so far (tests check that they are reused).
    #[cfg(test)]
    created: AtomicUsize,
}

impl ParserPool {
    /// Parses an ingest body (see [`tagwire_model::parse_snapshots`]) with an idle
    /// parser, or a new one, and keeps the parser for the next body within the
    /// bounds. Blocking: call it on the blocking pool.
    pub(super) fn parse(
        &self,
        body: &mut [u8],
        default_timestamp_ms: u64,
    ) -> Result<Vec<Snapshot>, SnapshotError> {
        let mut parser = self.take();
        let parsed = parser.parse_snapshots(body, default_timestamp_ms);
        self.give_back(parser, body.len());
        parsed
    }

    /// Keeps `parser`, which has just parsed a body of `body_len` bytes, if the bounds
    /// allow.
    fn give_back(&self, parser: Parser, body_len: usize) {
        if body_len <= MAX_KEPT_BODY {
            let mut idle = self.lock();
            if idle.len() < MAX_IDLE {
                idle.push(parser);
            }
        }
    }

    fn take(&self) -> Parser {
        if let Some(p) = self.lock().pop() {
            return p;
        }
        #[cfg(test)]
        self.created.fetch_add(1, Ordering::Relaxed);
        Parser::new()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Parser>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| {
                format!(
                    "{{\"node\":\"a\",\"group\":\"g\",\"tags\":[{{\"name\":\"t\",\"type\":\"INT32\",\"value\":{i}}}]}}\n"
                )
            })
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn one_parser_serves_request_after_request() {
        let pool = ParserPool::default();
        for n in [3, 1, 5] {
            let snaps = pool.parse(&mut body(n), 7).unwrap();
            assert_eq!(snaps.len(), n);
            assert_eq!(snaps[n - 1].timestamp_ms, 7);
        }
        // A bad body gets the same error as without the pool, and the parser is kept.
        let err = pool
            .parse(&mut b"{\"node\": 1}\n{}\n".to_vec(), 0)
            .unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        pool.parse(&mut body(2), 0).unwrap();
        assert_eq!(pool.created.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_pool_keeps_at_most_max_idle_parsers_and_none_after_a_large_body() {
        let pool = ParserPool::default();
        let held: Vec<Parser> = (0..MAX_IDLE + 2).map(|_| pool.take()).collect();
        for p in held {
            pool.give_back(p, 100);
        }
        assert_eq!(pool.lock().len(), MAX_IDLE);
        let pool = ParserPool::default();
        let mut big = body(MAX_KEPT_BODY / 60 + 1);
        assert!(big.len() > MAX_KEPT_BODY);
        pool.parse(&mut big, 0).unwrap();
        assert!(
            pool.lock().is_empty(),
            "a parser grown by a large body is dropped"
        );
    }
}
