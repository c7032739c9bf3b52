//! The federated directory of groups, without a central index.
//!
//! Publishing: `/directory/groups` is a paged `OrderedCollection` of this
//! instance's public, discoverable groups (linked from NodeInfo
//! `metadata.directory` and the instance actor's `directory`), and
//! `/directory/instances` lists the hosts whose directories gave us groups.
//!
//! Reading: for every instance we have met (and, one hop, those our trusted
//! instances list), through the federation policy: NodeInfo → its directory
//! (on its own host) → each listed id on that same host → the group's own
//! actor document, which alone is believed (type, discoverable, public,
//! topics). Everything is bounded: pages, bytes, groups per instance,
//! instances per round; malformed or foreign entries are skipped with a log
//! line.

use std::{collections::BTreeSet, time::Duration};

use activitypub_federation::{
    axum::json::FederationJson, config::FederationConfig, fetch::object_id::ObjectId,
};
use axum::{extract::Query, response::IntoResponse, response::Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use url::Url;

use super::{
    FedData, nodeinfo,
    objects::{actor::DbActor, authority, id_of},
};
use crate::{app::AppState, db, error::AppError, service::access};

/// Groups per page of our published directory.
const PAGE_SIZE: u64 = 50;
/// Time spent confirming one instance's groups in one round at most (a
/// slow server delays only itself, and only this long).
const INSTANCE_BUDGET: Duration = Duration::from_secs(300);
/// Pages read from one directory at most.
const MAX_PAGES: usize = 40;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PageQuery {
    page: Option<u64>,
}

pub fn directory_url(data: &AppState) -> Url {
    data.urls
        .base()
        .join("directory/groups")
        .unwrap_or_else(|_| data.urls.base().clone())
}

pub fn instances_url(data: &AppState) -> Url {
    data.urls
        .base()
        .join("directory/instances")
        .unwrap_or_else(|_| data.urls.base().clone())
}

/// `GET /directory/groups[?page=N]`: our listed groups, by name, as ids.
pub async fn get_directory(
    data: FedData,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let id = directory_url(&data);
    let total = db::directory::count_local_listed(&data.db).await?;
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let body = match q.page {
        None => json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "type": "OrderedCollection",
            "id": id,
            "totalItems": total,
            "first": format!("{id}?page=1"),
            "last": format!("{id}?page={pages}"),
        }),
        Some(n) => {
            let n = n.max(1);
            let rows =
                db::directory::local_listed(&data.db, (n - 1) * PAGE_SIZE, PAGE_SIZE).await?;
            let items: Vec<String> = rows
                .into_iter()
                .filter(|g| access::visibility(g) == crate::domain::group::Visibility::Public)
                .map(|g| g.ap_id)
                .collect();
            let mut page = json!({
                "@context": "https://www.w3.org/ns/activitystreams",
                "type": "OrderedCollectionPage",
                "id": format!("{id}?page={n}"),
                "partOf": id,
                "orderedItems": items,
            });
            if n < pages {
                page["next"] = format!("{id}?page={}", n + 1).into();
            }
            if n > 1 {
                page["prev"] = format!("{id}?page={}", n - 1).into();
            }
            page
        }
    };
    Ok(FederationJson(body).into_response())
}

/// `GET /directory/instances`: the hosts whose directories gave us groups
/// (so a new instance can find more than it has met).
pub async fn get_instances(data: FedData) -> Result<Response, AppError> {
    let hosts = db::directory::sources(&data.db, 1000).await?;
    let id = instances_url(&data);
    Ok(FederationJson(json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Collection",
        "id": id,
        "totalItems": hosts.len(),
        "items": hosts,
    }))
    .into_response())
}

/// What one round of reading found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    pub instances_read: usize,
    pub groups_listed: usize,
    pub failures: usize,
}

/// Read the directories of every instance we have met (least recently read
/// first, bounded) and of the instances our trusted instances list.
pub async fn refresh(data: &FedData) -> Result<Round, AppError> {
    let data = data.reset_request_count();
    let settings = &data.settings.directory;
    let ours = authority(data.urls.base());
    let mut hosts: BTreeSet<String> =
        db::directory::instances_to_read(&data.db, settings.max_instances)
            .await?
            .into_iter()
            .map(|i| i.domain)
            .collect();
    for trusted in &settings.trusted_instances {
        let trusted = trusted.trim().to_ascii_lowercase();
        if trusted.is_empty() || trusted == ours {
            continue;
        }
        hosts.insert(trusted.clone());
        match peers_of(&data, &trusted).await {
            Ok(peers) => hosts.extend(peers),
            Err(e) => {
                tracing::info!(instance = %trusted, error = %e, "cannot read a trusted instance's list of instances")
            }
        }
    }
    hosts.remove(&ours);
    let mut round = Round::default();
    for host in hosts.into_iter().take(settings.max_instances as usize * 2) {
        match read_instance(&data, &host).await {
            Ok(n) => {
                round.instances_read += 1;
                round.groups_listed += n;
            }
            Err(e) => {
                round.failures += 1;
                tracing::info!(instance = %host, error = %e, "directory not read");
            }
        }
    }
    tracing::info!(
        instances = round.instances_read,
        groups = round.groups_listed,
        failures = round.failures,
        "directory refreshed"
    );
    Ok(round)
}

