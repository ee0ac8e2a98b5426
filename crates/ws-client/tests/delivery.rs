//! `Delivery`: batches and their confirming Ping on the wire, confirmations
//! reported in order, unconfirmed messages handed back after a drop.

mod common;

use bytes::Bytes;
use common::*;
use tagwire_ws_client::{
    connect, Confirm, ConnectOptions, Delivery, DeliveryEvent, FrameKind, WsError,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

async fn open(confirm: Confirm, options: ConnectOptions) -> (Delivery, TcpStream) {
    let server = RawServer::start().await;
    let url = server.url("/");
    let client = tokio::spawn(async move { connect(&url, &options).await.unwrap() });
    let (stream, _) = server.accept_ws().await;
    let conn = within("connect", client).await.unwrap();
    (Delivery::new(conn, FrameKind::Text, confirm), stream)
}

fn batch(seqs: std::ops::RangeInclusive<u64>) -> Vec<(u64, Bytes)> {
    seqs.map(|seq| (seq, Bytes::from(format!("message {seq}"))))
        .collect()
}

async fn next(delivery: &mut Delivery) -> Option<DeliveryEvent> {
    within("the next delivery event", delivery.next_event()).await
}

/// Reads `n` data frames and then the Ping; returns the payloads and the Ping's.
async fn read_batch(stream: &mut TcpStream, n: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut payloads = Vec::new();
    for _ in 0..n {
        let frame = within("a data frame", read_client_frame(stream))
            .await
            .unwrap();
        assert_eq!((frame.opcode, frame.fin), (0x1, true), "{frame:?}");
        payloads.push(frame.payload);
    }
    let ping = within("the Ping", read_client_frame(stream)).await.unwrap();
    assert_eq!(ping.opcode, 0x9, "the batch's Ping follows its frames");
    (payloads, ping.payload)
}

#[tokio::test]
async fn a_pong_confirms_everything_up_to_its_sequence_number() {
    let (mut delivery, mut stream) = open(Confirm::ByPong, test_options()).await;
    let written = delivery.send_batch(batch(1..=3)).await.unwrap().unwrap();
    assert_eq!(
        (written.last, written.messages, written.confirmed),
        (3, 3, false)
    );
    let (payloads, ping) = read_batch(&mut stream, 3).await;
    assert_eq!(payloads[0], b"message 1");
    assert_eq!(payloads[2], b"message 3");
    assert_eq!(ping, 3u64.to_be_bytes());

    // Sequence numbers need not be contiguous, only increasing.
    delivery.send_batch(batch(7..=8)).await.unwrap();
    let (_, ping) = read_batch(&mut stream, 2).await;
    assert_eq!(ping, 8u64.to_be_bytes());
    assert_eq!(delivery.unconfirmed(), 5);

    // A Pong for the first Ping confirms the first batch only.
    stream
        .write_all(&server_frame(0x8A, &3u64.to_be_bytes()))
        .await
        .unwrap();
    match next(&mut delivery).await {
        Some(DeliveryEvent::Confirmed {
            through,
            messages,
            bytes,
        }) => assert_eq!((through, messages, bytes), (3, 3, 27)),
        other => panic!("expected a confirmation, got {other:?}"),
    }
    assert_eq!(delivery.unconfirmed(), 2);
    assert_eq!(delivery.last_confirmed(), Some(3));

    // A keep-alive Pong (empty), a repeated one, and one for a number never sent
    // confirm nothing and are not reported; the server's message is.
    for frame in [
        server_frame(0x8A, b""),
        server_frame(0x8A, &3u64.to_be_bytes()),
        server_frame(0x8A, &99u64.to_be_bytes()),
        server_frame(0x81, b"hello client"),
    ] {
        stream.write_all(&frame).await.unwrap();
    }
    match next(&mut delivery).await {
        Some(DeliveryEvent::Message { kind, payload }) => {
            assert_eq!(
                (kind, payload.as_slice()),
                (FrameKind::Text, &b"hello client"[..])
            )
        }
        other => panic!("expected the server's message, got {other:?}"),
    }
    assert_eq!(delivery.unconfirmed(), 2, "Pong(99) confirmed nothing");

    stream
        .write_all(&server_frame(0x8A, &8u64.to_be_bytes()))
        .await
        .unwrap();
    assert!(matches!(
        next(&mut delivery).await,
        Some(DeliveryEvent::Confirmed {
            through: 8,
            messages: 2,
            ..
        })
    ));
    assert_eq!(delivery.unconfirmed(), 0);
}

#[tokio::test]
async fn a_drop_hands_back_the_unconfirmed_messages_oldest_first() {
    let (mut delivery, mut stream) = open(Confirm::ByPong, test_options()).await;
    delivery.send_batch(batch(1..=4)).await.unwrap();
    read_batch(&mut stream, 4).await;
    stream
        .write_all(&server_frame(0x8A, &2u64.to_be_bytes()))
        .await
        .unwrap();
    assert!(matches!(
        next(&mut delivery).await,
        Some(DeliveryEvent::Confirmed { through: 2, .. })
    ));
    // The server goes away without answering the rest.
    drop(stream);
    assert!(matches!(
        next(&mut delivery).await,
        Some(DeliveryEvent::Failed(_))
    ));
    let back: Vec<u64> = delivery
        .take_unconfirmed()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(back, [3, 4]);
    assert_eq!(delivery.unconfirmed(), 0);
}

#[tokio::test]
async fn sequence_numbers_that_do_not_increase_are_refused_before_writing() {
    let (mut delivery, mut stream) = open(Confirm::ByPong, test_options()).await;
    delivery.send_batch(batch(5..=6)).await.unwrap();
    let err = delivery
        .send_batch(vec![
            (7, Bytes::from_static(b"ok")),
            (6, Bytes::from_static(b"late")),
        ])
        .await
        .unwrap_err();
    match err {
        WsError::InvalidInput(message) => {
            assert!(
                message.contains("sequence number 6 does not follow 7"),
                "{message}"
            )
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert_eq!(
        delivery.unconfirmed(),
        2,
        "nothing of the refused batch is held"
    );
    assert!(delivery.send_batch(Vec::new()).await.unwrap().is_none());
    // The connection is still usable, and the refused batch never reached the wire.
    delivery.send_batch(batch(7..=7)).await.unwrap();
    read_batch(&mut stream, 2).await;
    let (payloads, ping) = read_batch(&mut stream, 1).await;
    assert_eq!(
        (payloads[0].as_slice(), ping),
        (&b"message 7"[..], 7u64.to_be_bytes().to_vec())
    );
}

#[tokio::test]
async fn on_write_confirms_at_once_and_sends_no_ping() {
    let (mut delivery, mut stream) = open(Confirm::OnWrite, test_options()).await;
    let written = delivery.send_batch(batch(1..=2)).await.unwrap().unwrap();
    assert!(written.confirmed);
    assert_eq!(delivery.unconfirmed(), 0);
    assert_eq!(delivery.last_confirmed(), Some(2));
    // The next frame after the two messages is the Close, not a Ping.
    for _ in 0..2 {
        let frame = read_client_frame(&mut stream).await.unwrap();
        assert_eq!(frame.opcode, 0x1);
    }
    let close = tokio::spawn(async move { delivery.close(1000, "done").await });
    assert_eq!(read_client_close(&mut stream).await, Some(1000));
    drop(stream);
    let (_, unconfirmed) = within("close", close).await.unwrap();
    assert!(unconfirmed.is_empty());
}
