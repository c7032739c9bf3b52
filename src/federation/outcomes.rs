//! What inboxes answered, recorded a batch at a time. A delivery worker
//! keeps up to `batch_size` deliveries in flight and the answers come back
//! one by one; writing each (the row delivered, the instance up) as it came
//! was two statements per delivery, and on SQLite every one of them waits
//! for the one write lock. The worker gathers the answers of a moment
//! (`delivery::GATHER`) and records them here together: one statement marks
//! the lot delivered, one read finds which of their instances had been
//! failing. Retries and failures are still written by the delivery itself:
//! they are few, and each has its own time and reason.
//!
//! A crash between an answer and its batch leaves the row claimed: its lease
//! runs out and it is sent again, as it would have been had the crash come
//! a moment before the answer (at least once, never lost).

use crate::db;

/// A finished delivery's part of the batch.
#[derive(Debug, Default)]
pub struct Done {
    /// The row, when its inbox accepted it.
    pub delivered: Option<i64>,
    /// The inbox's host, when it answered at all (a 4xx too): it is up.
    pub up: Option<String>,
}

/// Add a finished task's result (a panicked one leaves its row to the lease).
pub fn keep(done: &mut Vec<Done>, joined: Result<Done, tokio::task::JoinError>) {
    match joined {
        Ok(d) => done.push(d),
        Err(e) => tracing::error!(error = %e, "a delivery task failed"),
    }
}

/// Record a batch: rows delivered, and the instances that answered (their
/// breakers closed; what waited for a failing one is due at once).
pub async fn record(data: &super::FedData, done: Vec<Done>) {
    if done.is_empty() {
        return;
    }
    let delivered: Vec<i64> = done.iter().filter_map(|d| d.delivered).collect();
    if let Err(e) = db::deliveries::mark_delivered(&data.db, &delivered).await {
        // The leases run out and the rows go again: at least once.
        tracing::warn!(error = %e, rows = delivered.len(), "cannot record deliveries");
    }
    if data.settings.delivery.breaker_threshold <= 0 {
        return;
    }
    let mut up: Vec<String> = done
        .into_iter()
        .filter_map(|d| d.up)
        .filter(|h| !data.host_slots.recently_up(h))
        .collect();
    up.sort_unstable();
    up.dedup();
    if up.is_empty() {
        return;
    }
    let now = data.clock.now();
    let back = match db::instances::record_successes(&data.db, &up, now).await {
        Ok(back) => back,
        Err(e) => {
            tracing::warn!(error = %e, "cannot record the instances' answers");
            return;
        }
    };
    for h in &up {
        data.host_slots.note_up(h);
    }
    for host in &back {
        match db::deliveries::pull_forward(&data.db, host, now).await {
            Ok(n) => {
                tracing::info!(instance = %host, waiting = n, "instance is back: sending what waited")
            }
            Err(e) => tracing::warn!(error = %e, "cannot send what waited for the instance"),
        }
    }
    if !back.is_empty() {
        data.wake_delivery();
    }
}
