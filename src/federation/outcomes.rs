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

use std::collections::{BTreeMap, HashMap};

use crate::db;

/// A finished delivery's part of the batch.
#[derive(Debug, Default)]
pub struct Done {
    /// The row, when its inbox accepted it.
    pub delivered: Option<i64>,
    /// A fan-out's inbox: the fan-out, the inbox's place, and whether it was
    /// delivered (if not, it has a row of its own by now).
    pub fanout: Option<(i64, i32, bool)>,
    /// The inbox's host, when it answered at all (a 4xx too): it is up.
    pub up: Option<String>,
}

/// The fan-outs a worker holds, and which of their inboxes are settled. A
/// fan-out's cursor moves over the settled inboxes at its front (answers
/// come back in any order), and is written with the worker's batch.
#[derive(Default)]
pub struct Progress(HashMap<i64, Track>);

struct Track {
    next: i32,
    targets: i32,
    /// Settled places past the cursor: delivered or not.
    settled: BTreeMap<i32, bool>,
    /// Delivered since the cursor was last written.
    delivered: i32,
    moved: bool,
    /// When its lease is renewed: half-way through it. A worker holds a
    /// fan-out for as long as its inboxes take, and the lease only guards
    /// against a worker that is gone.
    renew_at: std::time::Instant,
}

impl Progress {
    pub fn start(&mut self, id: i64, next: i32, targets: i32, lease: std::time::Duration) {
        self.0.insert(
            id,
            Track {
                next,
                targets,
                settled: BTreeMap::new(),
                delivered: 0,
                moved: false,
                renew_at: std::time::Instant::now() + lease / 2,
            },
        );
    }

    /// The fan-outs whose lease is half over; renewed from now.
    fn renewals(&mut self, lease: std::time::Duration) -> Vec<i64> {
        let now = std::time::Instant::now();
        let mut out = vec![];
        for (id, t) in &mut self.0 {
            if t.renew_at <= now && t.next < t.targets {
                t.renew_at = now + lease / 2;
                out.push(*id);
            }
        }
        out
    }

    pub fn settle(&mut self, id: i64, at: i32, delivered: bool) {
        let Some(t) = self.0.get_mut(&id) else {
            return;
        };
        t.settled.insert(at, delivered);
        // Written with the batch even when its cursor stays: the write
        // also tells whether the fan-out was halted meanwhile.
        t.moved = true;
        while let Some(d) = t.settled.remove(&t.next) {
            t.next += 1;
            t.delivered += i32::from(d);
            t.moved = true;
        }
    }

    /// The fan-outs with inboxes settled since last time (fan-out, cursor,
    /// delivered since last time); finished fan-outs are forgotten.
    fn moves(&mut self) -> Vec<(i64, i32, i32)> {
        let mut out = vec![];
        for (id, t) in &mut self.0 {
            if t.moved {
                out.push((*id, t.next, t.delivered));
                t.moved = false;
                t.delivered = 0;
            }
        }
        self.0.retain(|_, t| t.next < t.targets);
        out
    }

    /// The fan-outs still held.
    pub fn held(&self) -> Vec<i64> {
        self.0.keys().copied().collect()
    }
}

/// Add a finished task's result (a panicked one leaves its row to the lease).
pub fn keep(done: &mut Vec<Done>, joined: Result<Done, tokio::task::JoinError>) {
    match joined {
        Ok(d) => done.push(d),
        Err(e) => tracing::error!(error = %e, "a delivery task failed"),
    }
}

/// Record a batch: rows delivered, and the instances that answered (their
/// breakers closed; what waited for a failing one is due at once). Returns
/// the held fan-outs found halted (their post or author deleted meanwhile).
pub async fn record(data: &super::FedData, done: Vec<Done>, progress: &mut Progress) -> Vec<i64> {
    for (id, at, delivered) in done.iter().filter_map(|d| d.fanout) {
        progress.settle(id, at, delivered);
    }
    let mut halted = vec![];
    for (id, next, delivered) in progress.moves() {
        match db::fanouts::advance(&data.db, id, next, delivered).await {
            Ok(true) => halted.push(id),
            Ok(false) => {}
            // The lease runs out and the rest is sent again: at least once.
            Err(e) => tracing::warn!(error = %e, fanout = id, "cannot record a fan-out's progress"),
        }
    }
    let lease_secs = data.settings.delivery.lease_secs.max(1);
    let lease = std::time::Duration::from_secs(u64::try_from(lease_secs).unwrap_or(120));
    let renew = progress.renewals(lease);
    if !renew.is_empty() {
        let until = data.clock.now() + chrono::Duration::seconds(lease_secs);
        if let Err(e) = db::fanouts::renew(&data.db, renew, until).await {
            tracing::warn!(error = %e, "cannot renew the fan-outs' leases");
        }
    }
    if !done.is_empty() {
        record_answers(data, done).await;
    }
    halted
}

/// The rows delivered, and the instances up.
async fn record_answers(data: &super::FedData, done: Vec<Done>) {
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
