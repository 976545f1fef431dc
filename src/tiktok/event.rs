//! Webhook envelopes and topics, de-duplication keys, and the engine command
//! each event maps to.

use serde_json::Value;

/// Why a webhook body was refused (answer 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The body is not a JSON object.
    #[error("body is not a JSON object: {0}")]
    NotJson(String),
    /// A required field is missing or has the wrong type.
    #[error("`{field}` {problem}")]
    Field {
        /// The field, as a path (`data.order_id`).
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// An order's status as TikTok Shop reports it. The webhook spells the
/// cancelled status `CANCEL`, the Order API `CANCELLED`: both parse as `Cancelled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderStatus {
    /// Not paid yet.
    Unpaid,
    /// Paid, but the buyer may still cancel; must not be fulfilled yet.
    OnHold,
    /// Ready to fulfil.
    AwaitingShipment,
    /// Some packages shipped.
    PartiallyShipping,
    /// Waiting for the carrier to collect.
    AwaitingCollection,
    /// With the carrier.
    InTransit,
    /// Delivered.
    Delivered,
    /// Completed (after delivery).
    Completed,
    /// Cancelled (`CANCEL` or `CANCELLED`).
    Cancelled,
    /// A status this version does not know, kept as sent.
    Unknown(String),
}

impl OrderStatus {
    /// Parses either spelling.
    pub fn parse(s: &str) -> OrderStatus {
        match s {
            "UNPAID" => OrderStatus::Unpaid,
            "ON_HOLD" => OrderStatus::OnHold,
            "AWAITING_SHIPMENT" => OrderStatus::AwaitingShipment,
            "PARTIALLY_SHIPPING" => OrderStatus::PartiallyShipping,
            "AWAITING_COLLECTION" => OrderStatus::AwaitingCollection,
            "IN_TRANSIT" => OrderStatus::InTransit,
            "DELIVERED" => OrderStatus::Delivered,
            "COMPLETED" => OrderStatus::Completed,
            "CANCEL" | "CANCELLED" => OrderStatus::Cancelled,
            other => OrderStatus::Unknown(other.to_owned()),
        }
    }

    /// The spelling (`CANCELLED` for a cancellation).
    pub fn as_str(&self) -> &str {
        match self {
            OrderStatus::Unpaid => "UNPAID",
            OrderStatus::OnHold => "ON_HOLD",
            OrderStatus::AwaitingShipment => "AWAITING_SHIPMENT",
            OrderStatus::PartiallyShipping => "PARTIALLY_SHIPPING",
            OrderStatus::AwaitingCollection => "AWAITING_COLLECTION",
            OrderStatus::InTransit => "IN_TRANSIT",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Unknown(s) => s,
        }
    }
}

/// The state of a cancellation request (topic 11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelStatus {
    /// `CANCELLATION_REQUEST_PENDING`.
    Pending,
    /// `CANCELLATION_REQUEST_SUCCESS`: the order is cancelled.
    Success,
    /// `CANCELLATION_REQUEST_CANCELLED`: the request was withdrawn or refused.
    Withdrawn,
    /// `CANCELLATION_REQUEST_COMPLETE`: the cancellation is complete.
    Complete,
    /// Anything else, kept as sent.
    Unknown(String),
}

impl CancelStatus {
    fn parse(s: &str) -> CancelStatus {
        match s {
            "CANCELLATION_REQUEST_PENDING" => CancelStatus::Pending,
            "CANCELLATION_REQUEST_SUCCESS" => CancelStatus::Success,
            "CANCELLATION_REQUEST_CANCELLED" => CancelStatus::Withdrawn,
            "CANCELLATION_REQUEST_COMPLETE" => CancelStatus::Complete,
            other => CancelStatus::Unknown(other.to_owned()),
        }
    }
}

