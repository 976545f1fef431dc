-- CreatorFlow store on PostgreSQL, schema version 3: the durable webhook
-- inbox of `creatorflow serve`, the per-order event-time guard, and cursors.
-- Same meaning as SQLite's migration 0002; tenant isolation as in
-- migration 0002 here (forced row-level security, application role only).

-- Verified TikTok Shop pushes, stored before they are acknowledged and
-- processed afterwards. `claimable_at` is the lease: a claim moves it to the
-- lease's expiry; NULL once processed.
CREATE TABLE tiktok_inbox (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      TEXT        NOT NULL CHECK (user_id <> ''),
    dedup_key    TEXT        NOT NULL,
    topic        BIGINT      NOT NULL CHECK (topic >= 0),
    body         BYTEA       NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    claimable_at TIMESTAMPTZ,
    attempts     BIGINT      NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    processed_at TIMESTAMPTZ,
    outcome      TEXT,
    UNIQUE (user_id, dedup_key),
    CHECK ((processed_at IS NULL) = (claimable_at IS NOT NULL))
);

CREATE INDEX tiktok_inbox_pending ON tiktok_inbox (user_id, claimable_at, id)
    WHERE processed_at IS NULL;

-- The newest event applied to each TikTok order: (update_time, rank).
CREATE TABLE tiktok_order_events (
    user_id         TEXT   NOT NULL CHECK (user_id <> ''),
    tiktok_order_id TEXT   NOT NULL,
    event_time      BIGINT NOT NULL,
    event_rank      SMALLINT NOT NULL,
    PRIMARY KEY (user_id, tiktok_order_id)
);

-- Named positions (the reconciliation poll's high-water mark).
CREATE TABLE tiktok_cursors (
    user_id TEXT   NOT NULL CHECK (user_id <> ''),
    name    TEXT   NOT NULL,
    value   BIGINT NOT NULL,
    PRIMARY KEY (user_id, name)
);

ALTER TABLE tiktok_inbox        ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tiktok_order_events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tiktok_cursors      ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- A creator's own pushes: appended, claimed and marked processed (an
-- update of the lease and outcome columns only), deleted by retention.
CREATE POLICY tenant_inbox ON tiktok_inbox FOR ALL TO creatorflow_app
    USING (user_id = creatorflow_tenant()) WITH CHECK (user_id = creatorflow_tenant());
GRANT SELECT, INSERT, DELETE ON tiktok_inbox TO creatorflow_app;
GRANT UPDATE (claimable_at, attempts, processed_at, outcome) ON tiktok_inbox TO creatorflow_app;

CREATE POLICY tenant_events ON tiktok_order_events FOR ALL TO creatorflow_app
    USING (user_id = creatorflow_tenant()) WITH CHECK (user_id = creatorflow_tenant());
GRANT SELECT, INSERT, UPDATE ON tiktok_order_events TO creatorflow_app;

CREATE POLICY tenant_cursors ON tiktok_cursors FOR ALL TO creatorflow_app
    USING (user_id = creatorflow_tenant()) WITH CHECK (user_id = creatorflow_tenant());
GRANT SELECT, INSERT, UPDATE ON tiktok_cursors TO creatorflow_app;
