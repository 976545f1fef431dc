-- CreatorFlow store on SQLite: a tenant's orders in creation order.
--
-- `creatorflow backtest` replays a tenant's orders oldest first, in pages
-- (`orders_by_created`: a `created_at` range, then `(created_at, id)` after
-- the previous page's last order). This index is that order, so each page
-- is one seek and a range read, whatever the tenant's size.
CREATE INDEX orders_created ON orders (user_id, created_at, id);
