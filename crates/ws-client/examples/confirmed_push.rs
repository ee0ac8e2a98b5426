//! Pushes COUNT payloads to a WebSocket server with confirmed delivery and prints
//! how many the server confirmed.
//!
//! ```text
//! cargo run -p tagwire-ws-client --example confirmed_push -- URL [COUNT] \
//!     [--ca CA.pem] [--cert CLIENT.pem --key CLIENT-KEY.pem] [--server-name NAME]
//! ```
//!
//! Try it against `tagwire sink --listen 127.0.0.1:9001` (add `--tls-cert`/`--tls-key`
//! for `wss://`). Each payload is `{"n":SEQ}`; batches of up to 100 go out with their
//! confirming Ping in one write. When the connection drops, the unconfirmed payloads
//! are taken back and sent again, first, on a new connection (up to 3 connections).

use std::error::Error;

use bytes::Bytes;
use tagwire_tls_config::{build_client_config, TlsParams};
use tagwire_ws_client::{
    connect, Confirm, ConnectOptions, Delivery, DeliveryEvent, FrameKind, WsUrl,
};

/// Payloads per batch (one write, one Ping).
const BATCH: u64 = 100;
/// Connections tried before giving up with payloads still unconfirmed.
const CONNECTIONS: usize = 3;

/// The command line: the URL, the count, and the TLS files.
pub struct Args {
    url: WsUrl,
    count: u64,
    tls: TlsParams,
    server_name: Option<String>,
}

impl Args {
    /// Reads `URL [COUNT] [--ca F] [--cert F --key F] [--server-name N]`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        const USAGE: &str = "usage: confirmed_push URL [COUNT] [--ca FILE] [--cert FILE --key FILE] [--server-name NAME]";
        let mut args = args.into_iter();
        let mut url = None;
        let mut count = None;
        let mut tls = TlsParams::default();
        let mut server_name = None;
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| format!("{name} needs a value; {USAGE}"))
            };
            match arg.as_str() {
                "--ca" => tls.ca = Some(value("--ca")?),
                "--cert" => tls.cert = Some(value("--cert")?),
                "--key" => tls.key = Some(value("--key")?),
                "--server-name" => server_name = Some(value("--server-name")?),
                _ if url.is_none() => {
                    url = Some(WsUrl::parse(&arg).map_err(|e| format!("URL: {e}"))?)
                }
                _ if count.is_none() => {
                    count =
                        Some(arg.parse().map_err(|_| {
                            format!("COUNT: {arg:?} is not a whole number; {USAGE}")
                        })?)
                }
                _ => return Err(format!("unexpected argument {arg:?}; {USAGE}")),
            }
        }
        Ok(Args {
            url: url.ok_or(USAGE)?,
            count: count.unwrap_or(1000),
            tls,
            server_name,
        })
    }
}

/// Pushes `args.count` payloads; returns how many the server confirmed.
pub async fn run(args: Args) -> Result<u64, Box<dyn Error>> {
    let mut options = ConnectOptions::default();
    let wants_tls = args.tls.ca.is_some() || args.tls.cert.is_some();
    if wants_tls || args.url.scheme() == tagwire_ws_client::Scheme::Wss {
        options = options.with_tls(build_client_config(&args.tls)?);
    }
    if let Some(name) = args.server_name {
        options = options.with_server_name(name);
    }
    let mut confirmed = 0;
    let mut next = 1;
    // Taken back from a dropped connection: sent first on the next one.
    let mut resend: Vec<(u64, Bytes)> = Vec::new();
    for _ in 0..CONNECTIONS {
        let conn = connect(&args.url, &options).await?;
        let mut delivery = Delivery::new(conn, FrameKind::Text, Confirm::ByPong);
        if !resend.is_empty() {
            delivery.send_batch(std::mem::take(&mut resend)).await?;
        }
        loop {
            if next <= args.count {
                let last = (next + BATCH - 1).min(args.count);
                let batch = (next..=last).map(|n| (n, Bytes::from(format!(r#"{{"n":{n}}}"#))));
                if let Err(e) = delivery.send_batch(batch).await {
                    eprintln!("write failed: {e}");
                    resend = delivery.take_unconfirmed();
                    break;
                }
                next = last + 1;
            } else if delivery.unconfirmed() == 0 {
                let (closed, _) = delivery.close(1000, "done").await;
                closed?;
                return Ok(confirmed);
            }
            // Take what the server said; wait for it only when nothing is left to send.
            let event = if next <= args.count {
                delivery.try_next_event()
            } else {
                delivery.next_event().await
            };
            match event {
                Some(DeliveryEvent::Confirmed { messages, .. }) => confirmed += messages as u64,
                Some(DeliveryEvent::Message { payload, .. }) => {
                    eprintln!("the server sent {} bytes", payload.len())
                }
                Some(DeliveryEvent::Closed { code, reason }) => {
                    eprintln!("the server closed the connection: {code:?} {reason}");
                    resend = delivery.take_unconfirmed();
                    break;
                }
                Some(DeliveryEvent::Failed(e)) => {
                    eprintln!("the connection failed: {e}");
                    resend = delivery.take_unconfirmed();
                    break;
                }
                None if next > args.count => {
                    resend = delivery.take_unconfirmed();
                    break;
                }
                None => {}
            }
        }
        eprintln!(
            "{} payloads unconfirmed: reconnecting to send them again",
            resend.len()
        );
    }
    Err(format!(
        "{confirmed} of {} confirmed after {CONNECTIONS} connections",
        args.count
    )
    .into())
}

#[tokio::main]
async fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let count = args.count;
    match run(args).await {
        Ok(confirmed) => println!("confirmed {confirmed} of {count}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
