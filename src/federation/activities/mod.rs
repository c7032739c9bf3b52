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
/// aside. Anything else is refused with 400. Read by its `type` (see
/// [`InboxActivity::from_value`]), not by trying each kind in turn.
#[derive(Debug, Clone, Serialize)]
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

impl<'de> Deserialize<'de> for InboxActivity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        InboxActivity::from_value(&value).map_err(serde::de::Error::custom)
    }
}

impl InboxActivity {
    /// The activity read as the kind its `type` names; what that kind does
    /// not take may still be one we read and set aside (`Ignored`: a Create
    /// of a Video, an Undo of a Like). Otherwise the error says what the
    /// named kind lacks ("Create: missing field `object`"), where trying
    /// each kind in turn could only say that none matched.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, String> {
        fn read<T: serde::de::DeserializeOwned>(
            value: &serde_json::Value,
            wrap: fn(T) -> InboxActivity,
        ) -> Result<InboxActivity, serde_json::Error> {
            T::deserialize(value).map(wrap)
        }
        let kind = value
            .get("type")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let handled = match kind {
            "Follow" => read(value, Self::Follow),
            "Accept" => read(value, Self::Accept),
            "Reject" => read(value, Self::Reject),
            "Undo" => read(value, Self::Undo),
            "Create" => read(value, Self::Create),
            "Update" => read(value, Self::Update),
            "Delete" => read(value, Self::Delete),
            "Announce" => read(value, Self::Announce),
            "Flag" => read(value, Self::Flag),
            "Add" | "Remove" => read(value, Self::Link),
            _ => return read(value, Self::Ignored).map_err(|e| e.to_string()),
        };
        handled.or_else(|e| read(value, Self::Ignored).map_err(|_| format!("{kind}: {e}")))
    }
}

impl InboxActivity {
    /// Its id on its actor's host (scheme, host and port), never on ours, and
    /// an http(s) URL — plain http only in dev mode. Checked before the actor
    /// is fetched, so a forged id costs no request.
    pub fn check_origin(&self, data: &Data<AppState>) -> Result<(), AppError> {
        let (id, actor) = (self.id(), self.actor());
        let http_ok = data.settings.dev_mode();
        if !(id.scheme() == "https" || (http_ok && id.scheme() == "http")) || id.host().is_none() {
            return Err(AppError::bad_request(
                "activity id must be an https URL with a host",
            ));
        }
        if !crate::federation::objects::same_origin(id, actor) {
            return Err(AppError::bad_request(
                "activity id on another host than its actor",
            ));
        }
        if crate::federation::objects::same_origin(id, data.urls.base()) {
            return Err(AppError::bad_request("activity id on our own domain"));
        }
        Ok(())
    }
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
    /// Every activity: its origin (see [`InboxActivity::check_origin`]); then
    /// the checks of its kind.
    async fn verify(&self, data: &Data<AppState>) -> Result<(), AppError> {
        self.check_origin(data)?;
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::InboxActivity;

    fn read(v: serde_json::Value) -> Result<&'static str, String> {
        InboxActivity::from_value(&v).map(|a| match a {
            InboxActivity::Create(_) => "Create",
            InboxActivity::Ignored(_) => "Ignored",
            InboxActivity::Link(_) => "Link",
            _ => "other",
        })
    }

    /// Read by its type: a malformed activity of a kind we handle is refused
    /// with what it lacks; one we set aside is still read.
    #[test]
    fn an_activity_is_read_as_the_kind_it_names() {
        let base = json!({
            "type": "Create",
            "id": "https://a.example/activities/1",
            "actor": "https://a.example/users/ann",
        });
        let err = read(base.clone()).err().unwrap_or_default();
        assert!(err.starts_with("Create: "), "{err}");
        assert!(err.contains("object"), "{err}");

        let mut note = base.clone();
        note["object"] = json!({
            "type": "Note",
            "id": "https://a.example/notes/1",
            "attributedTo": "https://a.example/users/ann",
            "content": "<p>hello</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        });
        assert_eq!(read(note), Ok("Create"));

        let mut video = base.clone();
        video["object"] = json!({"type": "Video", "id": "https://a.example/v/1"});
        assert_eq!(read(video), Ok("Ignored"));

        let mut like = base.clone();
        like["type"] = json!("Like");
        like["object"] = json!("https://b.example/posts/1");
        assert_eq!(read(like), Ok("Ignored"));

        let mut link = base;
        link["type"] = json!("Add");
        link["object"] = json!("https://a.example/users/ann");
        link["target"] = json!("https://b.example/groups/g/links");
        assert_eq!(read(link), Ok("Link"));

        assert!(read(json!({"type": "Follow", "id": "not a url"})).is_err());
    }
}
