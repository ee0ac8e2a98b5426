//! Normal traffic against a real WebSocket server (fastwebsockets' server side
//! behind hyper's upgrade): data both ways, pings, and both close handshakes.

mod common;

use base64::Engine as _;
use common::*;
use fastwebsockets::{Frame, OpCode, Payload};
use tagwire_ws_client::{connect, Event, FrameKind, WsError, WsUrl};

#[tokio::test]
async fn text_and_binary_frames_arrive_intact() {
    let mut server = WsServer::start().await;
    let mut conn = connect(&server.url("/push"), &test_options())
        .await
        .unwrap();
    let mut ws = server.accept().await;

    let text = "héllo, wörld: {\"v\":1}".as_bytes().to_vec();
    let all_bytes: Vec<u8> = (0..=255).collect();
    // Larger than one 16-bit length, to exercise the 64-bit length form.
    let large: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let (text_copy, bytes_copy, large_copy) = (text.clone(), all_bytes.clone(), large.clone());

    conn.send(FrameKind::Text, &text).await.unwrap();
    conn.send(FrameKind::Binary, &all_bytes).await.unwrap();
    conn.send(FrameKind::Binary, &large).await.unwrap();
    conn.send(FrameKind::Binary, &[]).await.unwrap();
    conn.flush().await.unwrap();

    // Masking happened on a copy: the caller's buffers can be resent as they are.
    assert_eq!(
        (text, all_bytes, large),
        (text_copy.clone(), bytes_copy.clone(), large_copy.clone())
    );

    let expected = [
        (OpCode::Text, text_copy),
        (OpCode::Binary, bytes_copy),
        (OpCode::Binary, large_copy),
        (OpCode::Binary, Vec::new()),
    ];
    for (opcode, payload) in expected {
        let frame = within("a data frame", ws.read_frame()).await.unwrap();
        assert_eq!(frame.opcode, opcode);
        assert!(frame.fin);
        assert_eq!(frame.payload.to_vec(), payload);
    }
}

#[tokio::test]
async fn server_messages_are_reported_with_kind_and_payload() {
    let mut server = WsServer::start().await;
    let mut conn = connect(&server.url("/"), &test_options()).await.unwrap();
    let mut ws = server.accept().await;

    ws.write_frame(Frame::text(Payload::Borrowed(b"ack 1")))
        .await
        .unwrap();
    // Exactly max_message_size (64 KiB by default) is still accepted.
    ws.write_frame(Frame::binary(Payload::Owned(vec![0; 65_536])))
        .await
        .unwrap();
    // A text message in three fragments, with a Ping in between (allowed by RFC 6455).
    ws.write_frame(Frame::new(
        false,
        OpCode::Text,
        None,
        Payload::Borrowed("ab".as_bytes()),
    ))
    .await
    .unwrap();
    ws.write_frame(Frame::new(
        true,
        OpCode::Ping,
        None,
        Payload::Borrowed(b"mid"),
    ))
    .await
    .unwrap();
    ws.write_frame(Frame::new(
        false,
        OpCode::Continuation,
        None,
        Payload::Borrowed(&[0xE2, 0x82]),
    ))
    .await
    .unwrap();
    ws.write_frame(Frame::new(
        true,
        OpCode::Continuation,
        None,
        Payload::Borrowed(&[0xAC, b'!']),
    ))
    .await
    .unwrap();

    let expected = [
        (FrameKind::Text, b"ack 1".to_vec()),
        (FrameKind::Binary, vec![0; 65_536]),
        // The fragments joined: "ab" + the euro sign split across two frames + "!".
        (FrameKind::Text, "ab\u{20ac}!".as_bytes().to_vec()),
    ];
    for (kind, payload) in expected {
        match next_event(&mut conn).await {
            Some(Event::Message {
                kind: k,
                payload: p,
            }) => assert_eq!((k, p), (kind, payload)),
            other => panic!(
                "expected a {kind:?} message of {} bytes, got {other:?}",
                payload.len()
            ),
        }
    }
    // The Ping in the middle was answered.
    let pong = within("the Pong", ws.read_frame()).await.unwrap();
    assert_eq!(
        (pong.opcode, pong.payload.to_vec()),
        (OpCode::Pong, b"mid".to_vec())
    );
}

