//! People act on orders: approve, reject, retry and cancel, each allowed
//! only where the machine allows it (else `WrongState` with the current
//! state), each a history row with who did it and why.

use creatorflow::actions::DefaultHandlers;
use creatorflow::engine::{Command, EngineError};
use creatorflow::model::AutomationStatus;
use creatorflow::store::{HistoryEntry, ReviewStore};

use super::{Backend, Fixture, assert_replays, fixture, history, order, order_with, pg, states};

every_backend!(
    approve_sends_a_held_order_on_with_who_and_why,
    reject_cancels_a_held_order_and_needs_a_reason,
    retry_and_cancel_record_the_person,
    commands_refused_by_the_state_carry_it
);

/// An order the shipped pack holds for a person (`new-customer-large-order-review`).
async fn held(f: &Fixture, n: usize) -> creatorflow::store::OrderId {
    let id = f
        .engine
        .ingest(order_with(n, r#""price":"450.00","customer_tier":"new""#))
        .await
        .expect("ingest")
        .order
        .id;
    f.engine.run_until_idle().await.expect("run");
    let o = f.engine.order(id).await.expect("order");
    assert_eq!(o.order.current_state, "failed");
    assert_eq!(o.order.automation_status, AutomationStatus::ManualReview);
    id
}

async fn last_row(f: &Fixture, id: creatorflow::store::OrderId) -> HistoryEntry {
    history(f, id).await.history.pop().expect("a history row")
}

fn assert_by(row: &HistoryEntry, from: &str, to: &str, actor: &str, reason: &str) {
    assert_eq!((row.from.as_str(), row.to.as_str()), (from, to));
    assert!(!row.automated, "a person's step");
    assert_eq!(row.actor.as_deref(), Some(actor));
    assert_eq!(row.reason.as_deref(), Some(reason));
}

async fn approve_sends_a_held_order_on_with_who_and_why(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| x).await;
    let id = held(&f, 1).await;
    let queue = f
        .engine
        .store()
        .review_queue(f.engine.tenant(), None, 10)
        .await;
    assert_eq!(
        queue
            .expect("queue")
            .iter()
            .map(|o| o.id)
            .collect::<Vec<_>>(),
        [id]
    );

    let o = f
        .engine
        .approve(id, "creator-1-1", Some("called the buyer"))
        .await
        .expect("approve");
    assert_eq!(o.order.current_state, "processing");
    assert_by(
        &last_row(&f, id).await,
        "failed",
        "processing",
        "creator-1-1",
        "approve: called the buyer",
    );
    // It left the queue and goes on to shipment.
    let queue = f
        .engine
        .store()
        .review_queue(f.engine.tenant(), None, 10)
        .await;
    assert!(queue.expect("queue").is_empty());
    f.engine.run_until_idle().await.expect("run");
    let h = history(&f, id).await;
    assert_eq!(h.order.order.current_state, "shipped");
    assert_replays(f.engine.machine(), &h);
}

async fn reject_cancels_a_held_order_and_needs_a_reason(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| x).await;
    let id = held(&f, 1).await;
    for blank in ["", "   "] {
        let err = f.engine.reject(id, "admin-1", blank).await.unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::ReasonRequired {
                    operation: "reject"
                }
            ),
            "{err}"
        );
    }
    let err = f
        .engine
        .command(id, Command::Reject, "admin-1", None)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::ReasonRequired { .. }), "{err}");
    assert_eq!(
        f.engine.order(id).await.expect("order").version,
        1,
        "nothing written"
    );

    let o = f
        .engine
        .reject(id, "admin-1", "stolen card")
        .await
        .expect("reject");
    assert_eq!(o.order.current_state, "cancelled");
    assert!(o.terminal);
    let row = last_row(&f, id).await;
    assert_by(
        &row,
        "failed",
        "cancelled",
        "admin-1",
        "reject: stolen card",
    );
    // The customer is told (the `reject` transition's action).
    let told = row.actions_executed.to_value();
    assert!(
        told.as_array()
            .is_some_and(|a| a.iter().any(|x| x["type"] == "send_customer_notification")),
        "{told}"
    );
    assert_replays(f.engine.machine(), &history(&f, id).await);
}

async fn retry_and_cancel_record_the_person(b: Backend) {
    // No stock: the order fails at `reserve`; the person retries it once
    // stock is back.
    let defaults = DefaultHandlers::new(Default::default(), Default::default(), Some(0));
    let f = fixture(b, defaults, |x| x.rules(super::empty_pack()).max_chain(1)).await;
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    f.engine.run_until_idle().await.expect("run");
    assert_eq!(
        states(&history(&f, id).await),
        ["validated", "processing", "failed"]
    );
    f.defaults.inventory.set_stock("p1", 5);
    let o = f.engine.retry(id, "ops-1", None).await.expect("retry");
    assert_eq!(o.order.current_state, "processing");
    assert_by(
        &last_row(&f, id).await,
        "failed",
        "processing",
        "ops-1",
        "retry",
    );

    // A person cancels an order that has stock reserved: released.
    let mut o = f.engine.order(id).await.expect("order");
    while o.order.current_state != "inventory_reserved" {
        f.engine.run_once().await.expect("round");
        o = f.engine.order(id).await.expect("order");
        assert!(
            !o.terminal && o.order.current_state != "shipped",
            "went past"
        );
    }
    let o = f
        .engine
        .cancel_by(id, "ops-1", Some("buyer phoned"))
        .await
        .expect("cancel");
    assert_eq!(o.order.current_state, "cancelled");
    let row = last_row(&f, id).await;
    assert_by(
        &row,
        "inventory_reserved",
        "cancelled",
        "ops-1",
        "cancel: buyer phoned",
    );
    assert_eq!(f.defaults.inventory.reservations(), 0);
    // A cancellation nobody made (the customer's, from TikTok) has no actor.
    let other = f.engine.ingest(order(2)).await.expect("ingest").order.id;
    f.engine
        .cancel(other, "customer asked")
        .await
        .expect("cancel");
    let row = last_row(&f, other).await;
    assert_eq!(
        (row.actor, row.reason.as_deref()),
        (None, Some("cancel: customer asked"))
    );
}

async fn commands_refused_by_the_state_carry_it(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| x.max_chain(1)).await;
    // Just ingested: in `received`, not waiting for a person.
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    for c in [Command::Approve, Command::Retry, Command::Reject] {
        let err = f
            .engine
            .command(id, c, "ops-1", Some("why"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, EngineError::WrongState { state, operation, .. }
                if state == "received" && *operation == c.as_str()),
            "{c}: {err}"
        );
    }
    // Terminal: nothing leaves it, not even a cancellation.
    f.engine.cancel_by(id, "ops-1", None).await.expect("cancel");
    for c in Command::ALL {
        let err = f
            .engine
            .command(id, c, "ops-1", Some("why"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, EngineError::WrongState { state, .. } if state == "cancelled"),
            "{c}: {err}"
        );
    }
    let h = history(&f, id).await;
    assert_eq!(h.history.len(), 1, "refused commands wrote nothing");
    // An order the tenant does not have.
    let err = f
        .engine
        .approve(uuid::Uuid::nil(), "ops-1", None)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::NotFound(_)), "{err}");
    // The names round-trip.
    for c in Command::ALL {
        assert_eq!(Command::parse(c.as_str()), Some(c));
    }
    assert_eq!(Command::parse("delete"), None);
}
