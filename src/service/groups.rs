//! Groups: create (admins), find by handle — local, known remote, or resolved
//! through WebFinger — and join or leave, locally or over federation.

use super::users::CurrentUser;
use crate::{
    app::AppState,
    db,
    domain::{
        ActorKind, FollowState, content,
        handle::{self, Handle},
    },
    error::AppError,
    federation::{
        FedData,
        activities::{follow::Follow, undo::Undo},
        objects::actor::DbActor,
        outbox,
    },
};

#[tracing::instrument(skip(state, summary))]
pub async fn create_group(
    state: &AppState,
    name: &str,
    title: &str,
    summary: &str,
) -> Result<DbActor, AppError> {
    handle::validate_local_name(name).map_err(AppError::BadRequest)?;
    let title = content::validate_title(title).map_err(AppError::BadRequest)?;
    if summary.chars().count() > 5000 {
        return Err(AppError::bad_request(
            "a summary has at most 5000 characters",
        ));
    }
    if db::actors::local_by_name(&state.db, name).await?.is_some() {
        return Err(AppError::Conflict(format!("the name '{name}' is taken")));
    }
    let keys = super::new_keypair().await?;
    let id = state.urls.group(name);
    let mut row = db::actors::new_local(
        id.to_string(),
        ActorKind::Group,
        name,
        &state.settings.server.domain,
        keys,
    );
    row.display_name = sea_orm::Set(Some(title));
    let summary = summary.trim();
    row.summary = sea_orm::Set((!summary.is_empty()).then(|| content::plain_text_to_html(summary)));
    let row = db::actors::insert(&state.db, row)
        .await
        .map_err(|e| super::users::name_taken(e, name))?;
    tracing::info!(group = name, "group created");
    DbActor::new(row)
}

/// `name` (local) or `name@host` / `@name@host` (any instance).
pub async fn find_group(data: &FedData, input: &str) -> Result<DbActor, AppError> {
    let h = Handle::parse(input).map_err(AppError::BadRequest)?;
    if h.is_local(data.domain()) {
        let row = db::actors::local_by_name_and_kind(&data.db, &h.name, ActorKind::Group)
            .await?
            .ok_or_else(|| AppError::not_found("group"))?;
        return DbActor::new(row);
    }
    let host = h.host.clone().unwrap_or_default();
    if let Some(row) =
        db::actors::remote_by_handle(&data.db, &h.name, &host, ActorKind::Group).await?
    {
        return DbActor::new(row);
    }
    let actor = crate::federation::resolve::actor_by_handle(data, &h.name, &host)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) | AppError::Remote(_) => {
                AppError::not_found(format!("group {}@{host}", h.name))
            }
            other => other,
        })?;
    if !actor.is_group() {
        return Err(AppError::not_found(format!("group {}@{host}", h.name)));
    }
    Ok(actor)
}

/// Join a group. Local: at once. Remote: a Follow goes out and the membership
/// stays pending until the group's Accept arrives.
#[tracing::instrument(skip_all, fields(group = %group.handle()))]
pub async fn join(
    data: &FedData,
    me: &CurrentUser,
    group: &DbActor,
) -> Result<FollowState, AppError> {
    // Joining again while still pending sends a fresh Follow: the first may
    // have been refused or lost.
    let existing = db::follows::state(&data.db, me.actor.id, group.row.id).await?;
    if existing == Some(FollowState::Accepted) {
        return Ok(FollowState::Accepted);
    }
    if group.row.local {
        db::follows::upsert(
            &data.db,
            me.actor.id,
            group.row.id,
            FollowState::Accepted,
            None,
        )
        .await?;
        return Ok(FollowState::Accepted);
    }
    let person = DbActor::new(me.actor.clone())?;
    let id = data.urls.new_activity("follow");
    let follow = Follow::new(id.clone(), &person, group);
    let txn = db::write_txn(&data.db).await?;
    db::follows::upsert(
        &txn,
        me.actor.id,
        group.row.id,
        FollowState::Pending,
        Some(id.to_string()),
    )
    .await?;
    outbox::queue(
        &txn,
        &data.urls,
        &id,
        &follow,
        &person,
        vec![group.row.inbox.clone()],
    )
    .await?;
    txn.commit().await?;
    data.wake_delivery();
    Ok(FollowState::Pending)
}

/// Leave a group; a remote group is told with Undo(Follow).
#[tracing::instrument(skip_all, fields(group = %group.handle()))]
pub async fn leave(data: &FedData, me: &CurrentUser, group: &DbActor) -> Result<(), AppError> {
    let Some(existing) = db::follows::get(&data.db, me.actor.id, group.row.id).await? else {
        return Err(AppError::not_found("membership"));
    };
    let txn = db::write_txn(&data.db).await?;
    db::follows::delete(&txn, me.actor.id, group.row.id).await?;
    if !group.row.local {
        let person = DbActor::new(me.actor.clone())?;
        let follow_id = existing
            .follow_ap_id
            .as_deref()
            .and_then(|s| url::Url::parse(s).ok())
            .unwrap_or_else(|| data.urls.new_activity("follow"));
        let id = data.urls.new_activity("undo");
        let undo = Undo {
            kind: Default::default(),
            id: id.clone(),
            actor: person.object_id(),
            object: Follow::new(follow_id, &person, group),
        };
        outbox::queue(
            &txn,
            &data.urls,
            &id,
            &undo,
            &person,
            vec![group.row.inbox.clone()],
        )
        .await?;
    }
    txn.commit().await?;
    data.wake_delivery();
    Ok(())
}