/// What a push is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Topic {
    /// 1, ORDER_STATUS_CHANGE.
    OrderStatusChange {
        /// The order.
        order_id: String,
        /// Its new status.
        status: OrderStatus,
        /// Whether the order is on hold.
        is_on_hold_order: bool,
        /// When the status changed (Unix seconds).
        update_time: i64,
    },
    /// 3, RECIPIENT_ADDRESS_UPDATE.
    RecipientAddressUpdate {
        /// The order.
        order_id: String,
        /// When (Unix seconds).
        update_time: i64,
    },
    /// 4, PACKAGE_UPDATE.
    PackageUpdate {
        /// COMBINE, SPLIT, ...
        sc_type: String,
        /// The orders of the packages.
        order_ids: Vec<String>,
        /// When (Unix seconds).
        update_time: i64,
    },
    /// 11, CANCELLATION_STATUS_CHANGE.
    CancellationStatusChange {
        /// The order.
        order_id: String,
        /// BUYER, SELLER or SYSTEM.
        role: String,
        /// The request's state.
        status: CancelStatus,
        /// When the request was made (Unix seconds).
        create_time: i64,
    },
    /// 12, RETURN_STATUS_CHANGE.
    ReturnStatusChange {
        /// The order.
        order_id: String,
        /// REFUND, REPLACEMENT or RETURN_AND_REFUND.
        return_type: String,
        /// The return's status.
        return_status: String,
        /// When (Unix seconds).
        update_time: i64,
    },
    /// 6, SELLER_DEAUTHORIZATION.
    SellerDeauthorization {
        /// TikTok's message.
        message: String,
    },
    /// Any other topic code: acknowledged, not acted on.
    Other {
        /// The topic code.
        code: u64,
    },
}

/// A parsed webhook push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The topic code (`type`).
    pub code: u64,
    /// `tts_notification_id`, when present.
    pub notification_id: Option<String>,
    /// The shop.
    pub shop_id: String,
    /// When TikTok pushed it (Unix seconds).
    pub timestamp: i64,
    /// The topic and its data.
    pub topic: Topic,
}

/// The key a push is de-duplicated on: the notification id, or, where it is
/// absent, (type, shop, order, update time, status).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DedupKey(pub String);

/// An id that TikTok sends as a string or as a number.
fn id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    v?.as_str().map(str::to_owned)
}

const MISSING: &str = "is missing or has the wrong type";

