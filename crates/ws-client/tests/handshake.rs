//! Upgrade responses that must be refused, and ones that must be accepted.

mod common;

use common::*;
use tagwire_ws_client::{
    connect, ConnectError, ConnectOptions, Event, FrameKind, HttpError, WsUrl,
};
use tokio::io::AsyncWriteExt;

/// Connects to `server` while it answers the request with `response(head)`;
/// returns the client's result.
async fn connect_with_response(
    server: &RawServer,
    options: &ConnectOptions,
    response: impl FnOnce(&str) -> Vec<u8>,
) -> Result<tagwire_ws_client::Connection, ConnectError> {
    let url = server.url("/ws");
    let options = options.clone();
    let client = tokio::spawn(async move { connect(&url, &options).await });
    let (mut stream, head) = server.accept_request().await;
    stream.write_all(&response(&head)).await.unwrap();
    let result = within("the client", client).await.unwrap();
    drop(stream);
    result
}

fn key_of(head: &str) -> String {
    header_value(head, "sec-websocket-key").unwrap()
}

#[tokio::test]
async fn refused_upgrade_reports_status_and_body() {
    let server = RawServer::start().await;
    let result = connect_with_response(&server, &test_options(), |_| {
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 28\r\n\r\ninvalid token\r\n\x1b[0m for site"
            .to_vec()
    })
    .await;
    match result {
        Err(
            ref e @ ConnectError::HandshakeRejected {
                status, ref body, ..
            },
        ) => {
            assert_eq!(status, 403);
            assert_eq!(body, "invalid token [0m for site", "one clean line");
            let text = e.to_string();
            assert!(text.contains("HTTP 403 Forbidden"), "{text}");
            assert!(
                text.contains("Authorization"),
                "hints at credentials: {text}"
            );
            assert!(text.contains("invalid token"), "{text}");
        }
        other => panic!("expected HandshakeRejected, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn not_found_and_redirects_are_explained() {
    let server = RawServer::start().await;
    let err = connect_with_response(&server, &test_options(), |_| {
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
    })
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        ConnectError::HandshakeRejected { status: 404, .. }
    ));
    assert!(err.to_string().contains("check the URL path"), "{err}");

    let err = connect_with_response(&server, &test_options(), |_| {
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: wss://elsewhere/ws\r\nContent-Length: 0\r\n\r\n"
            .to_vec()
    })
    .await
    .unwrap_err();
    match &err {
        ConnectError::HandshakeRejected {
            status: 301,
            location: Some(location),
            ..
        } => {
            assert_eq!(location, "wss://elsewhere/ws")
        }
        other => panic!("expected a 301 with its location, got {other:?}"),
    }
    assert!(err.to_string().contains("wss://elsewhere/ws"), "{err}");
}

#[tokio::test]
async fn wrong_accept_is_bad_accept() {
    let server = RawServer::start().await;
    let err = connect_with_response(&server, &test_options(), |head| {
        // The accept value of a different key: what a broken or replaying peer sends.
        let wrong = accept_for(&format!("{}x", key_of(head)));
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {wrong}\r\n\r\n"
        )
        .into_bytes()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, ConnectError::BadAccept), "{err:?}");
    assert!(err.to_string().contains("Sec-WebSocket-Accept"), "{err}");
}

#[tokio::test]
async fn missing_accept_is_bad_accept() {
    let server = RawServer::start().await;
    let err = connect_with_response(&server, &test_options(), |_| {
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            .to_vec()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, ConnectError::BadAccept), "{err:?}");
}

