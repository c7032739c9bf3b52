//! What a local author writes → a post body: Markdown rendered and sanitised,
//! mentions resolved to actors (known ones, then WebFinger, bounded), hashtags
//! linked, content warning checked. Mentioned remote people get the post too.

use std::{collections::HashMap, time::Duration};

use crate::{
    db::{self, posts::Body},
    domain::{
        ActorKind, content,
        markup::{self, MentionRef},
    },
    error::AppError,
    federation::{FedData, objects::actor::DbActor, resolve},
};

/// How long one unknown mention may take to look up before it stays text.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the author typed, checked and rendered.
pub struct Composed {
    pub body: Body,
    /// Remote actors mentioned (they receive the post directly).
    pub mentioned: Vec<DbActor>,
}

/// Check a content warning: trimmed, capped, empty = none.
pub fn validate_warning(cw: Option<&str>) -> Result<Option<String>, AppError> {
    let Some(cw) = cw.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    if cw.chars().count() > crate::federation::objects::post::MAX_WARNING_CHARS {
        return Err(AppError::bad_request(format!(
            "a content warning has at most {} characters",
            crate::federation::objects::post::MAX_WARNING_CHARS
        )));
    }
    Ok(Some(cw.to_string()))
}

async fn find_mentioned(data: &FedData, m: &MentionRef) -> Option<DbActor> {
    let ours = data.domain().to_ascii_lowercase();
    let local = m.host.as_deref().is_none_or(|h| h == ours);
    let row = if local {
        db::actors::local_by_name(&data.db, &m.name).await.ok()?
    } else {
        let host = m.host.as_deref()?;
        let mut found = None;
        for kind in [ActorKind::Person, ActorKind::Group] {
            if let Ok(Some(r)) = db::actors::remote_by_handle(&data.db, &m.name, host, kind).await {
                found = Some(r);
                break;
            }
        }
        match found {
            Some(r) => Some(r),
            None => {
                let looked_up = tokio::time::timeout(
                    LOOKUP_TIMEOUT,
                    resolve::actor_by_handle(data, &m.name, host),
                )
                .await;
                match looked_up {
                    Ok(Ok(a)) => Some(a.row),
                    _ => {
                        tracing::debug!("a mention did not resolve; kept as text");
                        None
                    }
                }
            }
        }
    }?;
    DbActor::new(row).ok()
}

/// Render `source` (Markdown) with its mentions and hashtags.
pub async fn compose(
    data: &FedData,
    title: Option<String>,
    source: String,
    warning: Option<String>,
) -> Result<Composed, AppError> {
    let mut found: HashMap<MentionRef, DbActor> = HashMap::new();
    for m in markup::mentions(&source) {
        if let Some(a) = find_mentioned(data, &m).await {
            found.insert(m, a);
        }
    }
    let resolve = |m: &MentionRef| {
        found
            .get(m)
            .map(|a| (a.row.ap_id.clone(), format!("@{}", a.handle())))
    };
    let tag_url = |t: &str| data.urls.tag(t).to_string();
    let rendered = markup::render(&source, &resolve, &tag_url);
    let mut mentioned: Vec<DbActor> = vec![];
    for a in found.into_values() {
        if !a.row.local && !mentioned.iter().any(|x| x.row.id == a.row.id) {
            mentioned.push(a);
        }
    }
    Ok(Composed {
        body: Body {
            title,
            html: content::sanitize_html(&rendered.html),
            source: Some(source),
            sensitive: warning.is_some(),
            content_warning: warning,
            tags: rendered.tags,
        },
        mentioned,
    })
}
