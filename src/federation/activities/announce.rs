//! Announce: a group we joined re-shares a member's Create, Update or Delete
//! (FEP-1b12), or a bare post (Lemmy). Only from groups one of our members
//! follows. An embedded object from another origin is never trusted: it is
//! fetched from its origin.

use activitypub_federation::{
    config::Data,
    fetch::{fetch_object_http, object_id::ObjectId},
    kinds::activity::AnnounceType,
    traits::{Activity, Object},
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    app::AppState,
    db,
    domain::rules,
    error::AppError,
    federation::objects::{
        actor::DbActor,
        id_of, one_or_many,
        post::{DbPost, PostJson, new_post_from_json, resolve_context, upsert},
        same_origin,
    },
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Announce {
    #[serde(rename = "type")]
    pub kind: AnnounceType,
    pub id: Url,
    pub actor: ObjectId<DbActor>,
    pub object: serde_json::Value,
    #[serde(default, deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub cc: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<ObjectId<DbActor>>,
}

#[async_trait::async_trait]
impl Activity for Announce {
    type DataType = AppState;
    type Error = AppError;

    fn id(&self) -> &Url {
        &self.id
    }
    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, _data: &Data<AppState>) -> Result<(), AppError> {
        if id_of(&self.object).is_none() {
            return Err(AppError::bad_request("Announce without an object"));
        }
        Ok(())
    }

    async fn receive(self, data: &Data<AppState>) -> Result<(), AppError> {
        if super::seen(data, &self.id).await? {
            return Ok(());
        }
        let group = self.actor.dereference(data).await?;
        if !group.is_group() || !db::follows::group_has_local_member(&data.db, group.row.id).await?
        {
            tracing::debug!(actor = %self.actor, "ignored Announce from a group nobody here joined");
            return Ok(());
        }
        if let Some(host) = refused_origin(data, &self.object).await? {
            // A blocked instance's content, boosted by an allowed group:
            // dropped (the group did nothing wrong, so no error), never fetched.
            tracing::info!(instance = %host, "announced content from a refused instance dropped");
            db::activities::record(
                &data.db,
                self.id.as_str(),
                "Announce",
                self.actor.inner().as_str(),
            )
            .await?;
            return Ok(());
        }
        let inner_type = self
            .object
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("");
        match inner_type {
            "Create" | "Update" => {
                let object = self
                    .object
                    .get("object")
                    .ok_or_else(|| AppError::bad_request("activity without object"))?;
                let inner_actor = self.object.get("actor").and_then(id_of);
                receive_post(
                    data,
                    &group,
                    object,
                    inner_actor.as_ref(),
                    inner_type == "Update",
                )
                .await?;
            }
            "Delete" => {
                let object = self
                    .object
                    .get("object")
                    .and_then(id_of)
                    .ok_or_else(|| AppError::bad_request("Delete without object"))?;
                let inner_actor = self.object.get("actor").and_then(id_of);
                if inner_actor.as_ref() == Some(&object) {
                    receive_account_delete(data, &self.object, &object).await?;
                } else {
                    receive_delete(data, &group, &object, inner_actor.as_ref()).await?;
                }
            }
            // A bare post or its id (Lemmy's Announce(Page)).
            "" | "Page" | "Note" | "Article" => {
                receive_post(data, &group, &self.object, None, false).await?;
            }
            other => {
                tracing::debug!(kind = other, "ignored Announce of an unsupported activity");
            }
        }
        db::activities::record(
            &data.db,
            self.id.as_str(),
            "Announce",
            self.actor.inner().as_str(),
        )
        .await?;
        Ok(())
    }
}

/// The first origin in an announced activity or object (its id, actor,
/// author, and the object inside an activity) that the federation policy
/// refuses.
async fn refused_origin(
    data: &Data<AppState>,
    object: &serde_json::Value,
) -> Result<Option<String>, AppError> {
    let mut urls: Vec<Url> = vec![];
    let mut add = |v: &serde_json::Value| {
        for key in ["id", "actor", "attributedTo"] {
            if let Some(u) = v.get(key).and_then(id_of) {
                urls.push(u);
            }
        }
    };
    match object {
        serde_json::Value::String(s) => urls.extend(Url::parse(s).ok()),
        v => {
            add(v);
            if let Some(inner) = v.get("object") {
                match inner {
                    serde_json::Value::String(s) => urls.extend(Url::parse(s).ok()),
                    o => add(o),
                }
            }
        }
    }
    for u in urls {
        let host = crate::federation::objects::authority(&u);
        if crate::federation::policy::refusal(data, &host, None)
            .await?
            .is_some()
        {
            return Ok(Some(host));
        }
    }
    Ok(None)
}

