//! Reject(Follow): a remote group refused one of our members.

use activitypub_federation::{
    config::Data, fetch::object_id::ObjectId, kinds::activity::RejectType, traits::Activity,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::accept::answered_follow;
use crate::{
    app::AppState,
    db,
    error::AppError,
    federation::objects::{actor::DbActor, id_of},
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reject {
    #[serde(rename = "type")]
    pub kind: RejectType,
    pub id: Url,
    pub actor: ObjectId<DbActor>,
    pub object: serde_json::Value,
    #[serde(
        default,
        deserialize_with = "crate::federation::objects::one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<String>,
}

#[async_trait::async_trait]
impl Activity for Reject {
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
            return Err(AppError::bad_request("Reject without a Follow"));
        }
        Ok(())
    }

    async fn receive(self, data: &Data<AppState>) -> Result<(), AppError> {
        if super::link::answered(data, &self.id, "Reject", self.actor.inner(), &self.object).await?
        {
            return Ok(());
        }
        let Some(follow) = answered_follow(data, self.actor.inner(), &self.object).await? else {
            return Ok(());
        };
        let txn = db::write_txn(&data.db).await?;
        if !db::activities::record(
            &txn,
            self.id.as_str(),
            "Reject",
            self.actor.inner().as_str(),
        )
        .await?
        {
            return Ok(());
        }
        db::follows::delete(&txn, follow.follower_id, follow.group_id).await?;
        txn.commit().await?;
        Ok(())
    }
}
