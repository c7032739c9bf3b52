//! The delivery worker: claims due rows of the persistent queue, signs each
//! with its actor's key (one request per inbox, shared inboxes already
//! collapsed at enqueue), and records the outcome: delivered, retry later with
//! capped exponential backoff and jitter, or failed after the retry window.

use std::{sync::Arc, time::Duration};

use activitypub_federation::{
    activity_sending::SendActivityTask, config::FederationConfig, traits::Activity,
};
use chrono::Utc;
use rand::Rng;
use serde::Serialize;
use tokio::sync::watch;
use url::Url;

use super::objects::actor::DbActor;
use crate::{
    app::AppState,
    db::{self, entities::delivery},
    domain::retry,
    error::AppError,
};

/// Start `workers` delivery loops. They stop, after their current batch, when
/// `shutdown` turns true.
pub fn spawn_workers(
    config: FederationConfig<AppState>,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let n = config.settings.delivery.workers.max(1);
    (0..n)
        .map(|i| {
            let config = config.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { worker_loop(i, config, shutdown).await })
        })
        .collect()
}

async fn worker_loop(
    index: usize,
    config: FederationConfig<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let s = config.settings.delivery.clone();
    let poll = Duration::from_secs_f64(s.poll_interval_secs.max(0.01));
    let wakeup = config.delivery_wakeup.clone();
    let mut last_prune = std::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        // Register interest before claiming, so a wake-up during the claim is
        // not lost.
        let notified = wakeup.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let claimed = db::deliveries::claim_due(
            &config.db,
            config.clock.now(),
            chrono::Duration::seconds(s.lease_secs),
            s.batch_size,
        )
        .await;
        match claimed {
            Ok(rows) if !rows.is_empty() => {
                let data = config.to_request_data();
                let rows = match screen(&data, rows).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(worker = index, error = %e, "cannot check instance breakers");
                        continue;
                    }
                };
                let sends = rows.into_iter().map(|row| {
                    let data = data.clone();
                    async move { deliver_one(&data, row).await }
                });
                futures::future::join_all(sends).await;
                continue;
            }
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
            changed = shutdown.changed() => {
                // The App is gone: stop.
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}

/// The per-instance circuit breaker, applied to a claimed batch: rows for an
/// instance whose breaker is open go back to wait until it closes (attempt
/// not counted); when the wait is over, one row per instance is let through
/// as the probe and the others wait a little for its result.
async fn screen(
    data: &super::FedData,
    rows: Vec<delivery::Model>,
) -> Result<Vec<delivery::Model>, AppError> {
    // The federation policy first: a refused inbox is cancelled, never sent.
    let targets: Vec<(i64, i64, String, String)> = rows
        .iter()
        .map(|r| (r.id, r.actor_id, r.inbox.clone(), r.payload.clone()))
        .collect();
    let refused = super::policy::refused_deliveries(data, &targets).await?;
    for (id, why) in &refused {
        tracing::info!(
            delivery = id,
            why,
            "delivery cancelled by federation policy"
        );
        db::deliveries::mark_cancelled(&data.db, vec![*id], why).await?;
    }
    let rows: Vec<delivery::Model> = rows
        .into_iter()
        .filter(|r| !refused.iter().any(|(id, _)| *id == r.id))
        .collect();
    let threshold = data.settings.delivery.breaker_threshold;
    if threshold <= 0 {
        return Ok(rows);
    }
    let now = data.clock.now();
    let mut hosts: Vec<String> = rows.iter().map(|r| host_of(&r.inbox)).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let states = db::instances::by_domains(&data.db, hosts).await?;
    let mut probing = std::collections::HashSet::new();
    let mut send = Vec::with_capacity(rows.len());
    for row in rows {
        let host = host_of(&row.inbox);
        let Some(state) = states.get(&host) else {
            send.push(row);
            continue;
        };
        if let Some(until) = state.open_until.filter(|u| *u > now) {
            let jitter = chrono::Duration::milliseconds(rand::thread_rng().gen_range(0..5000));
            db::deliveries::defer(&data.db, row.id, until + jitter).await?;
        } else if state.consecutive_failures < threshold || probing.insert(host) {
            send.push(row);
        } else {
            db::deliveries::defer(&data.db, row.id, now + chrono::Duration::seconds(30)).await?;
        }
    }
    Ok(send)
}

/// Record how the instance answered: a success (or any answer that shows it
/// is up) closes its breaker and sends what waited for it at once; no answer,
/// 5xx, 408 or 429 count towards opening it.
async fn record_instance(
    data: &super::FedData,
    inbox: &str,
    status: Option<u16>,
) -> Result<(), AppError> {
    let s = &data.settings.delivery;
    if s.breaker_threshold <= 0 {
        return Ok(());
    }
    let host = host_of(inbox);
    let now = data.clock.now();
    if retry::counts_against_instance(status) {
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
    } else {
        instance_is_up(data, &host, false).await?;
    }
    Ok(())
}

/// `host` answered a delivery (or, with `wrote_to_us`, sent us a verified
/// activity): close its breaker, and send what waited for it.
pub async fn instance_is_up(
    data: &super::FedData,
    host: &str,
    wrote_to_us: bool,
) -> Result<(), AppError> {
    if let Err(e) = super::nodeinfo::met(data, host, wrote_to_us).await {
        tracing::warn!(error = %e, "cannot note the instance's contact");
    }
    let now = data.clock.now();
    let was_failing = if wrote_to_us {
        db::instances::record_contact(&data.db, host, now).await?
    } else {
        db::instances::record_success(&data.db, host, now).await?
    };
    if was_failing {
        let n = db::deliveries::pull_forward(&data.db, host, now).await?;
        tracing::info!(instance = %host, waiting = n, "instance is back: sending what waited");
        data.wake_delivery();
    }
    Ok(())
}

