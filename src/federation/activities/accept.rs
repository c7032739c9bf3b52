//! Accept(Follow): a remote group took one of our members in. Only the group
//! that was followed can accept, and only a Follow we sent.

use activitypub_federation::{
    config::Data, fetch::object_id::ObjectId, kinds::activity::AcceptType, traits::Activity,
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    app::AppState,
    db,
    domain::FollowState,
    error::AppError,
    federation::objects::{actor::DbActor, id_of, one_or_many},
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accept {
    #[serde(rename = "type")]
    pub kind: AcceptType,
    pub id: Url,
    pub actor: ObjectId<DbActor>,
    /// The Follow, embedded (Lemmy, Kindred) or by id (some servers).
    pub object: serde_json::Value,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<String>,
}

/// Find our pending follow that this Accept/Reject answers: by the Follow's id,
/// and it must be a follow of the answering group.
pub async fn answered_follow(
    data: &Data<AppState>,
    group_ap_id: &Url,
    object: &serde_json::Value,
) -> Result<Option<crate::db::entities::follow::Model>, AppError> {
    let Some(group) = db::actors::by_ap_id(&data.db, group_ap_id.as_str()).await? else {
        return Ok(None);
    };
    let follow_id = id_of(object);
    // The embedded Follow names our member; without it, match by the id.
    let follower_ap_id = object.get("actor").and_then(id_of_value);
    if let Some(fid) = follower_ap_id {
        let Some(follower) = db::actors::by_ap_id(&data.db, &fid).await? else {
            return Ok(None);
        };
        let f = db::follows::get(&data.db, follower.id, group.id).await?;
        return Ok(f.filter(|f| {
            follow_id.is_none() || f.follow_ap_id.as_deref() == follow_id.as_ref().map(Url::as_str)
        }));
    }
    let Some(fid) = follow_id else {
        return Ok(None);
    };
    let found = db::follows::by_follow_ap_id(&data.db, fid.as_str()).await?;
    Ok(found.filter(|f| f.group_id == group.id))
}

fn id_of_value(v: &serde_json::Value) -> Option<String> {
    id_of(v).map(String::from)
}

#[async_trait::async_trait]
impl Activity for Accept {
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
            return Err(AppError::bad_request("Accept without a Follow"));
        }
        Ok(())
    }

    async fn receive(self, data: &Data<AppState>) -> Result<(), AppError> {
        if super::link::answered(data, &self.id, "Accept", self.actor.inner(), &self.object).await?
        {
            return Ok(());
        }
        let Some(follow) = answered_follow(data, self.actor.inner(), &self.object).await? else {
            tracing::info!(actor = %self.actor, "ignored Accept for a Follow we did not send");
            return Ok(());
        };
        let txn = db::write_txn(&data.db).await?;
        if !db::activities::record(
            &txn,
            self.id.as_str(),
            "Accept",
            self.actor.inner().as_str(),
        )
        .await?
        {
            return Ok(());
        }
        db::follows::set_state(&txn, follow.id, FollowState::Accepted).await?;
        txn.commit().await?;
        Ok(())
    }
}
