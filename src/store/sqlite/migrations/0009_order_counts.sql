-- CreatorFlow store on SQLite, schema version 9: order counts kept as
-- orders move, and the indexes of the operator's reads (issue 14).
--
-- `order_counts` holds, per tenant, how many orders share a (state,
-- priority, terminal, viral) key. Triggers on `orders` keep it in the same
-- transaction as every insert, update and delete, so the dashboard reads a
-- few hundred rows instead of counting every order. Keys may drop to 0.

CREATE TABLE order_counts (
    user_id       TEXT    NOT NULL,
    current_state TEXT    NOT NULL,
    priority      TEXT    NOT NULL,
    terminal      INTEGER NOT NULL,
    viral         INTEGER NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (user_id, current_state, priority, terminal, viral)
) STRICT, WITHOUT ROWID;

INSERT INTO order_counts (user_id, current_state, priority, terminal, viral, n)
    SELECT user_id, current_state, priority, terminal, viral, COUNT(*)
    FROM orders GROUP BY user_id, current_state, priority, terminal, viral;

CREATE TRIGGER order_counts_insert AFTER INSERT ON orders BEGIN
    INSERT INTO order_counts (user_id, current_state, priority, terminal, viral, n)
        VALUES (NEW.user_id, NEW.current_state, NEW.priority, NEW.terminal, NEW.viral, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER order_counts_delete AFTER DELETE ON orders BEGIN
    UPDATE order_counts SET n = n - 1
        WHERE user_id = OLD.user_id AND current_state = OLD.current_state
          AND priority = OLD.priority AND terminal = OLD.terminal AND viral = OLD.viral;
END;

CREATE TRIGGER order_counts_update
    AFTER UPDATE OF user_id, current_state, priority, terminal, viral ON orders
    WHEN OLD.user_id IS NOT NEW.user_id OR OLD.current_state IS NOT NEW.current_state
      OR OLD.priority IS NOT NEW.priority OR OLD.terminal IS NOT NEW.terminal
      OR OLD.viral IS NOT NEW.viral
BEGIN
    UPDATE order_counts SET n = n - 1
        WHERE user_id = OLD.user_id AND current_state = OLD.current_state
          AND priority = OLD.priority AND terminal = OLD.terminal AND viral = OLD.viral;
    INSERT INTO order_counts (user_id, current_state, priority, terminal, viral, n)
        VALUES (NEW.user_id, NEW.current_state, NEW.priority, NEW.terminal, NEW.viral, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;

-- `/api/orders?state=`: one state's orders, most urgent first.
CREATE INDEX orders_state ON orders (user_id, current_state, priority_rank, viral DESC, created_at, id);

-- The dashboard's window aggregates read only this index (covering): the
-- window holds every step of the last two hours, many when workers are busy.
DROP INDEX order_transitions_window;
CREATE INDEX order_transitions_window
    ON order_transitions (user_id, created_at, order_id, duration_ms, automated, error_message);
