//! Decoding stored rows, once for every SQL backend: a backend says how to
//! read one column ([`Columns`]); the mapping of an `orders` row to a
//! [`StoredOrder`] and the checks on stored values live here.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::logic::{Figures, LeaseState, to_u64};
use super::{
    HistoryEntry, InboxItem, LaneLimit, Lease, OrderId, ShopAuth, StoreError, StoredOrder,
    TokenSet, WorkItem,
};
use crate::model::{
    AutomationStatus, CustomerTier, Impact, Order, Priority, StateName, UserRef, ViralIndicator,
};

/// How a backend reads the columns of one row.
pub(crate) trait Columns {
    /// A non-NULL text column.
    fn text(&self, col: &str) -> Result<String, StoreError>;
    /// A nullable text column.
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    /// An integer column.
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    /// A nullable integer column.
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;
    /// A nullable floating-point column.
    fn opt_float(&self, col: &str) -> Result<Option<f64>, StoreError>;
    /// A binary column.
    fn bytes(&self, col: &str) -> Result<Vec<u8>, StoreError>;
    /// A boolean column.
    fn flag(&self, col: &str) -> Result<bool, StoreError>;
    /// An order id column.
    fn id(&self, col: &str) -> Result<OrderId, StoreError>;
    /// A nullable time column.
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// A time column that is never NULL.
    fn time(&self, col: &str) -> Result<DateTime<Utc>, StoreError> {
        self.opt_time(col)?
            .ok_or_else(|| StoreError::database(format!("stored {col} is NULL")))
    }
}

/// Implements [`Columns`] for a backend's row type: `$get` reads a column
/// as any type the backend decodes natively; `$id` and `$opt_time` read
/// the two kinds of column whose stored form differs by backend.
macro_rules! impl_columns {
    ($row:ty, $get:path, $id:path, $opt_time:path) => {
        impl $crate::store::decode::Columns for $row {
            fn text(&self, col: &str) -> $crate::store::Result<String> {
                $get(self, col)
            }
            fn opt_text(&self, col: &str) -> $crate::store::Result<Option<String>> {
                $get(self, col)
            }
            fn int(&self, col: &str) -> $crate::store::Result<i64> {
                $get(self, col)
            }
            fn opt_int(&self, col: &str) -> $crate::store::Result<Option<i64>> {
                $get(self, col)
            }
            fn opt_float(&self, col: &str) -> $crate::store::Result<Option<f64>> {
                $get(self, col)
            }
            fn bytes(&self, col: &str) -> $crate::store::Result<Vec<u8>> {
                $get(self, col)
            }
            fn flag(&self, col: &str) -> $crate::store::Result<bool> {
                $get(self, col)
            }
            fn id(&self, col: &str) -> $crate::store::Result<$crate::store::OrderId> {
                $id(self, col)
            }
            fn opt_time(
                &self,
                col: &str,
            ) -> $crate::store::Result<Option<chrono::DateTime<chrono::Utc>>> {
                $opt_time(self, col)
            }
        }
    };
}
pub(crate) use impl_columns;

/// Serializes a value for a JSON column.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::invalid(format!("{what} cannot be stored as JSON: {e}")))
}

