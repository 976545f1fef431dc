-- CreatorFlow store on PostgreSQL, schema version 1: the tables.
--
-- The same tables and meaning as the SQLite schema. Applied by the owner
-- (the URL's user) with `search_path` set to the store's schema, so names
-- are unqualified. Every table carries the tenant (`user_id`, the creator
-- who owns the order), so that row-level security (version 2) filters each
-- table on its own column with no joins, and child tables reference
-- `orders (user_id, id)`, so a row can never belong to another tenant than
-- its order. Types:
--   * prices and metric values: NUMERIC (exact; keeps the scale: 41.50 stays 41.50);
--   * times: TIMESTAMPTZ, written with millisecond precision;
--   * JSON columns: JSON, not JSONB. JSON keeps the text exactly as written
--     (validated on input), so what is stored comes back unchanged; JSONB
--     would rewrite numbers (1e-7 becomes 0.0000001, which is a different
--     arbitrary-precision value) and refuse \u0000.

CREATE TABLE orders (
    id                      UUID        NOT NULL PRIMARY KEY,
    user_id                 TEXT        NOT NULL CHECK (user_id <> ''),   -- tenant
    tiktok_order_id         TEXT        NOT NULL,
    version                 BIGINT      NOT NULL DEFAULT 0 CHECK (version >= 0),
    terminal                BOOLEAN     NOT NULL DEFAULT false,
    current_state           TEXT        NOT NULL,
    previous_state          TEXT,
    priority                TEXT        NOT NULL CHECK (priority IN ('high', 'urgent', 'standard', 'automated')),
    priority_rank           BIGINT      NOT NULL CHECK (priority_rank BETWEEN 0 AND 3),
    impact                  TEXT        NOT NULL CHECK (impact IN ('VIRAL', 'HIGH', 'MED', 'AUTO')),
    viral                   BOOLEAN     NOT NULL,
    automation_status       TEXT        NOT NULL,
    customer_handle         TEXT        NOT NULL,
    customer_tier           TEXT        NOT NULL CHECK (customer_tier IN ('vip', 'regular', 'new')),
    customer_id             TEXT,
    product_name            TEXT        NOT NULL,
    product_id              TEXT        NOT NULL,
    quantity                BIGINT      NOT NULL CHECK (quantity > 0),
    price                   NUMERIC     NOT NULL,
    processing_time_ms      BIGINT      NOT NULL DEFAULT 0 CHECK (processing_time_ms >= 0),
    automation_score        BIGINT      NOT NULL DEFAULT 0 CHECK (automation_score BETWEEN 0 AND 100),
    flow_progress           BIGINT      NOT NULL DEFAULT 0 CHECK (flow_progress BETWEEN 0 AND 100),
    viral_indicators        JSON        NOT NULL DEFAULT '[]',
    orders_per_hour_current NUMERIC     NOT NULL DEFAULT 0,
    velocity_multiplier     NUMERIC     NOT NULL DEFAULT 1.0,
    shipping_location       TEXT,
    carrier_preference      TEXT,
    shipping_zone           TEXT,
    deadline                TIMESTAMPTZ,
    user_ref                JSON,                                         -- {id, email, creator_tier}
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    state_changed_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, tiktok_order_id),
    UNIQUE (user_id, id)
) WITH (fillfactor = 80);  -- room on each page for HOT updates (transitions touch no indexed column)

-- Active orders, most urgent first (the dashboard and `active_orders`).
CREATE INDEX orders_active ON orders (user_id, priority_rank, viral DESC, created_at, id)
    WHERE NOT terminal;

-- One row per transition; (order_id, version) is unique, so a step is never recorded twice.
CREATE TABLE order_transitions (
    order_id          UUID        NOT NULL,
    user_id           TEXT        NOT NULL,
    version           BIGINT      NOT NULL CHECK (version > 0),
    from_state        TEXT        NOT NULL,
    to_state          TEXT        NOT NULL,
    transition_reason TEXT,
    automated         BOOLEAN     NOT NULL,
    duration_ms       BIGINT      NOT NULL CHECK (duration_ms >= 0),
    actions_executed  JSON        NOT NULL DEFAULT '[]',
    error_message     TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (order_id, version),
    FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id) ON DELETE CASCADE
);

-- The dashboard's window aggregates.
CREATE INDEX order_transitions_window ON order_transitions (user_id, created_at);

CREATE TABLE workflow_metrics (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      TEXT        NOT NULL CHECK (user_id <> ''),
    order_id     UUID,
    metric_type  TEXT        NOT NULL,
    metric_name  TEXT        NOT NULL,
    metric_value NUMERIC     NOT NULL,
    dimensions   JSON        NOT NULL DEFAULT '{}',
    recorded_at  TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id) ON DELETE CASCADE
);

CREATE INDEX workflow_metrics_type ON workflow_metrics (user_id, metric_type, recorded_at);
CREATE INDEX workflow_metrics_order ON workflow_metrics (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE rule_stats (
    user_id                   TEXT             NOT NULL CHECK (user_id <> ''),
    rule_id                   TEXT             NOT NULL,
    execution_count           BIGINT           NOT NULL CHECK (execution_count >= 0),
    success_count             BIGINT           NOT NULL CHECK (success_count >= 0),
    last_executed_at          TIMESTAMPTZ,
    average_execution_time_ms DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (user_id, rule_id)
);

CREATE TABLE webhook_notifications (
    user_id         TEXT        NOT NULL CHECK (user_id <> ''),
    notification_id TEXT        NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, notification_id)
);

-- The durable work queue: one row per (order, kind). Claimable when
-- run_at <= now; a claim sets the lease and moves run_at to the lease's
-- expiry, so a leased row is claimable again exactly when its lease lapses.
-- Claims lock with FOR UPDATE SKIP LOCKED, so processes sharing the queue
-- never wait on, or take, each other's rows.
CREATE TABLE work_queue (
    id               BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          TEXT        NOT NULL,
    order_id         UUID        NOT NULL,
    kind             TEXT        NOT NULL,
    lane             TEXT        NOT NULL CHECK (lane IN ('high', 'urgent', 'standard', 'automated')),
    viral            BOOLEAN     NOT NULL,
    order_created_at TIMESTAMPTZ NOT NULL,
    run_at           TIMESTAMPTZ NOT NULL,
    payload          JSON        NOT NULL DEFAULT 'null',
    attempts         BIGINT      NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (order_id, kind),
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL)),
    FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id) ON DELETE CASCADE
) WITH (fillfactor = 80);

-- Claims scan a lane's due rows only (a tenant-scoped claim filters them).
CREATE INDEX work_queue_due ON work_queue (lane, run_at);
