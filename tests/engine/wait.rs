//! The machine waits for the world: with external events on, an order in a
//! state that `waits_for` a confirmation is moved only by
//! `confirm_shipped` / `confirm_delivered` or by its state's timeout; with
//! them off the same machine runs as it always did. And the fired rules'
//! actions travel with the work item, so a worker holding another pack runs
//! what the ingesting tenant's pack decided.

use std::sync::{Arc, Mutex};

use chrono::TimeDelta;
use creatorflow::actions::{ActionCall, ActionOutcome, ActionType, DefaultHandlers, NoSleep};
use creatorflow::engine::external::External;
use creatorflow::engine::{EngineBuilder, WORK_KIND};
use creatorflow::machine::Machine;
use creatorflow::model::{AutomationStatus, Priority};
use creatorflow::rules::{PackLoader, RulePack};
use creatorflow::store::{
    AnyStore, OrderStore, OrderWithHistory, QueueStore, StoredOrder, WorkSpec,
};
use creatorflow::{Clock, ManualClock};

use super::{Backend, Fixture, empty_pack, fixture, history, order, pg, start, states};

every_backend!(
    an_order_waits_for_in_transit_then_for_delivered,
    past_the_label_timeout_the_order_goes_to_manual_review,
    a_waiting_order_is_escalated_once_and_keeps_waiting,
    without_external_events_the_machine_runs_to_delivered,
    a_confirmation_schedules_the_next_automatic_step,
    a_confirmation_through_another_engine_is_seen_by_the_workers,
    rule_actions_follow_the_ingesting_tenants_pack,
    an_ids_only_payload_is_resolved_in_the_workers_pack,
    confirming_many_ends_as_confirming_one_by_one
);

/// The shipped workflow's happy path, as history rows name it.
const TO_LABEL: &str = "validated processing inventory_reserved label_generated";

/// An engine with external events on or off, an empty pack and a delivery
/// check that would deliver every shipped order at once (so that a test
/// sees whether it is asked).
async fn waiting(
    b: Backend,
    external: bool,
    tweak: impl FnOnce(EngineBuilder<AnyStore>) -> EngineBuilder<AnyStore>,
) -> Fixture {
    fixture(b, DefaultHandlers::default(), |x| {
        tweak(
            x.rules(empty_pack())
                .delivery_confirmation(|_, _| true)
                .external_events(external),
        )
    })
    .await
}

fn pack(yaml: &str) -> RulePack {
    PackLoader::new()
        .load_sources(&[("pack.yaml".to_owned(), yaml.to_owned())])
        .expect("pack")
}

fn moved(x: External) -> (StoredOrder, usize) {
    match x {
        External::Moved { order, steps } => (order, steps),
        other => panic!("expected the order to move, got {other:?}"),
    }
}

