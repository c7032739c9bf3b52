//! Update(Page|Note): an author edits their post in one of our groups. Only the
//! author, only newer versions; re-shared to every member server.

use activitypub_federation::{
    config::Data, fetch::object_id::ObjectId, kinds::activity::UpdateType, traits::Activity,
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use url::Url;

use super::create::verify_authorship;
use crate::{
    app::AppState,
    db,
    domain::rules,
    error::AppError,
    federation::{
        objects::{
            actor::DbActor,
            one_or_many,
            post::{PostJson, body_from_json},
        },
        outbox,
    },
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    #[serde(rename = "type")]
    pub kind: UpdateType,
    pub id: Url,
    pub actor: ObjectId<DbActor>,
    pub object: PostJson,
    #[serde(default, deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub cc: Vec<String>,
}

impl Update {
    pub fn new(id: Url, author: &DbActor, object: PostJson) -> Self {
        Update {
            kind: UpdateType::Update,
            id,
            actor: author.object_id(),
            to: object.to.clone(),
            cc: object.cc.clone(),
            object,
        }
    }
}

#[async_trait::async_trait]
impl Activity for Update {
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
        let Some(post) = db::posts::by_ap_id(&data.db, self.object.id.as_str()).await? else {
            return Err(AppError::not_found("post"));
        };
        let author = self.actor.dereference(data).await?;
        if !rules::may_change_post(author.row.id, post.author_id) || post.deleted_at.is_some() {
            return Err(AppError::forbidden("only the author can edit this post"));
        }
        let Some(group) = db::actors::by_id(&data.db, post.group_id).await? else {
            return Err(AppError::not_found("group"));
        };
        if !group.local {
            return Ok(());
        }
        let group = DbActor::new(group)?;
        let updated = self.object.updated.unwrap_or_else(Utc::now);
        let txn = db::write_txn(&data.db).await?;
        if !db::activities::record(
            &txn,
            self.id.as_str(),
            "Update",
            self.actor.inner().as_str(),
        )
        .await?
        {
            return Ok(());
        }
        if rules::is_newer(Some(updated), post.updated_at) {
            let mut body = body_from_json(&self.object);
            if post.thread_id.is_some() {
                body.title = None;
            }
            db::posts::update_content(&txn, post.id, body, updated).await?;
            super::normalize_addressing(&mut self.to, &mut self.cc, &mut self.object);
            outbox::announce_to_kept_members(&txn, &data.urls, &data.group_docs, &group, &self)
                .await?;
        }
        txn.commit().await?;
        data.wake_delivery();
        Ok(())
    }
}