/// The hosts a trusted instance says publish groups (one hop, bounded).
async fn peers_of(data: &FedData, host: &str) -> Result<Vec<String>, AppError> {
    let url = directory_link(data, host, "directoryInstances").await?;
    let client = nodeinfo::client(data)?;
    let doc = nodeinfo::get_json(&client, &url, data.settings.directory.max_page_bytes).await?;
    let items = doc
        .get("items")
        .or_else(|| doc.get("orderedItems"))
        .and_then(|i| i.as_array())
        .cloned()
        .unwrap_or_default();
    let max = data.settings.directory.max_peers_per_trusted;
    if items.len() > max {
        tracing::info!(instance = %host, listed = items.len(), max, "list of instances cut short");
    }
    Ok(items
        .iter()
        .take(max)
        .filter_map(|h| h.as_str())
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| valid_host(h))
        .collect())
}

/// `host[:port]` and nothing else (no scheme, path or user).
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        && Url::parse(&format!("https://{h}/")).is_ok_and(|u| authority(&u) == h)
}

/// A link from `host`'s NodeInfo metadata, which must stay on `host`.
async fn directory_link(data: &FedData, host: &str, key: &str) -> Result<Url, AppError> {
    let info = nodeinfo::read(data, host).await?;
    let href = info
        .get("metadata")
        .and_then(|m| m.get(key))
        .and_then(|d| d.as_str())
        .ok_or_else(|| AppError::Remote(format!("{host} publishes no {key}")))?;
    let url = Url::parse(href).map_err(|e| AppError::Remote(format!("{host}: {key}: {e}")))?;
    if authority(&url) != host {
        return Err(AppError::Remote(format!(
            "{host}'s {key} is on another host"
        )));
    }
    Ok(url)
}

/// Read one instance's directory; the groups it lists are ours to search
/// once their own actor documents confirm them. Returns how many.
pub async fn read_instance(data: &FedData, host: &str) -> Result<usize, AppError> {
    let started = data.clock.now();
    let result = read_listed(data, host).await;
    // Read or not, it is not read again before its turn comes round.
    db::directory::set_directory_read(&data.db, host, data.clock.now()).await?;
    let ids = match result {
        Ok(ids) => ids,
        Err(e) => {
            if matches!(e, AppError::Forbidden(_)) {
                // Refused by policy now: forget what it listed.
                db::directory::prune(&data.db, host, data.clock.now()).await?;
            }
            return Err(e);
        }
    };
    let mut listed = 0;
    let clock = std::time::Instant::now();
    for id in ids {
        if clock.elapsed() > INSTANCE_BUDGET {
            // What was not reached stays as it was (not pruned).
            tracing::info!(instance = %host, listed, "directory read out of time; the rest waits for the next round");
            return Ok(listed);
        }
        let fresh = data.reset_request_count();
        match confirm(&fresh, host, &id).await {
            Ok(true) => listed += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::info!(instance = %host, group = %id, error = %e, "listed group not confirmed")
            }
        }
    }
    let gone = db::directory::prune(&data.db, host, started).await?;
    if gone > 0 {
        tracing::info!(instance = %host, gone, "groups no longer listed");
    }
    Ok(listed)
}

/// The ids `host`'s directory lists on `host` itself, bounded.
async fn read_listed(data: &FedData, host: &str) -> Result<Vec<Url>, AppError> {
    let settings = &data.settings.directory;
    let url = directory_link(data, host, "directory").await?;
    db::directory::set_directory_url(&data.db, host, Some(url.to_string())).await?;
    let client = nodeinfo::client(data)?;
    let max_bytes = settings.max_page_bytes;
    let max_groups = settings.max_groups_per_instance;
    let root = nodeinfo::get_json(&client, &url, max_bytes).await?;
    let mut ids: Vec<Url> = Vec::new();
    let mut seen_pages: BTreeSet<String> = BTreeSet::new();
    let mut next = page_link(&root, "first", host);
    take_items(&root, host, &mut ids, max_groups);
    while let Some(page_url) = next.take() {
        if seen_pages.len() >= MAX_PAGES || ids.len() >= max_groups {
            tracing::info!(instance = %host, pages = seen_pages.len(), groups = ids.len(), "directory cut short");
            break;
        }
        if !seen_pages.insert(page_url.to_string()) {
            tracing::info!(instance = %host, "directory pages loop; stopped");
            break;
        }
        let page = nodeinfo::get_json(&client, &page_url, max_bytes).await?;
        take_items(&page, host, &mut ids, max_groups);
        next = page_link(&page, "next", host);
    }
    Ok(ids)
}