/// The actions of a history row as `type/operation/phase`.
fn actions(o: &OrderWithHistory, row: usize) -> Vec<String> {
    let v = o.history[row].actions_executed.to_value();
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let s = |k: &str| r.get(k).and_then(|x| x.as_str()).unwrap_or("");
                    format!("{}/{}/{}", s("type"), s("operation"), s("phase"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The whole way with external events: the order stops in
/// `label_generated` (one claim, the chain stops there), is not claimed
/// again before its timeout, IN_TRANSIT moves it to `shipped` (one row
/// naming the event), it then waits in `shipped` although the delivery
/// check would say delivered, and DELIVERED moves it to `delivered`.
async fn an_order_waits_for_in_transit_then_for_delivered(b: Backend) {
    let f = waiting(b, true, |x| x).await;
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    let round = f.engine.run_once().await.expect("round");
    assert_eq!(
        round.recorded, 4,
        "one claim chains up to the waiting state"
    );
    assert!(!round.more, "nothing is due at once: {round:?}");
    let label_at = f.clock.now();
    let idle = f.engine.run_until_idle().await.expect("run");
    assert_eq!(idle.claimed, 0, "a waiting order is not claimed again");
    assert_eq!(idle.next_due, Some(label_at + TimeDelta::hours(72)));
    let h = history(&f, id).await;
    assert_eq!(states(&h).join(" "), TO_LABEL);

    // Time passes, short of the timeout: nothing happens, nothing spins.
    f.clock.advance(TimeDelta::hours(71));
    let idle = f.engine.run_until_idle().await.expect("run");
    assert_eq!((idle.claimed, idle.recorded), (0, 0));
    assert_eq!(
        f.engine.order(id).await.expect("order").order.current_state,
        "label_generated"
    );

    let (o, steps) = moved(
        f.engine
            .confirm_shipped(id, "TikTok IN_TRANSIT")
            .await
            .expect("confirm"),
    );
    assert_eq!((o.order.current_state.as_str(), steps), ("shipped", 1));
    let h = history(&f, id).await;
    assert_eq!(h.history.len(), 5);
    let row = &h.history[4];
    assert_eq!(row.reason.as_deref(), Some("ship: TikTok IN_TRANSIT"));
    assert_eq!(actions(&h, 4), ["update_tiktok_status//action"]);
    let shipped_at = f.clock.now();

    // It waits in `shipped`: the delivery check (which would deliver at
    // once) is not asked; the work item sleeps until the 7-day escalation.
    let idle = f.engine.run_until_idle().await.expect("run");
    assert_eq!(idle.next_due, Some(shipped_at + TimeDelta::days(7)));
    f.clock.advance(TimeDelta::days(3));
    let idle = f.engine.run_until_idle().await.expect("run");
    assert_eq!((idle.claimed, idle.recorded), (0, 0));
    assert_eq!(
        f.engine.order(id).await.expect("order").order.current_state,
        "shipped"
    );
    // Shipped again: nothing to do.
    assert!(matches!(
        f.engine
            .confirm_shipped(id, "again")
            .await
            .expect("confirm"),
        External::Unchanged(_)
    ));

    let (o, steps) = moved(
        f.engine
            .confirm_delivered(id, "TikTok DELIVERED")
            .await
            .expect("confirm"),
    );
    assert_eq!((o.order.current_state.as_str(), steps), ("delivered", 1));
    assert_eq!(o.order.automation_status, AutomationStatus::Delivered);
    let h = history(&f, id).await;
    assert_eq!(h.history.len(), 6);
    assert_eq!(
        h.history[5].reason.as_deref(),
        Some("deliver: TikTok DELIVERED")
    );
    // The sleeping item finds nothing left to do; the queue empties.
    if let Some(t) = f.engine.run_until_idle().await.expect("run").next_due {
        f.clock.set(t);
    }
    let idle = f.engine.run_until_idle().await.expect("run");
    assert_eq!(idle.next_due, None);
    assert_eq!(history(&f, id).await.history.len(), 6);
    assert!(f.engine.status().await.expect("status").integrity.ok);
}

/// No pickup within 72 hours: the timeout sends the order to manual review,
/// running the `fail` transition's rollbacks (label voided, stock released).
async fn past_the_label_timeout_the_order_goes_to_manual_review(b: Backend) {
    let f = waiting(b, true, |x| x).await;
    f.defaults.inventory.set_stock("p1", 5);
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    let idle = f.engine.run_until_idle().await.expect("run");
    assert_eq!(f.defaults.inventory.available("p1"), Some(4));
    let due = idle.next_due.expect("the timeout is scheduled");
    f.clock.set(due - TimeDelta::seconds(1));
    assert_eq!(f.engine.run_until_idle().await.expect("run").recorded, 0);
    f.clock.set(due);
    let idle = f.engine.run_until_idle().await.expect("run");
    assert_eq!(idle.recorded, 1);
    assert_eq!(idle.next_due, None, "a failed order waits for a person");
    let h = history(&f, id).await;
    assert_eq!(h.order.order.current_state, "failed");
    assert_eq!(
        h.order.order.automation_status,
        AutomationStatus::ManualReview
    );
    let last = h.history.len() - 1;
    let reason = h.history[last].reason.clone().unwrap_or_default();
    assert!(
        reason.contains("timeout: 72h in `label_generated`: fail"),
        "{reason}"
    );
    assert_eq!(
        actions(&h, last),
        [
            "generate_shipping_label/void/rollback",
            "reserve_inventory/release/rollback",
            "escalate_to_manual//action"
        ]
    );
    assert_eq!(f.defaults.inventory.available("p1"), Some(5));
    // A late IN_TRANSIT cannot move an order a person holds.
    assert!(matches!(
        f.engine.confirm_shipped(id, "late").await.expect("confirm"),
        External::Refused { .. }
    ));
}

/// `shipped`'s 7-day timeout escalates the waiting order once and it keeps
/// waiting, its work item done (nothing polls); DELIVERED still moves it.
async fn a_waiting_order_is_escalated_once_and_keeps_waiting(b: Backend) {
    let f = waiting(b, true, |x| x).await;
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    f.engine.run_until_idle().await.expect("run");
    f.engine
        .confirm_shipped(id, "IN_TRANSIT")
        .await
        .expect("confirm");
    let idle = f.engine.run_until_idle().await.expect("run");
    f.clock
        .set(idle.next_due.expect("the escalation is scheduled"));
    let idle = f.engine.run_until_idle().await.expect("run");
    assert_eq!(idle.recorded, 1);
    assert_eq!(idle.next_due, None, "escalated: nothing left to poll");
    let h = history(&f, id).await;
    assert_eq!(h.order.order.current_state, "shipped");
    assert_eq!(h.order.order.priority, Priority::Urgent);
    assert_eq!(states(&h).last().map(String::as_str), Some("shipped"));
    f.clock.advance(TimeDelta::days(30));
    assert_eq!(f.engine.run_until_idle().await.expect("run").claimed, 0);
    let (o, _) = moved(
        f.engine
            .confirm_delivered(id, "DELIVERED")
            .await
            .expect("confirm"),
    );
    assert_eq!(o.order.current_state, "delivered");
}

/// External events off (the default): `waits_for` is ignored and the same
/// shipped machine runs to `delivered` through the delivery check, as before.
async fn without_external_events_the_machine_runs_to_delivered(b: Backend) {
    let f = waiting(b, false, |x| {
        x.delivery_confirmation(|o, now| {
            now - o.state_changed_at.unwrap_or(o.created_at) >= TimeDelta::hours(48)
        })
    })
    .await;
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    let round = f.engine.run_once().await.expect("round");
    assert_eq!(round.recorded, 5, "the chain runs through label_generated");
    for _ in 0..100 {
        match f.engine.run_until_idle().await.expect("run").next_due {
            Some(t) => f.clock.set(t.max(f.clock.now())),
            None => break,
        }
    }
    let h = history(&f, id).await;
    assert_eq!(
        states(&h).join(" "),
        format!("{TO_LABEL} shipped delivered")
    );
}

/// A waiting state without a timeout: the work item is done (nothing is
/// queued, `worker --exit-when-idle` returns), and the confirmation
/// schedules the order's next automatic step at once.
async fn a_confirmation_schedules_the_next_automatic_step(b: Backend) {
    let machine = Machine::from_str(
        r#"
machine: pickup
initial: packed
states:
  - { name: packed, progress: 50, automation_status: Processing, waits_for: in_transit }
  - { name: shipped, progress: 90, automation_status: Shipped }
  - { name: delivered, progress: 100, automation_status: Delivered, terminal: true }
transitions:
  - { name: ship, from: packed, to: shipped }
  - { name: deliver, from: shipped, to: delivered }
"#,
        "pickup.yaml",
    )
    .expect("machine");
    let f = waiting(b, true, |x| x.machine(machine)).await;
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    let idle = f.engine.run_until_idle().await.expect("run");
    assert_eq!((idle.claimed, idle.recorded, idle.next_due), (1, 0, None));
    let (o, _) = moved(
        f.engine
            .confirm_shipped(id, "IN_TRANSIT")
            .await
            .expect("confirm"),
    );
    assert_eq!(o.order.current_state, "shipped");
    // `shipped` does not wait here: the delivery check runs, due now.
    let idle = f.engine.run_until_idle().await.expect("run");
    assert_eq!(idle.recorded, 1);
    let h = history(&f, id).await;
    assert_eq!(states(&h), ["shipped", "delivered"]);
}

/// The webhook processor confirms through its own engine; the worker
/// engine that drove the order to `label_generated` must not act on its
/// own copy of it later (it would take `label_generated`'s timeout: void
/// the label of a shipped parcel and release its stock).
async fn a_confirmation_through_another_engine_is_seen_by_the_workers(b: Backend) {
    let f = waiting(b, true, |x| x).await;
    f.defaults.inventory.set_stock("p1", 5);
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    f.engine.run_until_idle().await.expect("run");
    let processor = EngineBuilder::new(f.engine.store().clone())
        .clock(f.clock.clone())
        .simulated_handlers()
        .rules(empty_pack())
        .external_events(true)
        .build()
        .expect("processor engine");
    f.clock.advance(TimeDelta::hours(1));
    moved(
        processor
            .confirm_shipped(id, "IN_TRANSIT")
            .await
            .expect("confirm"),
    );
    let idle = f.engine.run_until_idle().await.expect("run");
    let shipped_at = f.clock.now();
    assert_eq!(idle.next_due, Some(shipped_at + TimeDelta::days(7)));
    f.clock.set(shipped_at + TimeDelta::days(7));
    f.engine.run_until_idle().await.expect("run");
    let h = history(&f, id).await;
    assert_eq!(
        states(&h).join(" "),
        format!("{TO_LABEL} shipped shipped"),
        "escalated in `shipped`, not failed from `label_generated`"
    );
    assert_eq!(f.defaults.inventory.available("p1"), Some(4));
}

const TENANT_PACK: &str = r#"
rules:
  - id: creator-webhook
    name: tell the creator's team
    category: exception_handling
    priority: 50
    conditions: [ { field: quantity, operator: greater_than, value: 0 } ]
    actions:
      - type: trigger_webhook
        parameters: { url: "http://127.0.0.1:9/hook", event: new_order }
  - id: vip-fast-track
    name: same id as a shipped rule, another meaning
    category: priority_classification
    priority: 40
    conditions: [ { field: quantity, operator: greater_than, value: 0 } ]
    actions:
      - type: log_analytics_event
        parameters: { event: tenant_rule }
"#;

/// Tenant t1's engine evaluates its own pack at ingest; a worker engine with
/// the shipped pack runs the step: the tenant's actions run (the webhook
/// handler gets the rule's parameters; `vip-fast-track` means t1's rule, not
/// the shipped one), and the history names the rules.
async fn rule_actions_follow_the_ingesting_tenants_pack(b: Backend) {
    // The fixture's store, shared by a tenant engine and a worker engine.
    let f = waiting(b, false, |x| x).await;
    let store = f.engine.store().clone();
    let clock = Arc::new(ManualClock::new(start()));
    let t1 = EngineBuilder::new(store.clone())
        .clock(clock.clone())
        .simulated_handlers()
        .rules(pack(TENANT_PACK))
        .tenant("t1")
        .build()
        .expect("tenant engine");
    let id = t1.ingest(order(1)).await.expect("ingest").order.id;

    let calls: Arc<Mutex<Vec<ActionCall>>> = Arc::default();
    let seen = calls.clone();
    let registry = DefaultHandlers::default().registry().with_fn(
        [ActionType::TriggerWebhook],
        move |call: ActionCall| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("calls").push(call);
                Ok(ActionOutcome::json(
                    serde_json::json!({ "delivered": true }),
                ))
            }
        },
    );
    let worker = EngineBuilder::new(store.clone())
        .clock(clock.clone())
        .handlers(registry)
        .sleeper(Arc::new(NoSleep::default()))
        .worker_name("shared")
        .build()
        .expect("worker engine");
    assert!(worker.run_once().await.expect("round").recorded > 0);

    let calls = calls.lock().expect("calls").clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].order.tiktok_order_id, "o1");
    assert_eq!(calls[0].action.parameters["url"], "http://127.0.0.1:9/hook");
    assert_eq!(calls[0].action.parameters["event"], "new_order");
    assert_eq!(calls[0].transition, "rules");

    let h = store
        .order_with_history("t1", id)
        .await
        .expect("store")
        .expect("order");
    let first = &h.history[0];
    assert_eq!(
        first.reason.as_deref(),
        Some("validate; rules: creator-webhook, vip-fast-track")
    );
    let kinds = actions(&h, 0);
    assert!(
        kinds.starts_with(&[
            "trigger_webhook//action".to_owned(),
            "log_analytics_event//action".to_owned()
        ]),
        "{kinds:?}"
    );
    assert!(
        !kinds.iter().any(|k| k.starts_with("enable_fast_track")),
        "the worker's own `vip-fast-track` must not run: {kinds:?}"
    );
}

