//! One WebSocket client connection, done right.
//!
//! `tagwire-ws-client` opens a single `ws://` or `wss://` connection and keeps
//! it honest: it knows nothing of what is sent over it (tagwire pushes JSON
//! snapshots; this crate sees bytes), and adds what a long-lived pushing
//! client needs on top of [fastwebsockets]' frame codec:
//!
//! * **Handshake checks** fastwebsockets' client skips: status `101`,
//!   `Upgrade: websocket`, `Connection: upgrade`, and `Sec-WebSocket-Accept`
//!   computed from our random key (RFC 6455 section 4.1). A refused upgrade is
//!   reported with its status and the start of the body.
//! * **Timeouts** for every step: DNS and each TCP attempt, the proxy tunnel,
//!   TLS plus upgrade, every write and flush (a server that stops reading cannot
//!   hang [`Connection::send`]), and the close handshake.
//! * **Every address**: IPv6 and IPv4 addresses tried interleaved with a 250 ms
//!   head start each (Happy Eyeballs, RFC 8305).
//! * **Proxies** ([`ConnectOptions::proxy`]): HTTP `CONNECT` and SOCKS5, or from
//!   the environment as curl does ([`Proxy::from_env`]); TLS runs end to end.
//! * **permessage-deflate** (RFC 7692) when [`ConnectOptions::compression`] asks
//!   for it, with context takeover; [`Connection::sent_bytes`] counts bytes
//!   before and after compression.
//! * **Keep-alive**: a Ping when none went out for a while, and the connection
//!   declared dead when no Pong comes back ([`WsError::PongTimeout`]).
//! * **A cancel-safe event stream**: a background task owns the read side
//!   (fastwebsockets' `read_frame` is not cancel-safe), answers Pings, and
//!   reports Pongs, messages, the server's Close and failures through
//!   [`Connection::next_event`], which is safe inside `tokio::select!`.
//! * **Hostile input** from the server (reserved opcodes or bits, oversized
//!   frames, invalid UTF-8, bad close codes, garbage) ends the connection with
//!   [`Event::Failed`]`(`[`WsError::Protocol`]`)`; memory stays bounded by
//!   [`ConnectOptions::max_message_size`].
//! * **Confirmed delivery** ([`Delivery`]): batches written with a Ping carrying the
//!   last sequence number in one write, Pongs reported as confirmations, and the
//!   unconfirmed payloads handed back after a drop to be sent again.
//! * **Payloads are never modified**: [`Connection::send`] takes `&[u8]` and
//!   masks a copy, so a message can be resent after a reconnect.
//!
//! Errors are returned, never logged; details are logged with `tracing` at
//! debug level. Nothing printed by this crate contains a password or a header
//! value.
//!
//! # Parsing URLs
//!
//! ```
//! use tagwire_ws_client::{ConnectOptions, Scheme, WsUrl};
//!
//! let url: WsUrl = "ws://gateway.local:8080/ingest?site=3".parse()?;
//! assert_eq!(url.scheme(), Scheme::Ws);
//! assert_eq!((url.host(), url.port()), ("gateway.local", 8080));
//! assert_eq!(url.path_and_query(), "/ingest?site=3");
//!
//! // Credentials belong in a header, not in the URL.
//! let err = WsUrl::parse("wss://user:pw@example.com/").unwrap_err();
//! assert!(err.to_string().contains("Authorization"));
//!
//! let options = ConnectOptions::default().with_max_message_size(16 * 1024);
//! assert!(options.keep_alive.is_some());
//! # Ok::<(), tagwire_ws_client::UrlError>(())
//! ```
//!
//! # Pushing messages
//!
//! ```no_run
//! use std::time::Duration;
//! use tagwire_ws_client::{connect, ConnectOptions, Event, FrameKind, WsUrl};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let url = WsUrl::parse("ws://127.0.0.1:9001/push")?;
//! let mut conn = connect(&url, &ConnectOptions::default()).await?;
//!
//! let messages: Vec<Vec<u8>> = vec![br#"{"n":1}"#.to_vec(), br#"{"n":2}"#.to_vec()];
//! for message in &messages {
//!     conn.send(FrameKind::Text, message).await?;
//! }
//! conn.flush().await?;
//! // The server answers a Ping after reading everything sent before it:
//! // its Pong confirms the batch.
//! conn.ping(&2u64.to_be_bytes()).await?;
//!
//! let mut tick = tokio::time::interval(Duration::from_secs(1));
//! loop {
//!     tokio::select! {
//!         // next_event is cancel-safe: losing the race to the timer loses nothing.
//!         event = conn.next_event() => match event {
//!             Some(Event::Pong(payload)) => {
//!                 println!("confirmed up to {payload:?}");
//!                 break;
//!             }
//!             Some(Event::Message { kind, payload }) => {
//!                 println!("server sent {kind:?} ({} bytes)", payload.len())
//!             }
//!             Some(Event::Closed { code, reason }) => {
//!                 println!("server closed: {code:?} {reason}");
//!                 return Ok(());
//!             }
//!             Some(Event::Failed(error)) => return Err(error.into()),
//!             None => return Ok(()),
//!         },
//!         _ = tick.tick() => { /* produce more messages here */ }
//!     }
//! }
//! conn.close(1000, "done").await?;
//! # Ok(())
//! # }
//! ```
//!
//! For `wss://`, set [`ConnectOptions::tls`] to a rustls `ClientConfig`
//! (tagwire-tls-config builds one from the `ca`, `cert` and `key` parameters),
//! and [`ConnectOptions::server_name`] when the certificate is issued to a
//! name but the URL uses an address.
//!
//! [fastwebsockets]: https://docs.rs/fastwebsockets/0.10

#![deny(missing_docs)]

mod accept;
mod connection;
mod deflate;
mod delivery;
mod error;
mod frame;
mod handshake;
mod http;
mod options;
mod proxy;
mod rsv;
mod select;
mod url;

pub use connection::{Connection, Event, SentBytes};
pub use delivery::{Confirm, Delivery, DeliveryEvent, Written};
pub use error::{ConnectError, HttpError, Phase, WsError};
pub use handshake::{check_header, connect};
pub use options::{check_server_name, Compression, ConnectOptions, FrameKind, KeepAlive};
pub use proxy::{Proxy, ProxyError, ProxyKind, ProxyParseError};
pub use url::{Scheme, UrlError, UserInfo, WsUrl};