/// A `first`/`next` link of a collection, only on `host`.
fn page_link(doc: &serde_json::Value, key: &str, host: &str) -> Option<Url> {
    let u = doc.get(key).and_then(id_of)?;
    (authority(&u) == host).then_some(u)
}

fn take_items(doc: &serde_json::Value, host: &str, ids: &mut Vec<Url>, max: usize) {
    let items = doc
        .get("orderedItems")
        .or_else(|| doc.get("items"))
        .and_then(|i| i.as_array());
    for item in items.into_iter().flatten() {
        if ids.len() >= max {
            return;
        }
        let Some(id) = id_of(item) else {
            tracing::debug!(instance = %host, "malformed directory entry skipped");
            continue;
        };
        if authority(&id) != host {
            tracing::info!(instance = %host, group = %id, "directory lists a group on another host; ignored");
            continue;
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
}

/// Read a listed group's own actor document (what it says is all we
/// believe): keep it listed if it is a public, discoverable group.
async fn confirm(data: &FedData, host: &str, id: &Url) -> Result<bool, AppError> {
    let group = ObjectId::<DbActor>::from(id.clone())
        .dereference_forced(data)
        .await?;
    let row = &group.row;
    let listable = group.is_group()
        && row.discoverable
        && row.deleted_at.is_none()
        && access::visibility(row) == crate::domain::group::Visibility::Public
        && authority(group.id_url()) == host;
    if !listable {
        db::directory::unlist(&data.db, row.id).await?;
        return Ok(false);
    }
    db::directory::listed(&data.db, row.id, host, data.clock.now()).await?;
    let count = match row.followers.as_deref().map(Url::parse) {
        Some(Ok(u)) if authority(&u) == host => member_count(data, &u).await,
        _ => None,
    };
    db::directory::set_remote_member_count(&data.db, row.id, count).await?;
    Ok(true)
}

/// The `totalItems` of a group's followers collection, if it shows one.
async fn member_count(data: &FedData, followers: &Url) -> Option<i64> {
    let client = nodeinfo::client(data).ok()?;
    let doc = nodeinfo::get_json(&client, followers, 64 * 1024)
        .await
        .ok()?;
    doc.get("totalItems")
        .and_then(|n| n.as_i64())
        .filter(|n| *n >= 0)
}

/// Re-read the directories every `refresh_interval_secs` until shutdown.
pub fn spawn_refresher(
    config: FederationConfig<AppState>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let every = config
        .to_request_data()
        .settings
        .directory
        .refresh_interval_secs;
    if every == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        // The first round waits a little: the server has just started.
        let mut wait = Duration::from_secs(every.min(60));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            if let Err(e) = refresh(&config.to_request_data()).await {
                tracing::warn!(error = %e, "directory refresh failed");
            }
            wait = Duration::from_secs(every);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_from_other_servers_are_plain_authorities() {
        assert!(valid_host("example.org"));
        assert!(valid_host("localhost:8080"));
        assert!(!valid_host("https://example.org"));
        assert!(!valid_host("example.org/path"));
        assert!(!valid_host("user@example.org"));
        assert!(!valid_host(""));
    }

    #[test]
    fn entries_on_other_hosts_and_repeats_are_dropped() {
        let doc = json!({"orderedItems": [
            "https://a.example/groups/x",
            {"id": "https://a.example/groups/y", "type": "Group"},
            "https://b.example/groups/z",
            42,
            "not a url",
            "https://a.example/groups/x",
        ]});
        let mut ids = Vec::new();
        take_items(&doc, "a.example", &mut ids, 10);
        let got: Vec<&str> = ids.iter().map(Url::as_str).collect();
        assert_eq!(
            got,
            ["https://a.example/groups/x", "https://a.example/groups/y"]
        );
        let mut few = Vec::new();
        take_items(&doc, "a.example", &mut few, 1);
        assert_eq!(few.len(), 1);
        assert_eq!(
            page_link(
                &json!({"next": "https://b.example/d?page=2"}),
                "next",
                "a.example"
            ),
            None
        );
    }
}
