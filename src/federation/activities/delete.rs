//! Delete: an author removes their post from one of our groups. A Delete of a
//! post we don't have leaves a tombstone, so the Create it overtook stores
//! nothing. Anything else (account deletions, other people's posts) changes
//! nothing.

use activitypub_federation::{
    config::Data, fetch::object_id::ObjectId, kinds::activity::DeleteType, traits::Activity,
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    app::AppState,
    db,
    domain::rules,
    error::AppError,
    federation::{
        objects::{actor::DbActor, id_of, one_or_many},
        outbox,
    },
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delete {
    #[serde(rename = "type")]
    pub kind: DeleteType,
    pub id: Url,
    pub actor: ObjectId<DbActor>,
    /// The deleted object's id, or a Tombstone carrying it (Mastodon).
    pub object: serde_json::Value,
    #[serde(default, deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub cc: Vec<String>,
}

impl Delete {
    pub fn new(id: Url, author: &DbActor, object: &Url, to: Vec<String>, cc: Vec<String>) -> Self {
        Delete {
            kind: DeleteType::Delete,
            id,
            actor: author.object_id(),
            object: serde_json::Value::String(object.to_string()),
            to,
            cc,
        }
    }

    pub fn object_id(&self) -> Result<Url, AppError> {
        id_of(&self.object).ok_or_else(|| AppError::bad_request("Delete without an object id"))
    }
}

#[async_trait::async_trait]
impl Activity for Delete {
    type DataType = AppState;
    type Error = AppError;

    fn id(&self) -> &Url {
        &self.id
    }
    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    /// The object must be the actor's own (same origin), or a post in the
    /// group that is the actor (a remote group's moderation).
    async fn verify(&self, data: &Data<AppState>) -> Result<(), AppError> {
        let object = self.object_id()?;
        if crate::federation::objects::require_same_origin(&object, self.actor.inner()).is_ok() {
            return Ok(());
        }
        if let Some(post) = db::posts::by_ap_id(&data.db, object.as_str()).await?
            && let Some(g) = db::actors::by_id(&data.db, post.group_id).await?
            && !g.local
            && g.ap_id == self.actor.inner().as_str()
        {
            return Ok(());
        }
        crate::federation::objects::require_same_origin(&object, self.actor.inner())
    }

    async fn receive(self, data: &Data<AppState>) -> Result<(), AppError> {
        let object_id = self.object_id()?;
        if object_id == *self.actor.inner() {
            let raw = serde_json::to_value(&self)?;
            return remove_actor(data, &self.id, self.actor.inner(), &raw).await;
        }
        let Some(post) = db::posts::by_ap_id(&data.db, object_id.as_str()).await? else {
            // Not here (yet): the Delete may have overtaken its Create.
            // Remember the id (its origin is the actor's, checked in verify),
            // so a Create or fetch arriving later stores nothing.
            let actor = self.actor.inner().as_str();
            let txn = db::write_txn(&data.db).await?;
            if db::activities::record(&txn, self.id.as_str(), "Delete", actor).await? {
                db::activities::record(&txn, object_id.as_str(), db::activities::TOMBSTONE, actor)
                    .await?;
            }
            txn.commit().await?;
            return Ok(());
        };
        let Some(actor) = db::actors::by_ap_id(&data.db, self.actor.inner().as_str()).await? else {
            return Ok(());
        };
        // The author, or the (remote) group the post is in, removing it.
        let by_its_group = actor.id == post.group_id && !actor.local;
        if !(rules::may_change_post(actor.id, post.author_id) || by_its_group) {
            tracing::info!(actor = %self.actor, "ignored Delete of someone else's post");
            return Ok(());
        }
        if post.deleted_at.is_some() {
            return Ok(());
        }
        let group = db::actors::by_id(&data.db, post.group_id).await?;
        let txn = db::write_txn(&data.db).await?;
        if !db::activities::record(
            &txn,
            self.id.as_str(),
            "Delete",
            self.actor.inner().as_str(),
        )
        .await?
        {
            return Ok(());
        }
        db::posts::mark_deleted(&txn, post.id).await?;
        if let Some(g) = group.filter(|g| g.local) {
            let g = DbActor::new(g)?;
            outbox::announce_to_kept_members(&txn, &data.urls, &data.group_docs, &g, &self).await?;
        }
        txn.commit().await?;
        data.wake_delivery();
        Ok(())
    }
}

/// An account deleted on its own server (Delete whose object is the actor
/// itself): its memberships end and its posts disappear here, and each of
/// our groups it belonged to passes the Delete on to its members' servers
/// (which got its posts through the group).
pub async fn remove_actor(
    data: &Data<AppState>,
    id: &Url,
    actor_id: &Url,
    raw: &serde_json::Value,
) -> Result<(), AppError> {
    let Some(actor) = db::actors::by_ap_id(&data.db, actor_id.as_str()).await? else {
        return Ok(());
    };
    if actor.local {
        return Ok(());
    }
    let txn = db::write_txn(&data.db).await?;
    if !db::activities::record(&txn, id.as_str(), "Delete", actor.ap_id.as_str()).await? {
        return Ok(());
    }
    for f in db::follows::groups_of(&txn, actor.id).await? {
        if let Some(g) = db::actors::by_id(&txn, f.group_id).await?
            && g.local
            && f.state == crate::domain::FollowState::Accepted.as_str()
        {
            outbox::announce_to_members(&txn, &data.urls, &DbActor::new(g)?, raw).await?;
        }
    }
    db::posts::delete_for_authors(&txn, vec![actor.id]).await?;
    db::follows::remove_followers(&txn, &[actor.id]).await?;
    txn.commit().await?;
    crate::federation::memo::forget(data, &actor.ap_id);
    data.wake_delivery();
    tracing::info!("a remote account was deleted: its posts and memberships removed");
    Ok(())
}
