//! Error hygiene: each cause printed once however the error is shown, and `Debug` (what
//! `fn main() -> Result<..>` and `unwrap` print) carries the advice.

mod common;

use common::*;
use tagwire_ws_client::{connect, ConnectError, WsError, WsUrl};

#[tokio::test]
async fn a_connect_error_prints_its_cause_once_and_debug_shows_the_advice() {
    // A port nothing listens on: bind, note it, close.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = WsUrl::parse(&format!("ws://{addr}/")).unwrap();
    let err = connect(&url, &test_options()).await.unwrap_err();
    let cause = match &err {
        ConnectError::Connect { error, .. } => error.to_string(),
        other => panic!("expected Connect, got {other}"),
    };
    let message = err.to_string();
    assert!(message.contains(&cause), "{message}");
    assert_eq!(format!("{err:?}"), message);

    let chain = format!("{:#}", anyhow::Error::from(err));
    assert_eq!(chain.matches(cause.as_str()).count(), 1, "{chain}");
    assert_eq!(chain, message);
}

#[tokio::test]
async fn debug_of_a_connect_error_is_its_advice() {
    let url = WsUrl::parse("wss://127.0.0.1:9/").unwrap();
    let err = connect(&url, &test_options()).await.unwrap_err();
    assert!(matches!(err, ConnectError::MissingTls), "{err}");
    let shown = format!("{err:?}");
    assert!(shown.contains("set ConnectOptions::tls"), "{shown}");
}

#[test]
fn a_connection_error_prints_its_cause_once() {
    let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
    let err = WsError::from(reset);
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert_eq!(chain, "connection I/O error: reset by peer");
}
