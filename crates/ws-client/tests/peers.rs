//! The client's own handshake against real servers: Python `websockets` and Node `ws`,
//! over ws:// and wss:// (certificates from the openssl command line), with and
//! without permessage-deflate. Each server sends a greeting right after its 101 (often
//! in the same TCP segment), echoes every message and, when the connection ends,
//! prints how many it received: both sides' counts are compared.
//!
//! The peers come from `cargo xtask peers` (`TAGWIRE_PYTHON`, `TAGWIRE_NODE_PATH`);
//! without them the tests are skipped, unless `TAGWIRE_REQUIRE_PEERS=1`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use common::certs::{client_config, make_cert};
use common::*;
use tagwire_ws_client::{connect, Compression, Event, FrameKind, WsUrl};

/// How many messages each test sends.
const MESSAGES: usize = 200;

const PYTHON_SERVER: &str = r#"
import asyncio, os, ssl
from websockets.asyncio.server import serve

async def handler(ws):
    await ws.send("greeting")
    n = 0
    try:
        async for message in ws:
            n += 1
            await ws.send(message)
    finally:
        print("RECEIVED", n, "EXTENSIONS", ws.response.headers.get("Sec-WebSocket-Extensions", "-"), flush=True)

async def main():
    context = None
    if os.environ.get("TLS_CERT"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.environ["TLS_CERT"], os.environ["TLS_KEY"])
    async with serve(handler, "127.0.0.1", 0, ssl=context) as server:
        print("READY", server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().create_future()

asyncio.run(main())
"#;

const NODE_SERVER: &str = r#"
const { WebSocketServer } = require('ws');
const fs = require('fs');
const server = process.env.TLS_CERT
  ? require('https').createServer({ cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) })
  : require('http').createServer();
const wss = new WebSocketServer({ server, perMessageDeflate: true });
wss.on('connection', (ws) => {
  let n = 0;
  ws.send('greeting');
  ws.on('message', (data, isBinary) => { n++; ws.send(data, { binary: isBinary }); });
  ws.on('close', () => console.log('RECEIVED ' + n + ' EXTENSIONS ' + (ws.extensions || '-')));
});
server.listen(0, '127.0.0.1', () => console.log('READY ' + server.address().port));
"#;

/// A peer process and the lines of its stdout; killed when dropped.
struct Peer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Peer {
    /// Starts `command` and waits for its `READY <port>` line.
    fn start(mut command: Command) -> (Peer, u16) {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("the peer starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut peer = Peer { child, lines };
        let ready = peer.line();
        let port = ready
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("expected READY <port>, got {ready:?}"));
        (peer, port)
    }

    fn line(&mut self) -> String {
        self.lines
            .recv_timeout(PATIENCE)
            .expect("a line from the peer within the patience")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peer's command, or None when its environment variable is not set (skipped).
fn peer_command(peer: &str) -> Option<Command> {
    let var = match peer {
        "python" => "TAGWIRE_PYTHON",
        _ => "TAGWIRE_NODE_PATH",
    };
    let value = match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ if std::env::var("TAGWIRE_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!("{var} is not set: run `cargo xtask peers` and export what it prints")
        }
        _ => {
            eprintln!("SKIPPED: {var} is not set (run `cargo xtask peers`)");
            return None;
        }
    };
    Some(match peer {
        "python" => {
            let mut c = Command::new(value);
            c.args(["-c", PYTHON_SERVER]);
            c
        }
        _ => {
            let mut c = Command::new("node");
            c.env("NODE_PATH", value).args(["-e", NODE_SERVER]);
            c
        }
    })
}

/// Connects to `peer` (ws:// or, with a certificate directory, wss://), reads the
/// greeting, sends [`MESSAGES`] messages and reads every echo, closes, and compares
/// the peer's count and negotiated extension with ours.
async fn exchange(peer: &str, tls: Option<&Path>, compression: Compression) {
    let Some(mut command) = peer_command(peer) else {
        return;
    };
    let mut options = test_options().with_compression(compression);
    let scheme = match tls {
        None => "ws",
        Some(dir) => {
            let (cert, key) = make_cert(dir, "localhost", "DNS:localhost");
            command.env("TLS_CERT", &cert).env("TLS_KEY", &key);
            options = options.with_tls(client_config(&cert));
            "wss"
        }
    };
    let (mut peer_process, port) = Peer::start(command);
    let url = WsUrl::parse(&format!("{scheme}://localhost:{port}/peer")).unwrap();
    let mut conn = within("connect", connect(&url, &options))
        .await
        .unwrap_or_else(|e| panic!("{peer} {scheme}: {e}"));

    match next_event(&mut conn).await {
        Some(Event::Message {
            kind: FrameKind::Text,
            payload,
        }) => assert_eq!(payload, b"greeting"),
        other => panic!("{peer} {scheme}: expected the greeting, got {other:?}"),
    }
    for i in 0..MESSAGES {
        let message = format!("{{\"n\": {i}, \"pad\": \"{}\"}}", "x".repeat(i));
        conn.send(FrameKind::Text, message.as_bytes())
            .await
            .unwrap();
    }
    for i in 0..MESSAGES {
        match next_event(&mut conn).await {
            Some(Event::Message {
                kind: FrameKind::Text,
                payload,
            }) => {
                let expected = format!("{{\"n\": {i}, \"pad\": \"{}\"}}", "x".repeat(i));
                assert_eq!(String::from_utf8(payload).unwrap(), expected, "echo {i}");
            }
            other => panic!("{peer} {scheme}: expected echo {i}, got {other:?}"),
        }
    }
    within("close", conn.close(1000, "done")).await.unwrap();
    let report = peer_process.line();
    // "RECEIVED <n> EXTENSIONS <what the server agreed to>"; Python adds its window size.
    let (count, extensions) = report
        .strip_prefix("RECEIVED ")
        .and_then(|r| r.split_once(" EXTENSIONS "))
        .unwrap_or_else(|| panic!("{peer} {scheme}: unexpected report {report:?}"));
    assert_eq!(
        count,
        MESSAGES.to_string(),
        "{peer} {scheme}: messages the server received"
    );
    match compression {
        Compression::Deflate => assert!(
            extensions.starts_with("permessage-deflate"),
            "{peer} {scheme}: {extensions}"
        ),
        _ => assert_eq!(extensions, "-", "{peer} {scheme}"),
    }
}

#[tokio::test]
async fn python_websockets_over_ws() {
    exchange("python", None, Compression::Off).await;
}

#[tokio::test]
async fn python_websockets_over_ws_with_deflate() {
    exchange("python", None, Compression::Deflate).await;
}

#[tokio::test]
async fn python_websockets_over_wss() {
    let dir = tempfile::tempdir().unwrap();
    exchange("python", Some(dir.path()), Compression::Deflate).await;
}

#[tokio::test]
async fn node_ws_over_ws() {
    exchange("node", None, Compression::Off).await;
}

#[tokio::test]
async fn node_ws_over_wss_with_deflate() {
    let dir = tempfile::tempdir().unwrap();
    exchange("node", Some(dir.path()), Compression::Deflate).await;
}
