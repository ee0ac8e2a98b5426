//! An in-process WebSocket server for the uplink's tests (hyper upgrade + fastwebsockets'
//! server side), with the misbehaviours the tests need: pings left unanswered, a
//! connection cut after some messages.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fastwebsockets::{upgrade, Frame, OpCode, Payload};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// How the server behaves.
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    /// Answer Pings with Pongs (what every RFC 6455 server does).
    pub answer_pings: bool,
    /// On the first connection only: drop the TCP connection, unanswered, once this many
    /// data frames were read.
    pub cut_first_after: Option<usize>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            answer_pings: true,
            cut_first_after: None,
        }
    }
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Data frame payloads, in arrival order, over every connection.
    pub messages: Mutex<Vec<Bytes>>,
    /// WebSocket connections accepted.
    pub connections: AtomicUsize,
    /// Pings received.
    pub pings: AtomicUsize,
    /// Close frames received.
    pub closes: AtomicUsize,
}

impl Seen {
    /// A copy of the payloads received so far.
    pub fn messages(&self) -> Vec<Bytes> {
        self.messages.lock().unwrap().clone()
    }
}

/// A running server; stops with the test's runtime.
pub struct TestServer {
    /// `ws://127.0.0.1:port/`.
    pub url: String,
    /// What it saw.
    pub seen: Arc<Seen>,
}

impl TestServer {
    /// Starts a server on a free loopback port.
    pub async fn start(behaviour: Behaviour) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let seen = Arc::new(Seen::default());
        let accept_seen = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let seen = Arc::clone(&accept_seen);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let seen = Arc::clone(&seen);
                        async move {
                            Ok::<_, std::convert::Infallible>(upgrade_and_serve(
                                req, seen, behaviour,
                            ))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        TestServer { url, seen }
    }
}

fn upgrade_and_serve(
    mut req: Request<Incoming>,
    seen: Arc<Seen>,
    behaviour: Behaviour,
) -> Response<Empty<Bytes>> {
    let (response, fut) = upgrade::upgrade(&mut req).expect("a WebSocket upgrade request");
    tokio::spawn(async move {
        let Ok(mut ws) = fut.await else { return };
        let nth = seen.connections.fetch_add(1, SeqCst);
        let cut_after = if nth == 0 {
            behaviour.cut_first_after
        } else {
            None
        };
        ws.set_auto_pong(false);
        ws.set_auto_close(false);
        let mut read = 0;
        while let Ok(frame) = ws.read_frame().await {
            match frame.opcode {
                OpCode::Text | OpCode::Binary => {
                    seen.messages
                        .lock()
                        .unwrap()
                        .push(Bytes::copy_from_slice(&frame.payload));
                    read += 1;
                    if cut_after == Some(read) {
                        return; // dropping `ws` closes the TCP connection
                    }
                }
                OpCode::Ping => {
                    seen.pings.fetch_add(1, SeqCst);
                    if behaviour.answer_pings {
                        let pong = Frame::pong(Payload::Owned(frame.payload.to_vec()));
                        if ws.write_frame(pong).await.is_err() || ws.flush().await.is_err() {
                            return;
                        }
                    }
                }
                OpCode::Close => {
                    seen.closes.fetch_add(1, SeqCst);
                    let _ = ws.write_frame(Frame::close(1000, b"")).await;
                    let _ = ws.flush().await;
                    return;
                }
                _ => {}
            }
        }
    });
    response
}

/// Polls `cond` every 10 ms until it holds or `within` passes; panics with `what`.
pub async fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
