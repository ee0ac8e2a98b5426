//! Sends 100 messages through a `Delivery` and waits until the server's Pongs confirm
//! them all: `cargo run -p tagwire-ws-client --example deliver -- ws://127.0.0.1:9001/push`.

use bytes::Bytes;
use tagwire_ws_client::{
    connect, Confirm, ConnectOptions, Delivery, DeliveryEvent, FrameKind, WsUrl,
};

/// Connects to `url`, sends `{"n":1}` to `{"n":100}` in one batch, returns the highest
/// sequence number confirmed once none is left unconfirmed.
pub async fn deliver(url: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let conn = connect(&WsUrl::parse(url)?, &ConnectOptions::default()).await?;
    let mut delivery = Delivery::new(conn, FrameKind::Text, Confirm::ByPong);
    delivery
        .send_batch((1..=100u64).map(|n| (n, Bytes::from(format!(r#"{{"n":{n}}}"#)))))
        .await?;
    while delivery.unconfirmed() > 0 {
        match delivery.next_event().await {
            Some(DeliveryEvent::Confirmed { through, .. }) => println!("confirmed up to {through}"),
            Some(DeliveryEvent::Message { payload, .. }) => {
                println!("{} bytes from the server", payload.len())
            }
            _ => {
                // Closed or failed: these go out again on the next connection.
                let resend = delivery.take_unconfirmed();
                return Err(format!("connection lost, {} messages to resend", resend.len()).into());
            }
        }
    }
    let through = delivery.last_confirmed().unwrap_or(0);
    delivery.close(1000, "done").await.0?;
    Ok(through)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1);
    deliver(url.as_deref().unwrap_or("ws://127.0.0.1:9001/push")).await?;
    Ok(())
}
