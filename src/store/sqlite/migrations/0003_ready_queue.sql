-- Claims read a lane's ready items in service order, without scanning or
-- sorting the items that are not due (deliveries checked hours from now,
-- leased steps) or the whole backlog.
--
-- `ready` = 1: the item is due and unleased, as of the last write or claim.
-- Writes that set a future `run_at`, and claims (which lease), set 0; every
-- claim first promotes the items whose `run_at` has come (scheduled checks,
-- lapsed leases) through `work_queue_pending`.
ALTER TABLE work_queue ADD COLUMN ready INTEGER NOT NULL DEFAULT 0 CHECK (ready IN (0, 1));
DROP INDEX work_queue_due;
CREATE INDEX work_queue_ready ON work_queue (lane, ready, viral DESC, order_created_at, id);
CREATE INDEX work_queue_pending ON work_queue (ready, run_at);
