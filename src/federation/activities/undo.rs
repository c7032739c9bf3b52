//! Undo(Follow): a member leaves one of our groups. Matched by (actor, group),
//! not by the Follow's id: Lemmy sends a new id in its Undo.

use activitypub_federation::{
    config::Data, fetch::object_id::ObjectId, kinds::activity::UndoType, traits::Activity,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::follow::Follow;
use crate::{app::AppState, db, error::AppError, federation::objects::actor::DbActor};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Undo {
    #[serde(rename = "type")]
    pub kind: UndoType,
    pub id: Url,
    pub actor: ObjectId<DbActor>,
    pub object: Follow,
}

#[async_trait::async_trait]
impl Activity for Undo {
    type DataType = AppState;
    type Error = AppError;

    fn id(&self) -> &Url {
        &self.id
    }
    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, _data: &Data<AppState>) -> Result<(), AppError> {
        if self.object.actor.inner() != self.actor.inner() {
            return Err(AppError::forbidden("cannot undo someone else's Follow"));
        }
        Ok(())
    }

    async fn receive(self, data: &Data<AppState>) -> Result<(), AppError> {
        let (Some(follower), Some(group)) = (
            db::actors::by_ap_id(&data.db, self.actor.inner().as_str()).await?,
            db::actors::by_ap_id(&data.db, self.object.object.inner().as_str()).await?,
        ) else {
            return Ok(());
        };
        let txn = db::write_txn(&data.db).await?;
        if !db::activities::record(&txn, self.id.as_str(), "Undo", self.actor.inner().as_str())
            .await?
        {
            return Ok(());
        }
        // The undone Follow counts as seen: if it overtook its Follow, the
        // Follow arriving later is a repeat and changes nothing.
        db::activities::record(
            &txn,
            self.object.id.as_str(),
            "Follow",
            self.actor.inner().as_str(),
        )
        .await?;
        db::follows::delete(&txn, follower.id, group.id).await?;
        txn.commit().await?;
        tracing::debug!("remote member left");
        Ok(())
    }
}
