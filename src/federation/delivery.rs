//! The delivery worker: claims due rows of the persistent queue, signs each
//! with its actor's key (one request per inbox, shared inboxes already
//! collapsed at enqueue), and records the outcome: delivered, retry later with
//! capped exponential backoff and jitter, or failed after the retry window.

use std::{sync::Arc, time::Duration};

use activitypub_federation::config::FederationConfig;
use chrono::Utc;
use rand::Rng;
use tokio::sync::watch;
use url::Url;

use super::outcomes::{self, Done};
use crate::{
    app::AppState,
    db::{self, deliveries::Claimed},
    domain::retry,
    error::AppError,
};

/// Start `workers` delivery loops. Each keeps up to `batch_size` deliveries
/// in flight and claims more as soon as one finishes, so a slow inbox holds
/// only its own slot. They stop taking new rows when `shutdown` turns true
/// (or the App is dropped), and return once their in-flight deliveries are
/// done: the handle returned ends then.
///
/// They run on a runtime of their own, on one thread at a lower OS priority
/// (nice 10, like the signing threads): a fan-out's thousand requests are
/// then never queued in front of a page or API request on the request
/// runtime's threads, and the OS gives those threads the CPU first. If that
/// thread cannot be started, they run on the calling runtime.
pub fn spawn_workers(
    config: FederationConfig<AppState>,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let n = config.settings.delivery.workers.max(1);
    let run_all = move |config: FederationConfig<AppState>, shutdown: watch::Receiver<bool>| async move {
        let loops: Vec<_> = (0..n)
            .map(|i| tokio::spawn(worker_loop(i, config.clone(), shutdown.clone())))
            .collect();
        for l in loops {
            if let Err(e) = l.await {
                tracing::error!(error = %e, "a delivery worker failed");
            }
        }
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let (c, s) = (config.clone(), shutdown.clone());
    let started = std::thread::Builder::new()
        .name("kindred-send".into())
        .spawn(move || {
            super::signing::lower_priority();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("kindred-send-bg")
                .on_thread_start(super::signing::lower_priority)
                .build();
            match rt {
                Ok(rt) => {
                    rt.block_on(run_all(c, s.clone()));
                    let _ = done_tx.send(());
                    // Requests still being answered may use sockets opened on
                    // this runtime (connections the shared database pool made
                    // for its tasks): keep driving them until the App is gone.
                    let mut s = s;
                    rt.block_on(async move { while s.changed().await.is_ok() {} });
                    // Don't wait for stray blocking tasks.
                    rt.shutdown_background();
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot build the delivery runtime");
                    let _ = done_tx.send(());
                }
            }
        });
    match started {
        Ok(_) => vec![tokio::spawn(async move {
            let _ = done_rx.await;
        })],
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the delivery thread: delivering on the request runtime");
            vec![tokio::spawn(run_all(config, shutdown))]
        }
    }
}

/// Deliveries in flight per remote host, in this process. A host that has
/// not yet shown it answers quickly (under a second) gets at most
/// `delivery.per_host` at once, so a slow or dead instance holds only its own
/// slots; a quick one may use a whole worker's, until one of its deliveries
/// has been out for much longer than it usually takes to answer (eight times
/// its usual time, at least 100 ms, at most a second): an instance that just
/// died is known by that long before its requests time out, and few requests
/// go to it in that time. A slot is given back, and the host's speed noted,
/// when its guard drops.
#[derive(Default)]
pub struct HostSlots(
    std::sync::Mutex<std::collections::HashMap<String, HostState>>,
    std::sync::atomic::AtomicU64,
    /// Hosts this process recorded as up (answering, breaker closed), and
    /// when: see `instance_is_up`.
    std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
);

/// A host recorded as up is written again at most this often (per process).
const UP_EVERY: Duration = Duration::from_secs(5);

#[derive(Default)]
struct HostState {
    in_flight: usize,
    /// Its last delivery was answered within `QUICK`.
    quick: bool,
    /// When each delivery in flight started, by slot number.
    started: Vec<(u64, std::time::Instant)>,
    /// How long its quick answers usually take (a moving average).
    usual: Duration,
}

