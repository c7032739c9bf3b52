//! Reports: members report a post or a person; remote servers' `Flag`s land
//! in the same queue (`federation::activities::flag`). A report about a post
//! in one of our groups goes to that group's moderators; any other to the
//! admins. Moderators resolve or dismiss it, and can forward a report about
//! a remote person to their instance (a `Flag` from our instance actor, as
//! Mastodon does: the reporter's identity stays here).

use activitypub_federation::kinds::activity::FlagType;

use super::{federation::Who, users::CurrentUser};
use crate::{
    db::{
        self,
        entities::{actor, report},
        moderation::NewReport,
    },
    domain::{GroupRole, group::ReportStatus},
    error::AppError,
    federation::{FedData, activities::flag::Flag, objects::actor::DbActor, outbox},
};

/// What is reported: a post (by id here) or a person (by handle).
pub enum Subject<'a> {
    Post(i64),
    Person(&'a str),
}

pub async fn report(
    data: &FedData,
    me: &CurrentUser,
    subject: Subject<'_>,
    comment: &str,
) -> Result<report::Model, AppError> {
    let comment = comment.trim();
    if comment.chars().count() > 2000 {
        return Err(AppError::bad_request(
            "a report has at most 2000 characters",
        ));
    }
    let comment =
        (!comment.is_empty()).then(|| crate::domain::content::sanitize_plain(comment, 2000));
    let (group_id, target, post_id) = match subject {
        Subject::Post(id) => {
            // Only what the reporter can read can be reported (no probing).
            let (p, _, g) = super::access::readable_post(&data.db, Some(me), id).await?;
            (g.row.local.then_some(g.row.id), p.author_id, Some(p.id))
        }
        Subject::Person(handle) => {
            let person = super::moderation::person_by_handle(data, handle).await?;
            (None, person.row.id, None)
        }
    };
    if target == me.actor.id {
        return Err(AppError::bad_request("you cannot report yourself"));
    }
    let r = db::moderation::insert_report(
        &data.db,
        NewReport {
            group_id,
            reporter_id: me.actor.id,
            target_actor_id: Some(target),
            post_id,
            comment,
            flag_ap_id: None,
        },
    )
    .await?;
    tracing::info!(report = r.id, "report filed");
    Ok(r)
}

/// The groups whose reports this person handles (owner or moderator).
async fn staffed_groups(data: &FedData, me: &CurrentUser) -> Result<Vec<i64>, AppError> {
    Ok(db::roles::groups_of(&data.db, me.actor.id).await?)
}

/// A report as a moderator sees it.
pub struct ReportView {
    pub report: report::Model,
    pub reporter: Option<actor::Model>,
    pub target: Option<actor::Model>,
    pub post: Option<db::entities::post::Model>,
    pub group: Option<actor::Model>,
}

/// The reports this person may handle: admins all, moderators their groups'.
pub async fn list(data: &FedData, who: Who<'_>) -> Result<Vec<ReportView>, AppError> {
    let rows = match who {
        Who::Cli => db::moderation::reports(&data.db, vec![], true, 500).await?,
        Who::User(me) if me.user.is_admin => {
            db::moderation::reports(&data.db, vec![], true, 500).await?
        }
        Who::User(me) => {
            let groups = staffed_groups(data, me).await?;
            if groups.is_empty() {
                return Err(AppError::forbidden(
                    "only moderators and admins see reports",
                ));
            }
            db::moderation::reports(&data.db, groups, false, 500).await?
        }
    };
    let mut out = vec![];
    for r in rows {
        out.push(view(data, r).await?);
    }
    Ok(out)
}

/// Cli and admins see everything; moderators what is about their groups.
pub async fn view(data: &FedData, r: report::Model) -> Result<ReportView, AppError> {
    let by = |id: Option<i64>| async move {
        match id {
            Some(id) => db::actors::by_id(&data.db, id).await,
            None => Ok(None),
        }
    };
    let post = match r.post_id {
        Some(id) => db::posts::by_id(&data.db, id).await?,
        None => None,
    };
    Ok(ReportView {
        reporter: by(Some(r.reporter_id)).await?,
        target: by(r.target_actor_id).await?,
        group: by(r.group_id).await?,
        post,
        report: r,
    })
}

