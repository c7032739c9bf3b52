//! Follow: someone asks to join one of our groups. The group's join policy
//! decides (`domain::group::admission`): open groups and invited people are
//! accepted at once, approval groups queue the request for the moderators,
//! banned people and uninvited ones get a Reject. The membership and the
//! answer are written together.

use activitypub_federation::{
    config::Data, fetch::object_id::ObjectId, kinds::activity::FollowType, traits::Activity,
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    app::AppState,
    db,
    domain::{
        FollowState,
        group::{self, Admission, JoinPolicy, Visibility},
    },
    error::AppError,
    federation::{
        membership,
        objects::{actor::DbActor, one_or_many},
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
        let g = &group.row;
        let banned = db::moderation::is_banned(&data.db, g.id, follower.row.id).await?;
        let invite = db::moderation::live_invite(&data.db, g.id, follower.row.id, None).await?;
        let existing = db::follows::state(&data.db, follower.row.id, g.id).await?;
        let decision = if existing == Some(FollowState::Accepted) && !banned {
            // A repeated Follow (their Accept was lost): answer it again.
            Admission::Accept
        } else {
            group::admission(
                JoinPolicy::of(&g.join_policy),
                Visibility::of(&g.visibility),
                true,
                invite.is_some(),
                banned,
            )
        };
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
        let follow_id = Some(self.id.as_str());
        match decision {
            Admission::Accept => {
                if let Some(i) = &invite {
                    db::moderation::use_invite(&txn, i.id).await?;
                }
                db::follows::upsert(
                    &txn,
                    follower.row.id,
                    g.id,
                    FollowState::Accepted,
                    Some(self.id.to_string()),
                )
                .await?;
                membership::accept(&txn, &data.urls, &group, &follower, follow_id).await?;
            }
            Admission::Queue => {
                db::follows::upsert(
                    &txn,
                    follower.row.id,
                    g.id,
                    FollowState::Pending,
                    Some(self.id.to_string()),
                )
                .await?;
            }
            Admission::Refuse(why) => {
                tracing::info!(why, "a request to join was refused");
                db::follows::delete(&txn, follower.row.id, g.id).await?;
                membership::reject(&txn, &data.urls, &group, &follower, follow_id).await?;
            }
        }
        txn.commit().await?;
        data.wake_delivery();
        // Who joined which group is health data: not in the logs.
        tracing::debug!("remote request to join handled");
        Ok(())
    }
}
