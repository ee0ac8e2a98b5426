//! Helpers of the unit tests.

use std::net::SocketAddr;

use tokio::net::{TcpSocket, TcpStream};

/// An address on `[::1]` where TCP connects hang without an answer, like a host that
/// drops packets: a listener with a backlog of one that never accepts, its queue
/// filled by a few connections (Linux then drops further SYNs). Keep the returned
/// streams alive as long as the address must stay silent.
pub(crate) async fn silent_listener_v6() -> (SocketAddr, Vec<TcpStream>) {
    let socket = TcpSocket::new_v6().expect("IPv6 socket");
    socket.bind("[::1]:0".parse().unwrap()).expect("bind [::1]");
    let listener = socket.listen(1).expect("listen");
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    // Fill the queue: connects succeed until it is full, then hang.
    while let Ok(Ok(stream)) = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        TcpStream::connect(addr),
    )
    .await
    {
        fillers.push(stream);
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    // The listener must stay open (but never accept) for SYNs to be dropped.
    std::mem::forget(listener);
    (addr, fillers)
}
