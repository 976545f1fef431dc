-- CreatorFlow store on SQLite, schema version 13: worker heartbeats
-- (issue 16), so that the steps of a worker that died are taken over
-- within seconds instead of when their (long) leases lapse.
--
-- One row per worker: alive until `alive_until` (ms), renewed every few
-- seconds. A worker whose row lapsed has its leased items given back by
-- the next live worker (`HeartbeatStore::take_over`): it matches them by
-- `work_queue.lease_owner`. Few workers, so no index beyond the key; the
-- takeover reads leased items only once a heartbeat has lapsed.
CREATE TABLE worker_heartbeats (
    worker TEXT NOT NULL PRIMARY KEY,
    beat_at INTEGER NOT NULL,
    alive_until INTEGER NOT NULL
) STRICT;
