//! Managing the federation policy (mode, allow- and block-lists, Mastodon CSV
//! import and export, hiding or purging a domain's content, groups' own
//! allow-lists) and reading what admins watch (instances met, the audit
//! log). Every change is audited and takes effect at once everywhere: it
//! bumps the policy version in its transaction, then queued deliveries the
//! new policy refuses are cancelled. Enforcement is `federation::policy`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::users::CurrentUser;
use crate::{
    app::AppState,
    db::{self, entities::audit_entry},
    domain::{
        DeliveryStatus, GroupRole,
        policy::{self, DomainEntry, List, Mode},
    },
    error::AppError,
    federation::{delivery::host_of, objects::actor::DbActor},
};

/// Who makes a change: the CLI (the machine's operator) or a signed-in user.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    Cli,
    User(&'a CurrentUser),
}

impl Who<'_> {
    pub fn name(&self) -> String {
        match self {
            Who::Cli => "cli".into(),
            Who::User(u) => u.actor.username.clone(),
        }
    }
    fn require_admin(&self) -> Result<(), AppError> {
        match self {
            Who::Cli => Ok(()),
            Who::User(u) => super::instance::require_admin(u),
        }
    }
}

/// One entry as shown to admins.
#[derive(Debug, Clone)]
pub struct RuleView {
    pub domain: String,
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct PolicyView {
    pub mode: Mode,
    pub allow: Vec<RuleView>,
    pub block: Vec<RuleView>,
}

pub async fn view(state: &AppState) -> Result<PolicyView, AppError> {
    let row = db::policy::mode_row(&state.db).await?;
    let mut out = PolicyView {
        mode: Mode::parse(&row.mode).unwrap_or(Mode::Allowlist),
        allow: vec![],
        block: vec![],
    };
    for r in db::policy::rules(&state.db).await? {
        let v = RuleView {
            domain: r.domain,
            reason: r.reason,
            created_by: r.created_by,
            created_at: r.created_at,
        };
        match List::parse(&r.list) {
            Some(List::Allow) => out.allow.push(v),
            Some(List::Block) => out.block.push(v),
            None => {}
        }
    }
    Ok(out)
}

fn clean_reason(reason: Option<&str>) -> Result<Option<String>, AppError> {
    let r = reason.map(str::trim).filter(|r| !r.is_empty());
    if r.is_some_and(|r| r.chars().count() > 1000) {
        return Err(AppError::bad_request(
            "a reason has at most 1000 characters",
        ));
    }
    Ok(r.map(str::to_string))
}

/// Parse an admin's domain; our own domain cannot be listed.
pub fn parse_domain(state: &AppState, input: &str) -> Result<DomainEntry, AppError> {
    let entry = DomainEntry::parse(input).map_err(AppError::BadRequest)?;
    let ours = crate::federation::objects::authority(state.urls.base());
    if entry.matches(&ours) {
        return Err(AppError::bad_request(format!(
            "{entry} is this instance's own domain"
        )));
    }
    Ok(entry)
}

/// After a change: cancel what the new policy refuses, wake the workers.
async fn after_change(state: &AppState) -> Result<u64, AppError> {
    let n = crate::federation::policy::cancel_refused(state).await?;
    state.delivery_wakeup.notify_waiters();
    Ok(n)
}

pub async fn set_mode(
    state: &AppState,
    who: Who<'_>,
    mode: &str,
    reason: Option<&str>,
) -> Result<Mode, AppError> {
    who.require_admin()?;
    let mode = Mode::parse(mode).map_err(AppError::BadRequest)?;
    let reason = clean_reason(reason)?;
    let txn = db::write_txn(&state.db).await?;
    db::policy::set_mode(&txn, mode.as_str()).await?;
    db::policy::audit(
        &txn,
        &who.name(),
        "federation.mode",
        mode.as_str(),
        reason.as_deref(),
    )
    .await?;
    txn.commit().await?;
    crate::federation::policy::forget(state);
    tracing::info!(mode = mode.as_str(), "federation mode changed");
    after_change(state).await?;
    Ok(mode)
}

/// Add `domain` to a list. Already there: 409.
pub async fn add(
    state: &AppState,
    who: Who<'_>,
    list: List,
    domain: &str,
    reason: Option<&str>,
) -> Result<DomainEntry, AppError> {
    who.require_admin()?;
    let entry = parse_domain(state, domain)?;
    let reason = clean_reason(reason)?;
    let key = entry.to_string();
    let txn = db::write_txn(&state.db).await?;
    if db::policy::rule(&txn, list.as_str(), &key).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "{key} is already on the {} list",
            list.as_str()
        )));
    }
    db::policy::add_rule(&txn, list.as_str(), &key, reason.as_deref(), &who.name()).await?;
    db::policy::audit(
        &txn,
        &who.name(),
        &format!("federation.{}", list.as_str()),
        &key,
        reason.as_deref(),
    )
    .await?;
    txn.commit().await?;
    crate::federation::policy::forget(state);
    tracing::info!(list = list.as_str(), domain = %key, "federation list changed");
    after_change(state).await?;
    Ok(entry)
}