#[tokio::test]
async fn missing_upgrade_headers_are_refused() {
    let server = RawServer::start().await;
    for (headers, expect) in [
        ("Connection: Upgrade\r\n", "Upgrade: websocket"),
        (
            "Upgrade: h2c\r\nConnection: Upgrade\r\n",
            "Upgrade: websocket",
        ),
        (
            "Upgrade: websocket\r\nConnection: keep-alive\r\n",
            "Connection: upgrade",
        ),
    ] {
        let err = connect_with_response(&server, &test_options(), |head| {
            format!(
                "HTTP/1.1 101 Switching Protocols\r\n{headers}Sec-WebSocket-Accept: {}\r\n\r\n",
                accept_for(&key_of(head))
            )
            .into_bytes()
        })
        .await
        .unwrap_err();
        match &err {
            ConnectError::BadUpgrade { reason } => assert!(reason.contains(expect), "{reason}"),
            other => panic!("expected BadUpgrade for {headers:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn unrequested_extension_or_subprotocol_is_refused() {
    let server = RawServer::start().await;
    for extra in [
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        "Sec-WebSocket-Protocol: mqtt\r\n",
    ] {
        let err = connect_with_response(&server, &test_options(), |head| {
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 {extra}Sec-WebSocket-Accept: {}\r\n\r\n",
                accept_for(&key_of(head))
            )
            .into_bytes()
        })
        .await
        .unwrap_err();
        assert!(
            matches!(err, ConnectError::BadUpgrade { .. }),
            "{extra}: {err:?}"
        );
    }
}

#[tokio::test]
async fn offered_subprotocol_may_be_selected() {
    let server = RawServer::start().await;
    let options = test_options().with_extra_headers(vec![(
        "Sec-WebSocket-Protocol".into(),
        "v2.push, v1.push".into(),
    )]);
    let conn = connect_with_response(&server, &options, |head| {
        assert_eq!(
            header_value(head, "sec-websocket-protocol").as_deref(),
            Some("v2.push, v1.push")
        );
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Protocol: v1.push\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_for(&key_of(head))
        )
        .into_bytes()
    })
    .await;
    assert!(conn.is_ok(), "{:?}", conn.err());
}

#[tokio::test]
async fn header_tokens_are_matched_case_insensitively() {
    let server = RawServer::start().await;
    let conn = connect_with_response(&server, &test_options(), |head| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n\
             sec-websocket-accept: {}\r\n\r\n",
            accept_for(&key_of(head))
        )
        .into_bytes()
    })
    .await;
    assert!(conn.is_ok(), "{:?}", conn.err());
}

#[tokio::test]
async fn frame_sent_together_with_the_101_is_not_lost() {
    // Bytes after the response head arrive in the same read as the head; they
    // must reach the frame reader.
    let server = RawServer::start().await;
    let mut conn = connect_with_response(&server, &test_options(), |head| {
        let mut bytes = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_for(&key_of(head))
        )
        .into_bytes();
        bytes.extend(server_frame(0x81, b"welcome"));
        bytes.extend(server_frame(0x88, &close_body(1000, "")));
        bytes
    })
    .await
    .unwrap();
    assert!(matches!(
        next_event(&mut conn).await,
        Some(Event::Message {
            kind: FrameKind::Text,
            payload,
        }) if payload == b"welcome"
    ));
    assert!(matches!(
        next_event(&mut conn).await,
        Some(Event::Closed {
            code: Some(1000),
            ..
        })
    ));
}

#[tokio::test]
async fn server_hanging_up_before_answering() {
    let server = RawServer::start().await;
    let url = server.url("/");
    let client = tokio::spawn(async move { connect(&url, &test_options()).await });
    let (stream, _head) = server.accept_request().await;
    drop(stream);
    let err = within("the client", client).await.unwrap().unwrap_err();
    assert!(matches!(err, ConnectError::Http(_)), "{err:?}");
    assert!(err.to_string().contains("WebSocket server"), "{err}");
}

#[tokio::test]
async fn wss_without_tls_config_fails_before_connecting() {
    // Nothing listens there: MissingTls must come before any network step.
    let url = WsUrl::parse("wss://127.0.0.1:9/").unwrap();
    let err = connect(&url, &test_options()).await.unwrap_err();
    assert!(matches!(err, ConnectError::MissingTls), "{err:?}");
    assert!(err.to_string().contains("ConnectOptions::tls"), "{err}");
}

