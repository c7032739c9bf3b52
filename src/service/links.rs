//! Links between related groups: a group's moderators ask another group to
//! link up, the other side's moderators accept or refuse, either side ends
//! it. Each local group keeps its own row (`requested`, `pending`,
//! `accepted`), so two local groups link the same way as a local and a
//! remote one; a remote side is told with `Add`/`Accept`/`Reject`/`Remove`.
//! Members share a public thread into a linked group they belong to.

use super::{
    access,
    federation::{Who, require_group_staff},
    posts::{self, Draft},
    users::CurrentUser,
};
use crate::{
    db::{self, entities::group_link},
    domain::group::Visibility,
    error::AppError,
    federation::{
        FedData,
        activities::link::{Link, accept_add, answer_add},
        objects::actor::DbActor,
    },
};

/// A link as shown to moderators and members.
#[derive(Debug, Clone)]
pub struct LinkView {
    pub id: i64,
    pub state: String,
    pub peer: DbActor,
    pub requested_by: String,
}

fn require_linkable(g: &DbActor, what: &str) -> Result<(), AppError> {
    if !g.is_group() || g.row.deleted_at.is_some() {
        return Err(AppError::not_found("group"));
    }
    if access::visibility(&g.row) != Visibility::Public {
        return Err(AppError::bad_request(format!(
            "{what} is not public: only public groups link with other groups"
        )));
    }
    Ok(())
}

pub async fn links_of(data: &FedData, group: &DbActor) -> Result<Vec<LinkView>, AppError> {
    let mut out = Vec::new();
    for (l, peer) in db::links::of_group(&data.db, group.row.id).await? {
        out.push(LinkView {
            id: l.id,
            state: l.state,
            peer: DbActor::new(peer)?,
            requested_by: l.requested_by,
        });
    }
    Ok(out)
}

/// The groups linked with `group` (both sides agreed), for its page.
pub async fn linked(data: &FedData, group: &DbActor) -> Result<Vec<DbActor>, AppError> {
    db::links::accepted_of(&data.db, group.row.id)
        .await?
        .into_iter()
        .filter(|a| a.deleted_at.is_none())
        .map(DbActor::new)
        .collect()
}

/// Ask `target` (a handle) to link with our `group`. When `target` had asked
/// us already, this accepts.
pub async fn request(
    data: &FedData,
    who: Who<'_>,
    group: &DbActor,
    target: &str,
) -> Result<LinkView, AppError> {
    if !group.row.local {
        return Err(AppError::bad_request(
            "only this instance's groups link here",
        ));
    }
    require_group_staff(data, who, group).await?;
    require_linkable(group, "this group")?;
    let peer = super::groups::find_group(data, target).await?;
    if peer.row.id == group.row.id {
        return Err(AppError::bad_request("a group cannot link with itself"));
    }
    require_linkable(&peer, &peer.handle())?;
    if let Some(l) = db::links::get(&data.db, group.row.id, peer.row.id).await? {
        return match l.state.as_str() {
            db::links::PENDING => decide(data, who, group, l.id, true).await,
            db::links::ACCEPTED => Err(AppError::conflict(format!(
                "this group is already linked with {}",
                peer.handle()
            ))),
            _ => Err(AppError::conflict(format!(
                "this group has already asked {} to link",
                peer.handle()
            ))),
        };
    }
    let now = data.clock.now();
    let by = who.name();
    let txn = db::write_txn(&data.db).await?;
    let activity = if peer.row.local {
        db::links::insert(
            &txn,
            peer.row.id,
            group.row.id,
            db::links::PENDING,
            None,
            &group.handle(),
            now,
        )
        .await?;
        db::moderation::log(
            &txn,
            peer.row.id,
            &group.handle(),
            "link.requested",
            &group.handle(),
            None,
        )
        .await?;
        None
    } else {
        Some(
            Link::send(&txn, &data.urls, "Add", group, &peer)
                .await?
                .id
                .to_string(),
        )
    };
    let l = db::links::insert(
        &txn,
        group.row.id,
        peer.row.id,
        db::links::REQUESTED,
        activity,
        &by,
        now,
    )
    .await?;
    db::moderation::log(&txn, group.row.id, &by, "link.asked", &peer.handle(), None).await?;
    txn.commit().await?;
    tracing::info!(group = %group.handle(), peer = %peer.handle(), "link requested");
    Ok(view(l, peer))
}

fn view(l: group_link::Model, peer: DbActor) -> LinkView {
    LinkView {
        id: l.id,
        state: l.state,
        peer,
        requested_by: l.requested_by,
    }
}

async fn own_link(
    data: &FedData,
    group: &DbActor,
    link_id: i64,
) -> Result<(group_link::Model, DbActor), AppError> {
    let l = db::links::by_id(&data.db, link_id)
        .await?
        .filter(|l| l.group_id == group.row.id)
        .ok_or_else(|| AppError::not_found("link"))?;
    let peer = db::actors::by_id(&data.db, l.peer_id)
        .await?
        .ok_or_else(|| AppError::not_found("link"))?;
    Ok((l, DbActor::new(peer)?))
}

