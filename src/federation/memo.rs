//! Actor rows read while one inbox request is handled, kept for the rest of
//! that request. A received post names its author three times (the
//! signature's key, the activity's `actor`, the post's `attributedTo`) and
//! its group two or three times (the policy screen, `audience`, `to`): each
//! was a statement of its own. Kept for one request only, and dropped when
//! the request writes the actor (a refetch), so nothing stale outlives it.
//!
//! Remote actors' rows are also kept across requests, per App, for up to
//! `KEPT_FOR` (`Remote`): a busy member server signs every activity with the
//! same few keys, and reading the signer was a statement per received
//! activity. A remote row is written only when we fetch the actor again
//! (`DbActor::from_json`) or it deletes itself (`remove_actor`); both call
//! `forget`, which drops it here at once, and a row read while such a write
//! ran is not kept. A write by another process shows within `KEPT_FOR`
//! (a key it rotated meanwhile fails one check, and is refetched as usual).

use std::{
    cell::RefCell,
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{app::AppState, db::entities::actor};

/// How long a remote actor's row is kept across requests.
pub const KEPT_FOR: Duration = Duration::from_secs(1);
/// Past this many rows the map starts again empty.
const MAX_KEPT: usize = 4096;

/// Remote actors' rows, kept across requests (see the module's text).
#[derive(Default)]
pub struct Remote {
    rows: RwLock<HashMap<String, (actor::Model, Instant)>>,
    /// Moved by every `forget`: a row read across one is not kept.
    generation: AtomicU64,
}

impl Remote {
    fn get(&self, ap_id: &str) -> Option<actor::Model> {
        let map = self.rows.read().ok()?;
        let (row, at) = map.get(ap_id)?;
        (at.elapsed() < KEPT_FOR).then(|| row.clone())
    }

    fn stamp(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn keep(&self, row: &actor::Model, stamp: u64) {
        if row.local {
            return;
        }
        if let Ok(mut map) = self.rows.write()
            && self.generation.load(Ordering::Acquire) == stamp
        {
            if map.len() >= MAX_KEPT {
                map.clear();
            }
            map.insert(row.ap_id.clone(), (row.clone(), Instant::now()));
        }
    }

    fn forget(&self, ap_id: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.rows.write() {
            map.remove(ap_id);
        }
    }
}

tokio::task_local! {
    static ACTORS: RefCell<Vec<actor::Model>>;
}

/// Run `f` with a memo of its own (the inbox handler does, once per request).
pub async fn scope<F: std::future::Future>(f: F) -> F::Output {
    ACTORS.scope(RefCell::new(Vec::new()), f).await
}

/// The actor row with this `ap_id`: from the memo, a remote one kept from an
/// earlier request, or read and kept.
pub async fn actor_by_ap_id(
    state: &AppState,
    ap_id: &str,
) -> Result<Option<actor::Model>, sea_orm::DbErr> {
    if let Some(row) = get(ap_id) {
        return Ok(Some(row));
    }
    if let Some(row) = state.remote_actors.get(ap_id) {
        keep(&row);
        return Ok(Some(row));
    }
    let stamp = state.remote_actors.stamp();
    let row = crate::db::actors::by_ap_id(&state.db, ap_id).await?;
    if let Some(r) = &row {
        keep(r);
        state.remote_actors.keep(r, stamp);
    }
    Ok(row)
}

/// The row with this `ap_id`, if this request has read it already.
pub fn get(ap_id: &str) -> Option<actor::Model> {
    ACTORS
        .try_with(|m| m.borrow().iter().find(|a| a.ap_id == ap_id).cloned())
        .ok()
        .flatten()
}

/// The row with this id, if this request has read it already.
pub fn get_id(id: i64) -> Option<actor::Model> {
    ACTORS
        .try_with(|m| m.borrow().iter().find(|a| a.id == id).cloned())
        .ok()
        .flatten()
}

/// Keep `row` for the rest of the request (no-op outside one).
pub fn keep(row: &actor::Model) {
    let _ = ACTORS.try_with(|m| {
        let mut m = m.borrow_mut();
        m.retain(|a| a.ap_id != row.ap_id);
        // A request names a handful of actors; a hostile one naming many
        // gains nothing from a long list.
        if m.len() < 16 {
            m.push(row.clone());
        }
    });
}

/// The actor was written (fetched again, deleted): read it afresh next time,
/// in this request and in every other.
pub fn forget(state: &AppState, ap_id: &str) {
    let _ = ACTORS.try_with(|m| m.borrow_mut().retain(|a| a.ap_id != ap_id));
    state.remote_actors.forget(ap_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, ap_id: &str) -> actor::Model {
        let mut a = actor::Model::sample(id, "person", "u");
        a.ap_id = ap_id.into();
        a
    }

    #[tokio::test]
    async fn rows_are_kept_within_a_scope_only_and_forgotten_when_written() {
        // Outside a scope nothing is kept.
        keep(&row(1, "https://a.example/u/1"));
        assert!(get("https://a.example/u/1").is_none());
        scope(async {
            keep(&row(1, "https://a.example/u/1"));
            assert_eq!(get("https://a.example/u/1").map(|a| a.id), Some(1));
            assert_eq!(
                get_id(1).map(|a| a.ap_id),
                Some("https://a.example/u/1".into())
            );
            assert!(get("https://a.example/u/2").is_none());
            let _ = ACTORS.try_with(|m| m.borrow_mut().clear());
            assert!(get("https://a.example/u/1").is_none());
        })
        .await;
        // A second request starts empty.
        scope(async { assert!(get("https://a.example/u/1").is_none()) }).await;
    }

    #[test]
    fn remote_rows_are_kept_across_requests_until_written_or_stale() {
        let kept = Remote::default();
        let mut remote = row(1, "https://a.example/u/1");
        remote.local = false;
        kept.keep(&remote, kept.stamp());
        assert_eq!(kept.get("https://a.example/u/1").map(|a| a.id), Some(1));
        kept.forget("https://a.example/u/1");
        assert!(kept.get("https://a.example/u/1").is_none());
        // Read while it was being written: not kept.
        let before = kept.stamp();
        kept.forget("https://a.example/u/1");
        kept.keep(&remote, before);
        assert!(kept.get("https://a.example/u/1").is_none());
        // Local rows are never kept here.
        let mut local = row(2, "https://here.example/u/2");
        local.local = true;
        kept.keep(&local, kept.stamp());
        assert!(kept.get("https://here.example/u/2").is_none());
        // Stale after KEPT_FOR.
        kept.keep(&remote, kept.stamp());
        if let Ok(mut map) = kept.rows.write()
            && let Some((_, at)) = map.get_mut("https://a.example/u/1")
        {
            *at = Instant::now() - KEPT_FOR;
        }
        assert!(kept.get("https://a.example/u/1").is_none());
    }
}
