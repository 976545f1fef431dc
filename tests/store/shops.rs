//! Conformance tests of [`ShopStore`]: connected shops, their tokens and
//! single-use authorization states, generic over the backend (run for each
//! by `conformance!` through `suite`'s re-export).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::store::{ShopAuth, ShopStore, StoreError, TokenSet};

use super::at;
use super::suite::Backend;

/// Tokens named after `tag` (`access-TAG`, `refresh-TAG`), expiring in a
/// week and a year after `at(0)`.
pub fn tokens(tag: &str) -> TokenSet {
    TokenSet {
        access_token: format!("access-{tag}"),
        access_expires_at: at(7 * 24 * 60),
        refresh_token: format!("refresh-{tag}"),
        refresh_expires_at: at(365 * 24 * 60),
    }
}

/// Shop `id` (`cipher-ID`, `Shop ID`, US) holding `tokens`, written at `at(0)`.
pub fn shop(id: &str, tokens: TokenSet) -> ShopAuth {
    ShopAuth {
        shop_id: id.into(),
        cipher: format!("cipher-{id}"),
        name: format!("Shop {id}"),
        region: "US".into(),
        tokens,
        updated_at: at(0),
    }
}

/// The tenant `state` names, taking it at `now`.
pub async fn taken<S: ShopStore>(s: &S, state: &str, now: DateTime<Utc>) -> Option<String> {
    s.take_auth_state(state, now)
        .await
        .expect("take_auth_state")
}

/// `t` plus a sub-millisecond part (which the store truncates).
fn fine(t: DateTime<Utc>) -> DateTime<Utc> {
    t + TimeDelta::nanoseconds(123_456_789)
}

/// Put, get, list (by `shop_id`), replace by `shop_id`; times to the
/// millisecond; bad input refused, typed.
pub async fn shops_put_get_list_replace<S: Backend>(s: Arc<S>) {
    assert!(s.shops("t1").await.unwrap().is_empty());
    assert_eq!(s.shop("t1", "s1").await.unwrap(), None);
    let mut s2 = shop("s2", tokens("a"));
    s2.updated_at = fine(at(1));
    s2.tokens.access_expires_at = fine(at(60));
    let s1 = shop("s1", tokens("a"));
    s.put_shops("t1", &[s2.clone(), s1.clone()]).await.unwrap();
    let mut s2_stored = s2.clone();
    s2_stored.updated_at = "2025-06-12T10:01:00.123Z".parse().unwrap();
    s2_stored.tokens.access_expires_at = "2025-06-12T11:00:00.123Z".parse().unwrap();
    assert_eq!(s.shop("t1", "s2").await.unwrap(), Some(s2_stored.clone()));
    assert_eq!(
        s.shops("t1").await.unwrap(),
        vec![s1.clone(), s2_stored.clone()],
        "by shop_id"
    );
    // Replaced by shop_id: the other is untouched.
    let mut renamed = shop("s1", tokens("b"));
    renamed.name = "Lamps & Co — ünïcödé 'quoted'".into();
    renamed.region = "GB".into();
    renamed.updated_at = at(2);
    s.put_shops("t1", std::slice::from_ref(&renamed))
        .await
        .unwrap();
    assert_eq!(
        s.shops("t1").await.unwrap(),
        vec![renamed.clone(), s2_stored]
    );
    s.put_shops("t1", &[]).await.unwrap();
    assert_eq!(s.shops("t1").await.unwrap().len(), 2);
    // Refused, typed, writing nothing of the batch.
    for bad in [shop("", tokens("c")), {
        let mut b = shop("s3", tokens("c"));
        b.tokens.access_token = "secret\0token".into();
        b
    }] {
        let err = s
            .put_shops("t1", &[shop("s4", tokens("c")), bad])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        assert!(!format!("{err} {err:?}").contains("secret"), "{err:?}");
    }
    assert_eq!(s.shop("t1", "s4").await.unwrap(), None);
    assert!(matches!(
        s.put_shops("", &[shop("s5", tokens("c"))]).await,
        Err(StoreError::Invalid { .. })
    ));
}