const QUICK: Duration = Duration::from_secs(1);

impl HostState {
    /// A delivery out this long means the host has stopped answering as it
    /// did: from then on it gets `per_host` slots until it answers quickly
    /// again.
    fn hanging_after(&self) -> Duration {
        (self.usual * 8).clamp(Duration::from_millis(100), QUICK)
    }
}

pub struct HostSlot {
    slots: Arc<HostSlots>,
    host: String,
    id: u64,
    started: std::time::Instant,
}

impl HostSlots {
    /// Was `host` recorded as up by this process within `UP_EVERY`?
    pub(super) fn recently_up(&self, host: &str) -> bool {
        self.2
            .lock()
            .is_ok_and(|m| m.get(host).is_some_and(|t| t.elapsed() < UP_EVERY))
    }

    pub(super) fn note_up(&self, host: &str) {
        if let Ok(mut m) = self.2.lock() {
            if m.len() > 50_000 {
                m.retain(|_, t| t.elapsed() < UP_EVERY);
            }
            m.insert(host.to_string(), std::time::Instant::now());
        }
    }

    fn note_down(&self, host: &str) {
        if let Ok(mut m) = self.2.lock() {
            m.remove(host);
        }
    }

    /// A slot for `host`, or how long its rows should wait for one.
    fn take(
        self: &Arc<Self>,
        host: &str,
        per_host: usize,
        capacity: usize,
    ) -> Result<HostSlot, Duration> {
        let Ok(mut map) = self.0.lock() else {
            return Err(Duration::from_secs(1));
        };
        if map.len() > 10_000 {
            map.retain(|_, s| s.in_flight > 0);
        }
        let state = map.entry(host.to_string()).or_default();
        let after = state.hanging_after();
        let hanging = state.started.iter().any(|(_, t)| t.elapsed() >= after);
        let quick = state.quick && !hanging;
        let limit = if quick { capacity } else { per_host };
        if state.in_flight >= limit.max(1) {
            let ms = if quick { 200..700 } else { 2000..5000 };
            return Err(Duration::from_millis(rand::thread_rng().gen_range(ms)));
        }
        state.in_flight += 1;
        let id = self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = std::time::Instant::now();
        state.started.push((id, started));
        Ok(HostSlot {
            slots: self.clone(),
            host: host.to_string(),
            id,
            started,
        })
    }
}

impl Drop for HostSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.slots.0.lock()
            && let Some(s) = map.get_mut(&self.host)
        {
            s.in_flight = s.in_flight.saturating_sub(1);
            s.started.retain(|(id, _)| *id != self.id);
            let took = self.started.elapsed();
            s.quick = took < QUICK;
            if s.quick {
                s.usual = if s.usual.is_zero() {
                    took
                } else {
                    (s.usual * 3 + took) / 4
                };
            }
        }
    }
}

/// How long a nearly full worker waits for more answers before it records
/// and claims (see `outcomes`): well under any remote's answer time.
const GATHER: Duration = Duration::from_millis(20);

