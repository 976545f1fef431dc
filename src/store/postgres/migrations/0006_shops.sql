-- CreatorFlow store on PostgreSQL, schema version 6: TikTok shops (issue
-- 13). Same meaning as SQLite's migration 0007; tenant isolation as in
-- migration 0002 (forced row-level security, application role only).

-- An order remembers the shop it was placed in (a tenant may connect
-- several): effects on TikTok Shop act in that shop, with its own token.
ALTER TABLE orders ADD COLUMN shop_id TEXT;

-- The shops a tenant connected, with the tokens that act for them.
CREATE TABLE tiktok_shops (
    user_id            TEXT        NOT NULL CHECK (user_id <> ''),   -- tenant
    shop_id            TEXT        NOT NULL CHECK (shop_id <> ''),
    cipher             TEXT        NOT NULL,                         -- `shop_cipher`
    name               TEXT        NOT NULL,
    region             TEXT        NOT NULL,
    access_token       TEXT        NOT NULL,
    access_expires_at  TIMESTAMPTZ NOT NULL,
    refresh_token      TEXT        NOT NULL,
    refresh_expires_at TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, shop_id)
);

-- Rotation finds a tenant's shops by the refresh token they share.
CREATE INDEX tiktok_shops_refresh ON tiktok_shops (user_id, refresh_token);

-- Pending authorizations: the `state` sent with an authorization link, a
-- 128-bit random secret that names its tenant, usable once until it expires.
CREATE TABLE tiktok_auth_states (
    state      TEXT        NOT NULL PRIMARY KEY CHECK (state <> ''),
    user_id    TEXT        NOT NULL CHECK (user_id <> ''),           -- tenant
    expires_at TIMESTAMPTZ NOT NULL
);

ALTER TABLE tiktok_shops       ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tiktok_auth_states ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- A creator's own shops: connected (inserted or replaced) and their tokens
-- rotated; never deleted by the store.
CREATE POLICY tenant_shops ON tiktok_shops FOR ALL TO creatorflow_app
    USING (user_id = creatorflow_tenant()) WITH CHECK (user_id = creatorflow_tenant());
GRANT SELECT, INSERT, UPDATE ON tiktok_shops TO creatorflow_app;

-- The state a transaction names (`creatorflow.auth_state`, set like the
-- tenant); NULL (matches no row) when unset.
CREATE FUNCTION creatorflow_auth_state() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('creatorflow.auth_state', true), '') $$;

-- A tenant issues states for itself. A state is taken by whoever presents
-- it, without a tenant (the callback from TikTok names none): the
-- application role may read and delete the one row whose state the
-- transaction names, and no other; nobody lists or scans the states.
CREATE POLICY tenant_issue ON tiktok_auth_states FOR INSERT TO creatorflow_app
    WITH CHECK (user_id = creatorflow_tenant());
CREATE POLICY take_read ON tiktok_auth_states FOR SELECT TO creatorflow_app
    USING (state = creatorflow_auth_state());
CREATE POLICY take_delete ON tiktok_auth_states FOR DELETE TO creatorflow_app
    USING (state = creatorflow_auth_state());
GRANT SELECT, INSERT, DELETE ON tiktok_auth_states TO creatorflow_app;
