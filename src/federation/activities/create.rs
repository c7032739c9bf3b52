//! Create(Page|Note): a member posts a thread or a reply to one of our groups.
//! Only members may post; the post and the group's Announce to every member
//! server are written in one transaction.

use activitypub_federation::{
    config::Data, fetch::object_id::ObjectId, kinds::activity::CreateType, traits::Activity,
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    app::AppState,
    db,
    domain::{group::Visibility, rules},
    error::AppError,
    federation::{
        objects::{
            actor::DbActor,
            one_or_many,
            post::{PostContext, PostJson, new_post_from_json, resolve_context},
        },
        outbox,
    },
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Create {
    #[serde(rename = "type")]
    pub kind: CreateType,
    pub id: Url,
    pub actor: ObjectId<DbActor>,
    pub object: PostJson,
    #[serde(default, deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub cc: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<ObjectId<DbActor>>,
}

impl Create {
    pub fn new(id: Url, author: &DbActor, object: PostJson) -> Self {
        Create {
            kind: CreateType::Create,
            id,
            actor: author.object_id(),
            to: object.to.clone(),
            cc: object.cc.clone(),
            audience: object.audience.clone(),
            object,
        }
    }
}

/// A post joins a group thread only when it is meant for it: the group (or
/// its followers) is among the recipients, or — for a reply, as Mastodon
/// addresses one — the author of the post or thread it answers.
async fn addressed_to_group(
    create: &Create,
    ctx: &PostContext,
    data: &Data<AppState>,
) -> Result<bool, AppError> {
    let recipients: Vec<&str> = create
        .to
        .iter()
        .chain(create.cc.iter())
        .chain(create.object.to.iter())
        .chain(create.object.cc.iter())
        .map(String::as_str)
        .collect();
    let group = &ctx.group.row;
    if recipients.contains(&group.ap_id.as_str())
        || group
            .followers
            .as_deref()
            .is_some_and(|f| recipients.contains(&f))
        || create.object.audience.as_ref().map(|a| a.inner().as_str()) == Some(group.ap_id.as_str())
    {
        return Ok(true);
    }
    let Some(parent) = &ctx.parent else {
        return Ok(false);
    };
    let mut authors = vec![parent.author_id];
    if let Some(t) = parent.thread_id
        && let Some(thread) = db::posts::by_id(&data.db, t).await?
    {
        authors.push(thread.author_id);
    }
    for id in authors {
        if let Some(a) = db::actors::by_id(&data.db, id).await?
            && recipients.contains(&a.ap_id.as_str())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Only a member who is not banned posts in a group.
fn may_post(standing: &db::follows::Standing) -> Result<(), AppError> {
    if !rules::may_post_in_group(standing.membership) {
        return Err(AppError::forbidden("only members can post in this group"));
    }
    if standing.banned {
        return Err(crate::service::moderation::banned());
    }
    Ok(())
}

/// Shared by Create and Update: the post speaks for its sender only.
pub fn verify_authorship(actor: &Url, object: &PostJson) -> Result<(), AppError> {
    if object.attributed_to.inner() != actor {
        return Err(AppError::bad_request("object attributed to another actor"));
    }
    crate::federation::objects::require_same_origin(&object.id, actor)?;
    Ok(())
}

#[async_trait::async_trait]
impl Activity for Create {
    type DataType = AppState;
    type Error = AppError;

    fn id(&self) -> &Url {
        &self.id
    }
    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, _data: &Data<AppState>) -> Result<(), AppError> {
        verify_authorship(self.actor.inner(), &self.object)
    }

    async fn receive(mut self, data: &Data<AppState>) -> Result<(), AppError> {
        let ctx = resolve_context(&self.object, data).await?;
        if !ctx.group.row.local {
            // Not for a group we host: nothing to do with it here.
            return Ok(());
        }
        if !addressed_to_group(&self, &ctx, data).await? {
            tracing::debug!(
                "a reply in a group thread not addressed to the group or the thread: ignored"
            );
            return Ok(());
        }
        let visibility = crate::service::access::visibility(&ctx.group.row);
        if !visibility.federates() {
            return Err(AppError::forbidden("this group does not federate"));
        }
        if visibility == Visibility::Public && !self.object.is_public() {
            return Err(AppError::forbidden(
                "this group is public: only public posts are shared in it",
            ));
        }
        let thread = match ctx.parent.as_ref() {
            Some(p) => db::posts::by_id(&data.db, p.thread_id.unwrap_or(p.id)).await?,
            None => None,
        };
        let held = crate::service::moderation::screen_unbanned_post(
            &data.db,
            &ctx.group.row,
            ctx.author.row.id,
            thread.as_ref(),
        )
        .await?;
        let new = new_post_from_json(&self.object, &ctx)?;
        super::normalize_addressing(&mut self.to, &mut self.cc, &mut self.object);
        // Committed with the posts received alongside it (see
        // `db::group_commit`); answered once on disk. The write may run
        // again (when another in its batch failed): it takes copies.
        let shared =
            std::sync::Arc::new((data.urls.clone(), data.group_docs.clone(), ctx.group, self));
        let announced = data
            .writes
            .write(move |txn| {
                let (shared, new) = (shared.clone(), new.clone());
                Box::pin(async move {
                    let (urls, docs, group, create) = &*shared;
                    // The author's standing, read with the write (on the
                    // writer's connection: no statement of its own elsewhere).
                    let standing = db::follows::standing(txn, new.author_id, group.row.id).await?;
                    if let Err(refused) = may_post(&standing) {
                        return Ok(Err(refused));
                    }
                    let (id, actor) = (create.id.as_str(), create.actor.inner().as_str());
                    if !db::activities::record_new_post(txn, id, "Create", actor, &new.ap_id)
                        .await?
                    {
                        // A repeat, or the post is here already, or its
                        // author deleted it before it arrived.
                        return Ok(Ok(false));
                    }
                    let row = db::posts::insert(txn, new).await?;
                    if held {
                        db::moderation::set_held(txn, row.id, Some(chrono::Utc::now())).await?;
                        tracing::debug!("post received and held for review");
                        return Ok(Ok(false));
                    }
                    outbox::announce_to_kept_members(txn, urls, docs, group, create).await?;
                    Ok::<_, AppError>(Ok(true))
                })
            })
            .await??;
        if !announced {
            return Ok(());
        }
        data.wake_delivery();
        tracing::debug!("post received and announced");
        Ok(())
    }
}