/// Store (or refresh) a post re-shared by `group`: trusted as embedded only
/// when it comes from the group's own origin, otherwise fetched from its origin.
async fn receive_post(
    data: &Data<AppState>,
    group: &DbActor,
    object: &serde_json::Value,
    inner_actor: Option<&Url>,
    refresh: bool,
) -> Result<(), AppError> {
    let id = id_of(object).ok_or_else(|| AppError::bad_request("object without id"))?;
    // A copy from another origin is fetched from there, never trusted —
    // except a members-only group's post to its members: nobody but a
    // member may fetch it, so the group (whose signature on the Announce
    // was verified) vouches for it, as it does for everything in it.
    let vouched = object.is_object()
        && crate::service::access::visibility(&group.row)
            == crate::domain::group::Visibility::Members
        && serde_json::from_value::<PostJson>(object.clone())
            .is_ok_and(|j| !j.is_public() && addressed_to_members(&j, group));
    let embedded = object.is_object() && (same_origin(&id, group.id_url()) || vouched);
    let post = if embedded {
        let json: PostJson = serde_json::from_value(object.clone())
            .map_err(|e| AppError::bad_request(format!("post not understood: {e}")))?;
        DbPost::verify(&json, &id, data).await?;
        if let Some(a) = inner_actor {
            super::create::verify_authorship(a, &json)?;
        }
        // A members-only group (it says so in its actor document) sends
        // its members posts addressed to its followers; we keep them from
        // anyone here who is not a member. Anything else must be public.
        let members_only = crate::service::access::visibility(&group.row)
            == crate::domain::group::Visibility::Members
            && addressed_to_members(&json, group);
        if !(json.is_public() || members_only) {
            return Err(AppError::forbidden("announced post is not public"));
        }
        let ctx = resolve_context(&json, data).await?;
        if ctx.group.row.id != group.row.id {
            return Err(AppError::bad_request(
                "group announced a post of another group",
            ));
        }
        let new = new_post_from_json(&json, &ctx)?;
        upsert(data, new).await?
    } else {
        let oid: ObjectId<DbPost> = id.into();
        let post = if refresh {
            oid.dereference_forced(data).await?
        } else {
            oid.dereference(data).await?
        };
        if let Some(a) = inner_actor {
            let author = db::actors::by_id(&data.db, post.row.author_id).await?;
            if author.map(|x| x.ap_id) != Some(a.to_string()) {
                return Err(AppError::bad_request(
                    "announced activity by someone other than the author",
                ));
            }
        }
        post.row
    };
    if post.group_id != group.row.id {
        return Err(AppError::bad_request(
            "group announced a post of another group",
        ));
    }
    Ok(())
}

/// Apply a re-shared Delete: only for a post of this group, by its author, and
/// confirmed by the origin (410 Gone) unless the post lives on the group's host.
fn addressed_to_members(json: &PostJson, group: &DbActor) -> bool {
    let Some(f) = group.row.followers.as_deref() else {
        return false;
    };
    json.to.iter().chain(json.cc.iter()).any(|a| a == f)
}

/// A group passing on a member's account deletion: believed once the
/// account's own server confirms it is gone (410 or a Tombstone).
async fn receive_account_delete(
    data: &Data<AppState>,
    inner: &serde_json::Value,
    actor: &Url,
) -> Result<(), AppError> {
    let Some(id) = inner.get("id").and_then(id_of) else {
        return Err(AppError::bad_request("Delete without id"));
    };
    if db::actors::by_ap_id(&data.db, actor.as_str())
        .await?
        .is_none()
    {
        return Ok(());
    }
    let gone = match fetch_object_http::<AppState, serde_json::Value>(actor, data).await {
        Err(activitypub_federation::error::Error::ObjectDeleted(_)) => true,
        Ok(r) => r.object.get("type").and_then(|t| t.as_str()) == Some("Tombstone"),
        Err(e) => {
            tracing::info!(error = %e, "origin did not confirm an account deletion");
            false
        }
    };
    if gone {
        super::delete::remove_actor(data, &id, actor, inner).await?;
    }
    Ok(())
}

async fn receive_delete(
    data: &Data<AppState>,
    group: &DbActor,
    object: &Url,
    inner_actor: Option<&Url>,
) -> Result<(), AppError> {
    let Some(post) = db::posts::by_ap_id(&data.db, object.as_str()).await? else {
        return Ok(());
    };
    if post.group_id != group.row.id || post.deleted_at.is_some() || post.local {
        return Ok(());
    }
    // The group (or one of its moderators, on its server) removing a post
    // from the group: the group decides what is in it.
    let by_group = inner_actor.is_some_and(|a| same_origin(a, group.id_url()));
    let confirmed = if by_group {
        true
    } else if same_origin(object, group.id_url()) {
        let author = db::actors::by_id(&data.db, post.author_id).await?;
        match (inner_actor, author) {
            (Some(a), Some(author)) => {
                let actor = db::actors::by_ap_id(&data.db, a.as_str()).await?;
                actor.is_some_and(|x| rules::may_change_post(x.id, author.id))
            }
            _ => false,
        }
    } else {
        let res = fetch_object_http::<AppState, serde_json::Value>(object, data).await;
        match res {
            Err(activitypub_federation::error::Error::ObjectDeleted(_)) => true,
            Ok(r) => r.object.get("type").and_then(|t| t.as_str()) == Some("Tombstone"),
            Err(e) => {
                tracing::info!(error = %e, "origin did not confirm a Delete");
                false
            }
        }
    };
    if confirmed {
        db::posts::mark_deleted(&data.db, post.id).await?;
    }
    Ok(())
}
