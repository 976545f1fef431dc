-- Claims read a lane's ready items in service order, without scanning or
-- sorting the items that are not due (deliveries checked hours from now,
-- leased steps) or the whole backlog.
--
-- `ready`: the item is due and unleased, as of the last write or claim.
-- Writes that set a future `run_at`, and claims (which lease), clear it;
-- every claim first promotes the items whose `run_at` has come (scheduled
-- checks, lapsed leases) through `work_queue_pending`.
ALTER TABLE work_queue ADD COLUMN ready BOOLEAN NOT NULL DEFAULT false;
UPDATE work_queue SET ready = true WHERE lease_owner IS NULL AND run_at <= now();
DROP INDEX work_queue_due;
CREATE INDEX work_queue_ready ON work_queue (lane, viral DESC, order_created_at, id) WHERE ready;
CREATE INDEX work_queue_pending ON work_queue (run_at) WHERE NOT ready;
GRANT UPDATE (ready) ON work_queue TO creatorflow_worker;