impl Envelope {
    /// Parses a push body. Unknown topics parse as [`Topic::Other`]; a known
    /// topic without its required fields is an error.
    ///
    /// ```
    /// use creatorflow::tiktok::{Envelope, OrderStatus, Topic};
    /// let e = Envelope::parse(br#"{"type":1,"shop_id":"7494049642642441621","timestamp":1644412885,
    ///   "data":{"order_id":576486316948490001,"order_status":"CANCEL","is_on_hold_order":false,"update_time":1644412885}}"#).unwrap();
    /// assert!(matches!(e.topic, Topic::OrderStatusChange { status: OrderStatus::Cancelled, .. }));
    /// ```
    pub fn parse(body: &[u8]) -> Result<Envelope, EventError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| EventError::NotJson(e.to_string()))?;
        let Value::Object(o) = &v else {
            return Err(EventError::NotJson("not an object".into()));
        };
        let field = |field: &'static str| EventError::Field {
            field,
            problem: MISSING,
        };
        let code = o.get("type").and_then(Value::as_u64).ok_or(field("type"))?;
        let shop_id = id(o.get("shop_id")).ok_or(field("shop_id"))?;
        let timestamp = int(o.get("timestamp")).ok_or(field("timestamp"))?;
        let notification_id = id(o.get("tts_notification_id"));
        let empty = serde_json::Map::new();
        let data = match o.get("data") {
            Some(Value::Object(d)) => d,
            None | Some(Value::Null) if !matches!(code, 1 | 3 | 4 | 6 | 11 | 12) => &empty,
            _ => return Err(field("data")),
        };
        let order_id = || id(data.get("order_id")).ok_or(field("data.order_id"));
        let topic = match code {
            1 => Topic::OrderStatusChange {
                order_id: order_id()?,
                status: OrderStatus::parse(
                    &text(data.get("order_status")).ok_or(field("data.order_status"))?,
                ),
                is_on_hold_order: data
                    .get("is_on_hold_order")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                update_time: int(data.get("update_time")).ok_or(field("data.update_time"))?,
            },
            3 => Topic::RecipientAddressUpdate {
                order_id: order_id()?,
                update_time: int(data.get("update_time")).unwrap_or(timestamp),
            },
            4 => Topic::PackageUpdate {
                sc_type: text(data.get("sc_type")).unwrap_or_default(),
                order_ids: data
                    .get("package_list")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.get("order_id_list").and_then(Value::as_array))
                    .flatten()
                    .filter_map(|v| id(Some(v)))
                    .collect(),
                update_time: int(data.get("update_time")).unwrap_or(timestamp),
            },
            6 => Topic::SellerDeauthorization {
                message: text(data.get("message")).unwrap_or_default(),
            },
            11 => Topic::CancellationStatusChange {
                order_id: order_id()?,
                role: text(data.get("cancellations_role")).unwrap_or_default(),
                status: CancelStatus::parse(
                    &text(data.get("cancel_status")).ok_or(field("data.cancel_status"))?,
                ),
                create_time: int(data.get("create_time")).unwrap_or(timestamp),
            },
            12 => Topic::ReturnStatusChange {
                order_id: order_id()?,
                return_type: text(data.get("return_type")).unwrap_or_default(),
                return_status: text(data.get("return_status")).unwrap_or_default(),
                update_time: int(data.get("update_time")).unwrap_or(timestamp),
            },
            code => Topic::Other { code },
        };
        Ok(Envelope {
            code,
            notification_id,
            shop_id,
            timestamp,
            topic,
        })
    }

    /// The order the push is about, if it is about one order.
    pub fn order_id(&self) -> Option<&str> {
        match &self.topic {
            Topic::OrderStatusChange { order_id, .. }
            | Topic::RecipientAddressUpdate { order_id, .. }
            | Topic::CancellationStatusChange { order_id, .. }
            | Topic::ReturnStatusChange { order_id, .. } => Some(order_id),
            _ => None,
        }
    }

    /// The de-duplication key.
    pub fn dedup_key(&self) -> DedupKey {
        if let Some(n) = &self.notification_id {
            return DedupKey(format!("n:{n}"));
        }
        let (time, status) = match &self.topic {
            Topic::OrderStatusChange {
                update_time,
                status,
                ..
            } => (*update_time, status.as_str().to_owned()),
            Topic::CancellationStatusChange {
                create_time,
                status,
                ..
            } => (*create_time, format!("{status:?}")),
            Topic::ReturnStatusChange {
                update_time,
                return_status,
                ..
            } => (*update_time, return_status.clone()),
            Topic::RecipientAddressUpdate { update_time, .. }
            | Topic::PackageUpdate { update_time, .. } => (*update_time, String::new()),
            _ => (self.timestamp, String::new()),
        };
        DedupKey(format!(
            "c:{}:{}:{}:{time}:{status}",
            self.code,
            self.shop_id,
            self.order_id().unwrap_or("")
        ))
    }
}

/// What the engine should do about a push.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// UNPAID / ON_HOLD: known, but must not be fulfilled yet.
    Wait {
        /// The order.
        order_id: String,
        /// When its status changed.
        update_time: i64,
    },
    /// AWAITING_SHIPMENT: fetch the order's details and ingest it.
    Ingest {
        /// The order.
        order_id: String,
        /// When its status changed.
        update_time: i64,
    },
    /// CANCEL / CANCELLED, or a successful cancellation request: cancel with rollbacks.
    Cancel {
        /// The order.
        order_id: String,
        /// When.
        update_time: i64,
        /// Why.
        reason: String,
    },
    /// IN_TRANSIT: the carrier has it.
    ConfirmShipped {
        /// The order.
        order_id: String,
        /// When.
        update_time: i64,
    },
    /// DELIVERED / COMPLETED.
    ConfirmDelivered {
        /// The order.
        order_id: String,
        /// When.
        update_time: i64,
    },
    /// The address changed: fetch the details again.
    RefreshDetails {
        /// The order.
        order_id: String,
        /// When.
        update_time: i64,
    },
    /// Nothing to do (other topics and statuses): acknowledge only.
    Acknowledge,
}

