-- Version 6: workflow metrics, rule statistics and webhook de-duplication
-- were never used by the runtime (the inbox de-duplicates pushes; the
-- engine keeps rule statistics in memory). Their tables go.
DROP TABLE IF EXISTS workflow_metrics;
DROP TABLE IF EXISTS rule_stats;
DROP TABLE IF EXISTS webhook_notifications;
