//! The federation policy, enforced. `refusal` is the one decision every path
//! asks — inbound activities, deliveries, fetches (actors, objects, keys,
//! WebFinger, through the library's URL verifier), signed GETs of our
//! content — so an admin's change holds everywhere at once.
//!
//! Each process keeps the parsed policy and checks the stored version at
//! most once every `RECHECK` (one tiny query): a change made here is in
//! force on the next request, one made by the CLI, the web page of another
//! replica or another process within a second. Reading the version on every
//! request cost a query per fetch, most of an actor document's price.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use activitypub_federation::{
    config::UrlVerifier, error::Error as FedError, fetch::object_id::ObjectId,
};
use axum::{
    extract::Request,
    http::HeaderMap,
    middleware::Next,
    response::{IntoResponse, Response},
};
use url::Url;

use super::{FedData, objects::actor::DbActor, signing::SignatureHeader};
use crate::{
    app::AppState,
    db::{self, entities::actor},
    domain::policy::{DomainEntry, GroupList, Mode, Policy, Refusal, group_allows},
    error::AppError,
};

/// What the URL verifier answers for a refused host (mapped to 403).
pub const REFUSED: &str = "not allowed by this instance's federation policy";
/// What it answers when the policy cannot be read (mapped to 503: fail closed).
pub const UNREADABLE: &str = "federation policy unavailable";

/// How long this process trusts its copy before it checks the version.
pub const RECHECK: Duration = Duration::from_secs(1);

/// This process's copy of the policy: the version it was read at, when the
/// version was last checked, and the policy. `forgets` counts `forget`
/// calls: a copy read while a change was being made here is not kept.
#[derive(Default)]
pub struct Cache {
    copy: RwLock<Option<Cached>>,
    forgets: AtomicU64,
}

struct Cached {
    version: i64,
    checked: Instant,
    policy: Arc<Policy>,
}

impl Cache {
    /// The copy, if its version was checked less than `RECHECK` ago.
    fn fresh(&self) -> Option<Arc<Policy>> {
        let guard = self.copy.read().ok()?;
        let c = guard.as_ref()?;
        (c.checked.elapsed() < RECHECK).then(|| c.policy.clone())
    }

    /// Taken before anything is read from the database.
    fn stamp(&self) -> u64 {
        self.forgets.load(Ordering::Acquire)
    }

    /// The copy, marked checked, if it is still at `version` and nothing
    /// was forgotten since `stamp`.
    fn confirm(&self, stamp: u64, version: i64) -> Option<Arc<Policy>> {
        let mut guard = self.copy.write().ok()?;
        if self.stamp() != stamp {
            return None;
        }
        let c = guard.as_mut().filter(|c| c.version == version)?;
        c.checked = Instant::now();
        Some(c.policy.clone())
    }

    /// Keep `policy`, read at `version` after `stamp`, unless a change was
    /// made here since: what was read may predate that change.
    fn keep(&self, stamp: u64, version: i64, policy: Arc<Policy>) -> bool {
        let Ok(mut guard) = self.copy.write() else {
            return false;
        };
        if self.stamp() != stamp {
            return false;
        }
        *guard = Some(Cached {
            version,
            checked: Instant::now(),
            policy,
        });
        true
    }

    fn forget(&self) {
        if let Ok(mut guard) = self.copy.write() {
            self.forgets.fetch_add(1, Ordering::AcqRel);
            *guard = None;
        }
    }
}

/// Drop this process's copy: called after every change made here, so the
/// next request reads it again.
pub fn forget(state: &AppState) {
    state.policy.forget();
}