/// Accept (or refuse) a request another group made.
pub async fn decide(
    data: &FedData,
    who: Who<'_>,
    group: &DbActor,
    link_id: i64,
    accept: bool,
) -> Result<LinkView, AppError> {
    require_group_staff(data, who, group).await?;
    let (l, peer) = own_link(data, group, link_id).await?;
    if l.state != db::links::PENDING {
        return Err(AppError::conflict(if l.state == db::links::ACCEPTED {
            "this link is already accepted"
        } else {
            "this group asked for that link: only the other group can accept it"
        }));
    }
    if accept {
        require_linkable(group, "this group")?;
    }
    let now = data.clock.now();
    let by = who.name();
    let txn = db::write_txn(&data.db).await?;
    if peer.row.local {
        if let Some(theirs) = db::links::get(&txn, peer.row.id, group.row.id).await? {
            if accept {
                db::links::accept(&txn, theirs.id, now).await?;
            } else {
                db::links::delete(&txn, theirs.id).await?;
            }
            let action = if accept {
                "link.accepted"
            } else {
                "link.refused"
            };
            db::moderation::log(
                &txn,
                peer.row.id,
                &group.handle(),
                action,
                &group.handle(),
                None,
            )
            .await?;
        }
    } else if let Some(add) = l.activity_ap_id.as_deref() {
        if accept {
            accept_add(&txn, &data.urls, group, &peer, add).await?;
        } else {
            answer_add(&txn, &data.urls, "Reject", group, &peer, add).await?;
        }
    }
    let state = if accept {
        db::links::accept(&txn, l.id, now).await?;
        db::links::ACCEPTED
    } else {
        db::links::delete(&txn, l.id).await?;
        "refused"
    };
    let action = if accept {
        "link.accepted"
    } else {
        "link.refused"
    };
    db::moderation::log(&txn, group.row.id, &by, action, &peer.handle(), None).await?;
    txn.commit().await?;
    tracing::info!(group = %group.handle(), peer = %peer.handle(), accept, "link decided");
    Ok(LinkView {
        id: l.id,
        state: state.to_string(),
        peer,
        requested_by: l.requested_by,
    })
}

/// End a link, or withdraw a request: the other side is told.
pub async fn unlink(
    data: &FedData,
    who: Who<'_>,
    group: &DbActor,
    link_id: i64,
) -> Result<(), AppError> {
    require_group_staff(data, who, group).await?;
    let (l, peer) = own_link(data, group, link_id).await?;
    let by = who.name();
    let txn = db::write_txn(&data.db).await?;
    if peer.row.local {
        if let Some(theirs) = db::links::get(&txn, peer.row.id, group.row.id).await? {
            db::links::delete(&txn, theirs.id).await?;
            db::moderation::log(
                &txn,
                peer.row.id,
                &group.handle(),
                "link.removed",
                &group.handle(),
                None,
            )
            .await?;
        }
    } else {
        Link::send(&txn, &data.urls, "Remove", group, &peer).await?;
    }
    db::links::delete(&txn, l.id).await?;
    db::moderation::log(
        &txn,
        group.row.id,
        &by,
        "link.removed",
        &peer.handle(),
        None,
    )
    .await?;
    txn.commit().await?;
    tracing::info!(group = %group.handle(), peer = %peer.handle(), "link removed");
    Ok(())
}

/// The linked groups `me` may share a thread of `group` into: linked ones
/// they are a member of.
pub async fn share_targets(
    data: &FedData,
    me: &CurrentUser,
    group: &DbActor,
) -> Result<Vec<DbActor>, AppError> {
    let mut out = Vec::new();
    for g in linked(data, group).await? {
        let state = db::follows::state(&data.db, me.actor.id, g.row.id).await?;
        if crate::domain::rules::may_post_in_group(state) {
            out.push(g);
        }
    }
    Ok(out)
}

/// Share a public thread into a linked group: a new thread there, by `me`,
/// with their comment and a link back.
pub async fn share(
    data: &FedData,
    me: &CurrentUser,
    thread_id: i64,
    target_id: i64,
    comment: &str,
) -> Result<db::entities::post::Model, AppError> {
    let (post, _author, source) = access::readable_post(&data.db, Some(me), thread_id).await?;
    if post.thread_id.is_some() {
        return Err(AppError::bad_request(
            "only a thread (not a reply) can be shared",
        ));
    }
    if access::visibility(&source.row) != Visibility::Public {
        return Err(AppError::forbidden(
            "threads of a members-only or local group stay in it: they cannot be shared",
        ));
    }
    let target = linked(data, &source)
        .await?
        .into_iter()
        .find(|g| g.row.id == target_id)
        .ok_or_else(|| AppError::bad_request("that group is not linked with this one"))?;
    let title = post.title.clone().unwrap_or_else(|| "A thread".into());
    let title: String = title.chars().take(180).collect();
    let comment = comment.trim();
    let mut body = String::new();
    if !comment.is_empty() {
        body.push_str(comment);
        body.push_str("\n\n");
    }
    body.push_str(&format!(
        "Shared from {}: [{}]({})",
        source.handle(),
        crate::domain::content::escape(&title).replace(['[', ']'], ""),
        post.ap_id
    ));
    posts::create_thread(
        data,
        me,
        &target,
        Draft {
            title: Some(&title),
            body: &body,
            content_warning: post.content_warning.as_deref(),
        },
    )
    .await
}
