//! Local groups' most read documents, rendered once and served from memory.
//!
//! Every peer that meets a group fetches its actor (and refetches it to check
//! a key): it is the most read document we serve. Rendering it cost two queries
//! (the row, its topics) and a serialisation per request; now a group's
//! document is kept here with its row for up to `TTL`. A change made in this
//! process (profile, settings, topics, allowed instances) drops every kept
//! document at once; one made by another process is served within `TTL`, far
//! inside the three minutes Mastodon lets peers cache an actor.
//!
//! Pages of a public group's threads, as anonymous readers get them, are kept
//! the same way, and are also dropped by any write to `posts` made in this
//! process (`db::posts::changes`): a new, edited, removed or held post shows
//! on the next read here, and within `TTL` when another process wrote it.
//! Signed-in readers are never served a kept page.
//!
//! Only documents of existing local groups are kept, under their lowercased
//! name, so that map never grows past the number of local groups; pages are
//! capped at `MAX_PAGES`.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use axum::body::Bytes;

use crate::db::entities::actor;

/// How long a kept document is served before it is rendered again.
pub const TTL: Duration = Duration::from_secs(1);

/// One group's rendered actor document and the row it was rendered from.
pub struct Doc {
    pub row: actor::Model,
    pub body: Bytes,
    made: Instant,
}

impl Doc {
    pub fn new(row: actor::Model, body: Bytes) -> Doc {
        Doc {
            row,
            body,
            made: Instant::now(),
        }
    }
}

/// At most this many pages are kept; past it the map starts again empty
/// (a crawler walking `before=` through a group's history cannot grow it).
const MAX_PAGES: usize = 1024;

/// A page of a public group's threads as anonymous readers get it.
struct Page {
    body: Bytes,
    made: Instant,
    /// `db::posts::changes()` when it was read.
    posts_at: u64,
}

#[derive(Default)]
pub struct GroupDocs {
    actors: RwLock<HashMap<String, Arc<Doc>>>,
    pages: RwLock<HashMap<String, Page>>,
}

impl GroupDocs {
    /// The kept document of the group `name` (any case), when still fresh.
    pub fn get(&self, name: &str) -> Option<Arc<Doc>> {
        let map = self.actors.read().ok()?;
        let doc = map.get(&name.to_lowercase())?;
        (doc.made.elapsed() < TTL).then(|| doc.clone())
    }

    /// Keep `doc` under its row's name.
    pub fn put(&self, doc: Arc<Doc>) {
        if let Ok(mut map) = self.actors.write() {
            map.insert(doc.row.username.to_lowercase(), doc);
        }
    }

    /// The kept page under `key`, when fresh and no post was written here
    /// since it was read.
    pub fn page(&self, key: &str) -> Option<Bytes> {
        let map = self.pages.read().ok()?;
        let page = map.get(key)?;
        (page.made.elapsed() < TTL && page.posts_at == crate::db::posts::changes())
            .then(|| page.body.clone())
    }

    /// Keep a page read when `db::posts::changes()` was `posts_at` (taken
    /// before the read, so a write during it makes the page stale at once).
    pub fn put_page(&self, key: String, body: Bytes, posts_at: u64) {
        if let Ok(mut map) = self.pages.write() {
            if map.len() >= MAX_PAGES {
                map.clear();
            }
            map.insert(
                key,
                Page {
                    body,
                    made: Instant::now(),
                    posts_at,
                },
            );
        }
    }

    /// Drop everything kept: a group changed in this process.
    pub fn forget(&self) {
        if let Ok(mut map) = self.actors.write() {
            map.clear();
        }
        if let Ok(mut map) = self.pages.write() {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> actor::Model {
        actor::Model {
            id: 1,
            ap_id: format!("https://k.example/groups/{name}"),
            kind: "group".into(),
            local: true,
            username: name.into(),
            domain: "k.example".into(),
            display_name: None,
            summary: None,
            inbox: format!("https://k.example/groups/{name}/inbox"),
            shared_inbox: None,
            outbox: None,
            followers: None,
            public_key: String::new(),
            private_key: None,
            manually_approves_followers: false,
            discoverable: true,
            last_refreshed_at: None,
            rules: None,
            created_at: chrono::Utc::now(),
            domains_restricted: false,
            visibility: "public".into(),
            join_policy: "open".into(),
            member_count_hidden: false,
            premoderation: false,
            default_content_warning: None,
            deleted_at: None,
            region: None,
            remote_member_count: None,
        }
    }

    #[test]
    fn a_kept_document_is_found_in_any_case_until_forgotten() {
        let docs = GroupDocs::default();
        assert!(docs.get("lupus").is_none());
        docs.put(Arc::new(Doc::new(row("lupus"), Bytes::from_static(b"{}"))));
        assert_eq!(
            docs.get("LuPus").map(|d| d.body.clone()),
            Some(Bytes::from_static(b"{}"))
        );
        docs.forget();
        assert!(docs.get("lupus").is_none());
    }

    #[test]
    fn a_page_is_not_served_once_a_post_was_written_or_the_group_changed() {
        let docs = GroupDocs::default();
        docs.put_page(
            "lupus|-|20".into(),
            Bytes::from_static(b"[]"),
            crate::db::posts::changes(),
        );
        // Other tests in this process may write posts: only assert what a
        // write must cause.
        crate::db::posts::changed();
        assert!(docs.page("lupus|-|20").is_none());
        docs.put_page(
            "lupus|-|20".into(),
            Bytes::from_static(b"[]"),
            crate::db::posts::changes(),
        );
        docs.forget();
        assert!(docs.page("lupus|-|20").is_none());
        for n in 0..=MAX_PAGES {
            docs.put_page(format!("lupus|{n}|20"), Bytes::new(), 0);
        }
        assert!(docs.pages.read().map(|m| m.len()).unwrap_or(usize::MAX) <= MAX_PAGES);
    }

    #[test]
    fn a_stale_document_is_not_served() {
        let docs = GroupDocs::default();
        let mut doc = Doc::new(row("lupus"), Bytes::new());
        doc.made = Instant::now() - TTL;
        docs.put(Arc::new(doc));
        assert!(docs.get("lupus").is_none());
    }
}