impl Command {
    /// The order and the event time, for commands about an order: the runtime
    /// drops a command older than the last event it applied to that order,
    /// so an order never moves backwards on a stale event.
    pub fn order_and_time(&self) -> Option<(&str, i64)> {
        match self {
            Command::Wait {
                order_id,
                update_time,
            }
            | Command::Ingest {
                order_id,
                update_time,
            }
            | Command::Cancel {
                order_id,
                update_time,
                ..
            }
            | Command::ConfirmShipped {
                order_id,
                update_time,
            }
            | Command::ConfirmDelivered {
                order_id,
                update_time,
            }
            | Command::RefreshDetails {
                order_id,
                update_time,
            } => Some((order_id, *update_time)),
            Command::Acknowledge => None,
        }
    }
}

/// An order's status as of `update_time`, from a webhook or the Order API.
pub(crate) struct StatusChange<'a> {
    /// The status.
    pub(crate) status: &'a OrderStatus,
    /// Whether the order is on hold (awaiting shipment, not yet to ship).
    pub(crate) on_hold: bool,
    /// The order.
    pub(crate) order_id: String,
    /// When the status was set.
    pub(crate) update_time: i64,
}

impl StatusChange<'_> {
    /// The command the status calls for: wait while unpaid or on hold,
    /// ingest once awaiting shipment, confirm shipment and delivery, cancel
    /// for `cancel_reason`; a partly shipped order or one awaiting
    /// collection is ingested when `ingest_partial` (reconciliation) and
    /// only acknowledged otherwise (a webhook), as is an unknown status.
    pub(crate) fn command(self, cancel_reason: &str, ingest_partial: bool) -> Command {
        let StatusChange {
            status,
            on_hold,
            order_id,
            update_time,
        } = self;
        match status {
            OrderStatus::Unpaid | OrderStatus::OnHold => Command::Wait {
                order_id,
                update_time,
            },
            OrderStatus::AwaitingShipment if on_hold => Command::Wait {
                order_id,
                update_time,
            },
            OrderStatus::AwaitingShipment => Command::Ingest {
                order_id,
                update_time,
            },
            OrderStatus::PartiallyShipping | OrderStatus::AwaitingCollection if ingest_partial => {
                Command::Ingest {
                    order_id,
                    update_time,
                }
            }
            OrderStatus::Cancelled => Command::Cancel {
                order_id,
                update_time,
                reason: cancel_reason.into(),
            },
            OrderStatus::InTransit => Command::ConfirmShipped {
                order_id,
                update_time,
            },
            OrderStatus::Delivered | OrderStatus::Completed => Command::ConfirmDelivered {
                order_id,
                update_time,
            },
            OrderStatus::PartiallyShipping
            | OrderStatus::AwaitingCollection
            | OrderStatus::Unknown(_) => Command::Acknowledge,
        }
    }
}