/// A work item queued before the upgrade (the fired rules' ids only) is
/// still honoured: the ids are resolved in the worker's pack.
async fn an_ids_only_payload_is_resolved_in_the_workers_pack(b: Backend) {
    let f = waiting(b, false, |x| x.rules(RulePack::shipped())).await;
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    let old = WorkSpec {
        kind: WORK_KIND.to_owned(),
        lane: Priority::Standard,
        run_at: f.clock.now(),
        payload: serde_json::json!({ "rules": ["vip-fast-track", "retired-rule"] }),
    };
    f.engine
        .store()
        .schedule(f.engine.tenant(), id, &old, f.clock.now())
        .await
        .expect("schedule");
    f.engine.run_once().await.expect("round");
    let h = history(&f, id).await;
    let kinds = actions(&h, 0);
    assert!(
        kinds.starts_with(&[
            "enable_fast_track//action".to_owned(),
            "send_customer_notification//action".to_owned()
        ]),
        "{kinds:?}"
    );
    assert_eq!(
        h.history[0].reason.as_deref(),
        Some(
            "validate; rules: vip-fast-track, retired-rule; rules no longer in the pack: retired-rule"
        )
    );
}

/// What a confirmation gave, comparable across engines: the state and steps
/// of a moved order, "unchanged", or the error.
fn outcome(r: Result<External, creatorflow::engine::EngineError>) -> String {
    match r {
        Ok(External::Moved { order, steps }) => format!("{} {steps}", order.order.current_state),
        Ok(other) => format!("{other:?}")
            .split('(')
            .next()
            .unwrap_or("")
            .to_owned(),
        Err(e) => format!("error: {e}"),
    }
}