/// Take `domain` off a list. Not there: 404.
pub async fn remove(
    state: &AppState,
    who: Who<'_>,
    list: List,
    domain: &str,
    reason: Option<&str>,
) -> Result<DomainEntry, AppError> {
    who.require_admin()?;
    let entry = DomainEntry::parse(domain).map_err(AppError::BadRequest)?;
    let reason = clean_reason(reason)?;
    let key = entry.to_string();
    let txn = db::write_txn(&state.db).await?;
    if !db::policy::remove_rule(&txn, list.as_str(), &key).await? {
        return Err(AppError::NotFound(format!(
            "{key} on the {} list",
            list.as_str()
        )));
    }
    let action = match list {
        List::Allow => "federation.unallow",
        List::Block => "federation.unblock",
    };
    db::policy::audit(&txn, &who.name(), action, &key, reason.as_deref()).await?;
    txn.commit().await?;
    crate::federation::policy::forget(state);
    tracing::info!(list = list.as_str(), domain = %key, "federation list entry removed");
    after_change(state).await?;
    Ok(entry)
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub added: Vec<String>,
    pub already: Vec<String>,
    pub skipped: Vec<(usize, String)>,
}

/// Import a Mastodon domain-block CSV: all rows or none.
pub async fn import_blocks(
    state: &AppState,
    who: Who<'_>,
    csv: &str,
) -> Result<ImportReport, AppError> {
    who.require_admin()?;
    if csv.len() > 2_000_000 {
        return Err(AppError::PayloadTooLarge);
    }
    let parsed = policy::parse_mastodon_csv(csv).map_err(AppError::BadRequest)?;
    if parsed.blocks.is_empty() && parsed.skipped.is_empty() {
        return Err(AppError::bad_request("the file lists no domains"));
    }
    let ours = crate::federation::objects::authority(state.urls.base());
    if let Some(b) = parsed.blocks.iter().find(|b| b.domain.matches(&ours)) {
        return Err(AppError::BadRequest(format!(
            "line {}: {} is this instance's own domain",
            b.line, b.domain
        )));
    }
    let mut report = ImportReport {
        skipped: parsed.skipped,
        ..Default::default()
    };
    let txn = db::write_txn(&state.db).await?;
    for b in &parsed.blocks {
        let key = b.domain.to_string();
        if db::policy::rule(&txn, "block", &key).await?.is_some() {
            report.already.push(key);
            continue;
        }
        let reason = match (&b.public_comment, b.severity.as_str()) {
            (Some(c), "silence") => Some(format!("{c} (silenced in the imported list)")),
            (None, "silence") => Some("silenced in the imported list".to_string()),
            (c, _) => c.clone(),
        };
        db::policy::add_rule(&txn, "block", &key, reason.as_deref(), &who.name()).await?;
        report.added.push(key);
    }
    db::policy::audit(
        &txn,
        &who.name(),
        "federation.import",
        &format!("{} blocks", report.added.len()),
        None,
    )
    .await?;
    txn.commit().await?;
    crate::federation::policy::forget(state);
    tracing::info!(
        added = report.added.len(),
        already = report.already.len(),
        "block list imported"
    );
    after_change(state).await?;
    Ok(report)
}

