//! Local groups' actor documents, rendered once and served from memory.
//!
//! Every peer that meets a group fetches its actor (and refetches it to check
//! a key): it is the most read document we serve. Rendering it cost two queries
//! (the row, its topics) and a serialisation per request; now a group's
//! document is kept here with its row for up to `TTL`. A change made in this
//! process (profile, settings, topics, allowed instances) drops every kept
//! document at once; one made by another process is served within `TTL`, far
//! inside the three minutes Mastodon lets peers cache an actor.
//!
//! Only documents of existing local groups are kept, under their lowercased
//! name, so the map never grows past the number of local groups.

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

#[derive(Default)]
pub struct GroupDocs(RwLock<HashMap<String, Arc<Doc>>>);

impl GroupDocs {
    /// The kept document of the group `name` (any case), when still fresh.
    pub fn get(&self, name: &str) -> Option<Arc<Doc>> {
        let map = self.0.read().ok()?;
        let doc = map.get(&name.to_lowercase())?;
        (doc.made.elapsed() < TTL).then(|| doc.clone())
    }

    /// Keep `doc` under its row's name.
    pub fn put(&self, doc: Arc<Doc>) {
        if let Ok(mut map) = self.0.write() {
            map.insert(doc.row.username.to_lowercase(), doc);
        }
    }

    /// Drop every kept document: a group changed in this process.
    pub fn forget(&self) {
        if let Ok(mut map) = self.0.write() {
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
    fn a_stale_document_is_not_served() {
        let docs = GroupDocs::default();
        let mut doc = Doc::new(row("lupus"), Bytes::new());
        doc.made = Instant::now() - TTL;
        docs.put(Arc::new(doc));
        assert!(docs.get("lupus").is_none());
    }
}
