//! Actor rows read while one inbox request is handled, kept for the rest of
//! that request. A received post names its author three times (the
//! signature's key, the activity's `actor`, the post's `attributedTo`) and
//! its group two or three times (the policy screen, `audience`, `to`): each
//! was a statement of its own. Kept for one request only, and dropped when
//! the request writes the actor (a refetch), so nothing stale outlives it.

use std::cell::RefCell;

use crate::db::entities::actor;

tokio::task_local! {
    static ACTORS: RefCell<Vec<actor::Model>>;
}

/// Run `f` with a memo of its own (the inbox handler does, once per request).
pub async fn scope<F: std::future::Future>(f: F) -> F::Output {
    ACTORS.scope(RefCell::new(Vec::new()), f).await
}

/// The actor row with this `ap_id`: from the memo, or read and kept.
pub async fn actor_by_ap_id(
    db: &impl sea_orm::ConnectionTrait,
    ap_id: &str,
) -> Result<Option<actor::Model>, sea_orm::DbErr> {
    if let Some(row) = get(ap_id) {
        return Ok(Some(row));
    }
    let row = crate::db::actors::by_ap_id(db, ap_id).await?;
    if let Some(r) = &row {
        keep(r);
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

/// The actor was written (fetched again, deleted): read it afresh next time.
pub fn forget(ap_id: &str) {
    let _ = ACTORS.try_with(|m| m.borrow_mut().retain(|a| a.ap_id != ap_id));
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
            forget("https://a.example/u/1");
            assert!(get("https://a.example/u/1").is_none());
        })
        .await;
        // A second request starts empty.
        scope(async { assert!(get("https://a.example/u/1").is_none()) }).await;
    }
}