/// A stored activity, sent as stored. Only used to hand id, actor and body to
/// the crate's signer; it is never received.
#[derive(Debug)]
struct StoredActivity {
    id: Url,
    actor: Url,
    json: serde_json::Value,
}

impl Serialize for StoredActivity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

#[async_trait::async_trait]
impl Activity for StoredActivity {
    type DataType = AppState;
    type Error = AppError;
    fn id(&self) -> &Url {
        &self.id
    }
    fn actor(&self) -> &Url {
        &self.actor
    }
    async fn verify(&self, _: &super::FedData) -> Result<(), AppError> {
        Err(AppError::internal("outgoing activity cannot be received"))
    }
    async fn receive(self, _: &super::FedData) -> Result<(), AppError> {
        Err(AppError::internal("outgoing activity cannot be received"))
    }
}

/// What the inbox answered (status, Retry-After), seen by `ObserveResponses`
/// while the library sends: the library itself reports a final 4xx as success.
#[derive(Debug, Clone, Copy)]
struct Observed {
    status: u16,
    retry_after: Option<chrono::Duration>,
}

tokio::task_local! {
    static OBSERVED: std::cell::Cell<Option<Observed>>;
}

/// Client middleware: inside a delivery (the task-local is set), record the
/// inbox's status and `Retry-After`. Elsewhere it does nothing.
pub struct ObserveResponses;

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for ObserveResponses {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut axum::http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let res = next.run(req, extensions).await;
        if let Ok(r) = &res {
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry::parse_retry_after(v, Utc::now()));
            let seen = Observed {
                status: r.status().as_u16(),
                retry_after,
            };
            let _ = OBSERVED.try_with(|c| c.set(Some(seen)));
        }
        res
    }
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

#[tracing::instrument(skip_all, fields(delivery = row.id, inbox = %host_of(&row.inbox), attempt = row.attempts))]
async fn deliver_one(data: &super::FedData, row: delivery::Model) {
    let sent = match send(data, &row).await {
        Ok(s) => s,
        Err(e) => Sent {
            outcome: retry::Outcome::Retry,
            why: e.to_string(),
            retry_after: None,
            status: None,
        },
    };
    if let Err(e) = record_instance(data, &row.inbox, sent.status).await {
        tracing::warn!(error = %e, "cannot record the instance's answer");
    }
    let db = &data.db;
    let now = data.clock.now();
    let s = &data.settings.delivery;
    let host = host_of(&row.inbox);
    let res = match sent.outcome {
        retry::Outcome::Delivered => {
            tracing::debug!("delivered");
            data.metrics.delivery(&host, "delivered");
            db::deliveries::mark_delivered(db, row.id).await
        }
        retry::Outcome::Refused => {
            tracing::warn!(error = %sent.why, "delivery refused by the remote: not retried");
            data.metrics.delivery(&host, "failed");
            db::deliveries::mark_failed(db, row.id, &sent.why).await
        }
        retry::Outcome::Retry => {
            if retry::window_exceeded(row.created_at, now, s.retry_window_hours) {
                tracing::warn!(error = %sent.why, "delivery failed for good");
                data.metrics.delivery(&host, "failed");
                db::deliveries::mark_failed(db, row.id, &sent.why).await
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
                db::deliveries::mark_retry(db, row.id, now + delay, &sent.why).await
            }
        }
    };
    if let Err(e) = res {
        // The lease expires and the row is tried again: at least once.
        tracing::warn!(error = %e, "cannot record delivery outcome");
    }
}

async fn send(data: &super::FedData, row: &delivery::Model) -> Result<Sent, AppError> {
    let signer = db::actors::by_id(&data.db, row.actor_id)
        .await?
        .ok_or_else(|| AppError::internal("signing actor gone"))?;
    let signer = DbActor::new(signer)?;
    let json: serde_json::Value = serde_json::from_str(&row.payload)?;
    let activity = StoredActivity {
        id: Url::parse(&row.activity_ap_id)?,
        actor: signer.id_url().clone(),
        json,
    };
    let inbox = Url::parse(&row.inbox)?;
    let tasks = SendActivityTask::prepare(&activity, &signer, vec![inbox], data).await?;
    let Some(task) = tasks.into_iter().next() else {
        return Ok(Sent {
            outcome: retry::Outcome::Refused,
            why: "inbox refused by URL policy".into(),
            retry_after: None,
            status: Some(0),
        });
    };
    let (result, seen) = OBSERVED
        .scope(std::cell::Cell::new(None), async {
            let r = task.sign_and_send(data).await;
            (r, OBSERVED.with(|c| c.get()))
        })
        .await;
    Ok(match (seen, result) {
        (Some(o), _) => Sent {
            outcome: retry::classify(o.status),
            why: format!("inbox answered {}", o.status),
            retry_after: o.retry_after,
            status: Some(o.status),
        },
        // No answer at all: connection refused, timeout, TLS…
        (None, Err(e)) => Sent {
            outcome: retry::Outcome::Retry,
            why: e.to_string(),
            retry_after: None,
            status: None,
        },
        (None, Ok(())) => Sent {
            outcome: retry::Outcome::Delivered,
            why: String::new(),
            retry_after: None,
            status: Some(200),
        },
    })
}

pub fn host_of(url: &str) -> String {
    Url::parse(url)
        .map(|u| super::objects::authority(&u))
        .unwrap_or_default()
}

/// Wakes sleeping workers after a commit that queued deliveries.
pub type Wakeup = Arc<tokio::sync::Notify>;
