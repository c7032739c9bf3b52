//! Members' rights over their data: download everything they wrote and their
//! memberships as one ActivityStreams document, and delete their account —
//! a `Delete` of the actor goes to every instance that received their
//! content, their posts are wiped here, and their handle stays reserved (the
//! actor row remains as a tombstone; nobody can sign up with it again).

use activitypub_federation::traits::Object;
use chrono::Utc;
use serde_json::{Value, json};

use super::users::CurrentUser;
use crate::{
    db,
    domain::FollowState,
    error::AppError,
    federation::{
        FedData,
        activities::delete::Delete,
        objects::{actor::DbActor, post::post_to_json},
        outbox,
    },
};

/// Everything `me` wrote (live posts, held ones too, oldest first, as
/// Create activities like an outbox) and every membership, with the actor
/// document: the shape of a Mastodon archive's outbox, in one file.
pub async fn export(data: &FedData, me: &CurrentUser) -> Result<Value, AppError> {
    let actor = DbActor::new(me.actor.clone())?;
    let actor_json = serde_json::to_value(actor.clone().into_json(data).await?)?;
    let mut items = vec![];
    for p in db::posts::all_by_author(&data.db, me.actor.id).await? {
        let object = serde_json::to_value(post_to_json(&p, data).await?)?;
        let group = db::actors::by_id(&data.db, p.group_id).await?;
        items.push(json!({
            "type": "Create",
            "id": format!("{}#create", p.ap_id),
            "actor": me.actor.ap_id,
            "published": p.published_at,
            "object": object,
            "audience": group.map(|g| g.ap_id),
        }));
    }
    let mut memberships = vec![];
    for f in db::follows::groups_of(&data.db, me.actor.id).await? {
        if let Some(g) = db::actors::by_id(&data.db, f.group_id).await? {
            memberships.push(json!({
                "type": "Follow",
                "actor": me.actor.ap_id,
                "object": g.ap_id,
                "name": g.display_name,
                "state": FollowState::parse(&f.state).map(FollowState::as_str),
                "published": f.created_at,
            }));
        }
    }
    Ok(json!({
        "@context": crate::federation::objects::actor::actor_context(),
        "type": "Collection",
        "name": format!("Kindred archive of @{}@{}", me.actor.username, me.actor.domain),
        "published": Utc::now(),
        "actor": actor_json,
        "outbox": {
            "type": "OrderedCollection",
            "totalItems": items.len(),
            "orderedItems": items,
        },
        "following": {
            "type": "OrderedCollection",
            "totalItems": memberships.len(),
            "orderedItems": memberships,
        },
    }))
}

/// Delete my account, after checking my password again.
pub async fn delete_account(
    data: &FedData,
    me: &CurrentUser,
    password: &str,
) -> Result<(), AppError> {
    super::users::check_credentials(data, &me.actor.username, password)
        .await
        .map_err(|_| AppError::forbidden("the password is not right"))?;
    if me.user.is_admin && db::users::count_admins(&data.db).await? <= 1 {
        return Err(AppError::bad_request(
            "you are this instance's only admin: make someone else an admin first",
        ));
    }
    let actor = DbActor::new(me.actor.clone())?;
    // Every instance that got something of mine: what I sent, what groups
    // passed on for me, and the remote groups I belonged to.
    let mut inboxes =
        db::deliveries::inboxes_reached(&data.db, me.actor.id, &me.actor.ap_id).await?;
    for f in db::follows::groups_of(&data.db, me.actor.id).await? {
        if let Some(g) = db::actors::by_id(&data.db, f.group_id).await?
            && !g.local
        {
            inboxes.push(g.shared_inbox.unwrap_or(g.inbox));
        }
    }
    inboxes.sort();
    inboxes.dedup();
    let id = data.urls.new_activity("delete");
    let object = url::Url::parse(&me.actor.ap_id)?;
    let delete = Delete::new(
        id.clone(),
        &actor,
        &object,
        vec![crate::federation::PUBLIC_AUDIENCE.to_string()],
        vec![],
    );
    let txn = db::write_txn(&data.db).await?;
    // Queued copies of my posts are not sent any more; the Delete is.
    db::deliveries::cancel_pending_of(&txn, me.actor.id).await?;
    db::posts::delete_for_authors(&txn, vec![me.actor.id]).await?;
    db::follows::remove_followers(&txn, &[me.actor.id]).await?;
    db::roles::remove_all_of(&txn, me.actor.id).await?;
    db::sessions::delete_all_of(&txn, me.user.id, None).await?;
    db::users::delete(&txn, me.user.id).await?;
    db::actors::mark_deleted(&txn, me.actor.id).await?;
    outbox::queue(&txn, &data.urls, &id, &delete, &actor, inboxes).await?;
    txn.commit().await?;
    data.wake_delivery();
    tracing::info!("an account was deleted");
    Ok(())
}