#[tokio::test]
async fn ping_payload_comes_back_as_pong_event() {
    let mut server = WsServer::start().await;
    let mut conn = connect(&server.url("/"), &test_options()).await.unwrap();
    let mut ws = server.accept().await;
    // The server answers Pings while reading (fastwebsockets' auto-pong).
    let server_task = tokio::spawn(async move {
        loop {
            match ws.read_frame().await {
                Ok(frame) if frame.opcode == OpCode::Close => return,
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });

    conn.send(FrameKind::Text, b"one").await.unwrap();
    conn.ping(&42u64.to_be_bytes()).await.unwrap();
    match next_event(&mut conn).await {
        Some(Event::Pong(payload)) => assert_eq!(payload, 42u64.to_be_bytes()),
        other => panic!("expected Pong, got {other:?}"),
    }
    conn.ping(&[7; 125]).await.unwrap();
    match next_event(&mut conn).await {
        Some(Event::Pong(payload)) => assert_eq!(payload, vec![7; 125]),
        other => panic!("expected Pong, got {other:?}"),
    }
    conn.close(1000, "done").await.unwrap();
    within("the server task", server_task).await.unwrap();
}

#[tokio::test]
async fn server_ping_is_answered_with_its_payload() {
    let mut server = WsServer::start().await;
    let _conn = connect(&server.url("/"), &test_options()).await.unwrap();
    let mut ws = server.accept().await;

    ws.write_frame(Frame::new(
        true,
        OpCode::Ping,
        None,
        Payload::Borrowed(b"are you there"),
    ))
    .await
    .unwrap();
    let frame = within("the Pong", ws.read_frame()).await.unwrap();
    assert_eq!(frame.opcode, OpCode::Pong);
    assert_eq!(frame.payload.to_vec(), b"are you there");
}

#[tokio::test]
async fn server_close_is_answered_and_reported() {
    let mut server = WsServer::start().await;
    let mut conn = connect(&server.url("/"), &test_options()).await.unwrap();
    let mut ws = server.accept().await;
    ws.set_auto_close(false);

    ws.write_frame(Frame::text(Payload::Borrowed(b"last words")))
        .await
        .unwrap();
    ws.write_frame(Frame::close(1001, b"restarting"))
        .await
        .unwrap();

    assert!(matches!(
        next_event(&mut conn).await,
        Some(Event::Message {
            kind: FrameKind::Text,
            payload,
        }) if payload == b"last words"
    ));
    match next_event(&mut conn).await {
        Some(Event::Closed { code, reason }) => {
            assert_eq!(code, Some(1001));
            assert_eq!(reason, "restarting");
        }
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(
        next_event(&mut conn).await.is_none(),
        "Closed is the last event"
    );

    // The client answered with exactly one Close, echoing the code, then ended the stream.
    let reply = within("the Close reply", ws.read_frame()).await.unwrap();
    assert_eq!(reply.opcode, OpCode::Close);
    assert_eq!(&reply.payload[..2], &1001u16.to_be_bytes());
    assert!(
        within("end of stream", ws.read_frame()).await.is_err(),
        "no second Close or anything else after the reply"
    );

    // Nothing can be sent any more, and close() is a harmless no-op.
    assert!(matches!(
        conn.send(FrameKind::Text, b"late").await,
        Err(WsError::Closed)
    ));
    conn.close(1000, "").await.unwrap();
}

#[tokio::test]
async fn client_close_handshake() {
    let mut server = WsServer::start().await;
    let conn = connect(&server.url("/"), &test_options()).await.unwrap();
    let mut ws = server.accept().await;
    // fastwebsockets' server answers the Close (auto-close) while reading.
    let server_task = tokio::spawn(async move {
        let frame = ws.read_frame().await.unwrap();
        let seen = (frame.opcode, frame.payload.to_vec());
        let after = ws.read_frame().await;
        (seen, after.is_err())
    });

    within("close()", conn.close(4001, "maintenance"))
        .await
        .unwrap();

    let ((opcode, payload), stream_ended) = within("the server", server_task).await.unwrap();
    assert_eq!(opcode, OpCode::Close);
    assert_eq!(&payload[..2], &4001u16.to_be_bytes());
    assert_eq!(&payload[2..], b"maintenance");
    assert!(
        stream_ended,
        "client shut the socket down after the handshake"
    );
}

#[tokio::test]
async fn invalid_arguments_are_rejected_before_writing() {
    let mut server = WsServer::start().await;
    let mut conn = connect(&server.url("/"), &test_options()).await.unwrap();
    let mut ws = server.accept().await;

    let e = conn.send(FrameKind::Text, &[0xFF, 0xFE]).await.unwrap_err();
    assert!(matches!(e, WsError::InvalidInput(_)), "{e:?}");
    let e = conn.ping(&[0; 126]).await.unwrap_err();
    assert!(e.to_string().contains("125"), "{e}");

    // The connection is still fine: nothing was written for the rejected calls.
    conn.send(FrameKind::Binary, b"ok").await.unwrap();
    let frame = within("a frame", ws.read_frame()).await.unwrap();
    assert_eq!(frame.payload.to_vec(), b"ok");

    let e = conn.close(1005, "").await.unwrap_err();
    assert!(e.to_string().contains("1005"), "{e}");
}

#[tokio::test]
async fn request_has_origin_form_target_host_and_random_key() {
    let server = RawServer::start().await;
    let url = server.url("/api/push?site=7&x=a%20b");
    let options = test_options().with_extra_headers(vec![
        ("Authorization".into(), "Bearer t0ken".into()),
        ("X-Site".into(), "7".into()),
    ]);
    let client = {
        let (url, options) = (url.clone(), options.clone());
        tokio::spawn(async move {
            let first = connect(&url, &options).await.unwrap();
            let second = connect(&url, &options).await.unwrap();
            (first, second)
        })
    };
    let (_s1, head1) = server.accept_ws().await;
    let (_s2, head2) = server.accept_ws().await;
    let (first, _second) = within("the client", client).await.unwrap();
    assert_eq!(first.peer_addr(), server.addr);

    let request_line = head1.lines().next().unwrap();
    assert_eq!(request_line, "GET /api/push?site=7&x=a%20b HTTP/1.1");
    let host = format!("127.0.0.1:{}", server.addr.port());
    assert_eq!(header_value(&head1, "host").as_deref(), Some(host.as_str()));
    assert_eq!(
        header_value(&head1, "upgrade")
            .unwrap()
            .to_ascii_lowercase(),
        "websocket"
    );
    assert!(header_value(&head1, "connection")
        .unwrap()
        .to_ascii_lowercase()
        .contains("upgrade"));
    assert_eq!(
        header_value(&head1, "sec-websocket-version").as_deref(),
        Some("13")
    );
    assert_eq!(
        header_value(&head1, "authorization").as_deref(),
        Some("Bearer t0ken")
    );
    assert_eq!(header_value(&head1, "x-site").as_deref(), Some("7"));
    assert!(header_value(&head1, "user-agent")
        .unwrap()
        .starts_with("tagwire-ws-client/"));

    let key1 = header_value(&head1, "sec-websocket-key").unwrap();
    let key2 = header_value(&head2, "sec-websocket-key").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&key1)
        .unwrap();
    assert_eq!(decoded.len(), 16, "the key is 16 random bytes, base64");
    assert_ne!(key1, key2, "a fresh key per connection");
}

#[tokio::test]
async fn ipv6_host_header_is_bracketed() {
    let Ok(listener) = tokio::net::TcpListener::bind("[::1]:0").await else {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    };
    let server = RawServer {
        addr: listener.local_addr().unwrap(),
        listener,
    };
    let url = WsUrl::parse(&format!("ws://[::1]:{}/v6", server.addr.port())).unwrap();
    let client = tokio::spawn(async move { connect(&url, &test_options()).await.unwrap() });
    let (_stream, head) = server.accept_ws().await;
    let conn = within("the client", client).await.unwrap();
    assert_eq!(
        header_value(&head, "host"),
        Some(format!("[::1]:{}", server.addr.port()))
    );
    assert_eq!(conn.peer_addr(), server.addr);
}

#[tokio::test]
async fn host_name_is_resolved() {
    // "localhost" may resolve to ::1 first; the listener is IPv4 only, so this
    // also exercises falling through to the next address.
    let mut server = WsServer::start().await;
    let url = WsUrl::parse(&format!("ws://localhost:{}/", server.addr.port())).unwrap();
    let mut conn = connect(&url, &test_options()).await.unwrap();
    let mut ws = server.accept().await;
    assert_eq!(conn.peer_addr(), server.addr);
    conn.send(FrameKind::Text, b"hi").await.unwrap();
    assert_eq!(
        within("a frame", ws.read_frame())
            .await
            .unwrap()
            .payload
            .to_vec(),
        b"hi"
    );
}

#[tokio::test]
async fn dropping_the_connection_closes_the_socket() {
    let mut server = WsServer::start().await;
    let conn = connect(&server.url("/"), &test_options()).await.unwrap();
    let mut ws = server.accept().await;
    drop(conn);
    assert!(
        within("the socket to close", ws.read_frame())
            .await
            .is_err(),
        "the reader task must not keep the socket open"
    );
}

#[tokio::test]
async fn next_event_is_cancel_safe_in_select() {
    let mut server = WsServer::start().await;
    let mut conn = connect(&server.url("/"), &test_options()).await.unwrap();
    let mut ws = server.accept().await;
    const COUNT: usize = 500;
    tokio::spawn(async move {
        for i in 0..COUNT {
            let payload = vec![b'x'; 1 + i % 300];
            ws.write_frame(Frame::binary(Payload::Owned(payload)))
                .await
                .unwrap();
        }
        // Keep the server side open until the client is done.
        let _ = ws.read_frame().await;
    });

    // Another branch wins the select most of the time; no message may be lost.
    let mut seen = 0;
    let mut total_len = 0;
    within("all messages", async {
        while seen < COUNT {
            tokio::select! {
                event = conn.next_event() => match event {
                    Some(Event::Message { payload, .. }) => {
                        assert_eq!(payload.len(), 1 + seen % 300, "in order, none skipped");
                        seen += 1;
                        total_len += payload.len();
                    }
                    other => panic!("unexpected {other:?}"),
                },
                () = tokio::task::yield_now() => {}
            }
        }
    })
    .await;
    assert_eq!(total_len, (0..COUNT).map(|i| 1 + i % 300).sum::<usize>());
}

#[tokio::test]
async fn a_send_cancelled_mid_frame_breaks_the_connection_visibly() {
    let server = RawServer::start().await;
    let url = server.url("/");
    let client = tokio::spawn(async move { connect(&url, &test_options()).await.unwrap() });
    let (_stream, _) = server.accept_ws().await; // never reads: the big frame cannot finish
    let mut conn = within("connect", client).await.unwrap();

    let big = vec![0u8; 32 << 20];
    let cancelled = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        conn.send(FrameKind::Binary, &big),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "the send should still be blocked when cancelled"
    );
    // The peer holds part of a frame: nothing may be sent after it.
    let err = conn.send(FrameKind::Text, b"next").await.unwrap_err();
    assert!(matches!(err, WsError::Interrupted), "{err:?}");
    assert!(matches!(
        conn.send(FrameKind::Text, b"next").await,
        Err(WsError::Closed)
    ));
}

#[test]
fn public_types_are_thread_safe() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<tagwire_ws_client::Connection>();
    send::<Event>();
    send_sync::<tagwire_ws_client::ConnectError>();
    send_sync::<WsError>();
    send_sync::<tagwire_ws_client::ConnectOptions>();
    send_sync::<WsUrl>();
    // The futures of the methods, for use in spawned tasks (checked at
    // compile time; the closure is never called).
    fn future_is_send<F: std::future::Future + Send>(_: F) {}
    let _ = |conn: &mut tagwire_ws_client::Connection| {
        future_is_send(conn.send(FrameKind::Text, b""));
        future_is_send(conn.next_event());
        future_is_send(conn.ping(b""));
        future_is_send(conn.flush());
    };
}

