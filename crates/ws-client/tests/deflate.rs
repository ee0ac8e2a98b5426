//! permessage-deflate on the wire, checked by a raw server that decompresses with
//! flate2 itself and sends RFC 7692's own example frames.

mod common;

use common::*;
use flate2::{Decompress, FlushDecompress};
use tagwire_ws_client::{
    connect, Compression, ConnectOptions, Connection, Event, FrameKind, WsError,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn deflate_options() -> ConnectOptions {
    test_options().with_compression(Compression::Deflate)
}

/// Connects with compression on; the server answers with `extensions`.
async fn connect_deflate(
    server: &RawServer,
    options: ConnectOptions,
    extensions: &str,
) -> (
    Result<Connection, tagwire_ws_client::ConnectError>,
    TcpStream,
    String,
) {
    let url = server.url("/z");
    let client = tokio::spawn(async move { connect(&url, &options).await });
    let (mut stream, head) = server.accept_request().await;
    let key = header_value(&head, "sec-websocket-key").unwrap();
    let extensions = if extensions.is_empty() {
        String::new()
    } else {
        format!("Sec-WebSocket-Extensions: {extensions}\r\n")
    };
    stream
        .write_all(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n{extensions}\r\n",
                accept_for(&key)
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    (within("the client", client).await.unwrap(), stream, head)
}

/// Inflates one message's payload with the server's own context (RFC 7692 7.2.2).
fn inflate(context: &mut Decompress, payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(64 * 1024);
    context
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

#[tokio::test]
async fn messages_go_out_compressed_with_context_takeover_and_come_back_whole() {
    let server = RawServer::start().await;
    let (conn, mut stream, head) = connect_deflate(
        &server,
        deflate_options(),
        "permessage-deflate; server_no_context_takeover",
    )
    .await;
    let mut conn = conn.unwrap();
    assert_eq!(
        header_value(&head, "sec-websocket-extensions").as_deref(),
        Some("permessage-deflate")
    );
    assert!(conn.is_compressed());
    let message = br#"{"node": "sim", "group": "fast", "timestamp": 1700000000000, "values": {"counter": 1, "tag1": 0.5}}"#;
    for _ in 0..3 {
        conn.send(FrameKind::Text, message).await.unwrap();
    }
    conn.flush().await.unwrap();
    let mut context = Decompress::new(false);
    let mut sizes = Vec::new();
    for _ in 0..3 {
        let frame = within("a frame", read_client_frame(&mut stream))
            .await
            .unwrap();
        assert!(frame.rsv1 && frame.fin && frame.opcode == 0x1, "{frame:?}");
        assert_eq!(inflate(&mut context, &frame.payload), message);
        sizes.push(frame.payload.len());
    }
    // The second message refers back to the first: a few bytes only.
    assert!(sizes[1] < sizes[0] / 4, "{sizes:?}");
    let sent = conn.sent_bytes();
    assert_eq!(sent.messages, 3 * message.len() as u64);
    assert_eq!(sent.wire, sizes.iter().sum::<usize>() as u64);

    // RFC 7692 section 7.2.3.1: "Hello", twice, then once in two fragments
    // (7.2.3.3 style: compressed data split). Each stands alone: the server agreed
    // to server_no_context_takeover above, so it may not refer to an earlier message
    // (7.2.3.2's context-referring form would inflate against an empty history).
    stream
        .write_all(&server_frame(
            0xc1,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        ))
        .await
        .unwrap();
    stream
        .write_all(&server_frame(
            0xc1,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        ))
        .await
        .unwrap();
    stream
        .write_all(&server_frame(0x41, &[0xf2, 0x48, 0xcd]))
        .await
        .unwrap();
    stream
        .write_all(&server_frame(0x80, &[0xc9, 0xc9, 0x07, 0x00]))
        .await
        .unwrap();
    for _ in 0..3 {
        match next_event(&mut conn).await {
            Some(Event::Message {
                kind: FrameKind::Text,
                payload,
            }) if payload == b"Hello" => {}
            other => panic!("expected a 5-byte text message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn client_no_context_takeover_is_honoured() {
    let server = RawServer::start().await;
    let (conn, mut stream, _) = connect_deflate(
        &server,
        deflate_options(),
        "permessage-deflate; client_no_context_takeover",
    )
    .await;
    let mut conn = conn.unwrap();
    let message = b"the same message, over and over, the same message";
    for _ in 0..2 {
        conn.send(FrameKind::Binary, message).await.unwrap();
    }
    conn.flush().await.unwrap();
    for _ in 0..2 {
        let frame = within("a frame", read_client_frame(&mut stream))
            .await
            .unwrap();
        assert!(frame.rsv1);
        // A fresh context for each message: each inflates on its own.
        assert_eq!(
            inflate(&mut Decompress::new(false), &frame.payload),
            message
        );
    }
}

#[tokio::test]
async fn a_declined_offer_means_plain_frames() {
    let server = RawServer::start().await;
    let (conn, mut stream, _) = connect_deflate(&server, deflate_options(), "").await;
    let mut conn = conn.unwrap();
    assert!(!conn.is_compressed());
    conn.send(FrameKind::Binary, b"plain").await.unwrap();
    conn.flush().await.unwrap();
    let frame = within("a frame", read_client_frame(&mut stream))
        .await
        .unwrap();
    assert!(!frame.rsv1);
    assert_eq!(frame.payload, b"plain");
}

#[tokio::test]
async fn bad_answers_and_bad_compressed_data_are_refused() {
    let server = RawServer::start().await;
    let (conn, _, _) = connect_deflate(
        &server,
        deflate_options(),
        "permessage-deflate; client_max_window_bits=9",
    )
    .await;
    let err = conn.unwrap_err().to_string();
    assert!(err.contains("client_max_window_bits"), "{err}");

    // Compressed text that is not UTF-8 once inflated: 1007, like plain invalid text.
    let (conn, mut stream, _) =
        connect_deflate(&server, deflate_options(), "permessage-deflate").await;
    let mut conn = conn.unwrap();
    let mut compress = flate2::Compress::new(flate2::Compression::default(), false);
    let mut payload = Vec::with_capacity(64);
    compress
        .compress_vec(
            &[0xff, 0xfe, 0xfd],
            &mut payload,
            flate2::FlushCompress::Sync,
        )
        .unwrap();
    payload.truncate(payload.len() - 4);
    stream
        .write_all(&server_frame(0xc1, &payload))
        .await
        .unwrap();
    match next_event(&mut conn).await {
        Some(Event::Failed(WsError::Protocol(m))) => assert!(m.contains("UTF-8"), "{m}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(read_client_close(&mut stream).await, Some(1007));

    // Without the extension, RSV1 is still a protocol error.
    let (conn, mut stream, _) = connect_deflate(&server, test_options(), "").await;
    let mut conn = conn.unwrap();
    stream
        .write_all(&server_frame(
            0xc1,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        ))
        .await
        .unwrap();
    match next_event(&mut conn).await {
        Some(Event::Failed(WsError::Protocol(m))) => assert!(m.contains("reserved bits"), "{m}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_back_reference_before_the_data_fails_with_1007() {
    // Fixed-Huffman deflate of: literal "a", then "copy 3 bytes from 5 back" (only 1
    // byte exists), end of block, the sync flush's stored-block header (tail removed).
    // Python's zlib says "invalid distance too far back"; miniz_oxide inflated it to
    // "a\0\0\0" and the client delivered that.
    let hostile = [0x4a, 0x04, 0x12, 0x00, 0x00];
    let server = RawServer::start().await;
    let (conn, mut stream, _) =
        connect_deflate(&server, deflate_options(), "permessage-deflate").await;
    let mut conn = conn.unwrap();
    stream
        .write_all(&server_frame(0xc2, &hostile))
        .await
        .unwrap();
    match next_event(&mut conn).await {
        Some(Event::Failed(WsError::Protocol(m))) => {
            assert!(m.contains("not valid deflate data"), "{m}");
            assert!(m.contains("too far back"), "{m}");
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(read_client_close(&mut stream).await, Some(1007));
}
