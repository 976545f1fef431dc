//! Workflow metrics, rule statistics and webhook de-duplication on SQLite.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, SqlitePool};

use super::SqliteStore;
use super::orders::{CHUNK, time};
use super::rows::{column, db, json, metric_from_row, params, placeholders, uuid};
use crate::rules::RuleStats;
use crate::store::logic::{self, ms, to_i64, trunc, validate_metric, validate_rule_stats};
use crate::store::{MetricQuery, OrderId, StoreError, WorkflowMetric};

pub(super) async fn record_metrics(
    store: &SqliteStore,
    tenant: &str,
    metrics: &[WorkflowMetric],
) -> Result<(), StoreError> {
    for m in metrics {
        validate_metric(m)?;
    }
    if metrics.is_empty() {
        return Ok(());
    }
    let mut tx = store.write().await?;
    let wanted: Vec<OrderId> = {
        let mut seen = HashSet::new();
        metrics
            .iter()
            .filter_map(|m| m.order_id)
            .filter(|id| seen.insert(*id))
            .collect()
    };
    for chunk in wanted.chunks(CHUNK) {
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT id FROM orders WHERE user_id = ? AND id IN ({})",
            params(chunk.len())
        )))
        .bind(tenant.to_owned());
        for id in chunk {
            q = q.bind(id.to_string());
        }
        let found: HashSet<OrderId> = q
            .fetch_all(&mut *tx)
            .await
            .map_err(db("checking metric orders"))?
            .iter()
            .map(|r| uuid(r, "id"))
            .collect::<Result<_, _>>()?;
        if let Some(missing) = chunk.iter().find(|id| !found.contains(id)) {
            return Err(StoreError::order_not_found(*missing));
        }
    }
    for chunk in metrics.chunks(CHUNK) {
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO workflow_metrics (user_id, order_id, metric_type, metric_name, \
             metric_value, dimensions, recorded_at) VALUES {}",
            placeholders(7, chunk.len())
        )));
        for m in chunk {
            q = q
                .bind(tenant.to_owned())
                .bind(m.order_id.map(|id| id.to_string()))
                .bind(m.metric_type.clone())
                .bind(m.metric_name.clone())
                .bind(m.value.to_string())
                .bind(json(&m.dimensions, "dimensions")?)
                .bind(ms(m.recorded_at));
        }
        q.execute(&mut *tx).await.map_err(db("recording metrics"))?;
    }
    tx.commit().await.map_err(db("committing metrics"))
}

pub(super) async fn metrics(
    pool: &SqlitePool,
    tenant: &str,
    query: &MetricQuery,
) -> Result<Vec<WorkflowMetric>, StoreError> {
    let mut sql = String::from(
        "SELECT order_id, metric_type, metric_name, metric_value, dimensions, recorded_at \
         FROM workflow_metrics WHERE user_id = ?",
    );
    if query.metric_type.is_some() {
        sql.push_str(" AND metric_type = ?");
    }
    if query.metric_name.is_some() {
        sql.push_str(" AND metric_name = ?");
    }
    if query.order_id.is_some() {
        sql.push_str(" AND order_id = ?");
    }
    if query.since.is_some() {
        sql.push_str(" AND recorded_at >= ?");
    }
    if query.until.is_some() {
        sql.push_str(" AND recorded_at < ?");
    }
    sql.push_str(" ORDER BY recorded_at, id LIMIT ?");
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.to_owned());
    if let Some(t) = &query.metric_type {
        q = q.bind(t.clone());
    }
    if let Some(n) = &query.metric_name {
        q = q.bind(n.clone());
    }
    if let Some(id) = query.order_id {
        q = q.bind(id.to_string());
    }
    if let Some(s) = query.since {
        q = q.bind(ms(trunc(s)));
    }
    if let Some(u) = query.until {
        q = q.bind(ms(trunc(u)));
    }
    let limit = query
        .limit
        .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let rows = q
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(db("reading metrics"))?;
    rows.iter().map(metric_from_row).collect()
}

pub(super) async fn save_rule_stats(
    store: &SqliteStore,
    tenant: &str,
    stats: &[RuleStats],
) -> Result<(), StoreError> {
    for s in stats {
        validate_rule_stats(s)?;
    }
    if stats.is_empty() {
        return Ok(());
    }
    let mut tx = store.write().await?;
    for chunk in stats.chunks(CHUNK) {
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO rule_stats (user_id, rule_id, execution_count, success_count, \
             last_executed_at, average_execution_time_ms) VALUES {} \
             ON CONFLICT (user_id, rule_id) DO UPDATE SET \
             execution_count = excluded.execution_count, success_count = excluded.success_count, \
             last_executed_at = excluded.last_executed_at, \
             average_execution_time_ms = excluded.average_execution_time_ms",
            placeholders(6, chunk.len())
        )));
        for s in chunk {
            q = q
                .bind(tenant.to_owned())
                .bind(s.rule.clone())
                .bind(to_i64(s.execution_count, "execution_count")?)
                .bind(to_i64(s.success_count, "success_count")?)
                .bind(s.last_executed_at.map(ms))
                .bind(s.average_execution_time_ms);
        }
        q.execute(&mut *tx)
            .await
            .map_err(db("saving rule statistics"))?;
    }
    tx.commit().await.map_err(db("committing rule statistics"))
}

pub(super) async fn load_rule_stats(
    pool: &SqlitePool,
    tenant: &str,
) -> Result<Vec<RuleStats>, StoreError> {
    let rows = sqlx::query(
        "SELECT rule_id, execution_count, success_count, last_executed_at, \
         average_execution_time_ms FROM rule_stats WHERE user_id = ? ORDER BY rule_id",
    )
    .bind(tenant.to_owned())
    .fetch_all(pool)
    .await
    .map_err(db("loading rule statistics"))?;
    rows.iter()
        .map(|r| {
            Ok(RuleStats {
                rule: column(r, "rule_id")?,
                execution_count: logic::to_u64(column(r, "execution_count")?, "execution_count")?,
                success_count: logic::to_u64(column(r, "success_count")?, "success_count")?,
                last_executed_at: time(r, "last_executed_at")?,
                average_execution_time_ms: column(r, "average_execution_time_ms")?,
            })
        })
        .collect()
}

pub(super) async fn note_webhook(
    pool: &SqlitePool,
    tenant: &str,
    notification_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO webhook_notifications (user_id, notification_id, received_at) \
         VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(tenant.to_owned())
    .bind(notification_id.to_owned())
    .bind(ms(at))
    .execute(pool)
    .await
    .map_err(db("noting a webhook"))?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn prune_webhooks(
    pool: &SqlitePool,
    tenant: &str,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let done =
        sqlx::query("DELETE FROM webhook_notifications WHERE user_id = ? AND received_at < ?")
            .bind(tenant.to_owned())
            .bind(ms(before))
            .execute(pool)
            .await
            .map_err(db("pruning webhooks"))?;
    Ok(done.rows_affected())
}
