-- CreatorFlow store on SQLite, schema version 12: when each order shipped,
-- for the dashboard's time to ship (issue 15).
--
-- `shipped_at` is the time of the order's first transition into a state
-- whose automation status is `Shipped` or `Delivered` (the machine's
-- property of the state, whatever the state is called), written with that
-- transition and never changed afterwards. Orders that shipped before this
-- version have none: the dashboard's figure covers shipments from here on.
--
-- The partial index holds shipped orders only (cheap for every other
-- write) and covers the dashboard's query: the orders of a tenant shipped
-- in the last two hours are one index range, with `created_at` at hand.
ALTER TABLE orders ADD COLUMN shipped_at INTEGER;
CREATE INDEX orders_shipped ON orders (user_id, shipped_at, created_at)
    WHERE shipped_at IS NOT NULL;