pub async fn export_blocks(state: &AppState) -> Result<String, AppError> {
    let v = view(state).await?;
    Ok(policy::write_mastodon_csv(
        v.block
            .iter()
            .map(|r| (r.domain.as_str(), r.reason.as_deref())),
    ))
}

/// What an admin does with a domain's content already here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentAction {
    /// Hidden from every page, feed and collection; `Show` brings it back.
    Hide,
    Show,
    /// Deleted here for good, and its people's memberships of our groups ended.
    Purge,
}

impl ContentAction {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hide" => Some(ContentAction::Hide),
            "show" | "unhide" => Some(ContentAction::Show),
            "purge" => Some(ContentAction::Purge),
            _ => None,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            ContentAction::Hide => "hide",
            ContentAction::Show => "show",
            ContentAction::Purge => "purge",
        }
    }
}

/// Hide, show or purge the posts of a domain's people; how many posts.
pub async fn content(
    state: &AppState,
    who: Who<'_>,
    domain: &str,
    action: ContentAction,
    reason: Option<&str>,
) -> Result<u64, AppError> {
    who.require_admin()?;
    let entry = parse_domain(state, domain)?;
    let reason = clean_reason(reason)?;
    let txn = db::write_txn(&state.db).await?;
    let people = db::actors::remote_ids_matching(&txn, &entry).await?;
    let n = match action {
        ContentAction::Hide => db::posts::set_hidden_for_authors(&txn, people, true).await?,
        ContentAction::Show => db::posts::set_hidden_for_authors(&txn, people, false).await?,
        ContentAction::Purge => {
            let n = db::posts::delete_for_authors(&txn, people.clone()).await?;
            db::follows::remove_followers(&txn, &people).await?;
            n
        }
    };
    db::policy::audit(
        &txn,
        &who.name(),
        &format!("federation.{}", action.as_str()),
        &entry.to_string(),
        reason.as_deref(),
    )
    .await?;
    txn.commit().await?;
    crate::federation::policy::forget(state);
    tracing::info!(domain = %entry, action = action.as_str(), posts = n, "domain content changed");
    Ok(n)
}

/// A group's own allow-list ("members only from these instances").
#[derive(Debug, Clone)]
pub struct GroupDomains {
    pub restricted: bool,
    pub domains: Vec<String>,
}

pub async fn group_domains(state: &AppState, group: &DbActor) -> Result<GroupDomains, AppError> {
    Ok(GroupDomains {
        restricted: group.row.domains_restricted,
        domains: db::policy::group_domains(&state.db, group.row.id).await?,
    })
}

/// May `me` change this group's federation? Admins, its owner and moderators.
pub async fn require_group_staff(
    state: &AppState,
    who: Who<'_>,
    group: &DbActor,
) -> Result<(), AppError> {
    let Who::User(me) = who else {
        return Ok(());
    };
    if me.user.is_admin {
        return Ok(());
    }
    match db::roles::role_of(&state.db, group.row.id, me.actor.id).await? {
        Some(GroupRole::Owner | GroupRole::Moderator) => Ok(()),
        _ => Err(AppError::forbidden(
            "only this group's owner and moderators may do this",
        )),
    }
}

