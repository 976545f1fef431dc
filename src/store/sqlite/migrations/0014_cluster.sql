-- CreatorFlow store on SQLite, schema version 14: singleton leases and
-- shared values across replicas (issue 18; `store/cluster.rs`). A SQLite
-- store serves one process, which holds every lease; the tables keep the
-- contract the same on every backend. Times in milliseconds, as elsewhere.
CREATE TABLE singleton_leases (
    name       TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
    holder     TEXT    NOT NULL CHECK (holder <> ''),
    fence      INTEGER NOT NULL CHECK (fence > 0),
    expires_at INTEGER NOT NULL
);

CREATE TABLE shared_values (
    name     TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
    value    TEXT    NOT NULL,
    revision INTEGER NOT NULL CHECK (revision > 0),
    at       INTEGER NOT NULL
);
