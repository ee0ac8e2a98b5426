//! A biased select of two futures, so that the library needs no `tokio::select!` (and
//! with it no tokio `macros` feature, which pulls proc-macro crates into every user's
//! build). More branches nest: `first(a, first(b, c))` polls `a`, then `b`, then `c`.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

/// Which future of [`first`] completed, with its output.
pub(crate) enum First<A, B> {
    /// The first future (polled first on every wake-up).
    A(A),
    /// The second one.
    B(B),
}

/// Completes with the first of `a` and `b` to complete, polling `a` first on every
/// wake-up (like `tokio::select! { biased; .. }`); the other is dropped. Pass `&mut f` to
/// keep a pinned future alive for a later call, as with `select!`.
pub(crate) async fn first<A: Future, B: Future>(a: A, b: B) -> First<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(output) = a.as_mut().poll(cx) {
            return Poll::Ready(First::A(output));
        }
        b.as_mut().poll(cx).map(First::B)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_ready_future_wins_and_ties_go_to_the_first() {
        assert!(matches!(first(async { 1 }, async { 2 }).await, First::A(1)));
        assert!(matches!(
            first(std::future::pending::<()>(), async { 2 }).await,
            First::B(2)
        ));
        // A future kept across calls is not restarted: the second call finds it ready.
        let mut later = pin!(tokio::time::sleep(std::time::Duration::from_millis(20)));
        assert!(matches!(first(&mut later, async {}).await, First::B(())));
        assert!(matches!(
            first(&mut later, std::future::pending::<()>()).await,
            First::A(())
        ));
    }
}