/// Set whether the group is restricted and its list, in one step. The list is
/// one domain per line (or comma-separated); any bad entry fails the whole.
pub async fn set_group_domains(
    state: &AppState,
    who: Who<'_>,
    group: &DbActor,
    restricted: bool,
    domains: &str,
) -> Result<GroupDomains, AppError> {
    if !group.row.local || !group.row.kind.eq("group") {
        return Err(AppError::bad_request(
            "only this instance's groups have their own federation list",
        ));
    }
    require_group_staff(state, who, group).await?;
    let mut entries: Vec<String> = vec![];
    for (i, raw) in domains
        .split(['\n', ','])
        .map(str::trim)
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
    {
        let e = parse_domain(state, raw)
            .map_err(|e| AppError::BadRequest(format!("entry {}: {e}", i + 1)))?;
        let key = e.to_string();
        if entries.contains(&key) {
            return Err(AppError::BadRequest(format!(
                "entry {}: {key} is listed twice",
                i + 1
            )));
        }
        entries.push(key);
    }
    if entries.len() > 1000 {
        return Err(AppError::bad_request("at most 1000 instances per group"));
    }
    let txn = db::write_txn(&state.db).await?;
    db::policy::set_group_domains(&txn, group.row.id, &entries).await?;
    db::actors::set_domains_restricted(&txn, group.row.id, restricted).await?;
    // The lists are part of the policy each process keeps.
    db::policy::bump(&txn).await?;
    db::policy::audit(
        &txn,
        &who.name(),
        if restricted {
            "group.restrict"
        } else {
            "group.open"
        },
        &group.row.username,
        Some(&entries.join(", ")),
    )
    .await?;
    txn.commit().await?;
    crate::federation::policy::forget(state);
    state.group_docs.forget();
    tracing::info!(group = %group.row.username, restricted, n = entries.len(), "group federation list changed");
    after_change(state).await?;
    Ok(GroupDomains {
        restricted,
        domains: entries,
    })
}

pub async fn audit_log(
    state: &AppState,
    who: Who<'_>,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, AppError> {
    who.require_admin()?;
    Ok(db::policy::audit_log(&state.db, limit).await?)
}

/// An instance this one has met, as admins see it.
#[derive(Debug, Clone)]
pub struct InstanceView {
    pub domain: String,
    pub software: Option<String>,
    pub version: Option<String>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_contact: Option<DateTime<Utc>>,
    /// Its people's memberships of our groups.
    pub members_here: u64,
    pub deliveries_pending: u64,
    pub deliveries_failed: u64,
    /// Deliveries failing in a row now (its breaker).
    pub failing_in_a_row: i32,
    /// None when federation with it is allowed.
    pub refused: Option<&'static str>,
}

/// Every instance we know people or groups of, or have delivered to.
pub async fn instances(state: &AppState, who: Who<'_>) -> Result<Vec<InstanceView>, AppError> {
    who.require_admin()?;
    let mut by: HashMap<String, InstanceView> = HashMap::new();
    let blank = |d: &str| InstanceView {
        domain: d.to_string(),
        software: None,
        version: None,
        first_seen: None,
        last_contact: None,
        members_here: 0,
        deliveries_pending: 0,
        deliveries_failed: 0,
        failing_in_a_row: 0,
        refused: None,
    };
    for (domain, first, last) in db::actors::remote_domains(&state.db).await? {
        let v = by.entry(domain.clone()).or_insert_with(|| blank(&domain));
        v.first_seen = Some(first);
        v.last_contact = last;
    }
    for (domain, n) in db::follows::members_by_domain(&state.db).await? {
        by.entry(domain.clone())
            .or_insert_with(|| blank(&domain))
            .members_here = n;
    }
    for (inbox, status) in db::deliveries::open_targets(&state.db).await? {
        let host = host_of(&inbox);
        let v = by.entry(host.clone()).or_insert_with(|| blank(&host));
        if status == DeliveryStatus::Pending.as_str() {
            v.deliveries_pending += 1;
        } else {
            v.deliveries_failed += 1;
        }
    }
    for i in db::instances::all(&state.db).await? {
        let v = by
            .entry(i.domain.clone())
            .or_insert_with(|| blank(&i.domain));
        v.software = i.software;
        v.version = i.version;
        v.failing_in_a_row = i.consecutive_failures;
        v.first_seen = Some(v.first_seen.map_or(i.created_at, |f| f.min(i.created_at)));
        v.last_contact = [v.last_contact, i.last_contact_at, i.last_success_at]
            .into_iter()
            .flatten()
            .max();
    }
    let p = crate::federation::policy::current(state).await?;
    let mut out: Vec<InstanceView> = by.into_values().collect();
    for v in &mut out {
        v.refused = p.decide(&v.domain).err().map(|r| r.as_str());
    }
    out.sort_by(|a, b| {
        b.last_contact
            .cmp(&a.last_contact)
            .then(a.domain.cmp(&b.domain))
    });
    Ok(out)
}