/// `confirm_shipped_many` / `confirm_delivered_many` end as the same
/// confirmations one by one: the same answers, history rows and next
/// steps, over more orders than one write takes, with orders waiting for
/// pickup, orders still `received` (several steps), an unknown id and an
/// id named twice.
async fn confirming_many_ends_as_confirming_one_by_one(b: Backend) {
    let mut ends = Vec::new();
    for many in [false, true] {
        let f = waiting(b, true, |x| x).await;
        let mut ids = Vec::new();
        for n in 0..270 {
            ids.push(f.engine.ingest(order(n)).await.expect("ingest").order.id);
        }
        f.engine.run_until_idle().await.expect("run");
        for n in 270..272 {
            ids.push(f.engine.ingest(order(n)).await.expect("ingest").order.id);
        }
        let mut asked = ids.clone();
        asked.insert(5, creatorflow::store::OrderId::nil());
        asked.push(ids[3]);
        let mut answers = Vec::new();
        for goal in ["ship", "deliver"] {
            let results = if many {
                match goal {
                    "ship" => f.engine.confirm_shipped_many(&asked, "pickup").await,
                    _ => f.engine.confirm_delivered_many(&asked, "drop-off").await,
                }
                .expect("batch")
            } else {
                let mut one_by_one = Vec::new();
                for id in &asked {
                    one_by_one.push(match goal {
                        "ship" => f.engine.confirm_shipped(*id, "pickup").await,
                        _ => f.engine.confirm_delivered(*id, "drop-off").await,
                    });
                }
                one_by_one
            };
            answers.push(results.into_iter().map(outcome).collect::<Vec<_>>());
            let idle = f.engine.run_until_idle().await.expect("run");
            answers.push(vec![format!("{idle:?}")]);
        }
        let mut histories = Vec::new();
        for id in &ids {
            let h = history(&f, *id).await;
            histories.push(
                h.history
                    .iter()
                    .map(|r| format!("{} {:?} {}", r.to.as_str(), r.reason, r.at))
                    .collect::<Vec<_>>(),
            );
        }
        assert!(f.engine.status().await.expect("status").integrity.ok);
        ends.push((answers, histories));
    }
    let (one_by_one, many) = (&ends[0], &ends[1]);
    assert_eq!(one_by_one.0[0][0], "shipped 1", "a waiting order ships");
    assert!(
        one_by_one.0[0][5].starts_with("error: "),
        "{}",
        one_by_one.0[0][5]
    );
    assert_eq!(
        one_by_one.0[0][271], "shipped 5",
        "a received order takes every step"
    );
    assert_eq!(one_by_one.0[0][273], "Unchanged", "named twice");
    assert_eq!(one_by_one.0[2][0], "delivered 1");
    assert_eq!(one_by_one, many);
}
