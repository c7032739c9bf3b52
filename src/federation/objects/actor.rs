//! Actors on the wire (`Group`, `Person`/`Service`, `Application`) and in the
//! database. `ActorRow → ActorJson` to serve ours; `ActorJson → ActorRow` for
//! remote ones, after checking every endpoint lives on the actor's own host.

use activitypub_federation::{
    config::Data,
    fetch::object_id::ObjectId,
    protocol::{helpers::deserialize_skip_error, public_key::PublicKey},
    traits::{Actor, Object},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{authority, one_or_many, same_origin};
use crate::{
    app::AppState,
    db::{self, actors::RemoteActorData, entities::actor},
    domain::{ActorKind, content, topics::Topics},
    error::AppError,
};

/// A row of `actors` with its parsed id.
#[derive(Debug, Clone)]
pub struct DbActor {
    pub row: actor::Model,
    id: Url,
}

impl DbActor {
    pub fn new(row: actor::Model) -> Result<Self, AppError> {
        let id =
            Url::parse(&row.ap_id).map_err(|e| AppError::internal(format!("actor id: {e}")))?;
        Ok(DbActor { row, id })
    }

    pub fn kind(&self) -> Option<ActorKind> {
        ActorKind::parse(&self.row.kind)
    }

    pub fn is_group(&self) -> bool {
        self.kind() == Some(ActorKind::Group)
    }

    /// `name@host`, as shown to people.
    pub fn handle(&self) -> String {
        format!("{}@{}", self.row.username, self.row.domain)
    }

    pub fn id_url(&self) -> &Url {
        &self.id
    }

    pub fn object_id(&self) -> ObjectId<DbActor> {
        self.id.clone().into()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub shared_inbox: Option<Url>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorJson {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Url,
    pub preferred_username: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub summary: Option<String>,
    pub inbox: Url,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub outbox: Option<Url>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub followers: Option<Url>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub endpoints: Option<Endpoints>,
    pub public_key: PublicKey,
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub manually_approves_followers: bool,
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub discoverable: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub indexable: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub url: Option<Url>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub published: Option<DateTime<Utc>>,
    /// A group's owner and moderators (FEP-1b12; Lemmy reads them here).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub attributed_to: Option<Url>,
    /// Kindred extension: a group whose posts only its approved members
    /// see. Servers that know it keep their copies from non-members.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub members_only: Option<bool>,
    /// A group's tags, as `Hashtag`s (Mastodon and Lemmy read these).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tag: Vec<serde_json::Value>,
    /// Kindred extension: the conditions a group is about, free text.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<String>,
    /// Kindred extension: standard codes of those conditions, each a code
    /// system URI (as HL7 FHIR names them) and a code.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub condition_codes: Vec<CodeJson>,
    /// A group's languages, in Lemmy's shape (`identifier`: BCP 47).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub language: Vec<LanguageJson>,
    /// Kindred extension: a group's country or region (ISO 3166).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub region: Option<String>,
    /// Kindred extension: the collection of groups this one is linked with.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub links: Option<Url>,
    /// Kindred extension, on the instance actor: its directory of groups.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub directory: Option<Url>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeJson {
    pub system: String,
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LanguageJson {
    pub identifier: String,
    pub name: String,
}

impl ActorJson {
    /// What a remote group says it is about: valid entries only, bounded.
    fn topics(&self) -> Topics {
        let hashtags: Vec<String> = self
            .tag
            .iter()
            .take(50)
            .filter(|t| t.get("type").and_then(|k| k.as_str()) == Some("Hashtag"))
            .filter_map(|t| t.get("name").and_then(|n| n.as_str()))
            .map(str::to_string)
            .collect();
        let codes: Vec<(String, String)> = self
            .condition_codes
            .iter()
            .take(50)
            .map(|c| (c.system.clone(), c.code.clone()))
            .collect();
        let languages: Vec<String> = self
            .language
            .iter()
            .take(20)
            .map(|l| l.identifier.clone())
            .collect();
        let conditions: Vec<String> = self.conditions.iter().take(50).cloned().collect();
        Topics::lenient(
            &conditions,
            &hashtags,
            &codes,
            &languages,
            self.region.as_deref(),
        )
    }
}

/// The `@context` of actor documents: ActivityStreams, security (keys), and
/// the few extension terms we use.
pub fn actor_context() -> serde_json::Value {
    serde_json::json!([
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/v1",
        {
            "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
            "toot": "http://joinmastodon.org/ns#",
            "discoverable": "toot:discoverable",
            "indexable": "toot:indexable",
            "Hashtag": "as:Hashtag",
            "kindred": "https://kindred.example/ns#",
            "membersOnly": "kindred:membersOnly",
            "conditions": "kindred:conditions",
            "conditionCodes": "kindred:conditionCodes",
            "system": {"@id": "kindred:system", "@type": "@id"},
            "code": "kindred:code",
            "language": "kindred:language",
            "identifier": "kindred:identifier",
            "region": "kindred:region",
            "links": {"@id": "kindred:links", "@type": "@id"},
            "directory": {"@id": "kindred:directory", "@type": "@id"}
        }
    ])
}

#[async_trait::async_trait]
impl Object for DbActor {
    type DataType = AppState;
    type Kind = ActorJson;
    type Error = AppError;

    fn id(&self) -> &Url {
        &self.id
    }

    fn last_refreshed_at(&self) -> Option<DateTime<Utc>> {
        if self.row.local {
            None
        } else {
            self.row.last_refreshed_at
        }
    }

    async fn read_from_id(id: Url, data: &Data<AppState>) -> Result<Option<Self>, AppError> {
        crate::federation::memo::actor_by_ap_id(data, id.as_str())
            .await?
            .map(DbActor::new)
            .transpose()
    }

    async fn into_json(self, data: &Data<AppState>) -> Result<ActorJson, AppError> {
        let r = &self.row;
        let kind = self
            .kind()
            .ok_or_else(|| AppError::internal("bad actor kind"))?;
        let shared_inbox = data.urls.shared_inbox();
        let parse = |s: &Option<String>| s.as_deref().and_then(|s| Url::parse(s).ok());
        let is_group = kind == ActorKind::Group;
        let topics = if is_group {
            db::directory::topics_of(&data.db, r).await?
        } else {
            Topics::default()
        };
        Ok(ActorJson {
            kind: kind.as_type().to_string(),
            id: self.id.clone(),
            preferred_username: r.username.clone(),
            name: r.display_name.clone(),
            summary: r.summary.clone(),
            inbox: Url::parse(&r.inbox)?,
            outbox: parse(&r.outbox),
            followers: parse(&r.followers),
            endpoints: Some(Endpoints {
                shared_inbox: Some(shared_inbox),
            }),
            public_key: self.public_key(),
            manually_approves_followers: r.manually_approves_followers,
            discoverable: r.discoverable,
            indexable: (kind != ActorKind::Application).then_some(r.discoverable),
            url: Some(self.id.clone()),
            published: Some(r.created_at),
            attributed_to: (kind == ActorKind::Group)
                .then(|| Url::parse(&format!("{}/moderators", r.ap_id)))
                .transpose()?,
            members_only: (kind == ActorKind::Group
                && crate::service::access::visibility(r)
                    != crate::domain::group::Visibility::Public)
                .then_some(true),
            tag: topics
                .tags
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "type": "Hashtag",
                        "href": data.urls.tag(t),
                        "name": format!("#{t}"),
                    })
                })
                .collect(),
            conditions: topics.conditions.clone(),
            condition_codes: topics
                .codes
                .iter()
                .map(|c| CodeJson {
                    system: c.system.uri().to_string(),
                    code: c.code.clone(),
                })
                .collect(),
            language: topics
                .languages
                .iter()
                .map(|l| LanguageJson {
                    identifier: l.clone(),
                    name: l.clone(),
                })
                .collect(),
            region: topics.region.clone(),
            links: is_group
                .then(|| Url::parse(&format!("{}/links", r.ap_id)))
                .transpose()?,
            directory: (kind == ActorKind::Application)
                .then(|| crate::federation::directory::directory_url(data)),
        })
    }

    /// Every endpoint and the key must live on the actor's own origin
    /// (FEP-fe34), and the type must be one we know.
    async fn verify(
        json: &ActorJson,
        expected: &Url,
        _data: &Data<AppState>,
    ) -> Result<(), AppError> {
        crate::federation::objects::require_same_origin(&json.id, expected)?;
        if ActorKind::from_as_type(&json.kind).is_none() {
            return Err(AppError::bad_request(format!(
                "unsupported actor type {}",
                json.kind
            )));
        }
        if json.preferred_username.trim().is_empty() {
            return Err(AppError::bad_request("actor without preferredUsername"));
        }
        let key_id = Url::parse(&json.public_key.id)?;
        let mut urls = vec![&json.inbox, &key_id, &json.public_key.owner];
        urls.extend(json.outbox.iter());
        urls.extend(json.followers.iter());
        urls.extend(
            json.endpoints
                .iter()
                .filter_map(|e| e.shared_inbox.as_ref()),
        );
        if urls.iter().any(|u| !same_origin(u, &json.id)) {
            return Err(AppError::bad_request("actor endpoints on another host"));
        }
        if json.public_key.owner != json.id {
            return Err(AppError::bad_request("actor key owned by another actor"));
        }
        Ok(())
    }

    async fn from_json(json: ActorJson, data: &Data<AppState>) -> Result<Self, AppError> {
        let kind = ActorKind::from_as_type(&json.kind)
            .ok_or_else(|| AppError::bad_request("unsupported actor type"))?;
        let topics = if kind == ActorKind::Group {
            json.topics()
        } else {
            Topics::default()
        };
        let txn = db::write_txn(&data.db).await?;
        let row = db::actors::upsert_remote(
            &txn,
            RemoteActorData {
                ap_id: json.id.to_string(),
                kind,
                username: content::sanitize_plain(&json.preferred_username, 100).to_lowercase(),
                domain: authority(&json.id),
                display_name: json
                    .name
                    .as_deref()
                    .map(|n| content::sanitize_plain(n, 200)),
                summary: json.summary.as_deref().map(content::sanitize_html),
                inbox: json.inbox.to_string(),
                shared_inbox: json
                    .endpoints
                    .and_then(|e| e.shared_inbox)
                    .map(|u| u.to_string()),
                outbox: json.outbox.map(|u| u.to_string()),
                followers: json.followers.map(|u| u.to_string()),
                public_key: json.public_key.public_key_pem,
                manually_approves_followers: json.manually_approves_followers,
                discoverable: json.discoverable,
                members_only: json.members_only == Some(true),
                region: topics.region.clone(),
            },
        )
        .await?;
        if kind == ActorKind::Group {
            db::directory::set_topics(&txn, row.id, &topics).await?;
        }
        txn.commit().await?;
        crate::federation::memo::forget(data, &row.ap_id);
        DbActor::new(row)
    }
}

impl Actor for DbActor {
    fn public_key_pem(&self) -> &str {
        &self.row.public_key
    }

    fn private_key_pem(&self) -> Option<String> {
        self.row.private_key.clone()
    }

    fn inbox(&self) -> Url {
        Url::parse(&self.row.inbox).unwrap_or_else(|_| self.id.clone())
    }

    fn shared_inbox(&self) -> Option<Url> {
        self.row
            .shared_inbox
            .as_deref()
            .and_then(|s| Url::parse(s).ok())
    }
}
