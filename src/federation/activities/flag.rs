//! Flag: another server reports a post or a person here (Mastodon sends one
//! when a user reports, from the instance actor, naming the account and the
//! posts). Each of our posts or people it names becomes a report in the same
//! queue as local ones, for the post's group's moderators (or the admins).
//! Objects that are not ours are ignored; a Flag naming nothing of ours is
//! accepted and dropped.

use activitypub_federation::{
    config::Data, fetch::object_id::ObjectId, kinds::activity::FlagType, traits::Activity,
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    app::AppState,
    db::{self, moderation::NewReport},
    error::AppError,
    federation::objects::{actor::DbActor, id_of, one_or_many, same_origin},
};

/// At most this many objects of one Flag are read.
const MAX_OBJECTS: usize = 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flag {
    #[serde(rename = "type")]
    pub kind: FlagType,
    pub id: Url,
    pub actor: ObjectId<DbActor>,
    #[serde(deserialize_with = "one_or_many")]
    pub object: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[async_trait::async_trait]
impl Activity for Flag {
    type DataType = AppState;
    type Error = AppError;

    fn id(&self) -> &Url {
        &self.id
    }
    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, _data: &Data<AppState>) -> Result<(), AppError> {
        if self.object.is_empty() {
            return Err(AppError::bad_request("Flag without object"));
        }
        Ok(())
    }

    async fn receive(self, data: &Data<AppState>) -> Result<(), AppError> {
        if super::seen(data, &self.id).await? {
            return Ok(());
        }
        let reporter = self.actor.dereference(data).await?;
        let comment = self
            .content
            .as_deref()
            .map(|c| crate::domain::content::sanitize_plain(c, 2000))
            .filter(|c| !c.trim().is_empty());
        let ours: Vec<Url> = self
            .object
            .iter()
            .take(MAX_OBJECTS)
            .filter_map(id_of)
            .filter(|u| same_origin(u, data.urls.base()))
            .collect();
        // The people named, and the posts (each report is about one post,
        // or about a person when no post of theirs is named).
        let mut people = vec![];
        let mut posts = vec![];
        for u in &ours {
            if let Some(p) = db::posts::by_ap_id(&data.db, u.as_str()).await? {
                posts.push(p);
            } else if let Some(a) = db::actors::by_ap_id(&data.db, u.as_str()).await?
                && a.local
            {
                people.push(a);
            }
        }
        let txn = db::write_txn(&data.db).await?;
        if !db::activities::record(&txn, self.id.as_str(), "Flag", self.actor.inner().as_str())
            .await?
        {
            return Ok(());
        }
        let mut n = 0;
        for p in &posts {
            let group = db::actors::by_id(&txn, p.group_id).await?;
            db::moderation::insert_report(
                &txn,
                NewReport {
                    group_id: group.filter(|g| g.local).map(|g| g.id),
                    reporter_id: reporter.row.id,
                    target_actor_id: Some(p.author_id),
                    post_id: Some(p.id),
                    comment: comment.clone(),
                    flag_ap_id: Some(self.id.to_string()),
                },
            )
            .await?;
            n += 1;
        }
        for a in people
            .iter()
            .filter(|a| !posts.iter().any(|p| p.author_id == a.id))
        {
            db::moderation::insert_report(
                &txn,
                NewReport {
                    group_id: None,
                    reporter_id: reporter.row.id,
                    target_actor_id: Some(a.id),
                    post_id: None,
                    comment: comment.clone(),
                    flag_ap_id: Some(self.id.to_string()),
                },
            )
            .await?;
            n += 1;
        }
        txn.commit().await?;
        tracing::info!(reports = n, "remote report received");
        Ok(())
    }
}
