//! Follow: someone joins one of our groups. Public groups accept at once and
//! answer with Accept; the membership and the Accept are written together.

use activitypub_federation::{
    config::Data,
    fetch::object_id::ObjectId,
    kinds::activity::{AcceptType, FollowType},
    traits::Activity,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::accept::Accept;
use crate::{
    app::AppState,
    db,
    domain::FollowState,
    error::AppError,
    federation::{
        objects::{actor::DbActor, one_or_many},
        outbox,
    },
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Follow {
    #[serde(rename = "type")]
    pub kind: FollowType,
    pub id: Url,
    pub actor: ObjectId<DbActor>,
    pub object: ObjectId<DbActor>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<String>,
}

impl Follow {
    pub fn new(id: Url, follower: &DbActor, group: &DbActor) -> Self {
        Follow {
            kind: FollowType::Follow,
            id,
            actor: follower.object_id(),
            object: group.object_id(),
            to: vec![group.row.ap_id.clone()],
        }
    }
}

#[async_trait::async_trait]
impl Activity for Follow {
    type DataType = AppState;
    type Error = AppError;

    fn id(&self) -> &Url {
        &self.id
    }
    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, data: &Data<AppState>) -> Result<(), AppError> {
        if !self.object.is_local(data) {
            return Err(AppError::bad_request(
                "Follow of an actor not on this instance",
            ));
        }
        let group = self
            .object
            .dereference_local(data)
            .await
            .map_err(|_| AppError::not_found("group"))?;
        if !group.is_group() {
            return Err(AppError::not_found("group"));
        }
        Ok(())
    }

    async fn receive(self, data: &Data<AppState>) -> Result<(), AppError> {
        let follower = self.actor.dereference(data).await?;
        let group = self.object.dereference_local(data).await?;
        if follower.is_group() {
            return Err(AppError::bad_request("groups cannot join groups"));
        }
        let txn = db::write_txn(&data.db).await?;
        if !db::activities::record(
            &txn,
            self.id.as_str(),
            "Follow",
            self.actor.inner().as_str(),
        )
        .await?
        {
            return Ok(());
        }
        db::follows::upsert(
            &txn,
            follower.row.id,
            group.row.id,
            FollowState::Accepted,
            Some(self.id.to_string()),
        )
        .await?;
        let accept_id = data.urls.new_activity("accept");
        let accept = Accept {
            kind: AcceptType::Accept,
            id: accept_id.clone(),
            actor: group.object_id(),
            object: serde_json::to_value(&self)?,
            to: vec![follower.row.ap_id.clone()],
        };
        outbox::queue(
            &txn,
            &data.urls,
            &accept_id,
            &accept,
            &group,
            vec![follower.row.inbox.clone()],
        )
        .await?;
        txn.commit().await?;
        data.wake_delivery();
        // Who joined which group is health data: not in the logs.
        tracing::debug!("remote member joined");
        Ok(())
    }
}
