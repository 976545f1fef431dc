-- CreatorFlow store on SQLite, schema version 4: the queue summary reads
-- an index, not the table.
--
-- `work_queue_pending` also carries the lease expiry and the tenant, so
-- that counting leased, expired and scheduled items and finding the next
-- due time (`queue_summary`, asked by idle workers and the dashboard) is a
-- scan of this narrow index, with no table row read; only the due items
-- are looked up for their lane. The claim's promotion still reads it by
-- `(ready, run_at)`, and claims and settlements already rewrite the entry
-- (they change `ready` and `run_at`), so writes cost no more.
DROP INDEX work_queue_pending;
CREATE INDEX work_queue_pending ON work_queue (ready, run_at, lease_expires_at, user_id);
