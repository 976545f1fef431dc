//! Workflow metrics, rule statistics and webhook de-duplication on PostgreSQL.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use super::orders::limit;
use super::rows::{column, db, json, metric_from_row, opt_time};
use super::{Mode, PostgresStore, Role};
use crate::rules::RuleStats;
use crate::store::logic::{self, to_i64, trunc, validate_metric, validate_rule_stats};
use crate::store::{MetricQuery, OrderId, StoreError, WorkflowMetric};

pub(super) async fn record_metrics(
    store: &PostgresStore,
    tenant: &str,
    metrics: &[WorkflowMetric],
) -> Result<(), StoreError> {
    for m in metrics {
        validate_metric(m)?;
    }
    if metrics.is_empty() {
        return Ok(());
    }
    let mut dimensions = Vec::with_capacity(metrics.len());
    for m in metrics {
        dimensions.push(json(&m.dimensions, "dimensions")?);
    }
    let mut tx = store.begin(Role::App, Some(tenant), Mode::Write).await?;
    let result = async {
        let wanted: Vec<OrderId> = {
            let mut seen = HashSet::new();
            metrics
                .iter()
                .filter_map(|m| m.order_id)
                .filter(|id| seen.insert(*id))
                .collect()
        };
        if !wanted.is_empty() {
            let found: HashSet<OrderId> =
                sqlx::query_scalar("SELECT id FROM orders WHERE user_id = $1 AND id = ANY($2)")
                    .bind(tenant)
                    .bind(&wanted)
                    .fetch_all(tx.conn())
                    .await
                    .map_err(db("checking metric orders"))?
                    .into_iter()
                    .collect();
            if let Some(missing) = wanted.iter().find(|id| !found.contains(id)) {
                return Err(StoreError::order_not_found(*missing));
            }
        }
        // WITH ORDINALITY keeps the input order, so ids (the tie-break of
        // samples recorded at the same time) follow the recording order.
        sqlx::query(
            "INSERT INTO workflow_metrics (user_id, order_id, metric_type, metric_name, \
             metric_value, dimensions, recorded_at) \
             SELECT $1, m.order_id, m.metric_type, m.metric_name, m.metric_value, m.dimensions, \
                    m.recorded_at \
             FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::numeric[], $6::json[], \
                         $7::timestamptz[]) WITH ORDINALITY \
                  AS m(order_id, metric_type, metric_name, metric_value, dimensions, \
                       recorded_at, n) \
             ORDER BY m.n",
        )
        .bind(tenant)
        .bind(metrics.iter().map(|m| m.order_id).collect::<Vec<_>>())
        .bind(
            metrics
                .iter()
                .map(|m| m.metric_type.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            metrics
                .iter()
                .map(|m| m.metric_name.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            metrics
                .iter()
                .map(|m| m.value.to_string())
                .collect::<Vec<_>>(),
        )
        .bind(dimensions)
        .bind(
            metrics
                .iter()
                .map(|m| trunc(m.recorded_at))
                .collect::<Vec<_>>(),
        )
        .execute(tx.conn())
        .await
        .map_err(db("recording metrics"))?;
        Ok(())
    }
    .await;
    tx.end(result).await
}

pub(super) async fn metrics(
    store: &PostgresStore,
    tenant: &str,
    query: &MetricQuery,
) -> Result<Vec<WorkflowMetric>, StoreError> {
    let mut sql = String::from(
        "SELECT order_id, metric_type, metric_name, metric_value::text AS metric_value, \
         dimensions::text AS dimensions, recorded_at FROM workflow_metrics WHERE user_id = $1",
    );
    let mut n = 1;
    let mut next = |column: &str, op: &str| {
        n += 1;
        format!(" AND {column} {op} ${n}")
    };
    if query.metric_type.is_some() {
        sql.push_str(&next("metric_type", "="));
    }
    if query.metric_name.is_some() {
        sql.push_str(&next("metric_name", "="));
    }
    if query.order_id.is_some() {
        sql.push_str(&next("order_id", "="));
    }
    if query.since.is_some() {
        sql.push_str(&next("recorded_at", ">="));
    }
    if query.until.is_some() {
        sql.push_str(&next("recorded_at", "<"));
    }
    sql.push_str(&format!(" ORDER BY recorded_at, id LIMIT ${}", n + 1));
    let mut tx = store.begin(Role::App, Some(tenant), Mode::Read).await?;
    let result = async {
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant);
        if let Some(t) = &query.metric_type {
            q = q.bind(t);
        }
        if let Some(name) = &query.metric_name {
            q = q.bind(name);
        }
        if let Some(id) = query.order_id {
            q = q.bind(id);
        }
        if let Some(s) = query.since {
            q = q.bind(trunc(s));
        }
        if let Some(u) = query.until {
            q = q.bind(trunc(u));
        }
        let rows = q
            .bind(query.limit.map_or(i64::MAX, limit))
            .fetch_all(tx.conn())
            .await
            .map_err(db("reading metrics"))?;
        rows.iter().map(metric_from_row).collect()
    }
    .await;
    tx.end(result).await
}

pub(super) async fn save_rule_stats(
    store: &PostgresStore,
    tenant: &str,
    stats: &[RuleStats],
) -> Result<(), StoreError> {
    for s in stats {
        validate_rule_stats(s)?;
    }
    // One row per rule id, the last one given winning (an upsert may not
    // touch a row twice).
    let mut seen = HashSet::new();
    let mut rows: Vec<&RuleStats> = stats
        .iter()
        .rev()
        .filter(|s| seen.insert(s.rule.as_str()))
        .collect();
    rows.reverse();
    if rows.is_empty() {
        return Ok(());
    }
    let mut executions = Vec::with_capacity(rows.len());
    let mut successes = Vec::with_capacity(rows.len());
    for s in &rows {
        executions.push(to_i64(s.execution_count, "execution_count")?);
        successes.push(to_i64(s.success_count, "success_count")?);
    }
    // Only the admin role may write rule statistics (row-level security).
    let mut tx = store.begin(Role::Admin, Some(tenant), Mode::Write).await?;
    let result = sqlx::query(
        "INSERT INTO rule_stats (user_id, rule_id, execution_count, success_count, \
         last_executed_at, average_execution_time_ms) \
         SELECT $1, r.* FROM UNNEST($2::text[], $3::int8[], $4::int8[], $5::timestamptz[], \
                                    $6::float8[]) AS r \
         ON CONFLICT (user_id, rule_id) DO UPDATE SET \
         execution_count = excluded.execution_count, success_count = excluded.success_count, \
         last_executed_at = excluded.last_executed_at, \
         average_execution_time_ms = excluded.average_execution_time_ms",
    )
    .bind(tenant)
    .bind(rows.iter().map(|s| s.rule.clone()).collect::<Vec<_>>())
    .bind(executions)
    .bind(successes)
    .bind(
        rows.iter()
            .map(|s| s.last_executed_at.map(trunc))
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|s| s.average_execution_time_ms)
            .collect::<Vec<_>>(),
    )
    .execute(tx.conn())
    .await
    .map(|_| ())
    .map_err(db("saving rule statistics"));
    tx.end(result).await
}

