-- CreatorFlow's webhook inbox on SQLite, in a database file of its own
-- (`PATH-inbox` beside the store's `PATH`), inbox schema version 1 (kept in
-- `PRAGMA user_version`). The same table the main file had up to its
-- schema version 4 (migration 0002).

-- Verified TikTok Shop pushes, stored before they are acknowledged and
-- processed afterwards. `claimable_at` is the lease: a claim moves it to the
-- lease's expiry; NULL once processed.
CREATE TABLE tiktok_inbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      TEXT    NOT NULL CHECK (user_id <> ''),
    dedup_key    TEXT    NOT NULL,
    topic        INTEGER NOT NULL,
    body         BLOB    NOT NULL,
    received_at  INTEGER NOT NULL,
    claimable_at INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    processed_at INTEGER,
    outcome      TEXT,
    UNIQUE (user_id, dedup_key),
    CHECK ((processed_at IS NULL) = (claimable_at IS NOT NULL))
) STRICT;

CREATE INDEX tiktok_inbox_pending ON tiktok_inbox (user_id, claimable_at, id)
    WHERE processed_at IS NULL;
