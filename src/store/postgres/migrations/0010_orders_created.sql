-- CreatorFlow store on PostgreSQL, schema version 10: a tenant's orders in
-- creation order. Same meaning as SQLite's migration 0011.
--
-- `creatorflow backtest` replays a tenant's orders oldest first, in pages
-- (`orders_by_created`: a `created_at` range, then `(created_at, id)` after
-- the previous page's last order). This index is that order, so each page
-- is one index range scan, whatever the tenant's size.
CREATE INDEX orders_created ON orders (user_id, created_at, id);
