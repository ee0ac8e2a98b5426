//! Every wait is bounded: connect, handshake, Pong, write, close.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tagwire_ws_client::{
    connect, ConnectError, Event, FrameKind, KeepAlive, Phase, WsError, WsUrl,
};
use tokio::net::{TcpSocket, TcpStream};

/// A listener whose accept queue is full, so further SYNs go unanswered: a
/// TCP connect that hangs, on loopback. Returns the address and what must be
/// kept alive.
async fn blackhole() -> (
    std::net::SocketAddr,
    Vec<TcpStream>,
    tokio::net::TcpListener,
) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap(); // never accepted
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            Ok(Err(e)) => panic!("filling the backlog failed: {e}"),
            Err(_) => return (addr, fillers, listener), // this one hung: the queue is full
        }
    }
    panic!("the accept queue never filled up");
}

#[tokio::test]
async fn connect_timeout() {
    let (addr, _fillers, _listener) = blackhole().await;
    let url = WsUrl::parse(&format!("ws://{addr}/")).unwrap();
    let options = test_options().with_connect_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = within("connect", connect(&url, &options))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::Timeout(Phase::Connect)),
        "{err:?}"
    );
    assert!(err.to_string().contains("connect_timeout"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn handshake_timeout_when_server_never_answers() {
    let server = RawServer::start().await;
    let options = test_options().with_handshake_timeout(Duration::from_millis(300));
    let url = server.url("/");
    let client = tokio::spawn(async move { connect(&url, &options).await });
    // Accept and read the request, then say nothing.
    let (_stream, _head) = server.accept_request().await;
    let err = within("connect", client).await.unwrap().unwrap_err();
    assert!(
        matches!(err, ConnectError::Timeout(Phase::Upgrade)),
        "{err:?}"
    );
    assert!(err.to_string().contains("handshake_timeout"), "{err}");
}

#[tokio::test]
async fn pong_timeout_when_server_goes_silent() {
    let server = RawServer::start().await;
    let options = test_options().with_keep_alive(Some(KeepAlive::new(
        Duration::from_millis(100),
        Duration::from_millis(300),
    )));
    let url = server.url("/");
    let client = tokio::spawn(async move { connect(&url, &options).await.unwrap() });
    // Handshake done, then the server never reads nor answers.
    let (_stream, _) = server.accept_ws().await;
    let mut conn = within("connect", client).await.unwrap();

    let started = Instant::now();
    match next_event(&mut conn).await {
        Some(Event::Failed(WsError::PongTimeout)) => {}
        other => panic!("expected PongTimeout, got {other:?}"),
    }
    let waited = started.elapsed();
    // First ping after 100 ms, declared dead 300 ms later.
    assert!(
        waited >= Duration::from_millis(350),
        "too early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "too late: {waited:?}");

    assert!(
        next_event(&mut conn).await.is_none(),
        "Failed is the last event"
    );
    assert!(matches!(
        conn.send(FrameKind::Text, b"x").await,
        Err(WsError::Closed)
    ));
}

#[tokio::test]
async fn keep_alive_pings_and_answered_pongs_keep_the_connection() {
    let mut server = WsServer::start().await;
    let options = test_options().with_keep_alive(Some(KeepAlive::new(
        Duration::from_millis(100),
        Duration::from_millis(300),
    )));
    let mut conn = connect(&server.url("/"), &options).await.unwrap();
    let mut ws = server.accept().await;
    // The server keeps reading, which makes fastwebsockets answer each Ping.
    let server_task = tokio::spawn(async move {
        while let Ok(frame) = ws.read_frame().await {
            if frame.opcode == fastwebsockets::OpCode::Close {
                break;
            }
        }
    });

    let mut pongs = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1200);
    loop {
        tokio::select! {
            event = conn.next_event() => match event {
                Some(Event::Pong(payload)) => {
                    assert!(payload.is_empty(), "keep-alive pings are empty");
                    pongs += 1;
                }
                other => panic!("unexpected event {other:?}"),
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    // About one every 100 ms; leave room for a slow, shared machine.
    assert!(pongs >= 4, "only {pongs} keep-alive pongs in 1.2 s");
    conn.close(1000, "").await.unwrap();
    within("the server", server_task).await.unwrap();
}

#[tokio::test]
async fn caller_pings_start_the_pong_timeout_too() {
    let server = RawServer::start().await;
    // The keep-alive itself would not ping for a minute...
    let options = test_options().with_keep_alive(Some(KeepAlive::new(
        Duration::from_secs(60),
        Duration::from_millis(300),
    )));
    let url = server.url("/");
    let client = tokio::spawn(async move { connect(&url, &options).await.unwrap() });
    let (_stream, _) = server.accept_ws().await;
    let mut conn = within("connect", client).await.unwrap();

    // ...but this unanswered Ping must be noticed within pong_timeout.
    conn.ping(b"seq 9").await.unwrap();
    let started = Instant::now();
    match next_event(&mut conn).await {
        Some(Event::Failed(WsError::PongTimeout)) => {}
        other => panic!("expected PongTimeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn write_timeout_when_server_stops_reading() {
    let server = RawServer::start().await;
    let options = test_options().with_write_timeout(Duration::from_millis(300));
    let url = server.url("/");
    let client = tokio::spawn(async move { connect(&url, &options).await.unwrap() });
    let (_stream, _) = server.accept_ws().await; // never read again
    let mut conn = within("connect", client).await.unwrap();

    let chunk = vec![0x55u8; 1 << 20];
    let started = Instant::now();
    let err = within("the write timeout", async {
        loop {
            if let Err(e) = conn.send(FrameKind::Binary, &chunk).await {
                return e;
            }
        }
    })
    .await;
    assert!(matches!(err, WsError::WriteTimeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(chunk.iter().all(|&b| b == 0x55), "payload untouched");

    // Torn down: nothing more can be sent, and the event stream ends.
    assert!(matches!(
        conn.send(FrameKind::Binary, b"x").await,
        Err(WsError::Closed)
    ));
    assert!(next_event(&mut conn).await.is_none());
}

#[tokio::test]
async fn close_timeout_when_server_never_answers_close() {
    let server = RawServer::start().await;
    let options = test_options().with_close_timeout(Duration::from_millis(300));
    let url = server.url("/");
    let client = tokio::spawn(async move { connect(&url, &options).await.unwrap() });
    let (mut stream, _) = server.accept_ws().await;
    let conn = within("connect", client).await.unwrap();

    let closing = tokio::spawn(conn.close(1000, "bye"));
    // The server reads our Close but does not answer.
    assert_eq!(read_client_close(&mut stream).await, Some(1000));
    let started = Instant::now();
    let result = within("close()", closing).await.unwrap();
    assert!(matches!(result, Err(WsError::CloseTimeout)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn answered_caller_pings_never_time_out() {
    let mut server = WsServer::start().await;
    let options = test_options().with_keep_alive(Some(KeepAlive::new(
        Duration::from_secs(60),
        Duration::from_millis(200),
    )));
    let mut conn = connect(&server.url("/"), &options).await.unwrap();
    let mut ws = server.accept().await;
    tokio::spawn(async move { while ws.read_frame().await.is_ok() {} });

    for seq in 0u8..5 {
        conn.ping(&[seq]).await.unwrap();
        match next_event(&mut conn).await {
            Some(Event::Pong(payload)) => assert_eq!(payload, [seq]),
            other => panic!("expected Pong {seq}, got {other:?}"),
        }
    }
    // Well past pong_timeout: every Ping was answered, so nothing may fail.
    let quiet = tokio::time::timeout(Duration::from_millis(600), conn.next_event()).await;
    assert!(quiet.is_err(), "unexpected event {quiet:?}");
}
