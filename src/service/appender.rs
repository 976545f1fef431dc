//! The group-committing inbox appender: webhook receivers hand it entries,
//! one task writes every append waiting in one transaction per tenant,
//! answers each, and wakes the inbox processor.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::store::{InboxEntry, Store};

/// Why an append was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The store refused the transaction (the message is the store's).
    #[error("inbox write failed: {0}")]
    Store(String),
    /// The service is stopping or stopped: nothing takes appends any more.
    #[error("the inbox writer stopped")]
    Stopped,
}

/// One append waiting for the group commit.
struct Request {
    tenant: String,
    entry: InboxEntry,
    reply: Reply,
}

/// Where one append's answer goes.
type Reply = oneshot::Sender<Result<bool, AppendError>>;

/// A handle to the service's inbox: appends are group-committed (every
/// append waiting goes into one transaction per tenant). Cheap to clone.
#[derive(Clone, Debug)]
pub struct InboxAppender {
    tx: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// How many appends one transaction takes at most.
const GROUP: usize = 512;

impl InboxAppender {
    /// Appends one entry to `tenant`'s inbox once it is durable; `true` if
    /// new, `false` for a duplicate `dedup_key`.
    pub async fn append(&self, tenant: &str, entry: InboxEntry) -> Result<bool, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request {
                tenant: tenant.to_owned(),
                entry,
                reply,
            })
            .await
            .map_err(|_| AppendError::Stopped)?;
        answer.await.map_err(|_| AppendError::Stopped)?
    }
}

/// Spawns the group-commit task on `rt`: it takes every append waiting,
/// writes them in one transaction per tenant, answers each, and wakes the
/// processor. Once `stop` is set it refuses new appends, writes those
/// already queued, and ends.
pub(super) fn spawn<S: Store + Clone + 'static>(
    rt: &tokio::runtime::Handle,
    store: S,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> (InboxAppender, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Request>(4 * GROUP);
    let task = rt.spawn(async move {
        loop {
            let stopping = tokio::select! {
                r = rx.recv() => Some(r),
                r = stop.wait_for(|s| *s) => r.map(|_| None).unwrap_or(None),
            };
            let first = match stopping {
                Some(r) => r,
                None => {
                    rx.close();
                    rx.recv().await
                }
            };
            let Some(first) = first else { return };
            let mut batch = vec![first];
            while batch.len() < GROUP {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            commit(&store, batch).await;
            wake.notify_one();
        }
    });
    (InboxAppender { tx }, task)
}

/// Writes `batch`, per tenant in arrival order, and answers each append.
/// Each body moves into the store call once (no copy on the ack path).
async fn commit<S: Store>(store: &S, batch: Vec<Request>) {
    let mut groups: Vec<(String, Vec<InboxEntry>, Vec<Reply>)> = Vec::new();
    for r in batch {
        match groups.iter_mut().find(|(t, ..)| *t == r.tenant) {
            Some((_, entries, replies)) => {
                entries.push(r.entry);
                replies.push(r.reply);
            }
            None => groups.push((r.tenant, vec![r.entry], vec![r.reply])),
        }
    }
    for (tenant, entries, replies) in groups {
        match store.inbox_append(&tenant, &entries).await {
            Ok(news) => {
                for (reply, new) in replies.into_iter().zip(news) {
                    let _ = reply.send(Ok(new));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(AppendError::Store(e.to_string())));
                }
            }
        }
    }
}
