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
//! process (`db::posts::changes`, counted when the statement runs): a new,
//! edited, removed or held post shows on the next read here. A read that ran
//! while the write's transaction was still open may have kept the page as it
//! was, for at most `TTL`; so may a write by another process. Signed-in
//! readers are never served a kept page.
//!
//! The remote member inboxes a received post is announced to are kept too,
//! per group, and dropped by any write here to memberships, bans or remote
//! actors (`db::follows::changes`): a member who leaves or is removed here
//! gets nothing after that write. A change committed by another process, or
//! while the list was being read, reaches it within `TTL` — as a post
//! received while a member leaves may reach them without any keeping.
//!
//! Only documents of existing local groups are kept, under their lowercased
//! name, so that map never grows past the number of local groups; pages are
//! capped at `MAX_PAGES` and `MAX_PAGE_BYTES` (8 MiB).

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
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

/// At most this many pages, and this many bytes of them, are kept; past
/// either the map starts again empty (a crawler walking `before=` and
/// `limit=100` through a group's history cannot grow it).
const MAX_PAGES: usize = 1024;
const MAX_PAGE_BYTES: usize = 8 << 20;

/// A page of a public group's threads as anonymous readers get it.
struct Page {
    body: Bytes,
    made: Instant,
    /// `db::posts::changes()` when it was read.
    posts_at: u64,
}

/// Taken before reading what a document is rendered from: a document is kept
/// only if nothing was dropped while it was read (a change made during the
/// read is never hidden behind a copy of what it replaced).
#[derive(Clone, Copy)]
pub struct Stamp {
    generation: u64,
    posts: u64,
    follows: u64,
}

/// A local group's remote member inboxes, as `federation::outbox` sends to
/// them.
struct Members {
    inboxes: Arc<Vec<String>>,
    made: Instant,
    /// `db::follows::changes()` when they were read.
    follows_at: u64,
}

/// At most this many member lists are kept (two per local group at most).
const MAX_MEMBER_LISTS: usize = 4096;

#[derive(Default)]
pub struct GroupDocs {
    actors: RwLock<HashMap<String, Arc<Doc>>>,
    /// Group rows read by the inbox's policy screen (every received activity
    /// names its group), kept like the documents.
    rows: RwLock<HashMap<String, (actor::Model, Instant)>>,
    pages: RwLock<HashMap<String, Page>>,
    /// Member inboxes by (group id, personal inboxes only).
    members: RwLock<HashMap<(i64, bool), Members>>,
    /// Moved by every `forget`.
    generation: AtomicU64,
}

impl GroupDocs {
    pub fn stamp(&self) -> Stamp {
        Stamp {
            generation: self.generation.load(Ordering::Acquire),
            posts: crate::db::posts::changes(),
            follows: crate::db::follows::changes(),
        }
    }

    fn unchanged_since(&self, stamp: Stamp) -> bool {
        self.generation.load(Ordering::Acquire) == stamp.generation
    }

    /// The kept document of the group `name` (any case), when still fresh.
    pub fn get(&self, name: &str) -> Option<Arc<Doc>> {
        let map = self.actors.read().ok()?;
        let doc = map.get(&name.to_lowercase())?;
        (doc.made.elapsed() < TTL).then(|| doc.clone())
    }

    /// Keep `doc`, read after `stamp` was taken, under its row's name.
    pub fn put(&self, doc: Arc<Doc>, stamp: Stamp) {
        if let Ok(mut map) = self.actors.write()
            && self.unchanged_since(stamp)
        {
            map.insert(doc.row.username.to_lowercase(), doc);
        }
    }

    /// The row of the local group `name` (any case), when one was kept
    /// (with a document or by `put_row`) and is still fresh.
    pub fn row(&self, name: &str) -> Option<actor::Model> {
        let key = name.to_lowercase();
        if let Some(doc) = self.get(&key) {
            return Some(doc.row.clone());
        }
        let map = self.rows.read().ok()?;
        let (row, made) = map.get(&key)?;
        (made.elapsed() < TTL).then(|| row.clone())
    }

