//! Links between groups, on a group's moderation page: ask another group to
//! link, accept or refuse what others asked, withdraw a request, unlink.
//! The rules and the federation live in `service::links`.

use axum::{Router, extract::Path, http::StatusCode, response::Response, routing::post};
use serde::Deserialize;

use super::{
    auth::EmptyForm,
    moderation::{ModerationPage, done, fail, page_view, staff_group},
    render,
    session::{CSRF_MESSAGE, Submitted, Viewer},
    views::GroupLinkView,
};
use crate::{
    app::AppState,
    error::AppError,
    federation::{FedData, objects::actor::DbActor},
    service::{federation::Who, links},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/g/{name}/moderation/links", post(ask))
        .route("/g/{name}/moderation/links/{id}/accept", post(accept))
        .route("/g/{name}/moderation/links/{id}/refuse", post(refuse))
        .route("/g/{name}/moderation/links/{id}/remove", post(remove))
}

/// One link on the moderation page.
pub struct LinkRow {
    pub id: i64,
    pub group: GroupLinkView,
    /// Who asked: a moderator's name, or the asking group's handle.
    pub requested_by: String,
}

/// A group's links, by where they stand.
#[derive(Default)]
pub struct LinkSections {
    /// Other groups asked: accept or refuse.
    pub incoming: Vec<LinkRow>,
    /// This group asked: waiting for the other side.
    pub outgoing: Vec<LinkRow>,
    pub accepted: Vec<LinkRow>,
    /// The "ask a group" form's value, kept after an error.
    pub handle: String,
}

impl LinkSections {
    pub async fn of(data: &FedData, g: &DbActor) -> Result<Self, AppError> {
        let mut out = LinkSections::default();
        for l in links::links_of(data, g).await? {
            let row = LinkRow {
                id: l.id,
                group: GroupLinkView::new(&l.peer),
                requested_by: l.requested_by,
            };
            match l.state.as_str() {
                "pending" => out.incoming.push(row),
                "requested" => out.outgoing.push(row),
                "accepted" => out.accepted.push(row),
                _ => {}
            }
        }
        Ok(out)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AskForm {
    handle: String,
}

/// Ask a group (`name@host`, or a name here) to link with this one.
pub async fn ask(
    data: FedData,
    viewer: Viewer,
    Path(name): Path<String>,
    sub: Submitted<AskForm>,
) -> Result<Response, AppError> {
    let (me, g) = staff_group(&data, &viewer, &name).await?;
    let handle = sub.form.handle.trim().to_string();
    let keep = |p: &mut ModerationPage| p.links.handle = handle.clone();
    if !sub.csrf_ok {
        return fail(&data, &viewer, &g, AppError::forbidden(CSRF_MESSAGE), keep).await;
    }
    if handle.is_empty() {
        let e = AppError::bad_request(
            "type the address of the group to link with, like name@example.org",
        );
        return fail(&data, &viewer, &g, e, keep).await;
    }
    match links::request(&data, Who::User(me), &g, &handle).await {
        Ok(l) if l.state == "accepted" => Ok(done(&g, "link_accepted")),
        Ok(_) => Ok(done(&g, "link_requested")),
        // No such group, or its server did not answer: say which address.
        Err(e) if matches!(e.status(), StatusCode::NOT_FOUND | StatusCode::BAD_GATEWAY) => {
            let mut page = page_view(&data, &viewer, &g).await?;
            page.error = Some(if e.status() == StatusCode::NOT_FOUND {
                format!(
                    "No group found at '{handle}'. Check its address: name@instance, or its name here."
                )
            } else {
                format!(
                    "No group found at '{handle}': {}.",
                    e.to_string().trim_end_matches('.')
                )
            });
            keep(&mut page);
            Ok(render(e.status(), &page))
        }
        Err(e) => fail(&data, &viewer, &g, e, keep).await,
    }
}

/// What a button on a link does.
enum Act {
    Accept,
    Refuse,
    Remove,
}

async fn act(
    data: FedData,
    viewer: Viewer,
    name: &str,
    id: i64,
    csrf_ok: bool,
    what: Act,
) -> Result<Response, AppError> {
    let (me, g) = staff_group(&data, &viewer, name).await?;
    if !csrf_ok {
        return fail(
            &data,
            &viewer,
            &g,
            AppError::forbidden(CSRF_MESSAGE),
            |_| {},
        )
        .await;
    }
    let who = Who::User(me);
    let result = match what {
        Act::Accept => links::decide(&data, who, &g, id, true)
            .await
            .map(|_| "link_accepted"),
        Act::Refuse => links::decide(&data, who, &g, id, false)
            .await
            .map(|_| "link_refused"),
        Act::Remove => {
            // Withdrawing a request and ending a link are one call; the
            // notice tells them apart.
            let was_request = links::links_of(&data, &g)
                .await?
                .iter()
                .any(|l| l.id == id && l.state == "requested");
            links::unlink(&data, who, &g, id).await.map(|()| {
                if was_request {
                    "link_withdrawn"
                } else {
                    "unlinked"
                }
            })
        }
    };
    match result {
        Ok(key) => Ok(done(&g, key)),
        Err(e) => fail(&data, &viewer, &g, e, |_| {}).await,
    }
}

pub async fn accept(
    data: FedData,
    viewer: Viewer,
    Path((name, id)): Path<(String, i64)>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    act(data, viewer, &name, id, sub.csrf_ok, Act::Accept).await
}

pub async fn refuse(
    data: FedData,
    viewer: Viewer,
    Path((name, id)): Path<(String, i64)>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    act(data, viewer, &name, id, sub.csrf_ok, Act::Refuse).await
}

pub async fn remove(
    data: FedData,
    viewer: Viewer,
    Path((name, id)): Path<(String, i64)>,
    sub: Submitted<EmptyForm>,
) -> Result<Response, AppError> {
    act(data, viewer, &name, id, sub.csrf_ok, Act::Remove).await
}
