-- CreatorFlow store, schema version 1.
--
-- Every table carries the tenant (`user_id`, the creator who owns the
-- order), so that PostgreSQL row-level security can filter each table on its
-- own column, and child tables reference `orders (user_id, id)`, so a row can
-- never belong to another tenant than its order. Times are milliseconds since
-- the Unix epoch (UTC). Prices and metric values are exact decimals as TEXT.
-- JSON columns hold the serialized value unchanged.

CREATE TABLE orders (
    id                      TEXT    NOT NULL PRIMARY KEY,   -- UUID
    user_id                 TEXT    NOT NULL,               -- tenant
    tiktok_order_id         TEXT    NOT NULL,
    version                 INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0),
    terminal                INTEGER NOT NULL DEFAULT 0 CHECK (terminal IN (0, 1)),
    current_state           TEXT    NOT NULL,
    previous_state          TEXT,
    priority                TEXT    NOT NULL CHECK (priority IN ('high', 'urgent', 'standard', 'automated')),
    priority_rank           INTEGER NOT NULL CHECK (priority_rank BETWEEN 0 AND 3),
    impact                  TEXT    NOT NULL CHECK (impact IN ('VIRAL', 'HIGH', 'MED', 'AUTO')),
    viral                   INTEGER NOT NULL CHECK (viral IN (0, 1)),
    automation_status       TEXT    NOT NULL,
    customer_handle         TEXT    NOT NULL,
    customer_tier           TEXT    NOT NULL CHECK (customer_tier IN ('vip', 'regular', 'new')),
    customer_id             TEXT,
    product_name            TEXT    NOT NULL,
    product_id              TEXT    NOT NULL,
    quantity                INTEGER NOT NULL CHECK (quantity > 0),
    price                   TEXT    NOT NULL,               -- exact decimal
    processing_time_ms      INTEGER NOT NULL DEFAULT 0 CHECK (processing_time_ms >= 0),
    automation_score        INTEGER NOT NULL DEFAULT 0 CHECK (automation_score BETWEEN 0 AND 100),
    flow_progress           INTEGER NOT NULL DEFAULT 0 CHECK (flow_progress BETWEEN 0 AND 100),
    viral_indicators        TEXT    NOT NULL DEFAULT '[]',  -- JSON
    orders_per_hour_current TEXT    NOT NULL DEFAULT '0',   -- exact decimal
    velocity_multiplier     TEXT    NOT NULL DEFAULT '1.0', -- exact decimal
    shipping_location       TEXT,
    carrier_preference      TEXT,
    shipping_zone           TEXT,
    deadline                INTEGER,
    user_ref                TEXT,                           -- JSON {id, email, creator_tier}
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    state_changed_at        INTEGER NOT NULL,
    UNIQUE (user_id, tiktok_order_id),
    UNIQUE (user_id, id)
) STRICT;

-- Active orders, most urgent first (the dashboard and `active_orders`).
CREATE INDEX orders_active ON orders (user_id, priority_rank, viral DESC, created_at, id)
    WHERE terminal = 0;

-- One row per transition; (order_id, version) is unique, so a step is never recorded twice.
CREATE TABLE order_transitions (
    order_id          TEXT    NOT NULL,
    user_id           TEXT    NOT NULL,
    version           INTEGER NOT NULL CHECK (version > 0),
    from_state        TEXT    NOT NULL,
    to_state          TEXT    NOT NULL,
    transition_reason TEXT,
    automated         INTEGER NOT NULL CHECK (automated IN (0, 1)),
    duration_ms       INTEGER NOT NULL CHECK (duration_ms >= 0),
    actions_executed  TEXT    NOT NULL DEFAULT '[]',        -- JSON
    error_message     TEXT,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (order_id, version),
    FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- The dashboard's window aggregates.
CREATE INDEX order_transitions_window ON order_transitions (user_id, created_at);

CREATE TABLE workflow_metrics (
    id           INTEGER NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    order_id     TEXT,
    metric_type  TEXT    NOT NULL,
    metric_name  TEXT    NOT NULL,
    metric_value TEXT    NOT NULL,                          -- exact decimal
    dimensions   TEXT    NOT NULL DEFAULT '{}',             -- JSON object
    recorded_at  INTEGER NOT NULL,
    FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX workflow_metrics_type ON workflow_metrics (user_id, metric_type, recorded_at);
CREATE INDEX workflow_metrics_order ON workflow_metrics (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE rule_stats (
    user_id                   TEXT    NOT NULL,
    rule_id                   TEXT    NOT NULL,
    execution_count           INTEGER NOT NULL CHECK (execution_count >= 0),
    success_count             INTEGER NOT NULL CHECK (success_count >= 0),
    last_executed_at          INTEGER,
    average_execution_time_ms REAL    NOT NULL,
    PRIMARY KEY (user_id, rule_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE webhook_notifications (
    user_id         TEXT    NOT NULL,
    notification_id TEXT    NOT NULL,
    received_at     INTEGER NOT NULL,
    PRIMARY KEY (user_id, notification_id)
) STRICT, WITHOUT ROWID;

-- The durable work queue: one row per (order, kind). Claimable when
-- run_at <= now; a claim sets the lease and moves run_at to the lease's
-- expiry, so a leased row is claimable again exactly when its lease lapses.
CREATE TABLE work_queue (
    id               INTEGER NOT NULL PRIMARY KEY,
    user_id          TEXT    NOT NULL,
    order_id         TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    lane             TEXT    NOT NULL CHECK (lane IN ('high', 'urgent', 'standard', 'automated')),
    viral            INTEGER NOT NULL CHECK (viral IN (0, 1)),
    order_created_at INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    payload          TEXT    NOT NULL DEFAULT 'null',       -- JSON
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (order_id, kind),
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL)),
    FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id) ON DELETE CASCADE
) STRICT;

-- Claims scan a lane's due rows only.
CREATE INDEX work_queue_due ON work_queue (lane, run_at);