#[tokio::test]
async fn echoing_server_under_load_does_not_stall_sends() {
    // The server echoes every message and reads the next one only once its
    // echo is written. Messages are larger than the socket buffers, so each
    // send completes only while the client's reader keeps taking echoes. With
    // keep-alive pings queued all the time, a reader that stopped reading to
    // wait for the writer lock (held by that very send) would stall both sides
    // until the write timeout.
    let mut server = WsServer::start().await;
    let options = test_options()
        .with_keep_alive(Some(tagwire_ws_client::KeepAlive::new(
            std::time::Duration::from_millis(2),
            std::time::Duration::from_secs(20),
        )))
        .with_write_timeout(std::time::Duration::from_secs(5))
        .with_max_message_size(16 << 20);
    let mut conn = connect(&server.url("/"), &options).await.unwrap();
    let mut ws = server.accept().await;
    tokio::spawn(async move {
        while let Ok(frame) = ws.read_frame().await {
            match frame.opcode {
                OpCode::Binary => {
                    let echo = Frame::binary(Payload::Owned(frame.payload.to_vec()));
                    if ws.write_frame(echo).await.is_err() {
                        return;
                    }
                }
                OpCode::Close => return,
                _ => {}
            }
        }
    });

    const COUNT: usize = 12;
    let message = vec![0xA5u8; 8 << 20];
    within("sending the batch", async {
        for _ in 0..COUNT {
            conn.send(FrameKind::Binary, &message).await.unwrap();
        }
        conn.flush().await.unwrap();
    })
    .await;
    let mut echoed = 0;
    while echoed < COUNT {
        match next_event(&mut conn).await {
            Some(Event::Message { payload, .. }) => {
                assert!(payload == message, "the echo is what was sent");
                echoed += 1;
            }
            Some(Event::Pong(_)) => {}
            other => panic!("unexpected {other:?} after {echoed} echoes"),
        }
    }
}