    /// Keep a local group's row, read after `stamp` was taken.
    pub fn put_row(&self, row: actor::Model, stamp: Stamp) {
        if let Ok(mut map) = self.rows.write()
            && self.unchanged_since(stamp)
        {
            map.insert(row.username.to_lowercase(), (row, Instant::now()));
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

    /// Keep a page read after `stamp` was taken.
    pub fn put_page(&self, key: String, body: Bytes, stamp: Stamp) {
        if let Ok(mut map) = self.pages.write()
            && self.unchanged_since(stamp)
        {
            let held: usize = map.values().map(|p| p.body.len()).sum();
            if map.len() >= MAX_PAGES || held + body.len() > MAX_PAGE_BYTES {
                map.clear();
            }
            map.insert(
                key,
                Page {
                    body,
                    made: Instant::now(),
                    posts_at: stamp.posts,
                },
            );
        }
    }

    /// The kept member inboxes of a local group (`personal`: never a shared
    /// inbox, for a members-only group), when fresh and no membership, ban
    /// or remote actor was written here since they were read.
    pub fn members(&self, group_id: i64, personal: bool) -> Option<Arc<Vec<String>>> {
        let map = self.members.read().ok()?;
        let m = map.get(&(group_id, personal))?;
        (m.made.elapsed() < TTL && m.follows_at == crate::db::follows::changes())
            .then(|| m.inboxes.clone())
    }

    /// Keep a local group's member inboxes, read after `stamp` was taken.
    pub fn put_members(
        &self,
        group_id: i64,
        personal: bool,
        inboxes: Arc<Vec<String>>,
        stamp: Stamp,
    ) {
        if let Ok(mut map) = self.members.write()
            && self.unchanged_since(stamp)
        {
            if map.len() >= MAX_MEMBER_LISTS {
                map.clear();
            }
            map.insert(
                (group_id, personal),
                Members {
                    inboxes,
                    made: Instant::now(),
                    follows_at: stamp.follows,
                },
            );
        }
    }

    /// Drop everything kept: a group changed in this process.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.actors.write() {
            map.clear();
        }
        if let Ok(mut map) = self.rows.write() {
            map.clear();
        }
        if let Ok(mut map) = self.pages.write() {
            map.clear();
        }
        if let Ok(mut map) = self.members.write() {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> actor::Model {
        actor::Model::sample(1, "group", name)
    }

    #[test]
    fn a_kept_document_is_found_in_any_case_until_forgotten() {
        let docs = GroupDocs::default();
        assert!(docs.get("lupus").is_none());
        docs.put(
            Arc::new(Doc::new(row("lupus"), Bytes::from_static(b"{}"))),
            docs.stamp(),
        );
        assert_eq!(
            docs.get("LuPus").map(|d| d.body.clone()),
            Some(Bytes::from_static(b"{}"))
        );
        docs.forget();
        assert!(docs.get("lupus").is_none());
    }

    #[test]
    fn a_kept_row_is_found_in_any_case_until_forgotten_or_stale() {
        let docs = GroupDocs::default();
        assert!(docs.row("lupus").is_none());
        docs.put_row(row("Lupus"), docs.stamp());
        assert_eq!(docs.row("LUPUS").map(|r| r.username), Some("Lupus".into()));
        docs.forget();
        assert!(docs.row("lupus").is_none());
        // Read before a change: not kept.
        let before = docs.stamp();
        docs.forget();
        docs.put_row(row("lupus"), before);
        assert!(docs.row("lupus").is_none());
        // A document's row serves too.
        docs.put(Arc::new(Doc::new(row("lupus"), Bytes::new())), docs.stamp());
        assert!(docs.row("lupus").is_some());
        docs.forget();
        docs.put_row(row("lupus"), docs.stamp());
        if let Ok(mut map) = docs.rows.write()
            && let Some((_, made)) = map.get_mut("lupus")
        {
            *made = Instant::now() - TTL;
        }
        assert!(docs.row("lupus").is_none());
    }

    #[test]
    fn a_page_is_not_served_once_a_post_was_written_or_the_group_changed() {
        let docs = GroupDocs::default();
        let page = || Bytes::from_static(b"[]");
        docs.put_page("lupus|-|20".into(), page(), docs.stamp());
        // Other tests in this process may write posts: only assert what a
        // write must cause.
        crate::db::posts::changed();
        assert!(docs.page("lupus|-|20").is_none());
        docs.put_page("lupus|-|20".into(), page(), docs.stamp());
        docs.forget();
        assert!(docs.page("lupus|-|20").is_none());
        for n in 0..=MAX_PAGES {
            docs.put_page(format!("lupus|{n}|20"), Bytes::new(), docs.stamp());
        }
        assert!(docs.pages.read().map(|m| m.len()).unwrap_or(usize::MAX) <= MAX_PAGES);
        let big = Bytes::from(vec![b' '; MAX_PAGE_BYTES / 3]);
        for n in 0..10 {
            docs.put_page(format!("lupus|{n}|100"), big.clone(), docs.stamp());
        }
        let held: usize = docs
            .pages
            .read()
            .map(|m| m.values().map(|p| p.body.len()).sum())
            .unwrap_or(usize::MAX);
        assert!(held <= MAX_PAGE_BYTES, "{held}");
    }

    #[test]
    fn member_inboxes_are_not_used_once_a_membership_changed_or_the_group_did() {
        let docs = GroupDocs::default();
        let list = || Arc::new(vec!["https://a.example/inbox".to_string()]);
        assert!(docs.members(7, false).is_none());
        docs.put_members(7, false, list(), docs.stamp());
        assert_eq!(docs.members(7, false), Some(list()));
        // Kept apart from the personal-inbox list of the same group.
        assert!(docs.members(7, true).is_none());
        // Other tests in this process may write follows: only assert what a
        // write must cause.
        crate::db::follows::changed();
        assert!(docs.members(7, false).is_none());
        // Read before the change: never served.
        let before = docs.stamp();
        crate::db::follows::changed();
        docs.put_members(7, false, list(), before);
        assert!(docs.members(7, false).is_none());
        docs.put_members(7, false, list(), docs.stamp());
        docs.forget();
        assert!(docs.members(7, false).is_none());
        docs.put_members(7, false, list(), docs.stamp());
        if let Ok(mut map) = docs.members.write()
            && let Some(m) = map.get_mut(&(7, false))
        {
            m.made = Instant::now() - TTL;
        }
        assert!(docs.members(7, false).is_none());
    }

    #[test]
    fn what_was_read_before_a_change_is_not_kept() {
        let docs = GroupDocs::default();
        let before = docs.stamp();
        docs.forget();
        docs.put(Arc::new(Doc::new(row("lupus"), Bytes::new())), before);
        docs.put_page("lupus|-|20".into(), Bytes::new(), before);
        assert!(docs.get("lupus").is_none());
        assert!(docs.pages.read().map(|m| m.is_empty()).unwrap_or(false));
    }

    #[test]
    fn a_stale_document_is_not_served() {
        let docs = GroupDocs::default();
        let mut doc = Doc::new(row("lupus"), Bytes::new());
        doc.made = Instant::now() - TTL;
        docs.put(Arc::new(doc), docs.stamp());
        assert!(docs.get("lupus").is_none());
    }
}
