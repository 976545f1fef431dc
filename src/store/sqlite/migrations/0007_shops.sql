-- Version 7: TikTok shops (issue 13).
--
-- An order remembers the shop it was placed in (a tenant may connect
-- several): effects on TikTok Shop act in that shop, with its own token.
ALTER TABLE orders ADD COLUMN shop_id TEXT;

-- The shops a tenant connected, with the tokens that act for them. Tokens
-- are secrets: nothing but the store reads them.
CREATE TABLE tiktok_shops (
    user_id            TEXT    NOT NULL,               -- tenant
    shop_id            TEXT    NOT NULL,               -- as webhooks carry it
    cipher             TEXT    NOT NULL,               -- `shop_cipher`
    name               TEXT    NOT NULL,
    region             TEXT    NOT NULL,
    access_token       TEXT    NOT NULL,
    access_expires_at  INTEGER NOT NULL,
    refresh_token      TEXT    NOT NULL,
    refresh_expires_at INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (user_id, shop_id)
) STRICT;

-- Rotation finds a tenant's shops by the refresh token they share.
CREATE INDEX tiktok_shops_refresh ON tiktok_shops (user_id, refresh_token);

-- Pending authorizations: the `state` sent with an authorization link (a
-- random secret naming its tenant), usable once until it expires.
CREATE TABLE tiktok_auth_states (
    state      TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL,                       -- tenant
    expires_at INTEGER NOT NULL
) STRICT;
