//! Finding groups: what a group says it is about (edited by its staff), and
//! the search across our groups and those learned from other instances'
//! directories, ranked by `domain::topics::relevance`.

use super::{federation::Who, federation::require_group_staff, users::CurrentUser};
use crate::{
    app::AppState,
    db::{self, entities::actor},
    domain::topics::{self, Searchable, Topics},
    error::AppError,
    federation::{FedData, objects::actor::DbActor, policy},
};

/// Most results of one search.
pub const MAX_RESULTS: usize = 50;
/// Most candidates ranked for one search.
const MAX_CANDIDATES: u64 = 1000;

/// A change to what a group is about, as typed (lists already split).
#[derive(Debug, Default, Clone)]
pub struct AboutChange {
    pub conditions: Vec<String>,
    pub tags: Vec<String>,
    pub codes: Vec<String>,
    pub languages: Vec<String>,
    pub region: Option<String>,
    /// Listed in directories (here and on other instances).
    pub discoverable: bool,
}

impl AboutChange {
    pub fn check(&self) -> Result<Topics, AppError> {
        Topics::parse(
            &self.conditions,
            &self.tags,
            &self.codes,
            &self.languages,
            self.region.as_deref(),
        )
        .map_err(AppError::BadRequest)
    }
}

/// Set what a local group is about and whether it is listed (its owner,
/// moderators, admins, or the CLI). Everything is checked before anything
/// is written.
pub async fn set_about(
    data: &FedData,
    who: Who<'_>,
    group: &DbActor,
    change: &AboutChange,
) -> Result<Topics, AppError> {
    if !group.row.local || !group.is_group() {
        return Err(AppError::bad_request(
            "only this instance's groups can be described here",
        ));
    }
    require_group_staff(data, who, group).await?;
    let t = change.check()?;
    let txn = db::write_txn(&data.db).await?;
    db::directory::set_topics(&txn, group.row.id, &t).await?;
    db::actors::set_discoverable(&txn, group.row.id, change.discoverable).await?;
    db::moderation::log(
        &txn,
        group.row.id,
        &who.name(),
        "group.about",
        &format!(
            "conditions={} tags={} codes={} languages={} region={} listed={}",
            t.conditions.len(),
            t.tags.len(),
            t.codes.len(),
            t.languages.len(),
            t.region.as_deref().unwrap_or("-"),
            change.discoverable
        ),
        None,
    )
    .await?;
    txn.commit().await?;
    data.group_docs.forget();
    tracing::info!(group = %group.handle(), listed = change.discoverable, "group description changed");
    Ok(t)
}

/// May this group appear in a directory (ours, or another instance's)?
/// Public, discoverable, not deleted.
pub fn is_listed(g: &actor::Model) -> bool {
    g.kind == crate::domain::ActorKind::Group.as_str()
        && g.discoverable
        && g.deleted_at.is_none()
        && super::access::visibility(g) == crate::domain::group::Visibility::Public
}

/// One search result.
#[derive(Debug, Clone)]
pub struct Entry {
    pub group: actor::Model,
    pub topics: Topics,
    /// How many members it has, when it shows it.
    pub members: Option<u64>,
    pub score: u32,
}

impl Entry {
    pub fn handle(&self) -> String {
        format!("{}@{}", self.group.username, self.group.domain)
    }
}

/// Split a query into the words the database prefilter looks for (the
/// whole query too, so `G70.0` and `ORPHA:589` are found as typed).
fn terms(q: &str) -> Vec<String> {
    let q = q.trim().to_lowercase();
    if q.is_empty() {
        return vec![];
    }
    let mut out: Vec<String> = vec![q.clone()];
    let bare = q.split_once(':').map(|(_, c)| c.to_string());
    out.extend(bare);
    out.extend(
        q.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_'))
            .filter(|w| w.chars().count() >= 2)
            .map(str::to_string),
    );
    out.sort();
    out.dedup();
    out.truncate(10);
    out
}

/// Groups here and on every instance we know that answer `q`, best first:
/// only public, discoverable groups, only on instances we federate with.
/// An empty query lists them all (biggest first).
pub async fn search(
    state: &AppState,
    viewer: Option<&CurrentUser>,
    q: &str,
) -> Result<Vec<Entry>, AppError> {
    let q: String = q.trim().chars().take(200).collect();
    let rows = db::directory::candidates(&state.db, &terms(&q), MAX_CANDIDATES).await?;
    let mut allowed = Vec::with_capacity(rows.len());
    for g in rows {
        if !super::access::may_see_profile(viewer, &g) {
            continue;
        }
        if !g.local && policy::refusal(state, &g.domain, None).await?.is_some() {
            continue;
        }
        allowed.push(g);
    }
    let refs: Vec<&actor::Model> = allowed.iter().collect();
    let mut all_topics = db::directory::topics_of_many(&state.db, &refs).await?;
    let mut scored: Vec<(u32, actor::Model, Topics)> = Vec::new();
    for g in allowed {
        let t = all_topics.remove(&g.id).unwrap_or_default();
        let summary = g.summary.clone().unwrap_or_default();
        let score = topics::relevance(
            &q,
            &Searchable {
                name: &g.username,
                title: g.display_name.as_deref().unwrap_or(&g.username),
                summary: &summary,
                topics: &t,
            },
        );
        if score > 0 {
            scored.push((score, g, t));
        }
    }
    let mut out = Vec::with_capacity(scored.len());
    for (score, group, topics) in scored {
        let members = if group.local {
            super::access::shown_member_count(&state.db, viewer, &group).await?
        } else {
            group
                .remote_member_count
                .and_then(|n| u64::try_from(n).ok())
        };
        out.push(Entry {
            group,
            topics,
            members,
            score,
        });
    }
    out.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.members.unwrap_or(0).cmp(&a.members.unwrap_or(0)))
            .then(b.group.local.cmp(&a.group.local))
            .then(a.handle().cmp(&b.handle()))
    });
    out.truncate(MAX_RESULTS);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_searched_whole_and_by_word() {
        assert_eq!(terms("  "), Vec::<String>::new());
        let t = terms("Myasthenia Gravis");
        assert!(t.contains(&"myasthenia gravis".to_string()));
        assert!(t.contains(&"gravis".to_string()));
        let c = terms("ORPHA:589");
        assert!(c.contains(&"orpha:589".to_string()) && c.contains(&"589".to_string()));
    }
}
