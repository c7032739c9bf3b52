//! Federation pages: for admins, the mode and lists (add, remove, Mastodon
//! CSV import and export, a domain's content hidden or purged), the
//! instances met, and the audit log; for a group's owner and moderators,
//! the group's own allow-list (`/g/{name}/federation`).

use askama::Template;
use axum::{
    Router,
    extract::{Path, Query},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;

use super::{
    Layout, Notice,
    admin::{DoneQuery, admin, client_error},
    ok, render, see_other,
    session::{CSRF_MESSAGE, Submitted, Viewer},
    views::When,
};
use crate::{
    app::AppState,
    domain::{ActorKind, policy::List},
    error::AppError,
    federation::{FedData, objects::actor::DbActor},
    service::federation::{self as fed, ContentAction, Who},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/federation", get(policy_page))
        .route("/admin/federation/mode", axum::routing::post(set_mode))
        .route("/admin/federation/add", axum::routing::post(add))
        .route("/admin/federation/remove", axum::routing::post(remove))
        .route("/admin/federation/import", axum::routing::post(import))
        .route("/admin/federation/export.csv", get(export))
        .route("/admin/federation/content", axum::routing::post(content))
        .route("/admin/instances", get(instances_page))
        .route("/admin/audit", get(audit_page))
        .route("/g/{name}/federation", get(group_page).post(group_save))
}

struct RuleRow {
    domain: String,
    reason: String,
    by: String,
    since: When,
}

#[derive(Template)]
#[template(path = "admin/federation.html")]
struct PolicyPage {
    l: Layout,
    allowlist: bool,
    allow: Vec<RuleRow>,
    block: Vec<RuleRow>,
    error: Option<String>,
    /// What an import did, shown once.
    report: Option<String>,
    /// The form's values, kept after an error.
    domain: String,
    reason: String,
    csv: String,
}

async fn policy_view(data: &FedData, viewer: &Viewer) -> Result<PolicyPage, AppError> {
    let v = fed::view(data).await?;
    let rows = |r: Vec<fed::RuleView>| {
        r.into_iter()
            .map(|r| RuleRow {
                domain: r.domain,
                reason: r.reason.unwrap_or_default(),
                by: r.created_by,
                since: When::new(r.created_at),
            })
            .collect()
    };
    Ok(PolicyPage {
        l: Layout::new(data, viewer, "Admin: federation").await?,
        allowlist: v.mode == crate::domain::policy::Mode::Allowlist,
        allow: rows(v.allow),
        block: rows(v.block),
        error: None,
        report: None,
        domain: String::new(),
        reason: String::new(),
        csv: String::new(),
    })
}

pub async fn policy_page(
    data: FedData,
    viewer: Viewer,
    Query(q): Query<DoneQuery>,
) -> Result<Response, AppError> {
    admin(&viewer)?;
    let page = policy_view(&data, &viewer).await?;
    let page = PolicyPage {
        l: page.l.with_notice(Notice::from(q.done.as_deref())),
        ..page
    };
    Ok(ok(&page))
}

/// Re-render the policy page with an error (and the form as typed).
async fn policy_error(
    data: &FedData,
    viewer: &Viewer,
    e: AppError,
    fill: impl FnOnce(&mut PolicyPage),
) -> Result<Response, AppError> {
    let status = e.status();
    let mut page = policy_view(data, viewer).await?;
    page.error = Some(client_error(e)?);
    fill(&mut page);
    Ok(render(status, &page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ModeForm {
    mode: String,
    reason: String,
}

pub async fn set_mode(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<ModeForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    if !sub.csrf_ok {
        return policy_error(&data, &viewer, AppError::forbidden(CSRF_MESSAGE), |_| {}).await;
    }
    let f = sub.form;
    match fed::set_mode(&data, Who::User(me), &f.mode, Some(&f.reason)).await {
        Ok(_) => Ok(see_other("/admin/federation?done=mode")),
        Err(e) => policy_error(&data, &viewer, e, |_| {}).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AddForm {
    list: String,
    domain: String,
    reason: String,
    /// Blocks: "", "hide" or "purge".
    content: String,
}

pub async fn add(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<AddForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    let f = sub.form;
    let keep = |p: &mut PolicyPage| {
        p.domain = f.domain.clone();
        p.reason = f.reason.clone();
    };
    if !sub.csrf_ok {
        return policy_error(&data, &viewer, AppError::forbidden(CSRF_MESSAGE), keep).await;
    }
    let list = match f.list.as_str() {
        "allow" => List::Allow,
        "block" => List::Block,
        _ => {
            let e = AppError::bad_request("choose whether to allow or block the domain");
            return policy_error(&data, &viewer, e, keep).await;
        }
    };
    let action = match (list, f.content.as_str()) {
        (_, "") => None,
        (List::Block, "hide") => Some(ContentAction::Hide),
        (List::Block, "purge") => Some(ContentAction::Purge),
        _ => {
            let e = AppError::bad_request("hiding or purging posts goes with a block only");
            return policy_error(&data, &viewer, e, keep).await;
        }
    };
    let who = Who::User(me);
    match fed::add(&data, who, list, &f.domain, Some(&f.reason)).await {
        Ok(entry) => {
            if let Some(a) = action {
                fed::content(&data, who, &entry.to_string(), a, Some(&f.reason)).await?;
            }
            Ok(see_other("/admin/federation?done=listed"))
        }
        Err(e) => policy_error(&data, &viewer, e, keep).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RemoveForm {
    list: String,
    domain: String,
}

pub async fn remove(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<RemoveForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    if !sub.csrf_ok {
        return policy_error(&data, &viewer, AppError::forbidden(CSRF_MESSAGE), |_| {}).await;
    }
    let list = List::parse(&sub.form.list).ok_or_else(|| AppError::bad_request("unknown list"))?;
    match fed::remove(&data, Who::User(me), list, &sub.form.domain, None).await {
        Ok(_) => Ok(see_other("/admin/federation?done=unlisted")),
        Err(e) => policy_error(&data, &viewer, e, |_| {}).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ImportForm {
    csv: String,
}

pub async fn import(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<ImportForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    let csv = sub.form.csv;
    if !sub.csrf_ok {
        return policy_error(&data, &viewer, AppError::forbidden(CSRF_MESSAGE), |p| {
            p.csv = csv.clone()
        })
        .await;
    }
    match fed::import_blocks(&data, Who::User(me), &csv).await {
        Ok(r) => {
            let mut page = policy_view(&data, &viewer).await?;
            let mut text = format!(
                "Imported {} block(s); {} were already blocked.",
                r.added.len(),
                r.already.len()
            );
            for (line, why) in r.skipped {
                text.push_str(&format!(" Line {line} set aside: {why}."));
            }
            page.report = Some(text);
            Ok(render(StatusCode::OK, &page))
        }
        Err(e) => policy_error(&data, &viewer, e, |p| p.csv = csv.clone()).await,
    }
}

pub async fn export(data: FedData, viewer: Viewer) -> Result<Response, AppError> {
    admin(&viewer)?;
    let csv = fed::export_blocks(&data).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"domain_blocks.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ContentForm {
    domain: String,
    action: String,
    reason: String,
}

pub async fn content(
    data: FedData,
    viewer: Viewer,
    sub: Submitted<ContentForm>,
) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    if !sub.csrf_ok {
        return policy_error(&data, &viewer, AppError::forbidden(CSRF_MESSAGE), |_| {}).await;
    }
    let f = sub.form;
    let Some(a) = ContentAction::parse(&f.action) else {
        let e = AppError::bad_request("choose hide, show or purge");
        return policy_error(&data, &viewer, e, |_| {}).await;
    };
    match fed::content(&data, Who::User(me), &f.domain, a, Some(&f.reason)).await {
        Ok(_) => Ok(see_other("/admin/federation?done=content")),
        Err(e) => policy_error(&data, &viewer, e, |_| {}).await,
    }
}

struct InstanceRow {
    domain: String,
    software: String,
    first_seen: Option<When>,
    last_contact: Option<When>,
    members: u64,
    pending: u64,
    failed: u64,
    failing: i32,
    refused: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "admin/instances.html")]
struct InstancesPage {
    l: Layout,
    instances: Vec<InstanceRow>,
}

pub async fn instances_page(data: FedData, viewer: Viewer) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    let instances = fed::instances(&data, Who::User(me))
        .await?
        .into_iter()
        .map(|i| InstanceRow {
            software: match (i.software, i.version) {
                (Some(s), Some(v)) => format!("{s} {v}"),
                (Some(s), None) => s,
                _ => "unknown".into(),
            },
            domain: i.domain,
            first_seen: i.first_seen.map(When::new),
            last_contact: i.last_contact.map(When::new),
            members: i.members_here,
            pending: i.deliveries_pending,
            failed: i.deliveries_failed,
            failing: i.failing_in_a_row,
            refused: i.refused,
        })
        .collect();
    Ok(ok(&InstancesPage {
        l: Layout::new(&data, &viewer, "Admin: instances").await?,
        instances,
    }))
}

struct AuditRow {
    at: When,
    who: String,
    action: String,
    target: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    l: Layout,
    entries: Vec<AuditRow>,
}

pub async fn audit_page(data: FedData, viewer: Viewer) -> Result<Response, AppError> {
    let me = admin(&viewer)?;
    let entries = fed::audit_log(&data, Who::User(me), 500)
        .await?
        .into_iter()
        .map(|e| AuditRow {
            at: When::new(e.at),
            who: e.who,
            action: e.action,
            target: e.target,
            reason: e.reason.unwrap_or_default(),
        })
        .collect();
    Ok(ok(&AuditPage {
        l: Layout::new(&data, &viewer, "Admin: audit log").await?,
        entries,
    }))
}

#[derive(Template)]
#[template(path = "group_federation.html")]
struct GroupFederationPage {
    l: Layout,
    name: String,
    title: String,
    restricted: bool,
    domains: String,
    error: Option<String>,
}

async fn staff_group(data: &FedData, viewer: &Viewer, name: &str) -> Result<DbActor, AppError> {
    let me = viewer.require()?;
    let row = crate::db::actors::local_by_name_and_kind(&data.db, name, ActorKind::Group)
        .await?
        .ok_or_else(|| AppError::not_found("group"))?;
    let g = DbActor::new(row)?;
    fed::require_group_staff(data, Who::User(me), &g).await?;
    Ok(g)
}

async fn group_view(
    data: &FedData,
    viewer: &Viewer,
    g: &DbActor,
) -> Result<GroupFederationPage, AppError> {
    let now = fed::group_domains(data, g).await?;
    let title = g
        .row
        .display_name
        .clone()
        .unwrap_or_else(|| g.row.username.clone());
    Ok(GroupFederationPage {
        l: Layout::new(data, viewer, format!("{title}: instances")).await?,
        name: g.row.username.clone(),
        title,
        restricted: now.restricted,
        domains: now.domains.join("\n"),
        error: None,
    })
}

pub async fn group_page(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let g = staff_group(&data, &viewer, &name).await?;
    let page = group_view(&data, &viewer, &g).await?;
    let page = GroupFederationPage {
        l: page.l.with_notice(Notice::from(q.done.as_deref())),
        ..page
    };
    Ok(ok(&page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct GroupForm {
    /// "any" or "only".
    scope: String,
    domains: String,
}

pub async fn group_save(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
    sub: Submitted<GroupForm>,
) -> Result<Response, AppError> {
    let g = staff_group(&data, &viewer, &name).await?;
    let me = viewer.require()?;
    let f = sub.form;
    let fail = async |e: AppError| -> Result<Response, AppError> {
        let status = e.status();
        let mut page = group_view(&data, &viewer, &g).await?;
        page.error = Some(client_error(e)?);
        page.restricted = f.scope == "only";
        page.domains = f.domains.clone();
        Ok(render(status, &page))
    };
    if !sub.csrf_ok {
        return fail(AppError::forbidden(CSRF_MESSAGE)).await;
    }
    let restricted = match f.scope.as_str() {
        "only" => true,
        "any" => false,
        _ => return fail(AppError::bad_request("choose who may join")).await,
    };
    match fed::set_group_domains(&data, Who::User(me), &g, restricted, &f.domains).await {
        Ok(_) => Ok(see_other(&format!(
            "/g/{}/federation?done=group_federation",
            g.row.username
        ))),
        Err(e) => fail(e).await,
    }
}
