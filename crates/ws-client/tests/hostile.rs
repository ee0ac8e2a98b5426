//! Frames a conforming server never sends. Each must end the connection with
//! a clear `Event::Failed`, tell the server why when possible, never panic,
//! and never allocate what the frame header merely claims.

mod common;

use common::*;
use tagwire_ws_client::{connect, ConnectOptions, Connection, Event, WsError};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

async fn open(options: ConnectOptions) -> (Connection, TcpStream) {
    let server = RawServer::start().await;
    let url = server.url("/");
    let client = tokio::spawn(async move { connect(&url, &options).await.unwrap() });
    let (stream, _) = server.accept_ws().await;
    (within("connect", client).await.unwrap(), stream)
}

/// Sends `bytes` from the server; expects `Failed(Protocol(..))` mentioning
/// `expect`, and a Close with `close_code` back.
async fn assert_protocol_failure(bytes: &[u8], expect: &str, close_code: u16) {
    let (mut conn, mut stream) = open(test_options()).await;
    stream.write_all(bytes).await.unwrap();
    let message = loop {
        match next_event(&mut conn).await {
            Some(Event::Failed(WsError::Protocol(message))) => break message,
            // Valid frames before the bad one are fine.
            Some(Event::Message { .. }) | Some(Event::Pong(_)) => continue,
            other => panic!("expected a protocol failure ({expect}), got {other:?}"),
        }
    };
    assert!(
        message.contains(expect),
        "{message:?} should mention {expect:?}"
    );
    assert_eq!(
        read_client_close(&mut stream).await,
        Some(close_code),
        "for {expect}"
    );
    assert!(
        next_event(&mut conn).await.is_none(),
        "Failed is the last event"
    );
}

#[tokio::test]
async fn reserved_opcode() {
    for opcode in [0x3u8, 0x7, 0xB, 0xF] {
        assert_protocol_failure(&server_frame(0x80 | opcode, b"?"), "reserved opcode", 1002).await;
    }
}

#[tokio::test]
async fn reserved_bits() {
    // RSV1 is permessage-deflate's "compressed" bit; nothing was negotiated.
    assert_protocol_failure(&server_frame(0xC1, b"x"), "reserved bits", 1002).await;
}

#[tokio::test]
async fn oversized_frame_is_refused_from_its_header() {
    // Claims 8 GiB but sends only the header: the client must refuse from the
    // length alone, without allocating or waiting for the payload.
    let mut frame = vec![0x82];
    frame_length(&mut frame, 8 << 30);
    assert_protocol_failure(&frame, "max_message_size", 1009).await;

    // One byte over the configured maximum, with the payload actually sent.
    let (mut conn, mut stream) = open(test_options().with_max_message_size(1000)).await;
    stream
        .write_all(&server_frame(0x82, &[0; 1000]))
        .await
        .unwrap();
    stream
        .write_all(&server_frame(0x82, &[0; 1001]))
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut conn).await,
        Some(Event::Message { payload, .. }) if payload.len() == 1000
    ));
    assert!(matches!(
        next_event(&mut conn).await,
        Some(Event::Failed(WsError::Protocol(_)))
    ));
    assert_eq!(read_client_close(&mut stream).await, Some(1009));
}

#[tokio::test]
async fn oversized_fragmented_message() {
    // Each fragment is small; together they exceed 64 KiB.
    let mut bytes = server_frame(0x02, &[1; 40_000]); // Binary, not final
    bytes.extend(server_frame(0x00, &[2; 40_000])); // Continuation, not final
    assert_protocol_failure(&bytes, "max_message_size", 1009).await;
}

#[tokio::test]
async fn invalid_utf8_text() {
    assert_protocol_failure(&server_frame(0x81, b"ok \xFF\xFE"), "UTF-8", 1007).await;
}

#[tokio::test]
async fn invalid_utf8_split_across_fragments() {
    // "€" is E2 82 AC; the continuation replaces AC with an ASCII byte.
    let mut bytes = server_frame(0x01, &[b'a', 0xE2, 0x82]);
    bytes.extend(server_frame(0x80, b"A"));
    assert_protocol_failure(&bytes, "UTF-8", 1007).await;
    // A text message ending in the middle of a character.
    let mut bytes = server_frame(0x01, b"abc");
    bytes.extend(server_frame(0x80, &[0xE2, 0x82]));
    assert_protocol_failure(&bytes, "UTF-8", 1007).await;
}

#[tokio::test]
async fn close_with_invalid_code() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
        assert_protocol_failure(
            &server_frame(0x88, &close_body(code, "")),
            &format!("invalid close code {code}"),
            1002,
        )
        .await;
    }
}

#[tokio::test]
async fn malformed_close_frames() {
    assert_protocol_failure(&server_frame(0x88, &[0x03]), "1-byte", 1002).await;
    let mut body = close_body(1000, "");
    body.extend_from_slice(&[0xC3, 0x28]);
    assert_protocol_failure(&server_frame(0x88, &body), "UTF-8", 1007).await;
    let mut long = close_body(1000, "");
    long.extend_from_slice(&[b'r'; 124]);
    assert_protocol_failure(&server_frame(0x88, &long), "125 bytes", 1002).await;
}

#[tokio::test]
async fn oversized_and_fragmented_control_frames() {
    assert_protocol_failure(&server_frame(0x89, &[0; 126]), "Ping", 1002).await;
    assert_protocol_failure(&server_frame(0x8A, &[0; 126]), "Pong", 1002).await;
    assert_protocol_failure(&server_frame(0x09, b"frag"), "fragmented control", 1002).await;
}

#[tokio::test]
async fn broken_fragmentation() {
    assert_protocol_failure(&server_frame(0x80, b"orphan"), "continuation", 1002).await;
    let mut bytes = server_frame(0x01, b"first half");
    bytes.extend(server_frame(0x81, b"new message"));
    assert_protocol_failure(&bytes, "new data message", 1002).await;
}

#[tokio::test]
async fn tcp_closed_without_close_frame() {
    let (mut conn, stream) = open(test_options()).await;
    drop(stream);
    match next_event(&mut conn).await {
        Some(Event::Failed(WsError::Io(e))) => {
            assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
            assert!(e.to_string().contains("without a Close frame"), "{e}");
        }
        other => panic!("expected an EOF failure, got {other:?}"),
    }
    assert!(next_event(&mut conn).await.is_none());
}

#[tokio::test]
async fn garbage_never_panics() {
    // Deterministic pseudo-random bytes (xorshift), several seeds. Whatever the
    // bytes decode to, the connection must end with Failed or Closed, and
    // every event before that must be well-formed.
    for seed in 1..=24u64 {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let garbage: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let (mut conn, mut stream) = open(test_options()).await;
        stream.write_all(&garbage).await.unwrap();
        // Then hang up, so that a frame that claims more bytes ends too.
        drop(stream);
        loop {
            match next_event(&mut conn).await {
                Some(Event::Message { payload, .. }) => assert!(payload.len() <= 64 * 1024),
                Some(Event::Pong(payload)) => assert!(payload.len() <= 125),
                Some(Event::Closed { .. }) | Some(Event::Failed(_)) => break,
                None => panic!("seed {seed}: events ended without Closed or Failed"),
            }
        }
        assert!(next_event(&mut conn).await.is_none(), "seed {seed}");
    }
}
