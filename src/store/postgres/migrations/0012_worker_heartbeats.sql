-- CreatorFlow store on PostgreSQL, schema version 12: worker heartbeats
-- (issue 16), so that the steps of a worker that died are taken over
-- within seconds instead of when their (long) leases lapse.
--
-- One row per worker: alive until `alive_until`, renewed every few seconds
-- by the worker (as `creatorflow_worker`). A worker whose row lapsed has
-- its leased items given back by the next live worker
-- (`HeartbeatStore::take_over`), matched by `work_queue.lease_owner`: the
-- worker role may already change a lease's columns on every tenant's
-- items. Heartbeats hold no tenant data (workers serve every tenant): the
-- worker role keeps them, the application role reads them (a tenant's
-- `status` tells its steps held by live workers from those held by dead
-- ones, and a tenant-scoped takeover finds the lapsed workers).
CREATE TABLE worker_heartbeats (
    worker text PRIMARY KEY,
    beat_at timestamptz NOT NULL,
    alive_until timestamptz NOT NULL
);

ALTER TABLE worker_heartbeats ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY worker_beats ON worker_heartbeats FOR ALL TO creatorflow_worker
    USING (true) WITH CHECK (true);
CREATE POLICY app_reads ON worker_heartbeats FOR SELECT TO creatorflow_app
    USING (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON worker_heartbeats TO creatorflow_worker;
GRANT SELECT ON worker_heartbeats TO creatorflow_app;