#[tokio::test]
async fn bad_options_fail_before_connecting() {
    let url = WsUrl::parse("ws://127.0.0.1:9/").unwrap();
    let options = test_options().with_keep_alive(Some(tagwire_ws_client::KeepAlive::new(
        std::time::Duration::ZERO,
        std::time::Duration::from_secs(1),
    )));
    let err = connect(&url, &options).await.unwrap_err();
    assert!(err.to_string().contains("keep_alive.interval"), "{err}");

    let options =
        test_options().with_extra_headers(vec![("Authorization".into(), "Bearer se\ncret".into())]);
    let err = connect(&url, &options).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("Authorization") && !text.contains("cret"),
        "{text}"
    );
}

#[tokio::test]
async fn refused_tcp_connection_names_the_address() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let url = WsUrl::parse(&format!("ws://{addr}/")).unwrap();
    let err = connect(&url, &test_options()).await.unwrap_err();
    match &err {
        ConnectError::Connect { addr: a, .. } => assert_eq!(*a, addr),
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn unresolvable_host_is_a_resolve_error() {
    // .invalid is reserved (RFC 2606) and never resolves.
    let url = WsUrl::parse("ws://no-such-host.invalid/").unwrap();
    let err = connect(&url, &test_options()).await.unwrap_err();
    assert!(
        matches!(err, ConnectError::Resolve { .. } | ConnectError::Timeout(_)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("no-such-host.invalid") || matches!(err, ConnectError::Timeout(_))
    );
}

#[tokio::test]
async fn a_refusal_whose_body_never_ends_keeps_its_status() {
    let server = RawServer::start().await;
    let mut options = test_options();
    options.handshake_timeout = std::time::Duration::from_secs(3);
    let url = server.url("/ws");
    let client = tokio::spawn(async move { connect(&url, &options).await });
    let (mut stream, _head) = server.accept_request().await;
    stream
        .write_all(b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndenied\r\n")
        .await
        .unwrap();
    // One more chunk every 100 ms, never the last one.
    let trickle = tokio::spawn(async move {
        loop {
            if stream.write_all(b"1\r\n.\r\n").await.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    let result = within("the client", client).await.unwrap();
    trickle.abort();
    match result {
        Err(ConnectError::HandshakeRejected { status, body, .. }) => {
            assert_eq!(status, 403);
            assert!(body.starts_with("denied"), "{body}");
        }
        other => panic!("expected HandshakeRejected, got {:?}", other.map(|_| ())),
    }
}

/// A correct 101 response head for the request `head`.
fn switching(head: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_for(&key_of(head))
    )
    .into_bytes()
}

#[tokio::test]
async fn a_response_split_across_many_reads_is_put_together() {
    // The head and a first frame, one byte per TCP segment: the client must collect
    // the head over many reads and keep the frame bytes that follow it.
    let server = RawServer::start().await;
    let url = server.url("/ws");
    let client = tokio::spawn(async move { connect(&url, &test_options()).await });
    let (mut stream, head) = server.accept_request().await;
    stream.set_nodelay(true).unwrap();
    let mut bytes = switching(&head);
    let head_len = bytes.len();
    bytes.extend(server_frame(0x81, b"piecemeal"));
    for (i, byte) in bytes.iter().enumerate() {
        stream.write_all(&[*byte]).await.unwrap();
        // A pause lets each byte arrive on its own (the client reads in between).
        if i % 4 == 0 || i >= head_len - 2 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    let mut conn = within("the client", client).await.unwrap().unwrap();
    assert!(matches!(
        next_event(&mut conn).await,
        Some(Event::Message { kind: FrameKind::Text, payload }) if payload == b"piecemeal"
    ));
}

#[tokio::test]
async fn first_frames_larger_than_one_read_after_the_head_are_kept() {
    // 40 KB of frames in the same write as the head: more than the head reader takes
    // in one read, so the frame reader gets part from the prefix and the rest from TCP.
    let server = RawServer::start().await;
    let payload: Vec<u8> = (0..20_000).map(|i| b'a' + (i % 26) as u8).collect();
    let mut conn = connect_with_response(&server, &test_options(), |head| {
        let mut bytes = switching(head);
        bytes.extend(server_frame(0x82, &payload));
        bytes.extend(server_frame(0x82, &payload));
        bytes
    })
    .await
    .unwrap();
    for _ in 0..2 {
        match next_event(&mut conn).await {
            Some(Event::Message {
                kind: FrameKind::Binary,
                payload: got,
            }) => {
                assert!(got == payload, "payload differs ({} bytes)", got.len())
            }
            other => panic!("expected the binary message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_oversize_response_head_is_refused_naming_the_limit() {
    let server = RawServer::start().await;
    for tail in ["\r\n\r\n", ""] {
        // A 20 KB header: ending (tail) or never ending; either is refused at 16 KiB
        // without waiting for the handshake timeout.
        let err = connect_with_response(&server, &test_options(), |head| {
            let mut bytes = switching(head);
            bytes.truncate(bytes.len() - 2);
            bytes.extend(format!("X-Filler: {}{tail}", "f".repeat(20_000)).into_bytes());
            bytes
        })
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                ConnectError::Http(HttpError::HeadTooLarge { limit: 16384 })
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("16384 bytes"), "{text}");
    }
}

#[tokio::test]
async fn too_many_header_lines_are_refused() {
    let server = RawServer::start().await;
    let err = connect_with_response(&server, &test_options(), |head| {
        let mut bytes = switching(head);
        bytes.truncate(bytes.len() - 2);
        for i in 0..150 {
            bytes.extend(format!("X-{i}: y\r\n").into_bytes());
        }
        bytes.extend(b"\r\n");
        bytes
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, ConnectError::Http(HttpError::TooManyHeaders { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("100 header lines"), "{err}");
}

#[tokio::test]
async fn malformed_status_lines_are_refused_with_the_line() {
    let server = RawServer::start().await;
    for (response, expect) in [
        (
            &b"HTTP/1.1 1O1 Switching Protocols\r\n\r\n"[..],
            "HTTP/1.1 1O1",
        ),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "SSH-2.0-OpenSSH_9.2"),
        (
            b"HTTP/1.1 101 OK\r\nUpgrade websocket\r\n\r\n",
            "HTTP/1.1 101 OK",
        ),
    ] {
        let err = connect_with_response(&server, &test_options(), |_| response.to_vec())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ConnectError::Http(HttpError::Malformed { .. })),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("malformed HTTP response"), "{text}");
        assert!(text.contains(expect), "{text}");
        assert!(text.contains("WebSocket server"), "{text}");
    }
}

#[tokio::test]
async fn a_head_cut_short_says_how_much_arrived() {
    let server = RawServer::start().await;
    let url = server.url("/");
    let client = tokio::spawn(async move { connect(&url, &test_options()).await });
    let (mut stream, _head) = server.accept_request().await;
    stream
        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgr")
        .await
        .unwrap();
    drop(stream);
    let err = within("the client", client).await.unwrap().unwrap_err();
    assert!(
        matches!(err, ConnectError::Http(HttpError::Closed { received: 38 })),
        "{err:?}"
    );
    assert!(err.to_string().contains("38 bytes received"), "{err}");
}

#[tokio::test]
async fn duplicate_accept_headers_are_refused() {
    let server = RawServer::start().await;
    let err = connect_with_response(&server, &test_options(), |head| {
        let accept = accept_for(&key_of(head));
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, ConnectError::BadAccept), "{err:?}");
}

#[tokio::test]
async fn the_request_is_one_well_formed_get() {
    // What goes on the wire, byte for byte where it is fixed.
    let server = RawServer::start().await;
    let options = test_options().with_compression(tagwire_ws_client::Compression::Deflate);
    let mut options = options;
    options.extra_headers = vec![
        (" Authorization ".into(), " Bearer t0k ".into()),
        ("Sec-WebSocket-Protocol".into(), "a, b".into()),
    ];
    let url = server.url("/p%20q?x=1");
    let port = server.addr.port();
    let client = tokio::spawn(async move { connect(&url, &options).await });
    let (_stream, head) = server.accept_request().await;
    client.abort();
    let key = key_of(&head);
    assert_eq!(
        head,
        format!(
            "GET /p%20q?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
             Authorization: Bearer t0k\r\nSec-WebSocket-Protocol: a, b\r\n\
             Sec-WebSocket-Extensions: permessage-deflate\r\n\
             User-Agent: tagwire-ws-client/{}\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}
