-- CreatorFlow store on PostgreSQL, schema version 8: order counts kept as
-- orders move, and the indexes of the operator's reads (issue 14).
--
-- `order_counts` holds signed deltas: per tenant, how many orders share a
-- (state, priority, terminal, viral) key is the sum of its rows. Statement
-- triggers on `orders` append one row per changed key in the same
-- transaction as the change; appending takes no lock another writer waits
-- for (an UPDATE of a shared counter row would serialise the workers and
-- could deadlock them). Readers fold a tenant's rows into one per key
-- (`DELETE … RETURNING` then `INSERT` of the sums, safe under concurrency:
-- a row is folded by one transaction only).

CREATE TABLE order_counts (
    user_id       TEXT    NOT NULL,
    current_state TEXT    NOT NULL,
    priority      TEXT    NOT NULL,
    terminal      BOOLEAN NOT NULL,
    viral         BOOLEAN NOT NULL,
    n             BIGINT  NOT NULL
);

CREATE INDEX order_counts_tenant ON order_counts (user_id);

-- The backfill counts every tenant's orders: row-level security is lifted
-- for this transaction (see 0002).
ALTER TABLE orders NO FORCE ROW LEVEL SECURITY;
INSERT INTO order_counts (user_id, current_state, priority, terminal, viral, n)
    SELECT user_id, current_state, priority, terminal, viral, count(*)
    FROM orders GROUP BY user_id, current_state, priority, terminal, viral;
ALTER TABLE orders FORCE ROW LEVEL SECURITY;

ALTER TABLE order_counts ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_order_counts ON order_counts FOR ALL TO creatorflow_app
    USING (user_id = creatorflow_tenant()) WITH CHECK (user_id = creatorflow_tenant());
GRANT SELECT, INSERT, DELETE ON order_counts TO creatorflow_app;

CREATE FUNCTION order_counts_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO order_counts (user_id, current_state, priority, terminal, viral, n)
            SELECT user_id, current_state, priority, terminal, viral, count(*)
            FROM new_rows GROUP BY user_id, current_state, priority, terminal, viral;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO order_counts (user_id, current_state, priority, terminal, viral, n)
            SELECT user_id, current_state, priority, terminal, viral, -count(*)
            FROM old_rows GROUP BY user_id, current_state, priority, terminal, viral;
    ELSE
        INSERT INTO order_counts (user_id, current_state, priority, terminal, viral, n)
            SELECT user_id, current_state, priority, terminal, viral, sum(d)::bigint
            FROM (SELECT user_id, current_state, priority, terminal, viral, 1 AS d FROM new_rows
                  UNION ALL
                  SELECT user_id, current_state, priority, terminal, viral, -1 FROM old_rows) c
            GROUP BY user_id, current_state, priority, terminal, viral
            HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER order_counts_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION order_counts_delta();
CREATE TRIGGER order_counts_update AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION order_counts_delta();
CREATE TRIGGER order_counts_delete AFTER DELETE ON orders
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION order_counts_delta();

-- `/api/orders?state=`: one state's orders, most urgent first.
CREATE INDEX orders_state ON orders (user_id, current_state, priority_rank, viral DESC, created_at, id);

-- The dashboard's window aggregates can read only this index (covering):
-- the window holds every step of the last two hours, many when workers are busy.
DROP INDEX order_transitions_window;
CREATE INDEX order_transitions_window ON order_transitions (user_id, created_at)
    INCLUDE (order_id, duration_ms, automated, error_message);
