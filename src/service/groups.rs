//! Groups: create (admins), find by handle — local, known remote, or resolved
//! through WebFinger — and join or leave, locally or over federation.

use super::users::CurrentUser;
use crate::{
    app::AppState,
    db,
    domain::{
        ActorKind, FollowState, GroupRole, content,
        group::{Admission, JoinPolicy, Visibility, admission},
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

/// What comes with a request to join.
#[derive(Default)]
pub struct JoinRequest<'a> {
    /// To the moderators of a group that approves its members.
    pub note: Option<&'a str>,
    /// The token of an invitation link.
    pub invite: Option<&'a str>,
}

/// Join a group. Local: as its join policy says (at once, queued for the
/// moderators, or refused without an invitation). Remote: a Follow goes out
/// and the membership stays pending until the group's Accept arrives.
#[tracing::instrument(skip_all, fields(group = %group.handle()))]
pub async fn join(
    data: &FedData,
    me: &CurrentUser,
    group: &DbActor,
    req: JoinRequest<'_>,
) -> Result<FollowState, AppError> {
    // Joining again while still pending sends a fresh Follow: the first may
    // have been refused or lost.
    let existing = db::follows::state(&data.db, me.actor.id, group.row.id).await?;
    if existing == Some(FollowState::Accepted) {
        return Ok(FollowState::Accepted);
    }
    let note = req.note.map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > 1000) {
        return Err(AppError::bad_request(
            "a note to the moderators has at most 1000 characters",
        ));
    }
    if group.row.local {
        return join_local(data, me, group, note, req.invite).await;
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

async fn join_local(
    data: &FedData,
    me: &CurrentUser,
    group: &DbActor,
    note: Option<&str>,
    invite_token: Option<&str>,
) -> Result<FollowState, AppError> {
    let g = &group.row;
    let banned = db::moderation::is_banned(&data.db, g.id, me.actor.id).await?;
    let hash = invite_token.map(super::users::token_hash);
    let invite = db::moderation::live_invite(&data.db, g.id, me.actor.id, hash.as_deref()).await?;
    if invite_token.is_some() && invite.is_none() {
        return Err(AppError::bad_request(
            "this invitation link is not valid, or was used already",
        ));
    }
    let decision = admission(
        JoinPolicy::of(&g.join_policy),
        Visibility::of(&g.visibility),
        false,
        invite.is_some(),
        banned,
    );
    let txn = db::write_txn(&data.db).await?;
    let state = match decision {
        Admission::Refuse(why) => return Err(AppError::forbidden(why)),
        Admission::Accept => {
            if let Some(i) = &invite
                && !db::moderation::use_invite(&txn, i.id).await?
            {
                return Err(AppError::Conflict(
                    "this invitation was used already".into(),
                ));
            }
            FollowState::Accepted
        }
        Admission::Queue => FollowState::Pending,
    };
    let f = db::follows::upsert(&txn, me.actor.id, g.id, state, None).await?;
    db::moderation::set_note(&txn, f.id, note.map(|n| content::sanitize_plain(n, 1000))).await?;
    txn.commit().await?;
    Ok(state)
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

/// Change a local group's title, description and rules (admins).
pub async fn update_group(
    state: &AppState,
    me: &CurrentUser,
    group: &DbActor,
    title: &str,
    summary: &str,
    rules: &str,
) -> Result<(), AppError> {
    super::instance::require_admin(me)?;
    if !group.row.local {
        return Err(AppError::bad_request(
            "only this instance's groups can be edited here",
        ));
    }
    let title = content::validate_title(title).map_err(AppError::BadRequest)?;
    for (what, text) in [("description", summary), ("rules", rules)] {
        if text.chars().count() > 5000 {
            return Err(AppError::bad_request(format!(
                "the {what} has at most 5000 characters"
            )));
        }
    }
    let html = |s: &str| {
        let s = content::strip_invisible(s);
        let s = s.trim();
        (!s.is_empty()).then(|| content::plain_text_to_html(s))
    };
    let txn = db::write_txn(&state.db).await?;
    db::actors::update_profile(&txn, group.row.id, Some(title), html(summary)).await?;
    db::actors::update_rules(&txn, group.row.id, html(rules)).await?;
    txn.commit().await?;
    state.group_docs.forget();
    tracing::info!(group = %group.handle(), "group edited");
    Ok(())
}

/// Give a local person a role in a local group (admins).
pub async fn set_role(
    state: &AppState,
    me: &CurrentUser,
    group: &DbActor,
    username: &str,
    role: GroupRole,
) -> Result<(), AppError> {
    super::instance::require_admin(me)?;
    if !group.row.local {
        return Err(AppError::bad_request(
            "only this instance's groups have roles here",
        ));
    }
    let name = username.trim().trim_start_matches('@').to_lowercase();
    let name = name
        .strip_suffix(&format!("@{}", state.settings.server.domain))
        .unwrap_or(&name)
        .to_string();
    let person = db::actors::local_by_name_and_kind(&state.db, &name, ActorKind::Person)
        .await?
        .ok_or_else(|| AppError::bad_request(format!("no local member is called '{name}'")))?;
    let txn = db::write_txn(&state.db).await?;
    if role == GroupRole::Owner {
        // One owner: the previous one stays on as a moderator.
        for (r, a) in db::roles::staff(&txn, group.row.id).await? {
            if r == GroupRole::Owner && a.id != person.id {
                db::roles::set(&txn, group.row.id, a.id, GroupRole::Moderator).await?;
            }
        }
    }
    db::roles::set(&txn, group.row.id, person.id, role).await?;
    txn.commit().await?;
    tracing::info!(group = %group.handle(), role = role.as_str(), "group role given");
    Ok(())
}

pub async fn remove_role(
    state: &AppState,
    me: &CurrentUser,
    group: &DbActor,
    actor_id: i64,
) -> Result<(), AppError> {
    super::instance::require_admin(me)?;
    if db::roles::remove(&state.db, group.row.id, actor_id).await? == 0 {
        return Err(AppError::not_found("role"));
    }
    Ok(())
}
