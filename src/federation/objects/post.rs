//! Posts on the wire: a thread is a `Page` with a `name` (its title), a reply
//! is a `Note` with `inReplyTo` (FEP-1b12, as Lemmy does). `PostRow → PostJson`
//! to serve ours; `PostJson → post row` for remote ones, sanitised.

use activitypub_federation::{
    config::Data, fetch::object_id::ObjectId, protocol::helpers::deserialize_skip_error,
    traits::Object,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{PUBLIC, actor::DbActor, one_or_many};
use crate::{
    app::AppState,
    db::{
        self,
        entities::post,
        posts::{Body, NewPost},
    },
    domain::{
        content,
        markup::{Tag, TagKind},
    },
    error::AppError,
};

#[derive(Debug, Clone)]
pub struct DbPost {
    pub row: post::Model,
    id: Url,
}

impl DbPost {
    pub fn new(row: post::Model) -> Result<Self, AppError> {
        let id = Url::parse(&row.ap_id).map_err(|e| AppError::internal(format!("post id: {e}")))?;
        Ok(DbPost { row, id })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PostKind {
    Page,
    Note,
    Article,
    /// A poll: kept as text with its options listed (we have no polls).
    Question,
}

/// A `tag` entry: Mention and Hashtag are kept; Emoji and others are read and
/// dropped (custom emoji images would load from third-party hosts).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TagJson {
    #[serde(rename = "type")]
    pub kind: String,
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
    pub href: Option<Url>,
}

/// An `attachment` (image, video, link): shown as a link with its
/// description, never embedded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentJson {
    #[serde(rename = "type", default)]
    pub kind: String,
    /// A URL, a Link object, or a list of them (PeerTube).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub url: serde_json::Value,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub href: Option<Url>,
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub media_type: Option<String>,
}

impl AttachmentJson {
    /// The first http(s) URL it points at.
    pub fn link(&self) -> Option<Url> {
        let from_value = |v: &serde_json::Value| -> Option<Url> {
            match v {
                serde_json::Value::String(s) => Url::parse(s).ok(),
                serde_json::Value::Object(m) => m
                    .get("href")
                    .and_then(|h| h.as_str())
                    .and_then(|h| Url::parse(h).ok()),
                _ => None,
            }
        };
        let url = match &self.url {
            serde_json::Value::Array(items) => items.iter().find_map(from_value),
            other => from_value(other),
        };
        url.or_else(|| self.href.clone())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
    }
}

/// A poll option (`oneOf` / `anyOf` of a Question).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PollOption {
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    pub content: String,
    #[serde(rename = "mediaType")]
    pub media_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostJson {
    #[serde(rename = "type")]
    pub kind: PostKind,
    pub id: Url,
    pub attributed_to: ObjectId<DbActor>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub cc: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub audience: Option<ObjectId<DbActor>>,
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
    pub content: Option<String>,
    /// The content warning (Mastodon's spoiler text).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub summary: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub sensitive: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub tag: Vec<TagJson>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub attachment: Vec<AttachmentJson>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub one_of: Vec<PollOption>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub any_of: Vec<PollOption>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub content_map: Option<std::collections::BTreeMap<String, String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub media_type: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub source: Option<Source>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub in_reply_to: Option<Url>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub published: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub updated: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub url: Option<Url>,
}

impl PostJson {
    /// Public in `to` or `cc`, however spelled.
    pub fn is_public(&self) -> bool {
        crate::domain::rules::is_publicly_addressed(
            self.to.iter().chain(self.cc.iter()).map(String::as_str),
        )
    }

    /// `content`, or the first `contentMap` entry when there is no `content`.
    pub fn html(&self) -> String {
        self.content
            .clone()
            .or_else(|| {
                self.content_map
                    .as_ref()
                    .and_then(|m| m.values().next().cloned())
            })
            .unwrap_or_default()
    }
}

/// Where a post belongs and what it answers, resolved from its JSON.
pub struct PostContext {
    pub author: DbActor,
    pub group: DbActor,
    pub parent: Option<post::Model>,
}

/// Find the author, group and parent of a post, fetching what we lack (bounded
/// by the per-request fetch limit). The group is `audience`, else the parent's
/// group, else a known group among the addressees.
pub async fn resolve_context(
    json: &PostJson,
    data: &Data<AppState>,
) -> Result<PostContext, AppError> {
    let author = json.attributed_to.dereference(data).await?;
    let parent = match &json.in_reply_to {
        Some(url) => {
            let id: ObjectId<DbPost> = url.clone().into();
            Some(id.dereference(data).await?.row)
        }
        None => None,
    };
    let group = if let Some(a) = &json.audience {
        a.dereference(data).await?
    } else if let Some(p) = &parent {
        let g = match crate::federation::memo::get_id(p.group_id) {
            Some(g) => g,
            None => db::actors::by_id(&data.db, p.group_id)
                .await?
                .ok_or_else(|| AppError::internal("parent without group"))?,
        };
        DbActor::new(g)?
    } else {
        let mut found = None;
        // The public collection is no actor: not looked up (it is in
        // almost every post's `to`).
        for addr in json.to.iter().chain(json.cc.iter()) {
            if super::is_public(addr) {
                continue;
            }
            if let Some(a) = crate::federation::memo::actor_by_ap_id(data, addr).await?
                && a.kind == crate::domain::ActorKind::Group.as_str()
            {
                found = Some(DbActor::new(a)?);
                break;
            }
        }
        found.ok_or_else(|| AppError::bad_request("post is not addressed to a known group"))?
    };
    if !group.is_group() {
        return Err(AppError::bad_request("audience is not a group"));
    }
    if let Some(p) = &parent
        && p.group_id != group.row.id
    {
        return Err(AppError::bad_request("reply to a post of another group"));
    }
    Ok(PostContext {
        author,
        group,
        parent,
    })
}

/// Longest content warning we keep.
pub const MAX_WARNING_CHARS: usize = 500;
/// Most tags (mentions + hashtags) we keep from one remote post.
pub const MAX_REMOTE_TAGS: usize = 50;
/// Attachments shown as links, and poll options shown, per post: the rest of
/// a hostile list (10,000 entries) is dropped before any work is done on it.
pub const MAX_REMOTE_ATTACHMENTS: usize = 20;
pub const MAX_POLL_OPTIONS: usize = 50;

/// What a remote post says, made safe: sanitised HTML (plus its poll options
/// and attachments as links), title, content warning and tags.
pub fn body_from_json(json: &PostJson) -> Body {
    let markdown = json
        .media_type
        .as_deref()
        .is_some_and(|m| m.starts_with("text/markdown"));
    let mut html = if markdown {
        content::sanitize_html(&crate::domain::markup::markdown_to_html(&json.html()))
    } else {
        content::sanitize_html(&json.html())
    };
    let options: Vec<String> = json
        .one_of
        .iter()
        .chain(json.any_of.iter())
        .take(MAX_POLL_OPTIONS)
        .filter_map(|o| o.name.as_deref())
        .map(|n| content::sanitize_plain(n, content::MAX_TITLE_CHARS))
        .filter(|n| !n.is_empty())
        .collect();
    if !options.is_empty() {
        html.push_str("<ul>");
        for o in options {
            html.push_str(&format!("<li>{}</li>", content::escape(&o)));
        }
        html.push_str("</ul>");
    }
    let links: Vec<String> = json
        .attachment
        .iter()
        .take(MAX_REMOTE_ATTACHMENTS)
        .filter_map(|a| {
            let url = a.link()?;
            // The description is `name`, or `summary` (GoToSocial).
            let label = a
                .name
                .as_deref()
                .or(a.summary.as_deref())
                .map(|n| content::sanitize_plain(n, content::MAX_TITLE_CHARS))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "attachment".into());
            Some(format!(
                "<li><a href=\"{}\">{}</a></li>",
                content::escape(url.as_str()),
                content::escape(&label)
            ))
        })
        .collect();
    if !links.is_empty() {
        html.push_str(&format!("<ul>{}</ul>", links.concat()));
        html = content::sanitize_html(&html);
    }
    let title = json
        .name
        .as_deref()
        .map(|n| content::sanitize_plain(n, content::MAX_TITLE_CHARS))
        .filter(|t| !t.is_empty());
    // `summary` is a content warning on notes and polls (Mastodon); on an
    // article or page only when it is marked sensitive.
    let warning_kind = matches!(json.kind, PostKind::Note | PostKind::Question);
    let content_warning = json
        .summary
        .as_deref()
        .filter(|_| warning_kind || json.sensitive == Some(true))
        .map(|w| content::sanitize_plain(w, MAX_WARNING_CHARS))
        // Misskey sends a zero-width space for "no warning".
        .filter(|w| {
            !w.chars()
                .all(|c| c.is_whitespace() || content::is_invisible(c))
        });
    let sensitive = json.sensitive == Some(true) || content_warning.is_some();
    let tags = json
        .tag
        .iter()
        .filter_map(|t| {
            let kind = match t.kind.as_str() {
                "Mention" => TagKind::Mention,
                "Hashtag" => TagKind::Hashtag,
                _ => return None,
            };
            let href = t
                .href
                .as_ref()
                .filter(|u| matches!(u.scheme(), "http" | "https"))?;
            let name = content::sanitize_plain(t.name.as_deref().unwrap_or_default(), 200);
            Some(Tag {
                kind,
                name,
                href: href.to_string(),
            })
        })
        .take(MAX_REMOTE_TAGS)
        .collect();
    Body {
        title,
        html,
        source: None,
        content_warning,
        sensitive,
        tags,
    }
}

