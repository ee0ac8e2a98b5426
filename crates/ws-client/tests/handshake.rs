//! Upgrade responses that must be refused, and ones that must be accepted.

mod common;

use common::*;
use tagwire_ws_client::{connect, ConnectError, ConnectOptions, Event, FrameKind, WsUrl};
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
