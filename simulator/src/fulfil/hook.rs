//! The packing floor learns which orders are ready to pack from the label
//! printer: [`LabelHook`] wraps the `generate_shipping_label` handler, and a
//! label created puts the order in the packing queue (the step that
//! printed it leaves the order in `label_generated`, where it waits for the
//! carrier), a label voided (a cancellation, or the machine's timeout to
//! manual review) takes it out. No store read: the action sees the order.

use std::sync::{Arc, Mutex, PoisonError};

use creatorflow::actions::{ActionContext, ActionError, ActionHandler, ActionOutcome, BoxFuture};
use serde_json::Value;

use super::floor::{Floor, Parcel};

/// The label handler, telling the floor what it printed and voided.
pub struct LabelHook {
    inner: Arc<dyn ActionHandler>,
    floor: Arc<Mutex<Floor>>,
}

impl LabelHook {
    /// Wraps `inner` (the label service with its faults).
    pub fn new(inner: Arc<dyn ActionHandler>, floor: Arc<Mutex<Floor>>) -> Self {
        LabelHook { inner, floor }
    }
}

impl ActionHandler for LabelHook {
    fn call<'a>(
        &'a self,
        ctx: ActionContext<'a>,
    ) -> BoxFuture<'a, Result<ActionOutcome, ActionError>> {
        Box::pin(async move {
            let op = ctx
                .action
                .parameters
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or("create")
                .to_owned();
            let order = ctx.order;
            let (now, transition) = (ctx.now, ctx.transition.to_owned());
            let out = self.inner.call(ctx).await?;
            let Some(id) = order.id else {
                return Ok(out);
            };
            let mut floor = self.floor.lock().unwrap_or_else(PoisonError::into_inner);
            if op == "void" {
                floor.void(id, transition != "cancel");
            } else {
                let deadline = order
                    .deadline
                    .unwrap_or(order.created_at + floor.spec().ship_by);
                floor.label(Parcel {
                    id,
                    tiktok_id: order.tiktok_order_id.clone(),
                    lane: order.priority,
                    impact: order.impact,
                    created: order.created_at,
                    deadline,
                    queued: now,
                });
            }
            Ok(out)
        })
    }
}
