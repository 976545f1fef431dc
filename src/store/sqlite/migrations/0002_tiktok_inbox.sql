-- CreatorFlow store on SQLite, schema version 2: the durable webhook inbox
-- of `creatorflow serve`, the per-order event-time guard, and cursors.

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

-- The newest event applied to each TikTok order: (update_time, rank).
CREATE TABLE tiktok_order_events (
    user_id         TEXT    NOT NULL,
    tiktok_order_id TEXT    NOT NULL,
    event_time      INTEGER NOT NULL,
    event_rank      INTEGER NOT NULL,
    PRIMARY KEY (user_id, tiktok_order_id)
) STRICT, WITHOUT ROWID;

-- Named positions (the reconciliation poll's high-water mark).
CREATE TABLE tiktok_cursors (
    user_id TEXT    NOT NULL,
    name    TEXT    NOT NULL,
    value   INTEGER NOT NULL,
    PRIMARY KEY (user_id, name)
) STRICT, WITHOUT ROWID;
