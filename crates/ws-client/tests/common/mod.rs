//! Test servers on 127.0.0.1: a real one (fastwebsockets' server side behind
//! hyper's upgrade) and raw-TCP helpers for servers that misbehave on purpose.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub mod certs;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use fastwebsockets::WebSocket;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha1::{Digest as _, Sha1};
use tagwire_ws_client::{ConnectOptions, Connection, Event, WsUrl};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Upper bound for anything a test waits for, so a bug fails the test instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub type ServerWs = WebSocket<TokioIo<Upgraded>>;

/// Awaits `f`, failing the test if it takes longer than [`PATIENCE`].
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(PATIENCE, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Options for tests: no keep-alive unless a test wants it (so no stray Pong
/// events), short timeouts so failures show quickly.
pub fn test_options() -> ConnectOptions {
    ConnectOptions::default()
        .with_connect_timeout(Duration::from_secs(5))
        .with_handshake_timeout(Duration::from_secs(5))
        .with_write_timeout(Duration::from_secs(5))
        .with_close_timeout(Duration::from_secs(5))
        .with_keep_alive(None)
}

/// The next event, failing the test after [`PATIENCE`].
pub async fn next_event(conn: &mut Connection) -> Option<Event> {
    within("the next event", conn.next_event()).await
}

/// A WebSocket server built from fastwebsockets' server side. Every upgraded
/// connection is handed to the test through [`WsServer::accept`].
pub struct WsServer {
    pub addr: SocketAddr,
    upgraded: mpsc::UnboundedReceiver<ServerWs>,
}

impl WsServer {
    pub async fn start() -> WsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, upgraded) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve_upgrade(tcp, tx.clone()));
            }
        });
        WsServer { addr, upgraded }
    }

    /// A `ws://127.0.0.1:port{path}` URL for this server.
    pub fn url(&self, path: &str) -> WsUrl {
        WsUrl::parse(&format!("ws://{}{}", self.addr, path)).unwrap()
    }

    /// The server side of the next connection.
    pub async fn accept(&mut self) -> ServerWs {
        within("the server to accept", self.upgraded.recv())
            .await
            .expect("server stopped")
    }
}

/// Serves one HTTP connection on `io`, upgrading it to WebSocket with
/// fastwebsockets and sending the result to `tx`.
pub async fn serve_upgrade<I>(io: I, tx: mpsc::UnboundedSender<ServerWs>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let tx = tx.clone();
        async move {
            let (response, upgrade) = fastwebsockets::upgrade::upgrade(&mut request).unwrap();
            tokio::spawn(async move {
                if let Ok(ws) = upgrade.await {
                    let _ = tx.send(ws);
                }
            });
            Ok::<Response<Empty<Bytes>>, Infallible>(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

/// `Sec-WebSocket-Accept` for a key, computed independently of the crate.
pub fn accept_for(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    BASE64.encode(sha1.finalize())
}

/// Reads an HTTP request head (up to the blank line), byte by byte so that
/// nothing after it is consumed.
pub async fn read_request_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = stream.read_u8().await.expect("request head");
        head.push(byte);
        assert!(head.len() < 16 * 1024, "request head too long");
    }
    String::from_utf8(head).expect("request head is UTF-8")
}

/// The value of header `name` in a request head (case-insensitive name).
pub fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// A raw TCP server socket.
pub struct RawServer {
    pub listener: TcpListener,
    pub addr: SocketAddr,
}

impl RawServer {
    pub async fn start() -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        RawServer { listener, addr }
    }

    pub fn url(&self, path: &str) -> WsUrl {
        WsUrl::parse(&format!("ws://{}{}", self.addr, path)).unwrap()
    }

    /// Accepts one connection and reads its request head.
    pub async fn accept_request(&self) -> (TcpStream, String) {
        let (mut stream, _) = within("a TCP connection", self.listener.accept())
            .await
            .unwrap();
        let head = within("the request head", read_request_head(&mut stream)).await;
        (stream, head)
    }

    /// Accepts one connection and completes a correct WebSocket handshake.
    pub async fn accept_ws(&self) -> (TcpStream, String) {
        let (mut stream, head) = self.accept_request().await;
        let key = header_value(&head, "sec-websocket-key").expect("client sent a key");
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_for(&key)
        );
        stream.write_all(response.as_bytes()).await.unwrap();
        (stream, head)
    }
}

/// An unmasked server frame with an explicit first byte (FIN, RSV bits, opcode).
pub fn server_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first_byte];
    frame_length(&mut frame, payload.len() as u64);
    frame.extend_from_slice(payload);
    frame
}

/// Appends the 7-bit / 16-bit / 64-bit length encoding (no mask bit).
pub fn frame_length(frame: &mut Vec<u8>, len: u64) {
    if len < 126 {
        frame.push(len as u8);
    } else if len <= u64::from(u16::MAX) {
        frame.push(126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(127);
        frame.extend_from_slice(&len.to_be_bytes());
    }
}

/// A Close frame payload: code then reason.
pub fn close_body(code: u16, reason: &str) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(reason.as_bytes());
    body
}

/// A frame read from the client, unmasked.
#[derive(Debug)]
pub struct ClientFrame {
    pub fin: bool,
    /// RSV1: permessage-deflate's "compressed".
    pub rsv1: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Reads one client frame, checking that it is masked as RFC 6455 requires.
pub async fn read_client_frame(stream: &mut TcpStream) -> io::Result<ClientFrame> {
    let first = stream.read_u8().await?;
    let second = stream.read_u8().await?;
    assert_eq!(second & 0x80, 0x80, "client frames must be masked");
    let len = match second & 0x7F {
        126 => u64::from(stream.read_u16().await?),
        127 => stream.read_u64().await?,
        n => u64::from(n),
    };
    let mut mask = [0u8; 4];
    stream.read_exact(&mut mask).await?;
    let mut payload = vec![0u8; usize::try_from(len).unwrap()];
    stream.read_exact(&mut payload).await?;
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
    Ok(ClientFrame {
        fin: first & 0x80 != 0,
        rsv1: first & 0x40 != 0,
        opcode: first & 0x0F,
        payload,
    })
}

/// Reads client frames until a Close and returns its code, skipping others.
pub async fn read_client_close(stream: &mut TcpStream) -> Option<u16> {
    loop {
        let frame = within("a client frame", read_client_frame(stream))
            .await
            .expect("client frame");
        if frame.opcode == 0x8 {
            return (frame.payload.len() >= 2)
                .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
        }
    }
}

/// An address on `[::1]` at `port` (0: any) where TCP connects hang without an answer, like a host that
/// drops packets: a listener with a backlog of one that never accepts, its queue
/// filled by a few connections (Linux then drops further SYNs). Keep the returned
/// streams (and so the listener's queue) alive as long as the address must stay silent.
pub async fn silent_address_v6(port: u16) -> (SocketAddr, Vec<TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v6().expect("IPv6 socket");
    socket
        .bind(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)))
        .expect("bind [::1]");
    let listener = socket.listen(1).expect("listen");
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    // Connects succeed until the queue is full, then hang.
    while let Ok(Ok(stream)) =
        tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
    {
        fillers.push(stream);
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    // The listener must stay open, never accepting, for SYNs to be dropped.
    std::mem::forget(listener);
    (addr, fillers)
}
