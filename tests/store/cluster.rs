//! Conformance of [`Cluster`]: singleton leases with fencing tokens and
//! shared values, the same on every backend (`store/cluster.rs`).

use std::sync::Arc;

use chrono::TimeDelta;
use creatorflow::store::StoreError;

use super::at;
use super::suite::Backend;

/// One holder at a time; a renewal keeps the fence, a takeover after the
/// lease lapsed moves it on, a release frees the lease at once (and the
/// fence still grows), a stale holder cannot release; names are separate.
pub async fn leases_have_one_holder_and_fence_handovers<S: Backend>(s: Arc<S>) {
    let ttl = TimeDelta::minutes(1);
    assert_eq!(
        s.lease_acquire("job", "a", ttl, at(0)).await.unwrap(),
        Some(1)
    );
    assert_eq!(s.lease_acquire("job", "b", ttl, at(0)).await.unwrap(), None);
    assert_eq!(
        s.lease_holder("job", at(0)).await.unwrap(),
        Some(("a".to_owned(), 1))
    );
    // Renewed: same fence, later expiry.
    assert_eq!(
        s.lease_acquire("job", "a", ttl, at(1)).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        s.lease_acquire("job", "b", ttl, at(1)).await.unwrap(),
        None,
        "renewed until 2"
    );
    // Lapsed: taken over, fence moved on; the old holder is refused.
    assert_eq!(
        s.lease_acquire("job", "b", ttl, at(2)).await.unwrap(),
        Some(2)
    );
    assert_eq!(s.lease_acquire("job", "a", ttl, at(2)).await.unwrap(), None);
    assert!(
        !s.lease_release("job", "a", 1, at(2)).await.unwrap(),
        "a lost it"
    );
    // Released: free at once, and the next holder's fence is larger.
    assert!(s.lease_release("job", "b", 2, at(2)).await.unwrap());
    assert_eq!(s.lease_holder("job", at(2)).await.unwrap(), None);
    assert_eq!(
        s.lease_acquire("job", "a", ttl, at(2)).await.unwrap(),
        Some(3)
    );
    // Another name is another lease.
    assert_eq!(
        s.lease_acquire("other", "b", ttl, at(2)).await.unwrap(),
        Some(1)
    );
    assert_eq!(s.lease_holder("none", at(2)).await.unwrap(), None);
    assert!(matches!(
        s.lease_acquire("", "a", ttl, at(0)).await,
        Err(StoreError::Invalid { .. })
    ));
}

/// Concurrent acquires of one free lease: exactly one wins.
pub async fn lease_acquires_race_to_one_winner<S: Backend>(s: Arc<S>) {
    let ttl = TimeDelta::minutes(1);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.lease_acquire("race", &format!("r{i}"), ttl, at(0))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().is_some() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}

/// Shared values: absent until written, then the last value with a
/// revision counting the writes.
pub async fn shared_values_count_revisions<S: Backend>(s: Arc<S>) {
    assert_eq!(s.shared("rules").await.unwrap(), None);
    assert_eq!(s.set_shared("rules", "{\"v\":1}", at(0)).await.unwrap(), 1);
    assert_eq!(s.set_shared("rules", "{\"v\":2}", at(1)).await.unwrap(), 2);
    let v = s.shared("rules").await.unwrap().unwrap();
    assert_eq!(
        (v.value.as_str(), v.revision, v.at),
        ("{\"v\":2}", 2, at(1))
    );
    assert_eq!(s.set_shared("other", "x", at(1)).await.unwrap(), 1);
}

/// Inbox appends crossing each other (the same notifications delivered to
/// two replicas, batched in opposite orders), many at once: none fails
/// (no deadlock reaches the caller) and each key is stored once.
pub async fn crossing_inbox_appends_never_fail<S: Backend>(s: Arc<S>) {
    use creatorflow::store::InboxEntry;
    let entry = |k: usize| InboxEntry {
        dedup_key: format!("cross-{k}"),
        topic: 1,
        body: format!("{{\"n\":{k}}}").into_bytes(),
        received_at: at(0),
    };
    for round in 0..10 {
        let keys: Vec<usize> = (round * 20..round * 20 + 20).collect();
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let s = s.clone();
                let mut batch: Vec<InboxEntry> = keys.iter().map(|&k| entry(k)).collect();
                if i % 2 == 1 {
                    batch.reverse();
                }
                batch.rotate_left(i * 3 % 20);
                tokio::spawn(async move { s.inbox_append("t1", &batch).await })
            })
            .collect();
        let mut new = 0;
        for t in tasks {
            let stored = t.await.unwrap().expect("a crossing append never fails");
            new += stored.iter().filter(|n| **n).count();
        }
        assert_eq!(new, 20, "round {round}: each key new exactly once");
    }
    assert_eq!(s.inbox_stats("t1").await.unwrap().received, 200);
}