/// The policy in force now.
pub async fn current(state: &AppState) -> Result<Arc<Policy>, AppError> {
    if let Some(p) = state.policy.fresh() {
        return Ok(p);
    }
    let stamp = state.policy.stamp();
    let version = db::policy::version(&state.db).await?;
    if let Some(p) = state.policy.confirm(stamp, version) {
        return Ok(p);
    }
    let row = db::policy::mode_row(&state.db).await?;
    let mut policy = Policy {
        mode: Mode::parse(&row.mode).unwrap_or(Mode::Allowlist),
        allow: vec![],
        block: vec![],
        groups: vec![],
    };
    for r in db::policy::rules(&state.db).await? {
        let Ok(entry) = DomainEntry::parse(&r.domain) else {
            tracing::warn!(domain = %r.domain, "unreadable policy entry ignored");
            continue;
        };
        match r.list.as_str() {
            "allow" => policy.allow.push(entry),
            "block" => policy.block.push(entry),
            _ => {}
        }
    }
    for g in db::actors::restricted_groups(&state.db).await? {
        let entries = read_group_entries(state, g.id).await?;
        policy.groups.push(GroupList::new(g.id, &g.ap_id, entries));
    }
    let policy = Arc::new(policy);
    state.policy.keep(stamp, row.version, policy.clone());
    Ok(policy)
}

/// A local group's own allow-list, when it has one in force: from the kept
/// policy, or read when the copy predates the group's restriction.
pub async fn group_entries(
    state: &AppState,
    group: &actor::Model,
) -> Result<Option<Vec<DomainEntry>>, AppError> {
    if !group.local || !group.domains_restricted {
        return Ok(None);
    }
    if let Some(g) = current(state).await?.group(group.id) {
        return Ok(Some(g.entries.clone()));
    }
    Ok(Some(read_group_entries(state, group.id).await?))
}

async fn read_group_entries(state: &AppState, id: i64) -> Result<Vec<DomainEntry>, AppError> {
    Ok(db::policy::group_domains(&state.db, id)
        .await?
        .iter()
        .filter_map(|d| DomainEntry::parse(d).ok())
        .collect())
}

fn is_ours(state: &AppState, authority: &str) -> bool {
    authority.eq_ignore_ascii_case(&super::objects::authority(state.urls.base()))
}

/// The decision: may we deal with `authority` (`host[:port]`), and, when a
/// local group is concerned, within that group? None means yes.
pub async fn refusal(
    state: &AppState,
    authority: &str,
    group: Option<&actor::Model>,
) -> Result<Option<Refusal>, AppError> {
    if is_ours(state, authority) {
        return Ok(None);
    }
    if let Err(r) = current(state).await?.decide(authority) {
        return Ok(Some(r));
    }
    if let Some(g) = group
        && let Some(entries) = group_entries(state, g).await?
        && let Err(r) = group_allows(&entries, authority)
    {
        return Ok(Some(r));
    }
    Ok(None)
}

/// `refusal` as an error: 403 naming the host and why.
pub async fn check(
    state: &AppState,
    authority: &str,
    group: Option<&actor::Model>,
) -> Result<(), AppError> {
    match refusal(state, authority, group).await? {
        None => Ok(()),
        Some(r) => {
            tracing::info!(instance = %authority, reason = r.as_str(), "refused by federation policy");
            Err(refused(authority, r))
        }
    }
}

pub fn refused(authority: &str, r: Refusal) -> AppError {
    match r {
        Refusal::NotListedByGroup => AppError::Forbidden(format!(
            "{authority} is not on this group's list of instances it federates with"
        )),
        _ => AppError::Forbidden(format!(
            "{authority} is {}: this instance does not federate with it",
            r.as_str()
        )),
    }
}

/// The library asks this before every fetch (actors, objects, keys,
/// WebFinger), for every received activity's id, and for every inbox it
/// signs for.
#[derive(Clone)]
pub struct Verifier(pub AppState);

#[async_trait::async_trait]
impl UrlVerifier for Verifier {
    async fn verify(&self, url: &Url) -> Result<(), FedError> {
        let authority = super::objects::authority(url);
        match refusal(&self.0, &authority, None).await {
            Ok(None) => Ok(()),
            Ok(Some(r)) => {
                tracing::info!(instance = %authority, reason = r.as_str(), "fetch or send refused by federation policy");
                Err(FedError::UrlVerificationError(REFUSED))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the federation policy: refusing");
                Err(FedError::UrlVerificationError(UNREADABLE))
            }
        }
    }
}

