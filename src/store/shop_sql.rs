//! The SQL of connected shops and authorization states, once for both SQL
//! backends: the statements (their `$N` placeholders mean the same to
//! SQLite, through sqlx, as to PostgreSQL) and their values in binding
//! order. Only the stored form of a time differs (milliseconds in SQLite,
//! `timestamptz` in PostgreSQL): [`bind`] takes it as a function.

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Type};

use super::decode::SHOP_COLUMNS;
use super::shops::state_taken;
use super::{ShopAuth, StoreError, TokenSet};

/// A statement with its arguments, of database `DB`.
pub(crate) type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments>;

/// Inserts or replaces one shop of a tenant ([`shop_values`]).
pub(crate) const PUT_SHOP: &str = "INSERT INTO tiktok_shops (user_id, shop_id, cipher, name, \
    region, access_token, access_expires_at, refresh_token, refresh_expires_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
    ON CONFLICT (user_id, shop_id) DO UPDATE SET cipher = excluded.cipher, \
    name = excluded.name, region = excluded.region, access_token = excluded.access_token, \
    access_expires_at = excluded.access_expires_at, refresh_token = excluded.refresh_token, \
    refresh_expires_at = excluded.refresh_expires_at, updated_at = excluded.updated_at";

/// The compare-and-set of a rotation ([`rotation_values`]).
pub(crate) const ROTATE_TOKENS: &str = "UPDATE tiktok_shops SET access_token = $1, \
    access_expires_at = $2, refresh_token = $3, refresh_expires_at = $4, updated_at = $5 \
    WHERE user_id = $6 AND refresh_token = $7";

/// Issues a state ([`state_values`]). A plain insert (see
/// [`state_insert_error`]).
pub(crate) const PUT_STATE: &str =
    "INSERT INTO tiktok_auth_states (state, user_id, expires_at) VALUES ($1, $2, $3)";

/// Takes a state (`$1`): its tenant and expiry, once.
pub(crate) const TAKE_STATE: &str =
    "DELETE FROM tiktok_auth_states WHERE state = $1 RETURNING user_id, expires_at";

/// The tenant's (`$1`) shop `$2`.
pub(crate) fn select_shop() -> String {
    format!("SELECT {SHOP_COLUMNS} FROM tiktok_shops WHERE user_id = $1 AND shop_id = $2")
}

/// The tenant's (`$1`) shops, by `shop_id`.
pub(crate) fn select_shops() -> String {
    format!("SELECT {SHOP_COLUMNS} FROM tiktok_shops WHERE user_id = $1 ORDER BY shop_id")
}

/// A value bound to a statement: text, or a time (whose stored form the
/// backend chooses).
pub(crate) enum Value<'a> {
    /// A text column.
    Text(&'a str),
    /// A time column.
    Time(DateTime<Utc>),
}

/// Binds `values` in order; `time` gives a time its stored form.
pub(crate) fn bind<'a, 'q, DB, T>(
    q: Query<'q, DB>,
    values: impl IntoIterator<Item = Value<'a>>,
    time: impl Fn(DateTime<Utc>) -> T,
) -> Query<'q, DB>
where
    DB: Database,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> T: Encode<'t, DB> + Type<DB>,
{
    values.into_iter().fold(q, |q, v| match v {
        Value::Text(text) => q.bind(text),
        Value::Time(t) => q.bind(time(t)),
    })
}

/// [`PUT_SHOP`]'s values.
pub(crate) fn shop_values<'a>(tenant: &'a str, s: &'a ShopAuth) -> [Value<'a>; 10] {
    use Value::{Text, Time};
    [
        Text(tenant),
        Text(&s.shop_id),
        Text(&s.cipher),
        Text(&s.name),
        Text(&s.region),
        Text(&s.tokens.access_token),
        Time(s.tokens.access_expires_at),
        Text(&s.tokens.refresh_token),
        Time(s.tokens.refresh_expires_at),
        Time(s.updated_at),
    ]
}

/// [`ROTATE_TOKENS`]'s values.
pub(crate) fn rotation_values<'a>(
    tenant: &'a str,
    previous_refresh_token: &'a str,
    t: &'a TokenSet,
    now: DateTime<Utc>,
) -> [Value<'a>; 7] {
    use Value::{Text, Time};
    [
        Text(&t.access_token),
        Time(t.access_expires_at),
        Text(&t.refresh_token),
        Time(t.refresh_expires_at),
        Time(now),
        Text(tenant),
        Text(previous_refresh_token),
    ]
}

/// [`PUT_STATE`]'s values.
pub(crate) fn state_values<'a>(
    tenant: &'a str,
    state: &'a str,
    expires_at: DateTime<Utc>,
) -> [Value<'a>; 3] {
    [
        Value::Text(state),
        Value::Text(tenant),
        Value::Time(expires_at),
    ]
}

/// The error of a failed [`PUT_STATE`]: a state issued already is
/// [`state_taken`] (the database's message would name it).
pub(crate) fn state_insert_error(e: sqlx::Error) -> StoreError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => state_taken(),
        _ => super::error::db_secret("storing an authorization state")(e),
    }
}
