//! The accept loop the API and the sink share.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tagwire_pipeline::log_limit;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The first wait after a failed accept.
const ACCEPT_BACKOFF_FLOOR: Duration = Duration::from_millis(50);
/// The longest wait between failed accepts.
const ACCEPT_BACKOFF_CEILING: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` until `shutdown` becomes true, running `handle` for
/// each in a task of its own. `what` names the server in logs.
pub async fn accept_until<F, Fut>(
    what: &'static str,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = ACCEPT_BACKOFF_FLOOR;
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, peer)) => {
                    backoff = ACCEPT_BACKOFF_FLOOR;
                    // Small frames (pings, pongs, API answers) must not wait for Nagle.
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(handle(tcp, peer));
                }
                Err(e) => {
                    // Out of file descriptors, typically: back off (doubling) instead of
                    // spinning, and say so once a minute, not per attempt.
                    log_limit::global().warn(
                        what,
                        "accept failed",
                        &format!("{what}: accept failed: {e}; retrying in {} ms", backoff.as_millis()),
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_CEILING);
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}
