//! WebFinger (`acct:name@domain` → actor id, for groups and people) and
//! NodeInfo 2.1 (software, protocols, usage).

use activitypub_federation::fetch::webfinger::{Webfinger, WebfingerLink, extract_webfinger_name};
use axum::{
    Json,
    extract::Query,
    http::header,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::FedData;
use crate::{db, domain::ActorKind, error::AppError};

#[derive(Deserialize)]
pub struct WebfingerQuery {
    resource: Option<String>,
}

pub async fn webfinger(
    data: FedData,
    Query(q): Query<WebfingerQuery>,
) -> Result<Response, AppError> {
    let resource = q
        .resource
        .ok_or_else(|| AppError::bad_request("missing 'resource' parameter"))?;
    let actor = if resource.starts_with("http://") || resource.starts_with("https://") {
        db::actors::by_ap_id(&data.db, &resource)
            .await?
            .filter(|a| a.local)
    } else {
        let lower = resource.to_lowercase();
        let name =
            extract_webfinger_name(&lower, &data).map_err(|_| AppError::not_found("account"))?;
        db::actors::local_by_name(&data.db, name).await?
    };
    // Deleted accounts and groups that never federate are not found.
    let actor = actor
        .filter(|a| a.kind != ActorKind::Application.as_str())
        .filter(|a| a.deleted_at.is_none())
        .filter(|a| crate::service::access::visibility(a).federates())
        .ok_or_else(|| AppError::not_found("account"))?;
    let id = Url::parse(&actor.ap_id)?;
    let kind = ActorKind::parse(&actor.kind).map(ActorKind::as_type);
    let mut properties = std::collections::HashMap::new();
    if let (Some(k), Ok(key)) = (
        kind,
        Url::parse("https://www.w3.org/ns/activitystreams#type"),
    ) {
        properties.insert(key, k.to_string());
    }
    let body = Webfinger {
        subject: format!("acct:{}@{}", actor.username, data.domain()),
        // No profile-page link until there are HTML pages.
        links: vec![WebfingerLink {
            rel: Some("self".into()),
            kind: Some("application/activity+json".into()),
            href: Some(id.clone()),
            properties,
            ..Default::default()
        }],
        aliases: vec![id],
        properties: Default::default(),
    };
    let mut res = Json(body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/jrd+json"),
    );
    Ok(res)
}

pub async fn nodeinfo_links(data: FedData) -> Response {
    Json(json!({
        "links": [{
            "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
            "href": format!("{}nodeinfo/2.1", data.urls.base()),
        }]
    }))
    .into_response()
}

pub async fn nodeinfo(data: FedData) -> Result<Response, AppError> {
    let users = db::actors::count_local(&data.db, ActorKind::Person).await?;
    let groups = db::actors::count_local(&data.db, ActorKind::Group).await?;
    let posts = db::posts::count_local(&data.db).await?;
    let mut res = Json(json!({
        "version": "2.1",
        "software": {
            "name": "kindred",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "protocols": ["activitypub"],
        "services": { "inbound": [], "outbound": [] },
        "openRegistrations": false,
        "usage": {
            "users": { "total": users },
            "localPosts": posts,
        },
        "metadata": {
            "groups": groups,
            "directory": super::directory::directory_url(&data),
            "directoryInstances": super::directory::instances_url(&data),
        },
    }))
    .into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(
            "application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/2.1#\"",
        ),
    );
    Ok(res)
}