/// `PostJson → post row` (not yet stored): sanitised, threaded.
pub fn new_post_from_json(json: &PostJson, ctx: &PostContext) -> Result<NewPost, AppError> {
    let mut body = body_from_json(json);
    if ctx.parent.is_none() && body.title.is_none() && body.html.trim().is_empty() {
        return Err(AppError::bad_request("empty post"));
    }
    // A Note starting a thread (Mastodon) has no title: leave it None.
    if ctx.parent.is_some() {
        body.title = None;
    }
    Ok(NewPost {
        ap_id: json.id.to_string(),
        author_id: ctx.author.row.id,
        group_id: ctx.group.row.id,
        thread_id: ctx.parent.as_ref().map(|p| p.thread_id.unwrap_or(p.id)),
        in_reply_to_id: ctx.parent.as_ref().map(|p| p.id),
        body,
        local: false,
        published_at: json.published.unwrap_or_else(Utc::now),
        updated_at: json.updated,
    })
}

/// Post row → `PostJson`, addressed publicly to the group and its followers.
pub async fn post_to_json(row: &post::Model, data: &Data<AppState>) -> Result<PostJson, AppError> {
    let author = db::actors::by_id(&data.db, row.author_id)
        .await?
        .ok_or_else(|| AppError::internal("post without author"))?;
    let group = db::actors::by_id(&data.db, row.group_id)
        .await?
        .ok_or_else(|| AppError::internal("post without group"))?;
    let parent = match row.in_reply_to_id {
        Some(pid) => db::posts::by_id(&data.db, pid).await?,
        None => None,
    };
    // A remote author answered here is addressed too (their server notifies them).
    let parent_author = match &parent {
        Some(p) => db::actors::by_id(&data.db, p.author_id)
            .await?
            .filter(|a| !a.local && a.kind != crate::domain::ActorKind::Group.as_str())
            .map(|a| a.ap_id),
        None => None,
    };
    let parent = parent.map(|p| p.ap_id);
    let id = Url::parse(&row.ap_id)?;
    let mut tags = db::posts::tags_of(row);
    // In a remote group, mention it: Mastodon-style groups (Friendica,
    // Guppe) share what mentions them; FEP-1b12 servers read `audience`.
    if !group.local && !tags.iter().any(|t| t.href == group.ap_id) {
        tags.push(Tag {
            kind: TagKind::Mention,
            name: format!("@{}@{}", group.username, group.domain),
            href: group.ap_id.clone(),
        });
    }
    let mut cc = vec![];
    if let Some(f) = &group.followers {
        cc.push(f.clone());
    }
    if let Some(a) = parent_author {
        cc.push(a);
    }
    for t in tags.iter().filter(|t| t.kind == TagKind::Mention) {
        if !cc.contains(&t.href) && t.href != group.ap_id {
            cc.push(t.href.clone());
        }
    }
    // A members-only group's posts go to its members, never to Public, and
    // name no one else (who is addressed is who may read).
    let to =
        if crate::service::access::visibility(&group) == crate::domain::group::Visibility::Public {
            vec![group.ap_id.clone(), PUBLIC.to_string()]
        } else {
            cc = vec![group.ap_id.clone()];
            vec![
                group
                    .followers
                    .clone()
                    .unwrap_or_else(|| format!("{}/followers", group.ap_id)),
            ]
        };
    Ok(PostJson {
        kind: if row.thread_id.is_none() {
            PostKind::Page
        } else {
            PostKind::Note
        },
        id: id.clone(),
        attributed_to: Url::parse(&author.ap_id)?.into(),
        to,
        cc,
        audience: Some(Url::parse(&group.ap_id)?.into()),
        name: row.title.clone(),
        content: Some(row.content_html.clone()),
        summary: row.content_warning.clone(),
        sensitive: Some(row.sensitive),
        tag: tags
            .into_iter()
            .map(|t| TagJson {
                kind: match t.kind {
                    TagKind::Mention => "Mention".into(),
                    TagKind::Hashtag => "Hashtag".into(),
                },
                name: Some(t.name),
                href: Url::parse(&t.href).ok(),
            })
            .collect(),
        attachment: vec![],
        one_of: vec![],
        any_of: vec![],
        content_map: None,
        media_type: Some("text/html".into()),
        source: row.source.as_ref().map(|s| Source {
            content: s.clone(),
            media_type: "text/markdown".into(),
        }),
        in_reply_to: parent.map(|p| Url::parse(&p)).transpose()?,
        published: Some(row.published_at),
        updated: row.updated_at,
        url: Some(id),
    })
}