/// Another tenant sees nothing: get, list, rotate; a shop of the same id
/// is its own.
pub async fn shops_are_tenant_scoped<S: Backend>(s: Arc<S>) {
    let mine = shop("s1", tokens("a"));
    s.put_shops("t1", std::slice::from_ref(&mine))
        .await
        .unwrap();
    assert_eq!(s.shop("t2", "s1").await.unwrap(), None);
    assert!(s.shops("t2").await.unwrap().is_empty());
    assert_eq!(
        s.rotate_tokens("t2", "refresh-a", &tokens("evil"), at(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.shop("t1", "s1").await.unwrap(), Some(mine.clone()));
    // The same shop connected by another tenant: two records.
    let theirs = shop("s1", tokens("z"));
    s.put_shops("t2", std::slice::from_ref(&theirs))
        .await
        .unwrap();
    assert_eq!(s.shop("t1", "s1").await.unwrap(), Some(mine));
    assert_eq!(s.shops("t2").await.unwrap(), vec![theirs]);
}

/// Rotation is a compare-and-set on the refresh token: every shop of the
/// tenant sharing it changes, once; a stale one changes nothing; of two
/// racing rotations one wins.
pub async fn rotate_tokens_is_compare_and_set<S: Backend>(s: Arc<S>) {
    let other = shop("s3", tokens("other"));
    s.put_shops(
        "t1",
        &[
            shop("s1", tokens("a")),
            shop("s2", tokens("a")),
            other.clone(),
        ],
    )
    .await
    .unwrap();
    let mut next = tokens("b");
    next.access_expires_at = fine(at(90));
    assert_eq!(
        s.rotate_tokens("t1", "refresh-a", &next, fine(at(5)))
            .await
            .unwrap(),
        2
    );
    for id in ["s1", "s2"] {
        let read = s.shop("t1", id).await.unwrap().unwrap();
        assert_eq!(read.tokens.access_token, "access-b");
        assert_eq!(read.tokens.refresh_token, "refresh-b");
        assert_eq!(
            read.tokens.access_expires_at.to_rfc3339(),
            "2025-06-12T11:30:00.123+00:00"
        );
        assert_eq!(read.tokens.refresh_expires_at, next.refresh_expires_at);
        assert_eq!(
            read.updated_at.to_rfc3339(),
            "2025-06-12T10:05:00.123+00:00"
        );
        assert_eq!(
            read.cipher,
            format!("cipher-{id}"),
            "only the tokens change"
        );
    }
    assert_eq!(s.shop("t1", "s3").await.unwrap(), Some(other));
    // The previous token no longer matches.
    assert_eq!(
        s.rotate_tokens("t1", "refresh-a", &tokens("c"), at(6))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.shop("t1", "s1")
            .await
            .unwrap()
            .unwrap()
            .tokens
            .refresh_token,
        "refresh-b"
    );
    // Racing rotations from the same token: exactly one changes the shops.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let won = s
                    .rotate_tokens("t1", "refresh-b", &tokens(&format!("r{i}")), at(7))
                    .await
                    .expect("rotate");
                (i, won)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (i, won) = t.await.expect("task");
        assert!(won == 0 || won == 2, "{won}");
        if won > 0 {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let want = format!("refresh-r{}", winners[0]);
    for id in ["s1", "s2"] {
        let read = s.shop("t1", id).await.unwrap().unwrap();
        assert_eq!(read.tokens.refresh_token, want);
    }
}

/// An authorization state is taken once, by its state alone, before it
/// expires; expired, used and unknown states are `None` (an expired one is
/// consumed too); one state cannot be issued twice.
pub async fn auth_states_are_single_use<S: Backend>(s: Arc<S>) {
    s.put_auth_state("t1", "state-1", at(10)).await.unwrap();
    s.put_auth_state("t2", "state-2", fine(at(10)))
        .await
        .unwrap();
    assert_eq!(
        taken(s.as_ref(), "state-1", at(1)).await.as_deref(),
        Some("t1")
    );
    assert_eq!(taken(s.as_ref(), "state-1", at(1)).await, None);
    // Valid until its expiry (to the millisecond), not at it.
    let just_before = fine(at(10)) - TimeDelta::milliseconds(1);
    assert_eq!(
        taken(s.as_ref(), "state-2", just_before).await.as_deref(),
        Some("t2")
    );
    s.put_auth_state("t1", "state-3", at(10)).await.unwrap();
    assert_eq!(taken(s.as_ref(), "state-3", at(10)).await, None);
    assert_eq!(
        taken(s.as_ref(), "state-3", at(0)).await,
        None,
        "the expired state was consumed"
    );
    assert_eq!(taken(s.as_ref(), "never-issued", at(0)).await, None);
    // Issued twice (even by another tenant): refused, the first one stands.
    s.put_auth_state("t1", "state-4", at(10)).await.unwrap();
    let err = s.put_auth_state("t2", "state-4", at(10)).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    assert!(!err.to_string().contains("state-4"), "{err}");
    for bad in ["", "nul\0state"] {
        assert!(matches!(
            s.put_auth_state("t1", bad, at(10)).await,
            Err(StoreError::Invalid { .. })
        ));
    }
    // Racing takes: exactly one gets the tenant.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.take_auth_state("state-4", at(1)).await })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        if let Some(tenant) = t.await.expect("task").expect("take") {
            got.push(tenant);
        }
    }
    assert_eq!(got, vec!["t1".to_owned()]);
}

/// Tokens never show in `Debug` output, stored or not.
pub async fn tokens_are_never_printed<S: Backend>(s: Arc<S>) {
    let auth = shop("s1", tokens("SECRETXYZ"));
    s.put_shops("t1", std::slice::from_ref(&auth))
        .await
        .unwrap();
    let read = s.shop("t1", "s1").await.unwrap();
    let printed = format!("{auth:?} {:?} {read:?}", auth.tokens);
    assert!(!printed.contains("SECRETXYZ"), "{printed}");
    assert!(
        printed.contains("cipher-s1"),
        "the rest is shown: {printed}"
    );
}