/// Maps a push to the engine command it calls for.
pub fn command_for(e: &Envelope) -> Command {
    match &e.topic {
        Topic::OrderStatusChange {
            order_id,
            status,
            is_on_hold_order,
            update_time,
        } => {
            let status = StatusChange {
                status,
                on_hold: *is_on_hold_order,
                order_id: order_id.clone(),
                update_time: *update_time,
            };
            status.command("cancelled on TikTok Shop", false)
        }
        Topic::CancellationStatusChange {
            order_id,
            role,
            status: CancelStatus::Success | CancelStatus::Complete,
            create_time,
        } => Command::Cancel {
            order_id: order_id.clone(),
            update_time: *create_time,
            reason: format!(
                "cancellation request by {}",
                if role.is_empty() { "unknown" } else { role }
            ),
        },
        Topic::RecipientAddressUpdate {
            order_id,
            update_time,
        } => Command::RefreshDetails {
            order_id: order_id.clone(),
            update_time: *update_time,
        },
        _ => Command::Acknowledge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_official_examples_and_id_shapes() {
        let e = Envelope::parse(br#"{"type":1,"tts_notification_id":"7327112393057371910","shop_id":"7494049642642441621","timestamp":1644412885,"data":{"order_id":"576486316948490001","order_status":"UNPAID","is_on_hold_order":false,"update_time":1644412885}}"#).unwrap();
        assert_eq!(e.notification_id.as_deref(), Some("7327112393057371910"));
        assert_eq!(e.order_id(), Some("576486316948490001"));
        assert_eq!(
            command_for(&e),
            Command::Wait {
                order_id: "576486316948490001".into(),
                update_time: 1644412885
            }
        );
        assert_eq!(e.dedup_key(), DedupKey("n:7327112393057371910".into()));
        // Numeric ids, key order, no notification id.
        let e = Envelope::parse(br#"{"data":{"update_time":5,"order_id":12,"order_status":"AWAITING_SHIPMENT"},"shop_id":99,"timestamp":7,"type":1}"#).unwrap();
        assert_eq!((e.shop_id.as_str(), e.order_id()), ("99", Some("12")));
        assert_eq!(
            e.dedup_key(),
            DedupKey("c:1:99:12:5:AWAITING_SHIPMENT".into())
        );
        assert_eq!(
            command_for(&e),
            Command::Ingest {
                order_id: "12".into(),
                update_time: 5
            }
        );
    }

    #[test]
    fn maps_statuses_and_topics_to_commands() {
        let cmd = |status: &str| {
            let body = format!(
                r#"{{"type":1,"shop_id":"1","timestamp":1,"data":{{"order_id":"9","order_status":"{status}","update_time":3}}}}"#
            );
            command_for(&Envelope::parse(body.as_bytes()).unwrap())
        };
        assert!(matches!(cmd("ON_HOLD"), Command::Wait { .. }));
        assert!(matches!(cmd("CANCEL"), Command::Cancel { .. }));
        assert!(matches!(cmd("CANCELLED"), Command::Cancel { .. }));
        assert!(matches!(cmd("IN_TRANSIT"), Command::ConfirmShipped { .. }));
        assert!(matches!(cmd("DELIVERED"), Command::ConfirmDelivered { .. }));
        assert!(matches!(cmd("COMPLETED"), Command::ConfirmDelivered { .. }));
        assert_eq!(cmd("SOMETHING_NEW"), Command::Acknowledge);
        let cancel = Envelope::parse(br#"{"type":11,"shop_id":"1","timestamp":1,"data":{"order_id":"9","cancellations_role":"BUYER","cancel_status":"CANCELLATION_REQUEST_SUCCESS","cancel_id":"5","create_time":4}}"#).unwrap();
        assert_eq!(
            command_for(&cancel),
            Command::Cancel {
                order_id: "9".into(),
                update_time: 4,
                reason: "cancellation request by BUYER".into()
            }
        );
        let pending = Envelope::parse(br#"{"type":11,"shop_id":"1","timestamp":1,"data":{"order_id":"9","cancel_status":"CANCELLATION_REQUEST_PENDING","create_time":4}}"#).unwrap();
        assert_eq!(command_for(&pending), Command::Acknowledge);
        // The official type-3 example has no notification id.
        let addr = Envelope::parse(br#"{"type":3,"shop_id":"7494049642642441621","timestamp":1644412885,"data":{"order_id":"576486316948490001","update_time":1644412885}}"#).unwrap();
        assert!(addr.notification_id.is_none());
        assert!(matches!(command_for(&addr), Command::RefreshDetails { .. }));
        for code in [2, 5, 7, 13, 55, 999] {
            let body = format!(
                r#"{{"type":{code},"shop_id":"1","timestamp":1,"data":{{"anything":[1,2]}}}}"#
            );
            let e = Envelope::parse(body.as_bytes()).unwrap();
            assert_eq!(e.topic, Topic::Other { code });
            assert_eq!(command_for(&e), Command::Acknowledge);
        }
    }

    #[test]
    fn refuses_malformed_bodies_naming_the_field() {
        for (body, expected) in [
            (&b"not json"[..], "not a JSON object"),
            (b"[1]", "not a JSON object"),
            (br#"{"shop_id":"1","timestamp":1,"data":{}}"#, "`type`"),
            (br#"{"type":1,"timestamp":1,"data":{}}"#, "`shop_id`"),
            (br#"{"type":1,"shop_id":"1","timestamp":1,"data":{"order_status":"UNPAID","update_time":1}}"#, "`data.order_id`"),
            (br#"{"type":1,"shop_id":"1","timestamp":1,"data":{"order_id":"1","update_time":1}}"#, "`data.order_status`"),
            (br#"{"type":11,"shop_id":"1","timestamp":1,"data":"x"}"#, "`data`"),
        ] {
            let e = Envelope::parse(body).unwrap_err().to_string();
            assert!(e.contains(expected), "{}: {e}", String::from_utf8_lossy(body));
        }
    }
}
