//! What pages show, built from rows: never a row itself. Text fields are
//! escaped by the templates; `*_html` fields hold HTML that was sanitised
//! when it was stored.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::{
    db::entities::{actor, post},
    domain::{
        FollowState,
        topics::{CodeSystem, Topics},
    },
    federation::objects::actor::DbActor,
    service::{directory::Entry, users::CurrentUser},
};

/// The signed-in member, for the frame.
pub struct MeView {
    pub username: String,
    pub is_admin: bool,
}

impl MeView {
    pub fn new(u: &CurrentUser) -> Self {
        MeView {
            username: u.actor.username.clone(),
            is_admin: u.user.is_admin,
        }
    }
}

/// A date for people, and the machine-readable one for `<time>`.
pub struct When {
    pub iso: String,
    pub human: String,
}

impl When {
    pub fn new(t: DateTime<Utc>) -> Self {
        When {
            iso: t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            human: t.format("%-d %b %Y, %H:%M UTC").to_string(),
        }
    }
}

pub struct PersonView {
    /// Display name, or the username when there is none.
    pub name: String,
    pub handle: String,
}

impl PersonView {
    pub fn new(a: &actor::Model) -> Self {
        PersonView {
            name: a
                .display_name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| a.username.clone()),
            handle: format!("@{}@{}", a.username, a.domain),
        }
    }
}

pub struct GroupCard {
    /// `name` for ours, `name@host` for others: the `/g/…` path.
    pub path: String,
    pub handle: String,
    pub title: String,
    pub summary_html: String,
    pub local: bool,
    /// The viewer is an accepted member.
    pub member: bool,
    /// The viewer asked to join and the group has not answered yet.
    pub pending: bool,
}

impl GroupCard {
    pub fn new(g: &actor::Model, membership: Option<FollowState>) -> Self {
        GroupCard {
            path: group_path(g),
            handle: format!("@{}@{}", g.username, g.domain),
            title: g
                .display_name
                .clone()
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| g.username.clone()),
            summary_html: g.summary.clone().unwrap_or_default(),
            local: g.local,
            member: membership == Some(FollowState::Accepted),
            pending: membership == Some(FollowState::Pending),
        }
    }
}

/// `/g/…` path segment of a group, ready for a URL.
pub fn group_path(g: &actor::Model) -> String {
    if g.local {
        super::path_segment(&g.username)
    } else {
        super::path_segment(&format!("{}@{}", g.username, g.domain))
    }
}

/// One condition, code or tag, and the directory search that finds its
/// groups.
pub struct TopicTerm {
    pub text: String,
    /// Already URL-encoded, for `/directory?q=`.
    pub q: String,
}

impl TopicTerm {
    fn new(text: String, q: &str) -> Self {
        TopicTerm {
            text,
            q: super::urlencode(q),
        }
    }
}

/// What a group says it is about, ready to show.
pub struct TopicsView {
    pub conditions: Vec<TopicTerm>,
    /// `ORPHA:589`, `ICD-10 G70.0`, `SNOMED CT 91637004`.
    pub codes: Vec<TopicTerm>,
    /// `#tag`.
    pub tags: Vec<TopicTerm>,
    /// `en, de`; empty when none.
    pub languages: String,
    pub region: Option<String>,
}

