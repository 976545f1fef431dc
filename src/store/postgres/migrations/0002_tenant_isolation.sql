-- CreatorFlow store on PostgreSQL, schema version 2: tenant isolation that
-- the database enforces (row-level security), and the roles it applies to.
--
-- Roles (NOLOGIN, NOSUPERUSER, NOBYPASSRLS; cluster-wide, so shared by
-- every CreatorFlow schema of the cluster; created here if missing):
--   creatorflow_app     what the store runs every tenant's operation as:
--                       sees and changes only the rows of the tenant named
--                       by the transaction's `creatorflow.tenant` setting.
--   creatorflow_worker  queue claims and summaries across tenants
--                       (TenantScope::All): reads every tenant's queue rows
--                       and may only take or renew leases on them (a column
--                       privilege); no access to orders or anything else.
--   creatorflow_admin   the only role that writes rule statistics (of the
--                       tenant in scope); the application role reads them.
-- The store's login (the URL's user, who owns the tables and ran this) is
-- made a member of the three so that it can `SET ROLE` to them; it never
-- queries tenant data as itself. A deployment may instead run the store
-- under a login that is only a member of the three (GRANT creatorflow_app,
-- creatorflow_worker, creatorflow_admin TO that login) once the owner has
-- migrated the schema: such a login can read the schema version and nothing
-- else of its own.
--
-- Every table has ROW LEVEL SECURITY enabled and FORCEd (the owner is
-- subject to it too, unless superuser). Policies compare the row's
-- `user_id` with `creatorflow_tenant()`, the transaction-local setting
-- `creatorflow.tenant` (`set_config('creatorflow.tenant', $1, true)`);
-- unset or empty, it matches nothing. A later migration that must rewrite
-- rows of every tenant runs as a superuser, or switches FORCE off for its
-- transaction.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['creatorflow_app', 'creatorflow_worker', 'creatorflow_admin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by another schema's migration
            END;
        END IF;
        IF NOT pg_has_role(current_user, r, 'MEMBER') THEN
            BEGIN
                EXECUTE format('GRANT %I TO %I', r, current_user);
            EXCEPTION WHEN unique_violation THEN
                NULL;  -- granted meanwhile
            END;
        END IF;
    END LOOP;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO creatorflow_app, creatorflow_worker, creatorflow_admin',
                   current_schema());
END
$$;

-- The schema version, readable by the application (so a login that only
-- holds the roles can open a migrated schema); written by the owner only.
GRANT SELECT ON creatorflow_schema TO creatorflow_app;

-- The tenant of the current transaction; NULL (matches no row) when unset.
CREATE FUNCTION creatorflow_tenant() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('creatorflow.tenant', true), '') $$;

ALTER TABLE orders                ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE order_transitions     ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE workflow_metrics      ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE rule_stats            ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_notifications ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE work_queue            ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- A creator sees and changes only its own orders, and cannot move one to
-- another tenant (WITH CHECK).
CREATE POLICY tenant_orders ON orders FOR ALL TO creatorflow_app
    USING (user_id = creatorflow_tenant()) WITH CHECK (user_id = creatorflow_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO creatorflow_app;

-- History is append-only: its own orders' rows, read and added, never changed.
CREATE POLICY tenant_read ON order_transitions FOR SELECT TO creatorflow_app
    USING (user_id = creatorflow_tenant());
CREATE POLICY tenant_add ON order_transitions FOR INSERT TO creatorflow_app
    WITH CHECK (user_id = creatorflow_tenant());
GRANT SELECT, INSERT ON order_transitions TO creatorflow_app;

-- Metrics likewise.
CREATE POLICY tenant_read ON workflow_metrics FOR SELECT TO creatorflow_app
    USING (user_id = creatorflow_tenant());
CREATE POLICY tenant_add ON workflow_metrics FOR INSERT TO creatorflow_app
    WITH CHECK (user_id = creatorflow_tenant());
GRANT SELECT, INSERT ON workflow_metrics TO creatorflow_app;

-- Rule statistics: the application reads its tenant's; only the admin role
-- writes them.
CREATE POLICY tenant_read ON rule_stats FOR SELECT TO creatorflow_app
    USING (user_id = creatorflow_tenant());
CREATE POLICY admin_manage ON rule_stats FOR ALL TO creatorflow_admin
    USING (user_id = creatorflow_tenant()) WITH CHECK (user_id = creatorflow_tenant());
GRANT SELECT ON rule_stats TO creatorflow_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON rule_stats TO creatorflow_admin;

CREATE POLICY tenant_webhooks ON webhook_notifications FOR ALL TO creatorflow_app
    USING (user_id = creatorflow_tenant()) WITH CHECK (user_id = creatorflow_tenant());
GRANT SELECT, INSERT, DELETE ON webhook_notifications TO creatorflow_app;

-- The queue: a tenant's own items; workers see every tenant's items and
-- may only take, renew or hand back leases (and nothing else of a row).
CREATE POLICY tenant_queue ON work_queue FOR ALL TO creatorflow_app
    USING (user_id = creatorflow_tenant()) WITH CHECK (user_id = creatorflow_tenant());
CREATE POLICY worker_read ON work_queue FOR SELECT TO creatorflow_worker
    USING (true);
CREATE POLICY worker_lease ON work_queue FOR UPDATE TO creatorflow_worker
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON work_queue TO creatorflow_app;
GRANT SELECT, UPDATE (lease_owner, lease_expires_at, run_at, attempts, updated_at)
    ON work_queue TO creatorflow_worker;
