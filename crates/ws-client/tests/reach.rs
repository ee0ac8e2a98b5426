//! Every address of a host is tried (Happy Eyeballs), and the server's subprotocol
//! choice is reported.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::*;
use tagwire_ws_client::{connect, ConnectError, Phase, Proxy, WsUrl};
use tokio::io::AsyncWriteExt;

/// A name resolving to a silent IPv6 address first and a live IPv4 address second
/// connects to the IPv4 one within the head start, not after the IPv6 attempt's
/// timeout; the request still names the host.
#[tokio::test]
async fn a_dead_ipv6_address_does_not_hold_up_a_live_ipv4_one() {
    let server = RawServer::start().await;
    // Silent on the server's port, so that only the address family differs.
    let (silent, _queue) = silent_address_v6(server.addr.port()).await;
    let connect_timeout = Duration::from_secs(8);
    let options = test_options()
        .with_connect_timeout(connect_timeout)
        .with_resolve_override(vec![silent.ip(), IpAddr::from([127, 0, 0, 1])]);
    let url = WsUrl::parse(&format!("ws://plant.invalid:{}/in", server.addr.port())).unwrap();
    let started = Instant::now();
    let client = tokio::spawn(async move { connect(&url, &options).await });
    let (mut stream, head) = server.accept_request().await;
    let elapsed = started.elapsed();
    assert_eq!(
        header_value(&head, "host").as_deref(),
        Some(format!("plant.invalid:{}", server.addr.port()).as_str())
    );
    let key = header_value(&head, "sec-websocket-key").unwrap();
    stream
        .write_all(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                accept_for(&key)
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let conn = within("the client", client).await.unwrap().unwrap();
    assert_eq!(conn.peer_addr(), server.addr);
    // One attempt after the other would have waited out the whole connect_timeout.
    assert!(elapsed < connect_timeout / 4, "took {elapsed:?}");
}

/// A proxy that accepts the TCP connection but never answers the tunnel request is
/// given up on after `connect_timeout`, and the error says it was the proxy leg.
#[tokio::test]
async fn a_silent_proxy_times_out_on_the_proxy_leg() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accept and hold the connections, reading nothing and answering nothing.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    for proxy in [
        format!("http://127.0.0.1:{port}"),
        format!("socks5h://127.0.0.1:{port}"),
    ] {
        let options = test_options()
            .with_connect_timeout(Duration::from_millis(300))
            .with_proxy(Proxy::parse(&proxy).unwrap());
        let url = WsUrl::parse("ws://server.invalid:9000/").unwrap();
        let err = within("the timeout", connect(&url, &options))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ConnectError::Timeout(Phase::Proxy)),
            "{proxy}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("proxy tunnel") && text.contains("connect_timeout"),
            "{text}"
        );
    }
    holder.abort();
}