/// Local groups an activity concerns: the inbox's own group, and any of our
/// group or post URLs it names as recipient, object, target, audience,
/// context or parent (one level into an embedded object).
pub async fn target_groups(
    state: &AppState,
    inbox_path: &str,
    body: &serde_json::Value,
) -> Result<Vec<actor::Model>, AppError> {
    let mut urls: Vec<String> = vec![];
    if let Some(name) = group_name_of_path(inbox_path) {
        urls.push(state.urls.group(&name).to_string());
    }
    let mut collect = |v: &serde_json::Value| {
        for key in [
            "to",
            "cc",
            "bto",
            "bcc",
            "audience",
            "object",
            "target",
            "context",
            "inReplyTo",
        ] {
            match v.get(key) {
                Some(serde_json::Value::String(s)) => urls.push(s.clone()),
                Some(serde_json::Value::Array(a)) => urls.extend(
                    a.iter()
                        .take(64)
                        .filter_map(super::objects::id_of)
                        .map(|u| u.to_string()),
                ),
                Some(o @ serde_json::Value::Object(_)) => {
                    if let Some(u) = super::objects::id_of(o) {
                        urls.push(u.to_string());
                    }
                }
                _ => {}
            }
        }
    };
    collect(body);
    if let Some(o) = body.get("object").filter(|o| o.is_object()) {
        collect(o);
    }
    // A group is named in several places of one activity (its `cc`, the
    // object's `cc`, `audience`, its followers): each is looked up once.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Named {
        Group(String),
        Post(i64),
    }
    let base = state.urls.base();
    let mut named: Vec<Named> = urls
        .iter()
        .filter_map(|u| Url::parse(u).ok())
        .filter(|u| super::objects::same_origin(u, base))
        .filter_map(|u| {
            group_name_of_path(u.path()).map(Named::Group).or_else(|| {
                u.path()
                    .strip_prefix("/posts/")
                    .and_then(|s| s.parse::<i64>().ok())
                    .map(Named::Post)
            })
        })
        .collect();
    named.sort_unstable();
    named.dedup();
    let mut groups: Vec<actor::Model> = vec![];
    for n in named {
        let group = match n {
            // Every activity names its group: its row is kept for a moment
            // (as its actor document is), dropped by any change made here.
            Named::Group(name) => match state.group_docs.row(&name) {
                Some(row) => Some(row),
                None => {
                    let stamp = state.group_docs.stamp();
                    let row = db::actors::local_by_name_and_kind(
                        &state.db,
                        &name,
                        crate::domain::ActorKind::Group,
                    )
                    .await?;
                    if let Some(r) = &row {
                        state.group_docs.put_row(r.clone(), stamp);
                    }
                    row
                }
            },
            Named::Post(id) => match db::posts::by_id(&state.db, id).await? {
                Some(p) => db::actors::by_id(&state.db, p.group_id).await?,
                None => None,
            },
        };
        if let Some(g) = group
            && !groups.iter().any(|x| x.id == g.id)
        {
            // Read again as the post's group moments later: kept.
            super::memo::keep(&g);
            groups.push(g);
        }
    }
    Ok(groups)
}

fn group_name_of_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/groups/")?;
    let name = rest.split('/').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// An inbound activity, before anything of it is stored: the signer's
/// instance, the actor's and the id's, each against the policy and against
/// every local group the activity concerns.
pub async fn screen_inbound(
    state: &AppState,
    inbox_path: &str,
    body: &serde_json::Value,
) -> Result<(), AppError> {
    let mut hosts: Vec<String> = vec![];
    for key in ["actor", "id"] {
        if let Some(u) = body.get(key).and_then(super::objects::id_of) {
            hosts.push(super::objects::authority(&u));
        }
    }
    hosts.dedup();
    for h in &hosts {
        check(state, h, None).await?;
    }
    // Leaving a group (Undo) or taking one's content back (Delete) is never
    // refused by a group's own list: only joining, writing and reading are.
    if matches!(
        body.get("type").and_then(|t| t.as_str()),
        Some("Undo" | "Delete")
    ) {
        return Ok(());
    }
    for g in target_groups(state, inbox_path, body).await? {
        for h in &hosts {
            check(state, h, Some(&g)).await?;
        }
    }
    Ok(())
}