async fn worker_loop(
    index: usize,
    config: FederationConfig<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let s = config.settings.delivery.clone();
    let poll = Duration::from_secs_f64(s.poll_interval_secs.max(0.01));
    let wakeup = config.delivery_wakeup.clone();
    let capacity = usize::try_from(s.batch_size.max(1)).unwrap_or(16);
    // Record and claim once a quarter of the slots are free (or `GATHER`
    // has passed), not after every answer.
    let enough = (capacity / 4).max(1);
    let mut inflight: tokio::task::JoinSet<Done> = tokio::task::JoinSet::new();
    let mut done: Vec<Done> = vec![];
    // The inboxes of the fan-outs this worker claimed, not yet sent, and
    // how far each fan-out got.
    let mut backlog: std::collections::VecDeque<Claimed> = Default::default();
    let mut progress = outcomes::Progress::default();
    let mut last_prune = std::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        while let Some(r) = inflight.try_join_next() {
            outcomes::keep(&mut done, r);
        }
        if capacity.saturating_sub(inflight.len()) < enough
            && !gather(&mut inflight, &mut done, capacity, enough, &mut shutdown).await
        {
            break;
        }
        let halted = outcomes::record(
            &config.to_request_data(),
            std::mem::take(&mut done),
            &mut progress,
        )
        .await;
        if !halted.is_empty() {
            let data = config.to_request_data();
            if let Err(e) = cancel_halted(&data, &mut backlog, &halted, &mut progress).await {
                // Left to the lease: the next claim sees the mark.
                tracing::warn!(worker = index, error = %e, "cannot cancel a halted fan-out");
            }
        }
        if capacity <= inflight.len() {
            continue;
        }
        // Register interest before claiming, so a wake-up during the claim is
        // not lost.
        let notified = wakeup.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut took_fanout = false;
        if backlog.is_empty() {
            let data = config.to_request_data();
            match take_fanout(&data, &mut backlog, &mut progress, capacity).await {
                Ok(took) => took_fanout = took,
                Err(e) => tracing::warn!(worker = index, error = %e, "cannot claim a fan-out"),
            }
        }
        // The policy again, from memory, for what this worker holds: a
        // change made since the fan-out was claimed holds from the next send.
        let policy = match backlog.is_empty() {
            true => None,
            false => super::policy::current(&config.to_request_data())
                .await
                .inspect_err(|e| tracing::warn!(worker = index, error = %e, "cannot read the federation policy"))
                .ok(),
        };
        while let Some(policy) = &policy
            && inflight.len() < capacity
            && let Some(c) = backlog.pop_front()
        {
            let data = config.to_request_data();
            match screen_held(&data, policy, &c, &mut progress).await {
                Ok(false) => {}
                Ok(true) => continue,
                Err(e) => {
                    // Left to the fan-out's lease: screened again when claimed.
                    tracing::warn!(worker = index, error = %e, "cannot cancel a refused delivery");
                    continue;
                }
            }
            match take_slot(&data, &c, &mut progress).await {
                Ok(Some(slot)) => {
                    inflight.spawn(async move {
                        let d = deliver_one(&data, c).await;
                        drop(slot);
                        d
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    // Left to the fan-out's lease: sent again after it.
                    tracing::warn!(worker = index, error = %e, "cannot defer a delivery");
                }
            }
        }
        let free = capacity.saturating_sub(inflight.len());
        if free == 0 {
            continue;
        }
        let claimed = db::deliveries::claim_due(
            &config.db,
            config.clock.now(),
            chrono::Duration::seconds(s.lease_secs),
            free as u64,
        )
        .await;
        let claimed = match claimed {
            Ok(rows) if !rows.is_empty() => db::deliveries::with_bodies(&config.db, rows).await,
            other => other.map(|_| vec![]),
        };
        match claimed {
            Ok(rows) if !rows.is_empty() => {
                let data = config.to_request_data();
                let rows = match screen(&data, rows, &mut progress).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(worker = index, error = %e, "cannot screen claimed deliveries");
                        continue;
                    }
                };
                for (row, slot) in rows {
                    let data = config.to_request_data();
                    inflight.spawn(async move {
                        let d = deliver_one(&data, row).await;
                        drop(slot);
                        d
                    });
                }
                continue;
            }
            Ok(_) if took_fanout => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(worker = index, error = %e, "cannot claim deliveries"),
        }
        if index == 0 && last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = std::time::Instant::now();
            if let Err(e) =
                db::deliveries::prune_delivered(&config.db, chrono::Duration::days(1)).await
            {
                tracing::warn!(error = %e, "cannot prune deliveries");
            }
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(poll) => {}
            Some(r) = inflight.join_next(), if !inflight.is_empty() => outcomes::keep(&mut done, r),
            changed = shutdown.changed() => {
                // The App is gone: stop.
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    // Stopping: what is in flight finishes (each send is bounded by the
    // request timeout) and is recorded; nothing new is claimed.
    while let Some(r) = inflight.join_next().await {
        outcomes::keep(&mut done, r);
    }
    let data = config.to_request_data();
    outcomes::record(&data, done, &mut progress).await;
    // The fan-outs' unsent inboxes are for the next worker to claim, now.
    for id in progress.held() {
        if let Err(e) = db::fanouts::release(&data.db, id).await {
            tracing::warn!(error = %e, fanout = id, "cannot let go of a fan-out");
        }
    }
}

/// Claim a fan-out into `backlog`: its unsent inboxes past the policy and
/// the breakers, at most four workers' worth (the rest get rows of their own,
/// due now, for any worker), so what this worker holds is sent well within
/// its lease. False when there was none.
async fn take_fanout(
    data: &super::FedData,
    backlog: &mut std::collections::VecDeque<Claimed>,
    progress: &mut outcomes::Progress,
    capacity: usize,
) -> Result<bool, AppError> {
    let s = &data.settings.delivery;
    let Some(c) = db::fanouts::claim(
        &data.db,
        data.clock.now(),
        chrono::Duration::seconds(s.lease_secs),
    )
    .await?
    else {
        return Ok(false);
    };
    let f = &c.fanout;
    let lease = std::time::Duration::from_secs(u64::try_from(s.lease_secs.max(1)).unwrap_or(120));
    progress.start(f.id, f.next, f.targets, lease);
    for at in c.settled {
        progress.settle(f.id, at, false);
    }
    let template = db::fanouts::template(f);
    let held = capacity * 4;
    let mut items = c.items;
    let over = if items.len() > held {
        items.split_off(held)
    } else {
        vec![]
    };
    if !over.is_empty() {
        let inboxes: Vec<String> = over.iter().map(|(_, i)| i.clone()).collect();
        db::fanouts::own(
            &data.db,
            &template,
            &inboxes,
            db::fanouts::OwnRow {
                status: crate::domain::DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_at: data.clock.now(),
                last_error: None,
            },
        )
        .await?;
        for (at, _) in &over {
            progress.settle(f.id, *at, false);
        }
        data.wake_delivery();
    }
    let claimed: Vec<Claimed> = items
        .into_iter()
        .map(|(at, inbox)| Claimed {
            row: db::entities::delivery::Model {
                inbox,
                attempts: 1,
                ..template.clone()
            },
            payload: c.payload.clone(),
            position: at,
        })
        .collect();
    backlog.extend(screen_policy_and_breaker(data, claimed, progress).await?);
    Ok(true)
}

/// Drop from the backlog what the halted fan-outs (post or author deleted
/// while this worker held them) have not sent: each gets a cancelled row, as
/// the deletion gave the inboxes of the fan-outs nobody held.
async fn cancel_halted(
    data: &super::FedData,
    backlog: &mut std::collections::VecDeque<Claimed>,
    halted: &[i64],
    progress: &mut outcomes::Progress,
) -> Result<(), AppError> {
    let (stop, keep): (Vec<Claimed>, Vec<Claimed>) = std::mem::take(backlog)
        .into_iter()
        .partition(|c| c.row.fanout_id.is_some_and(|f| halted.contains(&f)));
    *backlog = keep.into();
    for id in halted {
        let ours: Vec<&Claimed> = stop
            .iter()
            .filter(|c| c.row.fanout_id == Some(*id))
            .collect();
        let Some(first) = ours.first() else {
            continue;
        };
        let inboxes: Vec<String> = ours.iter().map(|c| c.row.inbox.clone()).collect();
        db::fanouts::own(
            &data.db,
            &first.row,
            &inboxes,
            db::fanouts::OwnRow {
                status: crate::domain::DeliveryStatus::Cancelled,
                attempts: 0,
                next_attempt_at: data.clock.now(),
                last_error: None,
            },
        )
        .await?;
        for c in &ours {
            progress.settle(*id, c.position, false);
        }
        tracing::info!(
            fanout = id,
            cancelled = inboxes.len(),
            "a deleted post's fan-out stopped"
        );
    }
    Ok(())
}

/// A worker with fewer than `enough` free slots: wait for one to free (if
/// none is), then up to `GATHER` for more. False when the App is gone.
async fn gather(
    inflight: &mut tokio::task::JoinSet<Done>,
    done: &mut Vec<Done>,
    capacity: usize,
    enough: usize,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    if inflight.len() >= capacity {
        tokio::select! {
            r = inflight.join_next() => {
                if let Some(r) = r {
                    outcomes::keep(done, r);
                }
            }
            changed = shutdown.changed() => return changed.is_ok(),
        }
    }
    let until = tokio::time::Instant::now() + GATHER;
    while capacity.saturating_sub(inflight.len()) < enough && !inflight.is_empty() {
        match tokio::time::timeout_at(until, inflight.join_next()).await {
            Ok(Some(r)) => outcomes::keep(done, r),
            Ok(None) | Err(_) => break,
        }
    }
    true
}

/// The per-instance circuit breaker, applied to a claimed batch: rows for an
/// instance whose breaker is open go back to wait until it closes (attempt
/// not counted); when the wait is over, one row per instance is let through
/// as the probe and the others wait a little for its result.
async fn screen(
    data: &super::FedData,
    rows: Vec<Claimed>,
    progress: &mut outcomes::Progress,
) -> Result<Vec<(Claimed, HostSlot)>, AppError> {
    let rows = screen_policy_and_breaker(data, rows, progress).await?;
    let mut out = Vec::with_capacity(rows.len());
    for c in rows {
        if let Some(slot) = take_slot(data, &c, progress).await? {
            out.push((c, slot));
        }
    }
    Ok(out)
}

/// A slot of the delivery's host (see `HostSlots`), or the delivery put
/// back for a few seconds (attempt not counted) while the host's slots work.
async fn take_slot(
    data: &super::FedData,
    c: &Claimed,
    progress: &mut outcomes::Progress,
) -> Result<Option<HostSlot>, AppError> {
    let per_host = data.settings.delivery.per_host;
    let capacity = usize::try_from(data.settings.delivery.batch_size.max(1)).unwrap_or(16);
    match data
        .host_slots
        .take(&host_of(&c.row.inbox), per_host, capacity)
    {
        Ok(slot) => Ok(Some(slot)),
        Err(wait) => {
            let wait = chrono::Duration::from_std(wait).unwrap_or_default();
            let until = data.clock.now() + wait;
            settle(data, c, db::deliveries::Settle::Defer(until), progress).await?;
            Ok(None)
        }
    }
}

/// A held delivery the policy refuses now is cancelled (true), not sent.
async fn screen_held(
    data: &super::FedData,
    policy: &crate::domain::policy::Policy,
    c: &Claimed,
    progress: &mut outcomes::Progress,
) -> Result<bool, AppError> {
    let Some(why) =
        super::policy::refused_delivery(data, policy, c.row.actor_id, &c.row.inbox, &c.payload)
    else {
        return Ok(false);
    };
    tracing::info!(
        inbox = %host_of(&c.row.inbox),
        why,
        "held delivery cancelled by federation policy"
    );
    settle(data, c, db::deliveries::Settle::Cancelled(&why), progress).await?;
    Ok(true)
}

/// Settle a delivery that is not sent now; a fan-out's inbox counts as
/// settled for its cursor.
async fn settle(
    data: &super::FedData,
    c: &Claimed,
    how: db::deliveries::Settle<'_>,
    progress: &mut outcomes::Progress,
) -> Result<(), AppError> {
    db::deliveries::settle(&data.db, &c.row, how).await?;
    if let Some(f) = c.row.fanout_id.filter(|_| c.row.id == 0) {
        progress.settle(f, c.position, false);
    }
    Ok(())
}

async fn screen_policy_and_breaker(
    data: &super::FedData,
    rows: Vec<Claimed>,
    progress: &mut outcomes::Progress,
) -> Result<Vec<Claimed>, AppError> {
    // The federation policy first: a refused inbox is cancelled, never sent.
    // (Targets are numbered by their place in the batch: a fan-out's
    // inboxes have no row id yet.)
    let targets: Vec<db::deliveries::Target> = rows
        .iter()
        .enumerate()
        .map(|(i, c)| db::deliveries::Target {
            id: i as i64,
            actor_id: c.row.actor_id,
            inbox: c.row.inbox.clone(),
            payload: c.payload.clone(),
        })
        .collect();
    let refused: std::collections::HashMap<i64, String> =
        super::policy::refused_deliveries(data, &targets)
            .await?
            .into_iter()
            .collect();
    let mut kept = Vec::with_capacity(rows.len());
    for (i, c) in rows.into_iter().enumerate() {
        match refused.get(&(i as i64)) {
            Some(why) => {
                tracing::info!(
                    delivery = c.row.id,
                    why,
                    "delivery cancelled by federation policy"
                );
                settle(data, &c, db::deliveries::Settle::Cancelled(why), progress).await?;
            }
            None => kept.push(c),
        }
    }
    let rows = kept;
    let threshold = data.settings.delivery.breaker_threshold;
    if threshold <= 0 {
        return Ok(rows);
    }
    let now = data.clock.now();
    // Hosts this process saw answer within `UP_EVERY`, with no failure
    // since, have their breakers closed: only the others are read (a
    // failure recorded by another process shows here within that time).
    let mut hosts: Vec<String> = rows
        .iter()
        .map(|c| host_of(&c.row.inbox))
        .filter(|h| !data.host_slots.recently_up(h))
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    let states = db::instances::by_domains(&data.db, hosts).await?;
    let mut probing = std::collections::HashSet::new();
    let mut send = Vec::with_capacity(rows.len());
    for c in rows {
        let host = host_of(&c.row.inbox);
        let Some(state) = states.get(&host) else {
            send.push(c);
            continue;
        };
        if let Some(until) = state.open_until.filter(|u| *u > now) {
            let jitter = chrono::Duration::milliseconds(rand::thread_rng().gen_range(0..5000));
            let how = db::deliveries::Settle::Defer(until + jitter);
            settle(data, &c, how, progress).await?;
        } else if state.consecutive_failures < threshold || probing.insert(host) {
            send.push(c);
        } else {
            let how = db::deliveries::Settle::Defer(now + chrono::Duration::seconds(30));
            settle(data, &c, how, progress).await?;
        }
    }
    Ok(send)
}

/// Record how the instance answered. No answer, 5xx, 408 or 429 count
/// towards opening its breaker (written at once); any other answer shows it
/// is up: its host is returned, and recorded with the batch (`outcomes`),
/// which closes its breaker and sends what waited for it.
async fn record_instance(
    data: &super::FedData,
    inbox: &str,
    status: Option<u16>,
) -> Result<Option<String>, AppError> {
    let s = &data.settings.delivery;
    let host = host_of(inbox);
    if !retry::counts_against_instance(status) {
        // Status 0: refused here, never sent; it says nothing of the host.
        if status.is_some_and(|s| s > 0) {
            if let Err(e) = super::nodeinfo::met(data, &host, false).await {
                tracing::warn!(error = %e, "cannot note the instance's contact");
            }
            return Ok(Some(host));
        }
        return Ok(None);
    }
    if s.breaker_threshold <= 0 {
        return Ok(None);
    }
    data.host_slots.note_down(&host);
    let now = data.clock.now();
    let failures = db::instances::record_failure(&data.db, &host, now, |n| {
        retry::breaker_open_for(
            n,
            s.breaker_threshold,
            s.breaker_base_secs,
            s.retry_max_secs,
        )
    })
    .await?;
    if failures == s.breaker_threshold {
        tracing::warn!(instance = %host, failures, "instance not answering: its deliveries wait (circuit breaker open)");
    }
    Ok(None)
}

/// `host` sent us a verified activity: it is up. Close its breaker, and send
/// what waited for it. (Answers to our deliveries are recorded in batches:
/// see `outcomes`.)
pub async fn instance_is_up(data: &super::FedData, host: &str) -> Result<(), AppError> {
    if let Err(e) = super::nodeinfo::met(data, host, true).await {
        tracing::warn!(error = %e, "cannot note the instance's contact");
    }
    // A host this process recorded as up moments ago is not written again
    // (one write per delivery or received activity was most of a busy
    // queue's writes). Its failures here clear that; failures recorded by
    // another process are closed by the next write, within `UP_EVERY`.
    if data.settings.delivery.breaker_threshold <= 0 || data.host_slots.recently_up(host) {
        return Ok(());
    }
    let now = data.clock.now();
    let was_failing = db::instances::record_contact(&data.db, host, now).await?;
    data.host_slots.note_up(host);
    if was_failing {
        let n = db::deliveries::pull_forward(&data.db, host, now).await?;
        tracing::info!(instance = %host, waiting = n, "instance is back: sending what waited");
        data.wake_delivery();
    }
    Ok(())
}

/// A delivery's result: the outcome, why (for the row), and how long the
/// remote asked us to wait.
struct Sent {
    outcome: retry::Outcome,
    why: String,
    retry_after: Option<chrono::Duration>,
    /// The inbox's status; None when it did not answer.
    status: Option<u16>,
}

#[tracing::instrument(skip_all, fields(delivery = claimed.row.id, inbox = %host_of(&claimed.row.inbox), attempt = claimed.row.attempts))]
async fn deliver_one(data: &super::FedData, claimed: Claimed) -> Done {
    let sent = match send(data, &claimed).await {
        Ok(s) => s,
        Err(e) => Sent {
            outcome: retry::Outcome::Retry,
            why: e.to_string(),
            retry_after: None,
            status: None,
        },
    };
    let row = &claimed.row;
    let fanout = row.fanout_id.filter(|_| row.id == 0);
    let mut done = Done {
        delivered: None,
        fanout: fanout.map(|f| (f, claimed.position, false)),
        up: record_instance(data, &row.inbox, sent.status)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot record the instance's answer");
                None
            }),
    };
    let db = &data.db;
    let now = data.clock.now();
    let s = &data.settings.delivery;
    let host = host_of(&row.inbox);
    let res = match sent.outcome {
        retry::Outcome::Delivered => {
            tracing::debug!("delivered");
            data.metrics.delivery(&host, "delivered");
            // Recorded with the worker's batch.
            match fanout {
                Some(f) => done.fanout = Some((f, claimed.position, true)),
                None => done.delivered = Some(row.id),
            }
            Ok(())
        }
        retry::Outcome::Refused => {
            tracing::warn!(error = %sent.why, "delivery refused by the remote: not retried");
            data.metrics.delivery(&host, "failed");
            db::deliveries::settle(db, row, db::deliveries::Settle::Failed(&sent.why)).await
        }
        retry::Outcome::Retry => {
            if retry::window_exceeded(row.created_at, now, s.retry_window_hours) {
                tracing::warn!(error = %sent.why, "delivery failed for good");
                data.metrics.delivery(&host, "failed");
                db::deliveries::settle(db, row, db::deliveries::Settle::Failed(&sent.why)).await
            } else {
                let jitter: f64 = rand::thread_rng().r#gen();
                let backoff =
                    retry::backoff_delay(row.attempts, s.retry_base_secs, s.retry_max_secs, jitter);
                let delay = retry::next_delay(
                    backoff,
                    sent.retry_after,
                    chrono::Duration::seconds(s.retry_max_secs),
                );
                tracing::info!(error = %sent.why, retry_in_s = delay.num_seconds(), "delivery will be retried");
                data.metrics.delivery(&host, "retried");
                let how = db::deliveries::Settle::Retry {
                    next: now + delay,
                    error: &sent.why,
                };
                db::deliveries::settle(db, row, how).await
            }
        }
    };
    if let Err(e) = res {
        // The lease expires and the row (or the fan-out from this inbox on)
        // is tried again: at least once.
        tracing::warn!(error = %e, "cannot record delivery outcome");
        done.fanout = None;
    }
    done
}

