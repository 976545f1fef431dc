//! People act on orders: the operator commands approve, reject, retry and
//! cancel, each recorded in the order's history as a step a person took
//! (`automated: false`), with who (`actor`, the API token's name) and why.
//!
//! What each command does and when it is allowed: [`Command`].

use serde::Serialize;

use super::{CANCELLED, Engine, EngineError};
use crate::actions::StepResult;
use crate::machine::TransitionPlan;
use crate::store::{OrderId, Store, StoreError, StoredOrder};

/// What a person can do to an order, recorded in its history with who
/// (`actor`) and why ([`Engine::command`]).
///
/// # What each does (on the shipped machine)
///
/// An order waits for a person when its state's `automation_status` is
/// `Manual Review` (the shipped machine's `failed`): a step failed for good,
/// the rule pack errored on it, a state timed out, or a rule held it
/// (`escalate_to_manual`). All of these land in `failed`.
///
/// | command | allowed from | what happens |
/// |---|---|---|
/// | [`Command::Approve`] | a manual-review state | the order goes on: the machine's way out of review towards fulfilment (the shipped machine's `retry`, `failed → processing`); its work is queued again |
/// | [`Command::Retry`] | a manual-review state | the same transition as approve; the history says a failed step is tried again rather than a held order approved |
/// | [`Command::Reject`] | a manual-review state; a reason is required | the order is cancelled (the shipped machine's `reject`, `failed → cancelled`, which tells the customer); `fail` already undid earlier work, so there is nothing to roll back |
/// | [`Command::Cancel`] | any non-terminal state with a transition to `cancelled` | as [`Engine::cancel`]: the rollbacks of the state (release the stock, void the label) and the cancellation's actions |
///
/// Approving or retrying does not evaluate the rules again: their actions
/// ran with the order's first step. A command the order's state does not
/// allow (or an order that moved on meanwhile) is
/// [`EngineError::WrongState`], carrying the state the order is in. The
/// actions a command runs are recorded with their outcomes; an action
/// failure is recorded in the history row and the command stands, as for
/// every cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Let an order in manual review go on.
    Approve,
    /// Refuse an order in manual review: it is cancelled.
    Reject,
    /// Try a failed order again.
    Retry,
    /// Cancel an order.
    Cancel,
}

impl Command {
    /// Every command.
    pub const ALL: [Command; 4] = [
        Command::Approve,
        Command::Reject,
        Command::Retry,
        Command::Cancel,
    ];