#[async_trait::async_trait]
impl Object for DbPost {
    type DataType = AppState;
    type Kind = PostJson;
    type Error = AppError;

    fn id(&self) -> &Url {
        &self.id
    }

    async fn read_from_id(id: Url, data: &Data<AppState>) -> Result<Option<Self>, AppError> {
        db::posts::by_ap_id(&data.db, id.as_str())
            .await?
            .map(DbPost::new)
            .transpose()
    }

    async fn delete(&self, data: &Data<AppState>) -> Result<(), AppError> {
        db::posts::mark_deleted(&data.db, self.row.id).await?;
        Ok(())
    }

    fn is_deleted(&self) -> bool {
        self.row.deleted_at.is_some()
    }

    async fn into_json(self, data: &Data<AppState>) -> Result<PostJson, AppError> {
        post_to_json(&self.row, data).await
    }

    /// The post's id and its author share an origin: nobody writes in
    /// someone else's name.
    async fn verify(
        json: &PostJson,
        expected: &Url,
        _data: &Data<AppState>,
    ) -> Result<(), AppError> {
        crate::federation::objects::require_same_origin(&json.id, expected)?;
        crate::federation::objects::require_same_origin(&json.id, json.attributed_to.inner())?;
        Ok(())
    }

    /// A fetched post: insert it, or refresh it when the copy is newer.
    async fn from_json(json: PostJson, data: &Data<AppState>) -> Result<Self, AppError> {
        // Groups here are public: a fetched post that is not public (a
        // followers-only or direct message) is never stored.
        if !json.is_public() {
            return Err(AppError::forbidden("post is not public"));
        }
        let ctx = resolve_context(&json, data).await?;
        let new = new_post_from_json(&json, &ctx)?;
        let row = upsert(data, new).await?;
        DbPost::new(row)
    }
}