/// Sign and POST one delivery. The body is the stored payload, byte for
/// byte; the signature covers `(request-target) host date digest`.
async fn send(data: &super::FedData, claimed: &Claimed) -> Result<Sent, AppError> {
    let row = &claimed.row;
    use super::signing;
    let refused = |why: &str| Sent {
        outcome: retry::Outcome::Refused,
        why: why.into(),
        retry_after: None,
        status: Some(0),
    };
    let inbox = Url::parse(&row.inbox)?;
    let http_ok =
        inbox.scheme() == "https" || (inbox.scheme() == "http" && data.settings.dev_mode());
    if !http_ok || inbox.host_str().is_none() {
        return Ok(refused("inbox refused: not an https URL"));
    }
    let host = super::objects::authority(&inbox);
    if host == data.settings.server.domain {
        return Ok(refused("inbox refused: it is ours"));
    }
    let key = match data.signer.cached(row.actor_id) {
        Some(k) => k,
        None => {
            let actor = db::actors::by_id(&data.db, row.actor_id)
                .await?
                .ok_or_else(|| AppError::internal("signing actor gone"))?;
            let pem = actor
                .private_key
                .as_deref()
                .ok_or_else(|| AppError::internal("the signing actor has no private key"))?;
            data.signer
                .keep(row.actor_id, signing::Key::from_pem(&actor.ap_id, pem)?)
        }
    };
    let body = claimed.payload.clone();
    let digest = signing::digest(&body);
    let date = signing::http_date();
    let mut target = inbox.path().to_string();
    if let Some(q) = inbox.query() {
        target.push('?');
        target.push_str(q);
    }
    let signature = {
        let (host, date, digest) = (host.clone(), date.clone(), digest.clone());
        data.signer
            .run(move || signing::post_signature(&key, &target, &host, &date, &digest))
            .await?
    };
    let client = match data.delivery_http.get() {
        Some(c) => c,
        None => {
            let _ = data.delivery_http.set(super::http_client(data)?);
            data.delivery_http
                .get()
                .ok_or_else(|| AppError::internal("no delivery client"))?
        }
    };
    let answer = client
        .post(inbox)
        .header("content-type", "application/activity+json")
        .header("host", host)
        .header("date", date)
        .header("digest", digest)
        .header("signature", signature)
        .body(body)
        .send()
        .await;
    Ok(match answer {
        Ok(r) => {
            let status = r.status().as_u16();
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry::parse_retry_after(v, Utc::now()));
            drain(r).await;
            Sent {
                outcome: retry::classify(status),
                why: format!("inbox answered {status}"),
                retry_after,
                status: Some(status),
            }
        }
        // No answer at all: connection refused, timeout, TLS…
        Err(e) => Sent {
            outcome: retry::Outcome::Retry,
            why: e.to_string(),
            retry_after: None,
            status: None,
        },
    })
}

