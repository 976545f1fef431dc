//! Retrying a transaction PostgreSQL aborted to break a deadlock (`40P01`)
//! or a serialization failure (`40001`).
//!
//! Batches that another process may write at the same time (inbox appends
//! of duplicate deliveries landing on two replicas, completions of entries
//! two processors hold after a lease lapsed, event-time guard rows of the
//! same TikTok orders) take their row locks in one global order: sorted
//! keys. Two batches that overlap then wait for each other in one
//! direction and cannot deadlock. Sorting covers every lock this store
//! takes; a deadlock that still happens (locks taken by triggers, or by a
//! database that someone else writes to) aborts one transaction, which
//! wrote nothing: it is run again here, a few times, with a short pause,
//! before the caller ever sees an error (a webhook's 503).

use std::future::Future;
use std::time::Duration;

use crate::store::{Result, StoreError};

/// How many times a transaction is run at most.
const ATTEMPTS: u32 = 5;

/// The pause before the second run; doubled before each further one.
const FIRST_PAUSE: Duration = Duration::from_millis(5);

/// Whether `e` is PostgreSQL aborting a transaction that may succeed when
/// run again: a deadlock (`40P01`) or a serialization failure (`40001`).
pub(super) fn is_retryable(e: &StoreError) -> bool {
    let StoreError::Database {
        source: Some(source),
        ..
    } = e
    else {
        return false;
    };
    match source.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(d)) => {
            d.code().is_some_and(|c| matches!(&*c, "40P01" | "40001"))
        }
        _ => false,
    }
}

/// Runs `attempt` (one whole transaction) until it succeeds, fails for
/// another reason, or [`ATTEMPTS`] runs were aborted by the database.
pub(super) async fn retrying<T, F: Future<Output = Result<T>>>(
    mut attempt: impl FnMut() -> F,
) -> Result<T> {
    let mut pause = FIRST_PAUSE;
    let mut run = 1;
    loop {
        match attempt().await {
            Err(e) if run < ATTEMPTS && is_retryable(&e) => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                run += 1;
            }
            other => return other,
        }
    }
}

/// The positions of `items` sorted by `key` (stable: items of equal keys
/// keep their order), the one global order batches take their locks in.
pub(super) fn lock_order<T, K: Ord>(items: &[T], key: impl Fn(&T) -> K) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| key(&items[i]));
    order
}

/// Results computed in `order` (from [`lock_order`]) put back in the
/// items' own order.
pub(super) fn unsort<R: Default + Clone>(order: &[usize], sorted: Vec<R>) -> Vec<R> {
    let mut out = vec![R::default(); order.len()];
    for (&i, r) in order.iter().zip(sorted) {
        out[i] = r;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_order_is_stable_and_unsort_restores() {
        let keys = ["b", "a", "b", "a"];
        let order = lock_order(&keys, |k| *k);
        assert_eq!(order, vec![1, 3, 0, 2]);
        let sorted: Vec<usize> = order.clone();
        assert_eq!(unsort(&order, sorted), vec![0, 1, 2, 3]);
    }

    #[test]
    fn only_aborts_are_retried() {
        assert!(!is_retryable(&StoreError::database("x")));
        assert!(!is_retryable(&StoreError::invalid("x")));
    }
}
