//! The HTTP/1.1 of the opening handshake, client side: the GET request, the response
//! head read with a hard size bound and parsed by `httparse`, the start of a refused
//! upgrade's body, and the stream handed on with the bytes read past the head.
//!
//! Why not an HTTP client crate: the handshake is one request and one response head
//! on a connection that then stops speaking HTTP. hyper (with hyper-util, http,
//! http-body and their dependencies) was a dozen crates for that in every program
//! using this client.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};

use crate::error::HttpError;

/// The largest response head accepted (status line and headers, with the blank line).
pub const MAX_HEAD: usize = 16 * 1024;
/// The most header lines a response head may have.
pub const MAX_HEADERS: usize = 100;
/// How many bytes one read asks for while the head is incomplete.
const READ_CHUNK: usize = 4096;

/// A transport the handshake runs over and the connection then owns: TCP, a proxy
/// tunnel, or TLS over either.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Whether `name` is an HTTP header name (a token, RFC 9110 section 5.1).
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` can be sent as a header value: visible ASCII, spaces and tabs
/// (no line breaks or other control characters, no bytes beyond ASCII).
pub(crate) fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// The bytes of a GET request: `target` in origin form, then each header line.
/// Names and values must have passed [`is_header_name`] and [`is_header_value`].
pub(crate) fn get_request<'a>(
    target: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// Header names lower-cased, values as sent (without surrounding whitespace).
    headers: Vec<(String, Vec<u8>)>,
}

impl ResponseHead {
    /// Every value of header `name` (lower-case), in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of header `name` (lower-case).
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Reads and parses the response head. Returns it with the bytes read after it
/// (the start of the body, or the first WebSocket frames), which belong to the caller.
pub(crate) async fn read_head<S: AsyncRead + Unpin>(
    io: &mut S,
) -> Result<(ResponseHead, Vec<u8>), HttpError> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let searched = buf.len().saturating_sub(3);
        let start = buf.len();
        buf.resize(start + READ_CHUNK, 0);
        let n = io.read(&mut buf[start..]).await.map_err(HttpError::Io)?;
        buf.truncate(start + n);
        if n == 0 {
            return Err(HttpError::Closed { received: start });
        }
        // Parse only once a blank line arrived: a head trickling in byte by byte must
        // not be re-parsed on every read.
        let new = &buf[searched..];
        let ended = new.windows(2).any(|w| w == b"\n\n") || new.windows(3).any(|w| w == b"\n\r\n");
        if ended {
            if let Some(done) = parse_head(&buf)? {
                return Ok(done);
            }
        }
        if buf.len() >= MAX_HEAD {
            return Err(HttpError::HeadTooLarge { limit: MAX_HEAD });
        }
    }
}

/// `Ok(None)`: the head is not complete yet.
fn parse_head(buf: &[u8]) -> Result<Option<(ResponseHead, Vec<u8>)>, HttpError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::TooManyHeaders { limit: MAX_HEADERS })
        }
        Err(e) => {
            let first_line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
            return Err(HttpError::Malformed {
                reason: e.to_string(),
                start: String::from_utf8_lossy(&first_line[..first_line.len().min(80)])
                    .trim_end()
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect(),
            });
        }
    };
    if len > MAX_HEAD {
        return Err(HttpError::HeadTooLarge { limit: MAX_HEAD });
    }
    let head = ResponseHead {
        status: response.code.unwrap_or_default(),
        headers: response
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.trim_ascii().to_vec()))
            .collect(),
    };
    Ok(Some((head, buf[len..].to_vec())))
}

/// Reads the start of a refused upgrade's body: at most `limit` bytes of it, for at
/// most `wait` (a body that never ends must not turn the refusal into a timeout).
/// `already`: the bytes read with the head. Chunked bodies are decoded; a body
/// that fails half-way still gives its start.
pub(crate) async fn body_start<S: AsyncRead + Unpin>(
    io: &mut S,
    head: &ResponseHead,
    mut raw: Vec<u8>,
    limit: usize,
    wait: Duration,
) -> Vec<u8> {
    let chunked = head.all("transfer-encoding").any(|v| {
        v.rsplit(|&b| b == b',')
            .next()
            .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
    });
    let length = head
        .first("content-length")
        .and_then(|v| std::str::from_utf8(v).ok()?.parse::<usize>().ok());
    // No body at all for these (RFC 9112 section 6.3).
    if matches!(head.status, 100..=199 | 204 | 304) {
        return Vec::new();
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let (body, complete) = if chunked {
            dechunk(&raw)
        } else {
            let end = length.unwrap_or(usize::MAX).min(raw.len());
            (raw[..end].to_vec(), length.is_some_and(|l| raw.len() >= l))
        };
        // Chunk framing costs bytes too: bound the raw read at twice the limit.
        if complete || body.len() >= limit || raw.len() >= 2 * limit + 64 {
            return body.into_iter().take(limit).collect();
        }
        let mut piece = [0u8; 1024];
        match tokio::time::timeout_at(deadline, io.read(&mut piece)).await {
            Ok(Ok(n)) if n > 0 => raw.extend_from_slice(&piece[..n]),
            // End of stream, an error, or out of time: what arrived is the excerpt.
            _ => return body.into_iter().take(limit).collect(),
        }
    }
}

/// Decodes as much of a chunked body as `raw` holds; `true` once its last chunk arrived.
fn dechunk(raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut rest = raw;
    loop {
        let Some(line_end) = rest.iter().position(|&b| b == b'\n') else {
            return (out, false);
        };
        let size_text = &rest[..line_end];
        // Chunk extensions (`;name=value`) are ignored.
        let size_text = size_text.split(|&b| b == b';').next().unwrap_or_default();
        let Some(size) = std::str::from_utf8(size_text)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
        else {
            return (out, true); // not chunked after all: keep what was decoded
        };
        if size == 0 {
            return (out, true);
        }
        rest = &rest[line_end + 1..];
        let take = size.min(rest.len());
        out.extend_from_slice(&rest[..take]);
        if take < size {
            return (out, false);
        }
        rest = &rest[take..];
        // The CRLF after the chunk's data.
        let after = rest
            .iter()
            .take(2)
            .take_while(|&&b| b == b'\r' || b == b'\n');
        rest = &rest[after.count()..];
    }
}

/// A stream that first yields `prefix` (bytes read past the response head), then
/// reads from `inner`. Writes go straight to `inner`.
pub(crate) struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                // Consumed: free it rather than keep it for the connection's lifetime.
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The reason phrase of a status code (RFC 9110 section 15), for error messages:
/// the server's own phrase is not shown, it could be anything.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_decoded_as_far_as_they_arrived() {
        assert_eq!(
            dechunk(b"6\r\ndenied\r\n0\r\n\r\n"),
            (b"denied".to_vec(), true)
        );
        assert_eq!(dechunk(b"6;x=y\r\nden"), (b"den".to_vec(), false));
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n"),
            (b"abcde".to_vec(), false)
        );
    }

    #[test]
    fn header_names_and_values_are_checked() {
        assert!(is_header_name("X-Api_Key.1"));
        assert!(!is_header_name("bad name") && !is_header_name("") && !is_header_name("a:b"));
        assert!(is_header_value("Bearer a/b+c=\t x"));
        assert!(!is_header_value("a\r\nb") && !is_header_value("é"));
    }

    #[tokio::test]
    async fn prefixed_stream_yields_the_prefix_first() {
        let mut stream = Prefixed::new(b"abc".to_vec(), &b"def"[..]);
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"abcdef");
    }
}