    /// Its name (`approve`, …), as the API route and the history say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Approve => "approve",
            Command::Reject => "reject",
            Command::Retry => "retry",
            Command::Cancel => "cancel",
        }
    }

    /// The command named `name`.
    pub fn parse(name: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether it needs a reason.
    pub fn needs_reason(self) -> bool {
        self == Command::Reject
    }

    /// The state(s) it needs, in words (for [`EngineError::WrongState`]).
    fn expected(self) -> &'static str {
        match self {
            Command::Approve | Command::Reject | Command::Retry => {
                "an order waiting for a person (manual review)"
            }
            Command::Cancel => "an order the machine can still cancel",
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The history row's reason: the command, then the person's words if any.
fn note(command: &str, reason: Option<&str>) -> String {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => format!("{command}: {r}"),
        None => command.to_owned(),
    }
}

impl<S: Store + 'static> Engine<S> {
    /// Runs `command` on the tenant's order `id` for `actor` (the name
    /// recorded in the history) with an optional `reason` (required for
    /// [`Command::Reject`]). See [`Command`] for what each command does
    /// and when it is allowed.
    ///
    /// Errors: [`EngineError::NotFound`] (no such order for this tenant),
    /// [`EngineError::ReasonRequired`], [`EngineError::WrongState`] (with
    /// the order's current state), [`EngineError::Store`].
    pub async fn command(
        &self,
        id: OrderId,
        command: Command,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<StoredOrder, EngineError> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if command.needs_reason() && reason.is_none() {
            return Err(EngineError::ReasonRequired {
                operation: command.as_str(),
            });
        }
        let inner = &*self.inner;
        inner.forget(id);
        let stored = self.order(id).await?;
        let state = stored.order.current_state.as_str();
        let wrong = |state: &str| EngineError::WrongState {
            order_id: id,
            state: state.to_owned(),
            operation: command.as_str(),
            expected: command.expected(),
        };
        if command != Command::Cancel && !inner.is_failure(state) {
            return Err(wrong(state));
        }
        let now = inner.clock.now();
        let to = match command {
            Command::Reject | Command::Cancel => CANCELLED.to_owned(),
            Command::Approve | Command::Retry => {
                self.way_on(state).ok_or_else(|| wrong(state))?.to_owned()
            }
        };
        let plan = inner
            .machine
            .transition(&stored.order, &to, now)
            .map_err(|_| wrong(state))?;
        let resume = matches!(command, Command::Approve | Command::Retry);
        self.take(
            &stored,
            &plan,
            Some(actor),
            note(command.as_str(), reason),
            resume,
        )
        .await
        .map_err(|e| match e {
            EngineError::Store(StoreError::Conflict { actual_state, .. }) => wrong(&actual_state),
            e => e,
        })
    }

    /// Approves the tenant's order `id` in manual review: it goes on
    /// ([`Engine::command`] with [`Command::Approve`]).
    pub async fn approve(
        &self,
        id: OrderId,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<StoredOrder, EngineError> {
        self.command(id, Command::Approve, actor, reason).await
    }

    /// Rejects the tenant's order `id` in manual review for `reason`: it is
    /// cancelled ([`Engine::command`] with [`Command::Reject`]).
    pub async fn reject(
        &self,
        id: OrderId,
        actor: &str,
        reason: &str,
    ) -> Result<StoredOrder, EngineError> {
        self.command(id, Command::Reject, actor, Some(reason)).await
    }

    /// Retries the tenant's failed order `id` (manual review): back to the
    /// machine's way on (`failed → processing`), its work queued again
    /// ([`Engine::command`] with [`Command::Retry`]).
    pub async fn retry(
        &self,
        id: OrderId,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<StoredOrder, EngineError> {
        self.command(id, Command::Retry, actor, reason).await
    }

    /// Cancels the tenant's order `id` as `actor` did it
    /// ([`Engine::command`] with [`Command::Cancel`]; [`Engine::cancel`]
    /// is the same for a cancellation no person made, such as the
    /// customer's on TikTok Shop).
    pub async fn cancel_by(
        &self,
        id: OrderId,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<StoredOrder, EngineError> {
        self.command(id, Command::Cancel, actor, reason).await
    }

    /// Cancels the tenant's order `id` for `reason`, from any state the
    /// machine allows (every state before delivery in the default
    /// workflow, and manual review), running the cancellation's rollbacks
    /// (release the reservation, void the label) and actions. Action
    /// failures are recorded in the history; the cancellation stands. A
    /// state the machine cannot cancel from is [`EngineError::Transition`].
    pub async fn cancel(&self, id: OrderId, reason: &str) -> Result<StoredOrder, EngineError> {
        let inner = &*self.inner;
        inner.forget(id);
        let stored = self.order(id).await?;
        let plan = inner
            .machine
            .transition(&stored.order, CANCELLED, inner.clock.now())?;
        self.take(&stored, &plan, None, note("cancel", Some(reason)), false)
            .await
    }

    /// The machine's way out of a manual-review `state` towards
    /// fulfilment: its first target that is neither a cancellation nor
    /// manual review (the shipped machine: `processing`).
    fn way_on(&self, state: &str) -> Option<&str> {
        let inner = &*self.inner;
        inner
            .machine
            .targets(state)
            .into_iter()
            .map(|t| t.as_str())
            .find(|t| *t != CANCELLED && *t != state && !inner.is_failure(t))
    }

    /// Takes `plan` for a person (not automated): runs its rollbacks and
    /// actions, records their outcome, and writes the step with `actor`
    /// and `reason`; `resume` queues the order's work again.
    async fn take(
        &self,
        stored: &StoredOrder,
        plan: &TransitionPlan,
        actor: Option<&str>,
        reason: String,
        resume: bool,
    ) -> Result<StoredOrder, EngineError> {
        let inner = &*self.inner;
        let report = inner.run_plan(stored, plan).await;
        let now = inner.clock.now();
        let mut t = inner.transition(stored, plan, now, report.duration_ms);
        t.reason = Some(reason);
        t.automated = false;
        t.actor = actor.map(str::to_owned);
        t.actions_executed = report.records_json();
        t.error_message = match &report.result {
            StepResult::Succeeded => None,
            StepResult::Failed { error, .. } => Some(error.to_string()),
            StepResult::Refused { action, .. } => Some(format!("circuit open for `{action}`")),
        };
        if resume {
            t.enqueue = Some(inner.first_work(stored.order.priority, now));
        }
        Ok(inner.store.transition(&inner.tenant, &t).await?)
    }
}