impl TopicsView {
    pub fn new(t: &Topics) -> Self {
        TopicsView {
            conditions: t
                .conditions
                .iter()
                .map(|c| TopicTerm::new(c.clone(), c))
                .collect(),
            codes: t
                .codes
                .iter()
                .map(|c| {
                    let text = match c.system {
                        CodeSystem::Orpha => c.code.clone(),
                        s => format!("{} {}", s.label(), c.code),
                    };
                    TopicTerm::new(text, &c.to_string())
                })
                .collect(),
            tags: t
                .tags
                .iter()
                .map(|tag| TopicTerm::new(format!("#{tag}"), tag))
                .collect(),
            languages: t.languages.join(", "),
            region: t.region.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
            && self.codes.is_empty()
            && self.tags.is_empty()
            && self.languages.is_empty()
            && self.region.is_none()
    }
}

/// A group found in the directory.
pub struct DirectoryEntry {
    pub card: GroupCard,
    /// `name@host`.
    pub handle: String,
    /// Its host, or "this instance".
    pub lives: String,
    pub members: Option<u64>,
    pub topics: TopicsView,
    /// "open", "approval" or "invite" (only ours are told apart: another
    /// instance's group decides when the request arrives).
    pub join_policy: &'static str,
}

impl DirectoryEntry {
    pub fn new(e: &Entry, membership: Option<FollowState>) -> Self {
        let g = &e.group;
        DirectoryEntry {
            card: GroupCard::new(g, membership),
            handle: e.handle(),
            lives: if g.local {
                "this instance".into()
            } else {
                g.domain.clone()
            },
            members: e.members,
            topics: TopicsView::new(&e.topics),
            join_policy: if g.local {
                crate::domain::group::JoinPolicy::of(&g.join_policy).as_str()
            } else {
                "open"
            },
        }
    }
}

/// Another group, named and linked: a linked group, a share target.
pub struct GroupLinkView {
    pub id: i64,
    pub path: String,
    /// `name@host`.
    pub handle: String,
    pub title: String,
}

impl GroupLinkView {
    pub fn new(g: &DbActor) -> Self {
        let card = GroupCard::new(&g.row, None);
        GroupLinkView {
            id: g.row.id,
            path: card.path,
            handle: g.handle(),
            title: card.title,
        }
    }
}

pub struct ThreadItem {
    pub id: i64,
    pub title: String,
    pub author: PersonView,
    pub group: Option<GroupCard>,
    pub replies: u64,
    pub last_activity: When,
    pub content_warning: Option<String>,
}

impl ThreadItem {
    pub fn new(
        p: &post::Model,
        author: &actor::Model,
        group: Option<&actor::Model>,
        replies: &HashMap<i64, u64>,
    ) -> Self {
        ThreadItem {
            id: p.id,
            title: p.title.clone().unwrap_or_else(|| "(untitled)".into()),
            author: PersonView::new(author),
            group: group.map(|g| GroupCard::new(g, None)),
            replies: replies.get(&p.id).copied().unwrap_or(0),
            last_activity: When::new(p.last_activity_at.unwrap_or(p.published_at)),
            content_warning: p.content_warning.clone(),
        }
    }
}

pub struct PostItem {
    pub id: i64,
    pub title: Option<String>,
    pub author: PersonView,
    pub published: When,
    pub edited: bool,
    pub content_html: String,
    pub content_warning: Option<String>,
    pub mine: bool,
    /// Replies shown under this one (one level).
    pub children: Vec<PostItem>,
}

impl PostItem {
    pub fn new(p: &post::Model, author: &actor::Model, me: Option<i64>) -> Self {
        PostItem {
            id: p.id,
            title: p.title.clone(),
            author: PersonView::new(author),
            published: When::new(p.published_at),
            edited: p.updated_at.is_some(),
            content_html: p.content_html.clone(),
            content_warning: p
                .content_warning
                .clone()
                .or_else(|| p.sensitive.then(|| "Sensitive content".to_string())),
            mine: me == Some(p.author_id),
            children: vec![],
        }
    }
}

/// Replies threaded one level: direct replies to the thread, each with every
/// later reply below it (however deep) in time order.
pub fn thread_replies(
    thread_id: i64,
    replies: &[(post::Model, actor::Model)],
    me: Option<i64>,
) -> Vec<PostItem> {
    let parent_of: HashMap<i64, Option<i64>> = replies
        .iter()
        .map(|(p, _)| (p.id, p.in_reply_to_id))
        .collect();
    // The top-level reply a post hangs under.
    let top = |mut id: i64| {
        for _ in 0..64 {
            match parent_of.get(&id).copied().flatten() {
                Some(parent) if parent != thread_id && parent_of.contains_key(&parent) => {
                    id = parent
                }
                _ => break,
            }
        }
        id
    };
    let mut out: Vec<PostItem> = vec![];
    for (p, a) in replies {
        let t = top(p.id);
        let item = PostItem::new(p, a, me);
        if t == p.id {
            out.push(item);
        } else if let Some(parent) = out.iter_mut().find(|i| i.id == t) {
            parent.children.push(item);
        } else {
            out.push(item);
        }
    }
    out
}

/// Plain text back out of the simple HTML we make from typed text, to fill
/// an edit form.
pub fn html_to_plain(html: &str) -> String {
    let text = html
        .replace("</p><p>", "\n\n")
        .replace("<br>", "\n")
        .replace("<br />", "\n");
    crate::domain::content::sanitize_plain(&text, 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(id: i64, reply_to: Option<i64>) -> (post::Model, actor::Model) {
        let now = Utc::now();
        (
            post::Model {
                id,
                ap_id: format!("https://x/{id}"),
                author_id: 1,
                group_id: 1,
                thread_id: Some(1),
                in_reply_to_id: reply_to,
                title: None,
                content_html: String::new(),
                source: None,
                local: true,
                content_warning: None,
                sensitive: false,
                tags: None,
                published_at: now,
                updated_at: None,
                deleted_at: None,
                last_activity_at: None,
                hidden_at: None,
                locked_at: None,
                held_at: None,
            },
            actor::Model::sample(1, "person", "u"),
        )
    }

    #[test]
    fn replies_nest_one_level_under_their_top_reply() {
        // 2 and 5 answer the thread; 3 answers 2; 4 answers 3; 6 answers a
        // post we do not have.
        let rows = vec![
            post(2, Some(1)),
            post(3, Some(2)),
            post(4, Some(3)),
            post(5, Some(1)),
            post(6, Some(99)),
        ];
        let tree = thread_replies(1, &rows, None);
        let ids: Vec<i64> = tree.iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![2, 5, 6]);
        let under_2: Vec<i64> = tree[0].children.iter().map(|p| p.id).collect();
        assert_eq!(under_2, vec![3, 4]);
        assert!(tree[1].children.is_empty());
    }
}
