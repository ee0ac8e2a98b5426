//! `tagwire bench`'s baseline: the same encoded messages written as WebSocket frames
//! over plain loopback TCP, with none of tagwire's work around them (no encoding per
//! message, no TLS, no queue, no confirmation), to a reader that only counts bytes.
//! What the pipeline reaches against it is the price of everything tagwire adds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tagwire_encode::{EncodeOptions, Encoder};
use tagwire_model::Snapshot;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::bench::{cpu_seconds, Figures};

/// Frames per write, as the uplink's batches.
const FRAMES_PER_WRITE: usize = 64;

/// Runs the baseline for `seconds` with the messages `pool` encodes to.
pub(super) async fn run(
    options: &EncodeOptions,
    pool: &[Snapshot],
    seconds: u64,
) -> Result<Figures> {
    let frames = frames(options, pool);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let received = Arc::new(AtomicU64::new(0));
    let reader = {
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await?;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = socket.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<(), std::io::Error>(());
                }
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
        })
    };
    let mut socket = TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    let duration = Duration::from_secs(seconds.max(1));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let (mut messages, mut payload_bytes, mut wire_bytes) = (0u64, 0u64, 0u64);
    let mut batch = Vec::with_capacity(FRAMES_PER_WRITE * frames[0].0.len());
    let mut next = 0;
    while started.elapsed() < duration {
        batch.clear();
        for _ in 0..FRAMES_PER_WRITE {
            let (frame, payload_len) = &frames[next % frames.len()];
            batch.extend_from_slice(frame);
            payload_bytes += *payload_len as u64;
            next += 1;
        }
        socket.write_all(&batch).await?;
        messages += FRAMES_PER_WRITE as u64;
        wire_bytes += batch.len() as u64;
    }
    socket.shutdown().await?;
    drop(socket);
    reader.await??;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        received.load(Ordering::Relaxed) == wire_bytes,
        "raw TCP baseline: {wire_bytes} bytes written but {} read",
        received.load(Ordering::Relaxed)
    );
    Ok(Figures {
        scheme: "raw",
        messages,
        bytes: payload_bytes,
        seconds,
        cpu_seconds: cpu_seconds() - cpu_before,
    })
}

/// Each snapshot of `pool` encoded and framed as a masked binary client frame, with
/// its payload length.
fn frames(options: &EncodeOptions, pool: &[Snapshot]) -> Vec<(Vec<u8>, usize)> {
    let mut encoder = Encoder::new(*options);
    pool.iter()
        .filter_map(|snapshot| {
            let mut payload = Vec::new();
            // Nothing to send (every tag an error, upload_err off) is no message.
            if !encoder.encode(snapshot, &mut payload) {
                return None;
            }
            Some((client_frame(&payload), payload.len()))
        })
        .collect()
}

/// A final binary frame with a mask, as RFC 6455 requires of clients.
fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x82];
    let len = payload.len();
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&len16.to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x5a, 0xa5, 0x3c, 0xc3];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_masked_payload_with_the_right_length() {
        for len in [5usize, 126, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let frame = client_frame(&payload);
            let (header, mask_at) = match len {
                5 => (vec![0x82, 0x85], 2),
                126 => (vec![0x82, 0xFE, 0, 126], 4),
                _ => {
                    let mut h = vec![0x82, 0xFF];
                    h.extend_from_slice(&(len as u64).to_be_bytes());
                    (h, 10)
                }
            };
            assert_eq!(frame[..mask_at], header[..]);
            let mask = &frame[mask_at..mask_at + 4];
            let unmasked: Vec<u8> = frame[mask_at + 4..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(unmasked, payload);
        }
    }
}