/// Payloads waiting for the caller are bounded (16 × `max_message_size`): past that the
/// reader stops reading, so a Ping behind them is answered only once the caller takes
/// the messages.
#[tokio::test]
async fn messages_not_taken_pause_the_reader_at_the_byte_budget() {
    let server = RawServer::start().await;
    let url = server.url("/");
    let mut options = test_options();
    options.max_message_size = 1000;
    let client = tokio::spawn(async move { connect(&url, &options).await.unwrap() });
    let (mut stream, _) = server.accept_ws().await;
    let mut conn = within("connect", client).await.unwrap();
    // 40 messages of 1000 bytes (the budget holds 16), then a Ping.
    for i in 0..40u8 {
        tokio::io::AsyncWriteExt::write_all(&mut stream, &server_frame(0x82, &[i; 1000]))
            .await
            .unwrap();
    }
    tokio::io::AsyncWriteExt::write_all(&mut stream, &server_frame(0x89, b"late"))
        .await
        .unwrap();
    let early = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        read_client_frame(&mut stream),
    )
    .await;
    assert!(
        early.is_err(),
        "the Pong came before the caller took any message: {early:?}"
    );
    for i in 0..40u8 {
        match next_event(&mut conn).await {
            Some(Event::Message { payload, .. }) => assert_eq!(payload, vec![i; 1000]),
            other => panic!("expected message {i}, got {other:?}"),
        }
    }
    let pong = within("the Pong", read_client_frame(&mut stream))
        .await
        .unwrap();
    assert_eq!((pong.opcode, pong.payload.as_slice()), (0xA, &b"late"[..]));
}
