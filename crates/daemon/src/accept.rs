//! The accept loop the API and the sink share.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::warn;

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
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, peer)) => {
                    // Small frames (pings, pongs, API answers) must not wait for Nagle.
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(handle(tcp, peer));
                }
                Err(e) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    warn!(error = %e, "{what}: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}