async fn handled_by(data: &FedData, who: Who<'_>, id: i64) -> Result<report::Model, AppError> {
    let r = db::moderation::report_by_id(&data.db, id)
        .await?
        .ok_or_else(|| AppError::not_found("report"))?;
    let Who::User(me) = who else {
        return Ok(r);
    };
    if me.user.is_admin {
        return Ok(r);
    }
    let allowed = match r.group_id {
        Some(g) => matches!(
            db::roles::role_of(&data.db, g, me.actor.id).await?,
            Some(GroupRole::Owner | GroupRole::Moderator)
        ),
        None => false,
    };
    if allowed {
        Ok(r)
    } else {
        Err(AppError::forbidden(
            "only this report's group moderators and admins may handle it",
        ))
    }
}

/// Resolve (acted on) or dismiss (nothing to do) an open report.
pub async fn close(
    data: &FedData,
    who: Who<'_>,
    id: i64,
    status: &str,
    resolution: Option<&str>,
) -> Result<(), AppError> {
    let status = match ReportStatus::parse(status.trim()) {
        Some(s @ (ReportStatus::Resolved | ReportStatus::Dismissed)) => s,
        _ => {
            return Err(AppError::bad_request(format!(
                "unknown outcome '{status}': use resolved or dismissed"
            )));
        }
    };
    let r = handled_by(data, who, id).await?;
    let resolution = resolution.map(str::trim).filter(|s| !s.is_empty());
    let txn = db::write_txn(&data.db).await?;
    if !db::moderation::close_report(&txn, r.id, status, &who.name(), resolution).await? {
        return Err(AppError::Conflict("this report was already closed".into()));
    }
    if let Some(g) = r.group_id {
        let action = format!("report.{}", status.as_str());
        db::moderation::log(
            &txn,
            g,
            &who.name(),
            &action,
            &format!("report {}", r.id),
            resolution,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Forward a report about a remote person to their instance: a Flag from
/// our instance actor naming them (and the post), with the comment.
pub async fn forward(data: &FedData, who: Who<'_>, id: i64) -> Result<(), AppError> {
    let r = handled_by(data, who, id).await?;
    if r.forwarded_at.is_some() {
        return Err(AppError::Conflict(
            "this report was already forwarded".into(),
        ));
    }
    let target = match r.target_actor_id {
        Some(t) => db::actors::by_id(&data.db, t).await?,
        None => None,
    }
    .ok_or_else(|| AppError::bad_request("this report names no person"))?;
    if target.local {
        return Err(AppError::bad_request(
            "the reported person is on this instance: there is nothing to forward",
        ));
    }
    let mut objects = vec![serde_json::Value::String(target.ap_id.clone())];
    if let Some(pid) = r.post_id
        && let Some(p) = db::posts::by_id(&data.db, pid).await?
        && !p.local
    {
        objects.push(serde_json::Value::String(p.ap_id));
    }
    let instance = db::actors::instance_actor(&data.db)
        .await?
        .ok_or_else(|| AppError::internal("no instance actor"))?;
    let instance = DbActor::new(instance)?;
    let aid = data.urls.new_activity("flag");
    let flag = Flag {
        kind: FlagType::Flag,
        id: aid.clone(),
        actor: instance.object_id(),
        object: objects,
        content: r.comment.clone(),
    };
    let inbox = target
        .shared_inbox
        .clone()
        .unwrap_or_else(|| target.inbox.clone());
    let txn = db::write_txn(&data.db).await?;
    outbox::queue(&txn, &data.urls, &aid, &flag, &instance, vec![inbox]).await?;
    db::moderation::mark_forwarded(&txn, r.id).await?;
    if let Some(g) = r.group_id {
        db::moderation::log(
            &txn,
            g,
            &who.name(),
            "report.forward",
            &format!("report {}", r.id),
            None,
        )
        .await?;
    }
    txn.commit().await?;
    data.wake_delivery();
    Ok(())
}
