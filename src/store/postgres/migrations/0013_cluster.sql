-- CreatorFlow store on PostgreSQL, schema version 13: singleton leases and
-- shared values across replicas (issue 18; `store/cluster.rs`). Same
-- meaning as SQLite's migration 0014.

-- One row per singleton job (`reconcile:SHOP`, `token:TENANT:SHOP`,
-- `retention`): who holds it until when, and the fencing token, which
-- grows by one each time the lease changes hands.
CREATE TABLE singleton_leases (
    name       TEXT        NOT NULL PRIMARY KEY CHECK (name <> ''),
    holder     TEXT        NOT NULL CHECK (holder <> ''),
    fence      BIGINT      NOT NULL CHECK (fence > 0),
    expires_at TIMESTAMPTZ NOT NULL
);

-- Named values every replica reads (`rules`: the active pack versions).
CREATE TABLE shared_values (
    name     TEXT        NOT NULL PRIMARY KEY CHECK (name <> ''),
    value    TEXT        NOT NULL,
    revision BIGINT      NOT NULL CHECK (revision > 0),
    at       TIMESTAMPTZ NOT NULL
);

-- No tenant in these rows: they describe the deployment. Row-level
-- security stays forced like on every table; the application role's
-- policy admits every row, and no other role has any.
ALTER TABLE singleton_leases ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE shared_values    ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY deployment_leases ON singleton_leases FOR ALL TO creatorflow_app
    USING (true) WITH CHECK (true);
CREATE POLICY deployment_values ON shared_values FOR ALL TO creatorflow_app
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE ON singleton_leases TO creatorflow_app;
GRANT SELECT, INSERT, UPDATE ON shared_values TO creatorflow_app;
