//! Pushes one group snapshot, encoded as Neuron's values-format JSON, to a WebSocket
//! server over ws:// or wss://, then pings and waits for the Pong: a server answers a
//! Ping after reading everything sent before it, so the Pong confirms the message.
//!
//! ```text
//! cargo run -p tagwire-ws-client --example push -- URL [--ca FILE] [--cert FILE --key FILE]
//!     [--keypass-env VARIABLE] [--server-name NAME]
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tagwire_encode::{EncodeOptions, Encoder};
use tagwire_model::{Snapshot, Tag, Value};
use tagwire_tls_config::{build_client_config, PasswordSource, TlsParams};
use tagwire_ws_client::{connect, ConnectOptions, Event, FrameKind, Scheme, WsUrl};

/// The command line: the URL, then the TLS files of a wss:// URL.
#[derive(Default)]
pub struct Args {
    url: String,
    tls: TlsParams,
    server_name: Option<String>,
}

impl Args {
    /// Reads `URL [--ca F] [--cert F] [--key F] [--keypass-env V] [--server-name N]`.
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args::default();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--ca" => parsed.tls.ca = Some(value()?),
                "--cert" => parsed.tls.cert = Some(value()?),
                "--key" => parsed.tls.key = Some(value()?),
                "--keypass-env" => parsed.tls.keypass = Some(PasswordSource::env(value()?)),
                "--server-name" => parsed.server_name = Some(value()?),
                url if parsed.url.is_empty() && !url.starts_with("--") => parsed.url = arg,
                other => return Err(format!("unexpected argument {other:?}")),
            }
        }
        if parsed.url.is_empty() {
            return Err("usage: push URL [--ca FILE] [--cert FILE --key FILE] \
                        [--keypass-env VARIABLE] [--server-name NAME]"
                .into());
        }
        Ok(parsed)
    }
}

/// What one run did.
pub struct Pushed {
    /// The message as sent.
    pub message: Vec<u8>,
    /// From sending the Ping to its Pong.
    pub confirmed_in: Duration,
}

/// Connects, sends one snapshot, pings, waits for the Pong, closes.
pub async fn push(args: Args) -> Result<Pushed, Box<dyn std::error::Error>> {
    let url = WsUrl::parse(&args.url)?;
    let mut options = ConnectOptions::default();
    if url.scheme() == Scheme::Wss {
        options = options.with_tls(build_client_config(&args.tls)?);
    }
    if let Some(name) = args.server_name {
        options = options.with_server_name(name);
    }

    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let snapshot = Snapshot::new("plc-1", "line-a", now_ms)
        .with_tag(Tag::value("temperature", Value::Float(21.5)))
        .with_tag(Tag::value("running", Value::Bool(true)))
        .with_tag(Tag::error("pressure", 3002));
    let message = Encoder::new(EncodeOptions::default())
        .encode_to_vec(&snapshot)
        .ok_or("the snapshot has nothing to send")?;

    let mut conn = connect(&url, &options).await?;
    conn.send(FrameKind::Text, &message).await?;
    conn.flush().await?;
    let sent_at = std::time::Instant::now();
    conn.ping(b"push-1").await?;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match conn.next_event().await {
                Some(Event::Pong(payload)) if payload == b"push-1" => return Ok(()),
                Some(Event::Closed { code, reason }) => {
                    return Err(format!(
                        "the server closed ({code:?} {reason}) before the Pong"
                    ))
                }
                Some(Event::Failed(error)) => return Err(error.to_string()),
                None => return Err("the connection ended before the Pong".to_owned()),
                Some(_) => {} // another Pong, or a message from the server
            }
        }
    })
    .await
    .map_err(|_| "no Pong within 10 s")??;
    let confirmed_in = sent_at.elapsed();
    conn.close(1000, "done").await?;
    Ok(Pushed {
        message,
        confirmed_in,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse(std::env::args().skip(1))?;
    let pushed = push(args).await?;
    println!("sent {}", String::from_utf8_lossy(&pushed.message));
    println!(
        "confirmed by the server's Pong after {:?}",
        pushed.confirmed_in
    );
    Ok(())
}