/// Who is fetching our content: nobody we know (no or an unusable
/// signature, in open mode), or an actor whose signature verified.
#[derive(Debug, Clone)]
pub enum Fetcher {
    Anonymous,
    /// `actor_id`: the signer's actor row (the key's owner).
    Verified {
        actor: Url,
        authority: String,
        actor_id: i64,
    },
}

/// Middleware on the routes that serve our content as ActivityPub (not on
/// WebFinger, NodeInfo or the instance actor, which every peer needs to talk
/// to us at all). A signature from a refused instance: 403. In allowlist mode,
/// an unsigned (or unverifiable) fetch: 403 too, since unsigned fetches are
/// how allow-lists have been bypassed elsewhere. Browsers pass where they are
/// sent to a page (a group, a post), and only there.
pub async fn gate_fetch(data: FedData, mut req: Request, next: Next) -> Response {
    if crate::web::wants_html(req.headers()) && redirects_browsers(req.uri().path()) {
        return next.run(req).await;
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().as_str().to_string();
    match identify(&data, req.headers(), &method, &path).await {
        Ok(f) => {
            req.extensions_mut().insert(f);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// The routes whose handler sends a browser to the page (a group, a post);
/// every other route answers JSON, so it stays behind the gate.
fn redirects_browsers(path: &str) -> bool {
    let mut parts = path.trim_matches('/').split('/');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("groups" | "posts"), Some(_), None)
    )
}

async fn identify(
    data: &FedData,
    headers: &HeaderMap,
    method: &str,
    path: &str,
) -> Result<Fetcher, AppError> {
    let policy = current(data).await?;
    let strict = policy.mode == Mode::Allowlist;
    let Some(sig) = headers
        .get("signature")
        .and_then(|v| v.to_str().ok())
        .and_then(SignatureHeader::parse)
    else {
        if strict {
            return Err(signed_fetch_required());
        }
        return Ok(Fetcher::Anonymous);
    };
    let Ok(mut actor) = Url::parse(&sig.key_id) else {
        return Err(AppError::BadRequest("signature keyId is not a URL".into()));
    };
    let authority = super::objects::authority(&actor);
    check(data, &authority, None).await?;
    actor.set_fragment(None);
    match verify_fetch(data, &sig, &actor, headers, method, path).await {
        Ok(actor_id) => Ok(Fetcher::Verified {
            actor,
            authority,
            actor_id,
        }),
        Err(why) if strict => {
            tracing::info!(instance = %authority, why, "signed fetch refused");
            Err(signed_fetch_required())
        }
        Err(why) => {
            tracing::debug!(instance = %authority, why, "unverifiable signed fetch served as anonymous");
            Ok(Fetcher::Anonymous)
        }
    }
}

fn signed_fetch_required() -> AppError {
    AppError::Forbidden(
        "this instance federates only with listed instances: sign the request with an actor of one"
            .into(),
    )
}

async fn verify_fetch(
    data: &FedData,
    sig: &SignatureHeader,
    actor: &Url,
    headers: &HeaderMap,
    method: &str,
    path: &str,
) -> Result<i64, &'static str> {
    super::inbox::check_date(
        headers,
        data.clock.now(),
        data.settings.federation.max_clock_skew_secs,
    )
    .map_err(|_| "missing or stale Date")?;
    let id: ObjectId<DbActor> = actor.clone().into();
    let signer = id
        .dereference(data)
        .await
        .map_err(|_| "the signer's actor cannot be read")?;
    super::signing::verify(
        sig,
        headers,
        method,
        path,
        &signer.row.public_key,
        data.clock.now(),
    )?;
    Ok(signer.row.id)
}

/// A local group's actor document: hidden (404) from fetchers its own
/// allow-list does not cover, and from everyone when the group never
/// federates.
pub async fn may_fetch_group(
    data: &FedData,
    fetcher: Option<&Fetcher>,
    group: &actor::Model,
) -> Result<(), AppError> {
    if !crate::service::access::visibility(group).federates() {
        return Err(AppError::not_found("group"));
    }
    let Some(entries) = group_entries(data, group).await? else {
        return Ok(());
    };
    match fetcher {
        Some(Fetcher::Verified { authority, .. })
            if is_ours(data, authority) || group_allows(&entries, authority).is_ok() =>
        {
            Ok(())
        }
        _ => Err(AppError::not_found("group")),
    }
}

/// A local group's content (outbox, members, moderators, posts): as for
/// its actor, and for a members-only group only a verified signature by an
/// approved member (per actor: another person on the same instance gets the
/// same 404 as a stranger).
pub async fn may_fetch_content(
    data: &FedData,
    fetcher: Option<&Fetcher>,
    group: &actor::Model,
) -> Result<(), AppError> {
    may_fetch_group(data, fetcher, group).await?;
    if crate::service::access::visibility(group) == crate::domain::group::Visibility::Public {
        return Ok(());
    }
    match fetcher {
        Some(Fetcher::Verified { actor_id, .. })
            if crate::service::access::is_member_or_staff(&data.db, group, *actor_id).await? =>
        {
            Ok(())
        }
        _ => Err(AppError::not_found("group")),
    }
}

/// Queued deliveries the policy now refuses,
/// with why. A group's own list covers what the group sends, and what a
/// member sends that names the group (a reply's copy to a mentioned person).
pub async fn refused_deliveries(
    state: &AppState,
    rows: &[db::deliveries::Target],
) -> Result<Vec<(i64, String)>, AppError> {
    let policy = current(state).await?;
    Ok(rows
        .iter()
        .filter_map(|t| {
            let why = refused_delivery(state, &policy, t.actor_id, &t.inbox, &t.payload)?;
            Some((t.id, why))
        })
        .collect())
}

/// Why `policy` refuses a delivery by actor `sender` of `payload` to
/// `inbox`, if it does: decided in memory, so a worker asks it again
/// right before it sends.
pub fn refused_delivery(
    state: &AppState,
    policy: &Policy,
    sender: i64,
    inbox: &str,
    payload: &[u8],
) -> Option<String> {
    let host = super::delivery::host_of(inbox);
    if is_ours(state, &host) {
        return None;
    }
    let r = policy.decide_delivery(&host, sender, payload).err()?;
    Some(format!("cancelled: {host} is {}", r.as_str()))
}

/// Cancel every queued delivery the policy refuses now (after a change).
pub async fn cancel_refused(state: &AppState) -> Result<u64, AppError> {
    let rows = db::deliveries::pending_targets(&state.db).await?;
    let mut n = 0;
    for (id, why) in refused_deliveries(state, &rows).await? {
        n += db::deliveries::mark_cancelled(&state.db, vec![id], &why).await?;
    }
    if n > 0 {
        tracing::info!(
            cancelled = n,
            "queued deliveries cancelled by federation policy"
        );
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: Mode) -> Arc<Policy> {
        Arc::new(Policy {
            mode,
            allow: vec![],
            block: vec![],
            groups: vec![],
        })
    }

    #[test]
    fn a_copy_read_while_a_change_was_made_here_is_not_kept() {
        let cache = Cache::default();
        // A reader starts, then an admin's change commits and forgets.
        let stamp = cache.stamp();
        cache.forget();
        assert!(!cache.keep(stamp, 1, policy(Mode::Open)));
        assert!(cache.fresh().is_none(), "the old read is not served");
        // Nor is a copy confirmed by a version read before the change.
        let stamp = cache.stamp();
        assert!(cache.keep(stamp, 2, policy(Mode::Allowlist)));
        let stamp = cache.stamp();
        cache.forget();
        assert!(cache.confirm(stamp, 2).is_none());
    }

    #[test]
    fn a_copy_read_with_no_change_since_is_kept_and_confirmed() {
        let cache = Cache::default();
        let stamp = cache.stamp();
        assert!(cache.keep(stamp, 7, policy(Mode::Allowlist)));
        assert_eq!(cache.fresh().map(|p| p.mode), Some(Mode::Allowlist));
        let stamp = cache.stamp();
        assert!(cache.confirm(stamp, 7).is_some());
        assert!(
            cache.confirm(stamp, 8).is_none(),
            "another version is read again"
        );
    }
}
