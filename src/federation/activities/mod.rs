//! Incoming and outgoing activities, one file each (verify + receive), and the
//! inbox enum that dispatches them.

pub mod accept;
pub mod announce;
pub mod create;
pub mod delete;
pub mod flag;
pub mod follow;
pub mod ignored;
pub mod link;
pub mod reject;
pub mod undo;
pub mod update;

use activitypub_federation::{config::Data, traits::Activity};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{app::AppState, db, error::AppError};

/// Every activity our inboxes accept; `Ignored` takes what we read and set
/// aside. Anything else is refused with 400.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InboxActivity {
    Follow(follow::Follow),
    Accept(accept::Accept),
    Reject(reject::Reject),
    Undo(undo::Undo),
    Create(create::Create),
    Update(update::Update),
    Delete(delete::Delete),
    Announce(announce::Announce),
    Flag(flag::Flag),
    Link(link::Link),
    Ignored(ignored::Ignored),
}

macro_rules! each {
    ($self:ident, $a:ident => $e:expr) => {
        match $self {
            InboxActivity::Follow($a) => $e,
            InboxActivity::Accept($a) => $e,
            InboxActivity::Reject($a) => $e,
            InboxActivity::Undo($a) => $e,
            InboxActivity::Create($a) => $e,
            InboxActivity::Update($a) => $e,
            InboxActivity::Delete($a) => $e,
            InboxActivity::Announce($a) => $e,
            InboxActivity::Flag($a) => $e,
            InboxActivity::Link($a) => $e,
            InboxActivity::Ignored($a) => $e,
        }
    };
}

#[async_trait::async_trait]
impl Activity for InboxActivity {
    type DataType = AppState;
    type Error = AppError;

    fn id(&self) -> &Url {
        each!(self, a => a.id())
    }
    fn actor(&self) -> &Url {
        each!(self, a => a.actor())
    }
    /// Every activity: its id on its actor's host, never on ours; then the
    /// checks of its kind.
    async fn verify(&self, data: &Data<AppState>) -> Result<(), AppError> {
        let (id, actor) = (self.id(), self.actor());
        if !crate::federation::objects::same_origin(id, actor) {
            return Err(AppError::bad_request(
                "activity id on another host than its actor",
            ));
        }
        if crate::federation::objects::same_origin(id, data.urls.base()) {
            return Err(AppError::bad_request("activity id on our own domain"));
        }
        each!(self, a => a.verify(data).await)
    }
    async fn receive(self, data: &Data<AppState>) -> Result<(), AppError> {
        each!(self, a => a.receive(data).await)
    }
}

/// Has this activity been handled before? A cheap early exit; the record that
/// counts is written with the effects (`db::activities::record`).
pub async fn seen(data: &Data<AppState>, id: &Url) -> Result<bool, AppError> {
    Ok(db::activities::exists(&data.db, id.as_str()).await?)
}

/// Before a group passes a member's Create or Update on: the public audience
/// spelt in full, in the activity and its post.
pub fn normalize_addressing(
    to: &mut [String],
    cc: &mut [String],
    object: &mut crate::federation::objects::post::PostJson,
) {
    for list in [to, cc, &mut object.to, &mut object.cc] {
        crate::domain::rules::normalize_public(list);
    }
}