pub(super) async fn load_rule_stats(
    store: &PostgresStore,
    tenant: &str,
) -> Result<Vec<RuleStats>, StoreError> {
    let mut tx = store.begin(Role::App, Some(tenant), Mode::Read).await?;
    let result = async {
        let rows = sqlx::query(
            "SELECT rule_id, execution_count, success_count, last_executed_at, \
             average_execution_time_ms FROM rule_stats WHERE user_id = $1 ORDER BY rule_id",
        )
        .bind(tenant)
        .fetch_all(tx.conn())
        .await
        .map_err(db("loading rule statistics"))?;
        rows.iter()
            .map(|r| {
                Ok(RuleStats {
                    rule: column(r, "rule_id")?,
                    execution_count: logic::to_u64(
                        column(r, "execution_count")?,
                        "execution_count",
                    )?,
                    success_count: logic::to_u64(column(r, "success_count")?, "success_count")?,
                    last_executed_at: opt_time(r, "last_executed_at")?,
                    average_execution_time_ms: column(r, "average_execution_time_ms")?,
                })
            })
            .collect()
    }
    .await;
    tx.end(result).await
}

pub(super) async fn note_webhook(
    store: &PostgresStore,
    tenant: &str,
    notification_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = store.begin(Role::App, Some(tenant), Mode::Write).await?;
    let result = sqlx::query(
        "INSERT INTO webhook_notifications (user_id, notification_id, received_at) \
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(notification_id)
    .bind(trunc(at))
    .execute(tx.conn())
    .await
    .map(|done| done.rows_affected() == 1)
    .map_err(db("noting a webhook"));
    tx.end(result).await
}

pub(super) async fn prune_webhooks(
    store: &PostgresStore,
    tenant: &str,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = store.begin(Role::App, Some(tenant), Mode::Write).await?;
    let result =
        sqlx::query("DELETE FROM webhook_notifications WHERE user_id = $1 AND received_at < $2")
            .bind(tenant)
            .bind(trunc(before))
            .execute(tx.conn())
            .await
            .map(|done| done.rows_affected())
            .map_err(db("pruning webhooks"));
    tx.end(result).await
}
