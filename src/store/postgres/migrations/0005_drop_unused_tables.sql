-- Version 5: workflow metrics, rule statistics and webhook de-duplication
-- were never used by the runtime (the inbox de-duplicates pushes; the
-- engine keeps rule statistics in memory). Their tables, with their
-- policies and grants, go. The role creatorflow_admin (shared by every
-- schema of the cluster) is left as it is.
DROP TABLE IF EXISTS workflow_metrics;
DROP TABLE IF EXISTS rule_stats;
DROP TABLE IF EXISTS webhook_notifications;