/// Reads a JSON column (as text).
/// A JSON column read as [`JsonText`](super::JsonText), checked.
pub(crate) fn json_text(text: &str, what: &str) -> Result<super::JsonText, StoreError> {
    super::JsonText::parse(text)
        .map_err(|e| StoreError::database(format!("stored {what} is not valid JSON: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::database(format!("stored {what} is not valid JSON: {e}")))
}

/// Reads a stored enum spelling.
pub(crate) fn parse_enum<T>(
    text: &str,
    parse: fn(&str) -> Option<T>,
    what: &str,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::database(format!("stored {what} `{text}` is unknown")))
}

/// Reads a stored exact decimal.
pub(crate) fn decimal(text: &str, what: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(text)
        .map_err(|e| StoreError::database(format!("stored {what} `{text}` is not a decimal: {e}")))
}

/// Reads a non-negative count column (NULL as 0).
pub(crate) fn count(row: &impl Columns, col: &str) -> Result<u64, StoreError> {
    to_u64(row.opt_int(col)?.unwrap_or(0), col)
}

/// Reads a lane (priority) column.
pub(crate) fn lane(row: &impl Columns, col: &str) -> Result<Priority, StoreError> {
    parse_enum(&row.text(col)?, Priority::parse, "lane")
}

/// Reads one row of `order_counts` (`current_state`, `priority`,
/// `terminal`, `viral`, `n`), `None` when `n` is 0.
pub(crate) fn order_count(row: &impl Columns) -> Result<Option<super::OrderCount>, StoreError> {
    let n = row.int("n")?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(super::OrderCount {
        state: row.text("current_state")?,
        priority: lane(row, "priority")?,
        terminal: row.flag("terminal")?,
        viral: row.flag("viral")?,
        n: to_u64(n, "order count")?,
    }))
}

impl Figures {
    /// Adds the tenant's order counts ([`OrderReads::order_counts`]): orders
    /// by state, active ones by priority, active viral ones.
    ///
    /// [`OrderReads::order_counts`]: super::OrderReads::order_counts
    pub(crate) fn add_counts(&mut self, counts: &[super::OrderCount]) {
        for c in counts {
            *self.by_state.entry(c.state.clone()).or_default() += c.n;
            if !c.terminal {
                *self.by_priority.entry(c.priority).or_default() += c.n;
                if c.viral {
                    self.viral += c.n;
                }
            }
        }
    }

    /// Reads the windows' aggregates (`n`, `healthy`, `processed`, `avg_ms`,
    /// `prev_avg_ms`).
    pub(crate) fn set_window(&mut self, row: &impl Columns) -> Result<(), StoreError> {
        self.transitions = count(row, "n")?;
        self.healthy = count(row, "healthy")?;
        self.processed = count(row, "processed")?;
        self.avg_ms = row.opt_float("avg_ms")?;
        self.prev_avg_ms = row.opt_float("prev_avg_ms")?;
        Ok(())
    }

    /// Reads the windows' shipments (`shipped`, `ship_ms`, `prev_ship_ms`).
    pub(crate) fn set_shipped(&mut self, row: &impl Columns) -> Result<(), StoreError> {
        self.shipped = count(row, "shipped")?;
        self.ship_ms = row.opt_float("ship_ms")?;
        self.prev_ship_ms = row.opt_float("prev_ship_ms")?;
        Ok(())
    }
}

/// Decodes a work item's lease columns (`user_id, order_id, lease_owner,
/// attempts, lease_expires_at`).
pub(crate) fn lease_state(row: &impl Columns) -> Result<LeaseState, StoreError> {
    Ok(LeaseState {
        tenant: row.text("user_id")?,
        order_id: row.id("order_id")?,
        owner: row.opt_text("lease_owner")?,
        attempts: attempts(row)?,
        expires_at: row.opt_time("lease_expires_at")?,
    })
}

/// Reads a work item's or inbox entry's `attempts`.
pub(crate) fn attempts(row: &impl Columns) -> Result<u32, StoreError> {
    small(row, "attempts")
}

/// Decodes an `order_transitions` row (the columns every backend selects
/// for a history entry).
pub(crate) fn history(row: &impl Columns) -> Result<HistoryEntry, StoreError> {
    Ok(HistoryEntry {
        order_id: row.id("order_id")?,
        version: to_u64(row.int("version")?, "version")?,
        from: StateName::new(&row.text("from_state")?),
        to: StateName::new(&row.text("to_state")?),
        reason: row.opt_text("transition_reason")?,
        automated: row.flag("automated")?,
        duration_ms: to_u64(row.int("duration_ms")?, "duration_ms")?,
        actions_executed: json_text(&row.text("actions_executed")?, "actions_executed")?,
        error_message: row.opt_text("error_message")?,
        actor: row.opt_text("actor")?,
        pack_version: row.opt_text("pack_version")?,
        at: row.time("created_at")?,
    })
}

/// Decodes an order's stored ingest decision (`orders.decision`), if any.
pub(crate) fn decision(text: Option<String>) -> Result<Option<super::JsonText>, StoreError> {
    text.map(|d| json_text(&d, "decision")).transpose()
}

/// Decodes the history rows of an order.
pub(crate) fn history_rows<R: Columns>(rows: &[R]) -> Result<Vec<HistoryEntry>, StoreError> {
    rows.iter().map(history).collect()
}

/// Decodes a row a claim returned (`id, user_id, order_id, kind, lane,
/// viral, payload, attempts, order_created_at`): the item under its new
/// lease, and its order's `created_at` (for [`in_service_order`]).
pub(crate) fn claimed_item(
    row: &impl Columns,
    worker: &str,
    expires_at: DateTime<Utc>,
) -> Result<(WorkItem, DateTime<Utc>), StoreError> {
    let item = WorkItem {
        order_id: row.id("order_id")?,
        kind: row.text("kind")?,
        lane: lane(row, "lane")?,
        viral: row.flag("viral")?,
        payload: from_json(&row.text("payload")?, "payload")?,
        lease: Lease {
            id: row.int("id")?,
            tenant: row.text("user_id")?,
            worker: worker.to_owned(),
            attempt: attempts(row)?,
            expires_at,
        },
    };
    Ok((item, row.time("order_created_at")?))
}

/// Claimed items in the order a claim serves them (a statement's
/// `RETURNING` has none): lane by lane as asked, VIRAL first, oldest
/// order first.
pub(crate) fn in_service_order(
    lanes: &[&LaneLimit],
    mut claimed: Vec<(WorkItem, DateTime<Utc>)>,
) -> Vec<WorkItem> {
    let lane_pos = |p: Priority| lanes.iter().position(|l| l.lane == p).unwrap_or(usize::MAX);
    claimed.sort_by_key(|(i, created)| (lane_pos(i.lane), !i.viral, *created, i.lease.id));
    claimed.into_iter().map(|(i, _)| i).collect()
}

/// Decodes a row an inbox claim returned (`id, dedup_key, topic, body,
/// received_at, attempts`) of `tenant`'s inbox.
pub(crate) fn inbox_item(row: &impl Columns, tenant: &str) -> Result<InboxItem, StoreError> {
    Ok(InboxItem {
        id: row.int("id")?,
        tenant: tenant.to_owned(),
        dedup_key: row.text("dedup_key")?,
        topic: u64::try_from(row.int("topic")?)
            .map_err(|_| StoreError::database("inbox: negative topic"))?,
        body: row.bytes("body")?,
        received_at: row.time("received_at")?,
        attempt: u32::try_from(row.int("attempts")?)
            .map_err(|_| StoreError::database("inbox: attempts out of range"))?,
    })
}

/// Reads an integer column into a narrower type.
fn small<T: TryFrom<i64>>(row: &impl Columns, col: &str) -> Result<T, StoreError> {
    let v = row.int(col)?;
    T::try_from(v).map_err(|_| StoreError::database(format!("stored {col} {v} is out of range")))
}

/// Decodes an `orders` row (the columns every backend selects for an order).
pub(crate) fn order(row: &impl Columns) -> Result<StoredOrder, StoreError> {
    let id = row.id("id")?;
    let text = |col: &str| row.text(col);
    let opt = |col: &str| row.opt_text(col);
    let user: Option<UserRef> = opt("user_ref")?
        .map(|u| from_json(&u, "user_ref"))
        .transpose()?;
    let viral_indicators: Vec<ViralIndicator> =
        from_json(&text("viral_indicators")?, "viral_indicators")?;
    let order = Order {
        id: Some(id),
        user_id: Some(text("user_id")?),
        tiktok_order_id: text("tiktok_order_id")?,
        shop_id: opt("shop_id")?,
        current_state: StateName::new(&text("current_state")?),
        previous_state: opt("previous_state")?.map(|s| StateName::new(&s)),
        priority: parse_enum(&text("priority")?, Priority::parse, "priority")?,
        impact: parse_enum(&text("impact")?, Impact::parse, "impact")?,
        automation_status: parse_enum(
            &text("automation_status")?,
            AutomationStatus::parse,
            "automation_status",
        )?,
        customer_handle: text("customer_handle")?,
        customer_tier: parse_enum(
            &text("customer_tier")?,
            CustomerTier::parse,
            "customer_tier",
        )?,
        customer_id: opt("customer_id")?,
        product_name: text("product_name")?,
        product_id: text("product_id")?,
        quantity: small(row, "quantity")?,
        price: decimal(&text("price")?, "price")?,
        processing_time_ms: to_u64(row.int("processing_time_ms")?, "processing_time_ms")?,
        automation_score: small(row, "automation_score")?,
        flow_progress: small(row, "flow_progress")?,
        viral_indicators,
        orders_per_hour_current: decimal(
            &text("orders_per_hour_current")?,
            "orders_per_hour_current",
        )?,
        velocity_multiplier: decimal(&text("velocity_multiplier")?, "velocity_multiplier")?,
        shipping_location: opt("shipping_location")?,
        carrier_preference: opt("carrier_preference")?,
        shipping_zone: opt("shipping_zone")?,
        deadline: row.opt_time("deadline")?,
        created_at: row.time("created_at")?,
        updated_at: Some(row.time("updated_at")?),
        state_changed_at: Some(row.time("state_changed_at")?),
        user,
    };
    Ok(StoredOrder {
        id,
        version: to_u64(row.int("version")?, "version")?,
        terminal: row.flag("terminal")?,
        order,
    })
}

/// The columns of a connected shop (`tiktok_shops`), as every backend
/// selects them.
pub(crate) const SHOP_COLUMNS: &str = "shop_id, cipher, name, region, access_token, \
    access_expires_at, refresh_token, refresh_expires_at, updated_at";

/// Decodes a `tiktok_shops` row selected with [`SHOP_COLUMNS`].
pub(crate) fn shop(row: &impl Columns) -> Result<ShopAuth, StoreError> {
    Ok(ShopAuth {
        shop_id: row.text("shop_id")?,
        cipher: row.text("cipher")?,
        name: row.text("name")?,
        region: row.text("region")?,
        tokens: TokenSet {
            access_token: row.text("access_token")?,
            access_expires_at: row.time("access_expires_at")?,
            refresh_token: row.text("refresh_token")?,
            refresh_expires_at: row.time("refresh_expires_at")?,
        },
        updated_at: row.time("updated_at")?,
    })
}
