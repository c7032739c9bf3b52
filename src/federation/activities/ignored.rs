//! Activities we read and set aside without error (202, nothing stored):
//! likes and reactions (and their Undo), Add/Remove, Move, Block, and Create/Update/Announce of objects that are not posts (a
//! PeerTube `Video`, an `Event`). An `Update` of the sender's own actor
//! refreshes our copy of it from its origin.
//! Anything else that fails to parse as a handled activity stays a 400.

use activitypub_federation::{config::Data, fetch::object_id::ObjectId, traits::Activity};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use crate::{
    app::AppState,
    error::AppError,
    federation::objects::{actor::DbActor, id_of},
};

/// Handled elsewhere: a document of these types that failed to parse there is
/// malformed, not ignorable.
const HANDLED: &[&str] = &[
    "Follow", "Accept", "Reject", "Undo", "Create", "Update", "Delete", "Announce", "Flag",
];
/// Post types: a Create/Update of one of these must parse as a post.
const POSTS: &[&str] = &["Note", "Page", "Article", "Question"];
const ACTORS: &[&str] = &["Person", "Service", "Group", "Application", "Organization"];

#[derive(Debug, Clone, Serialize)]
pub struct Ignored {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Url,
    pub actor: ObjectId<DbActor>,
    #[serde(skip)]
    object_type: Option<String>,
    #[serde(skip)]
    object_id: Option<Url>,
    #[serde(skip)]
    target_id: Option<Url>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    id: Url,
    actor: serde_json::Value,
    #[serde(default)]
    object: serde_json::Value,
    #[serde(default)]
    target: serde_json::Value,
}

impl<'de> Deserialize<'de> for Ignored {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = Raw::deserialize(d)?;
        let actor = id_of(&raw.actor).ok_or_else(|| D::Error::custom("activity without actor"))?;
        let object_type = raw
            .object
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_string);
        let ignorable = if !HANDLED.contains(&raw.kind.as_str()) {
            true
        } else {
            match raw.kind.as_str() {
                "Create" | "Update" => object_type.as_deref().is_some_and(|t| !POSTS.contains(&t)),
                // Undo(Like), Undo(Announce), Undo(EmojiReact)…: only an
                // Undo(Follow) changes anything here.
                "Undo" => object_type.as_deref().is_some_and(|t| t != "Follow"),
                _ => false,
            }
        };
        if !ignorable {
            return Err(D::Error::custom("activity not understood"));
        }
        Ok(Ignored {
            kind: raw.kind,
            id: raw.id,
            actor: actor.into(),
            object_type,
            object_id: id_of(&raw.object),
            target_id: id_of(&raw.target),
        })
    }
}

#[async_trait::async_trait]
impl Activity for Ignored {
    type DataType = AppState;
    type Error = AppError;

    fn id(&self) -> &Url {
        &self.id
    }
    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, data: &Data<AppState>) -> Result<(), AppError> {
        crate::federation::objects::require_same_origin(&self.id, self.actor.inner())?;
        // Moderation of something of ours (Lemmy's Add/Remove of a
        // moderator or post, Block from a community, Lock of a thread) by a
        // remote actor: our groups are moderated by their local staff only.
        let ours = |u: &Option<Url>| {
            u.as_ref()
                .is_some_and(|u| crate::federation::objects::same_origin(u, data.urls.base()))
        };
        let moderation = match self.kind.as_str() {
            "Add" | "Remove" | "Block" => ours(&self.target_id),
            "Lock" => ours(&self.object_id),
            _ => false,
        };
        if moderation {
            return Err(AppError::forbidden(
                "only a group's own moderators, on this instance, may moderate it",
            ));
        }
        Ok(())
    }

    async fn receive(self, data: &Data<AppState>) -> Result<(), AppError> {
        let own_actor_update = self.kind == "Update"
            && self
                .object_type
                .as_deref()
                .is_some_and(|t| ACTORS.contains(&t))
            && self.object_id.as_ref() == Some(self.actor.inner());
        if own_actor_update {
            // Never trust the embedded copy: read it again from its origin.
            self.actor.dereference_forced(data).await?;
            tracing::debug!("remote actor refreshed after its Update");
        } else {
            tracing::debug!(kind = %self.kind, object = ?self.object_type, "activity set aside");
        }
        Ok(())
    }
}