/// Read (and drop) up to 64 KiB of an answer, so its connection can be used
/// again; a longer answer closes it.
async fn drain(mut r: reqwest::Response) {
    let mut read = 0;
    while let Ok(Some(chunk)) = r.chunk().await {
        read += chunk.len();
        if read > 64 * 1024 {
            break;
        }
    }
}

pub fn host_of(url: &str) -> String {
    Url::parse(url)
        .map(|u| super::objects::authority(&u))
        .unwrap_or_default()
}

/// Wakes sleeping workers after a commit that queued deliveries.
pub type Wakeup = Arc<tokio::sync::Notify>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quick_host_that_stops_answering_is_cut_to_its_own_slots_within_a_tenth_of_a_second()
    -> Result<(), String> {
        let slots = Arc::new(HostSlots::default());
        let (per_host, capacity) = (4, 16);
        // It answers at once: it may use a whole worker's slots.
        drop(
            slots
                .take("quick.example", per_host, capacity)
                .map_err(|_| "first slot")?,
        );
        let held: Vec<HostSlot> = (0..6)
            .map(|_| slots.take("quick.example", per_host, capacity))
            .collect::<Result<_, _>>()
            .map_err(|_| "a quick host is limited to per_host")?;
        // Then none of the six is answered for 150 ms (its usual time is
        // microseconds): no seventh, though a second has not passed.
        std::thread::sleep(Duration::from_millis(150));
        assert!(
            slots.take("quick.example", per_host, capacity).is_err(),
            "a host that stopped answering still got a slot beyond per_host"
        );
        // Another host is not affected.
        assert!(slots.take("other.example", per_host, capacity).is_ok());
        drop(held);
        // Answered again: slots are free.
        assert!(slots.take("quick.example", per_host, capacity).is_ok());
        Ok(())
    }
}