/// Insert a remote post, or apply its newer content to the row we hold.
pub async fn upsert(data: &Data<AppState>, new: NewPost) -> Result<post::Model, AppError> {
    if db::activities::is_tombstoned(&data.db, &new.ap_id).await? {
        return Err(AppError::NotFound(format!("{} (deleted)", new.ap_id)));
    }
    if let Some(existing) = db::posts::by_ap_id(&data.db, &new.ap_id).await? {
        if existing.deleted_at.is_none()
            && crate::domain::rules::is_newer(new.updated_at, existing.updated_at)
            && existing.author_id == new.author_id
        {
            db::posts::update_content(
                &data.db,
                existing.id,
                new.body.clone(),
                new.updated_at.unwrap_or_else(Utc::now),
            )
            .await?;
        }
        return db::posts::by_id(&data.db, existing.id)
            .await?
            .ok_or_else(|| AppError::internal("post vanished"));
    }
    let ap_id = new.ap_id.clone();
    match db::posts::insert(&data.db, new).await {
        Ok(row) => Ok(row),
        // Raced with another copy of the same post: take the stored one.
        Err(e) if db::is_unique_violation(&e) => db::posts::by_ap_id(&data.db, &ap_id)
            .await?
            .ok_or_else(|| AppError::internal("post vanished")),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> PostJson {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn content_map_is_used_when_content_is_missing() {
        let p = parse(serde_json::json!({
            "type": "Note", "id": "https://a.example/n/1", "attributedTo": "https://a.example/u/1",
            "to": "Public", "contentMap": {"de": "<p>Hallo</p>"}
        }));
        assert!(p.is_public());
        assert_eq!(body_from_json(&p).html, "<p>Hallo</p>");
    }

    #[test]
    fn summary_is_a_warning_on_notes_but_an_excerpt_on_articles() {
        let base = |kind: &str, sensitive: bool| {
            parse(serde_json::json!({
                "type": kind, "id": "https://a.example/n/1", "attributedTo": "https://a.example/u/1",
                "to": ["as:Public"], "name": "T", "content": "<p>x</p>",
                "summary": "spoilers", "sensitive": sensitive,
                "unknownField": {"deep": [1, 2]}
            }))
        };
        assert_eq!(
            body_from_json(&base("Note", false))
                .content_warning
                .as_deref(),
            Some("spoilers")
        );
        let article = body_from_json(&base("Article", false));
        assert_eq!(article.content_warning, None);
        assert_eq!(article.title.as_deref(), Some("T"));
        assert!(!article.sensitive);
        assert_eq!(
            body_from_json(&base("Article", true))
                .content_warning
                .as_deref(),
            Some("spoilers")
        );
    }

    #[test]
    fn unknown_object_types_are_not_posts() {
        let v = serde_json::json!({"type": "Video", "id": "https://a.example/v/1",
            "attributedTo": "https://a.example/u/1"});
        assert!(serde_json::from_value::<PostJson>(v).is_err());
    }
}
