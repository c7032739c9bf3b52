//! Links between groups. A group asks another to link up with
//! `Add{actor: G, object: G, target: <other group>/links}`; the other side's
//! moderators answer `Accept`/`Reject` of that `Add`; either side ends it with
//! `Remove{actor: G, object: G, target: <other group>/links}`. A group only
//! ever adds or removes itself, and only in a `links` collection: Lemmy's
//! Add/Remove of moderators or featured posts do not parse here.

use activitypub_federation::{config::Data, fetch::object_id::ObjectId, traits::Activity};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use crate::{
    app::AppState,
    db,
    domain::{ActorKind, group::Visibility},
    error::AppError,
    federation::{
        objects::{actor::DbActor, id_of, one_or_many},
        outbox,
        urls::Urls,
    },
    service::access,
};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// "Add" or "Remove".
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Url,
    pub actor: ObjectId<DbActor>,
    pub object: Url,
    pub target: Url,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    id: Url,
    actor: serde_json::Value,
    object: serde_json::Value,
    target: serde_json::Value,
    #[serde(default, deserialize_with = "one_or_many")]
    to: Vec<String>,
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = Raw::deserialize(d)?;
        if raw.kind != "Add" && raw.kind != "Remove" {
            return Err(D::Error::custom("not a link"));
        }
        let actor = id_of(&raw.actor).ok_or_else(|| D::Error::custom("no actor"))?;
        let object = id_of(&raw.object).ok_or_else(|| D::Error::custom("no object"))?;
        let target = id_of(&raw.target).ok_or_else(|| D::Error::custom("no target"))?;
        if object != actor || !target.path().ends_with("/links") {
            return Err(D::Error::custom("not a link"));
        }
        Ok(Link {
            kind: raw.kind,
            id: raw.id,
            actor: actor.into(),
            object,
            target,
            to: raw.to,
        })
    }
}

impl Link {
    fn new(kind: &str, urls: &Urls, from: &DbActor, to: &DbActor) -> Result<Link, AppError> {
        Ok(Link {
            kind: kind.to_string(),
            id: urls.new_activity(&kind.to_ascii_lowercase()),
            actor: from.object_id(),
            object: from.id_url().clone(),
            target: Url::parse(&format!("{}/links", to.row.ap_id))?,
            to: vec![to.row.ap_id.clone()],
        })
    }

    /// Queue `from` asking `to` to link (Add) or ending the link (Remove).
    pub async fn send(
        db: &impl sea_orm::ConnectionTrait,
        urls: &Urls,
        kind: &str,
        from: &DbActor,
        to: &DbActor,
    ) -> Result<Link, AppError> {
        let link = Link::new(kind, urls, from, to)?;
        outbox::queue(db, urls, &link.id, &link, from, vec![to.row.inbox.clone()]).await?;
        Ok(link)
    }

    /// The `Add` we sent, rebuilt from its id, for an `Accept`/`Reject`.
    pub fn rebuilt_add(
        id: &str,
        from: &DbActor,
        to: &DbActor,
    ) -> Result<serde_json::Value, AppError> {
        Ok(serde_json::json!({
            "type": "Add",
            "id": id,
            "actor": from.row.ap_id,
            "object": from.row.ap_id,
            "target": format!("{}/links", to.row.ap_id),
        }))
    }

    /// Our group whose `links` collection this targets.
    async fn our_group(&self, data: &Data<AppState>) -> Result<DbActor, AppError> {
        let path = self.target.path().trim_end_matches("/links");
        let group_url = self
            .target
            .join(path)
            .map_err(|_| AppError::not_found("group"))?;
        let g = db::actors::by_ap_id(&data.db, group_url.as_str())
            .await?
            .filter(|g| g.local && g.kind == ActorKind::Group.as_str() && g.deleted_at.is_none())
            .ok_or_else(|| AppError::not_found("group"))?;
        DbActor::new(g)
    }
}

#[async_trait::async_trait]
impl Activity for Link {
    type DataType = AppState;
    type Error = AppError;

    fn id(&self) -> &Url {
        &self.id
    }
    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, data: &Data<AppState>) -> Result<(), AppError> {
        if !crate::federation::objects::same_origin(&self.target, data.urls.base()) {
            return Err(AppError::bad_request(
                "a link to a group not on this instance",
            ));
        }
        let g = self.our_group(data).await?;
        if access::visibility(&g.row) != Visibility::Public {
            return Err(AppError::forbidden(
                "only public groups link with other groups",
            ));
        }
        Ok(())
    }

    async fn receive(self, data: &Data<AppState>) -> Result<(), AppError> {
        let group = self.our_group(data).await?;
        let peer = self.actor.dereference(data).await?;
        if !peer.is_group() {
            return Err(AppError::bad_request("only groups link with groups"));
        }
        let txn = db::write_txn(&data.db).await?;
        if !db::activities::record(
            &txn,
            self.id.as_str(),
            &self.kind,
            self.actor.inner().as_str(),
        )
        .await?
        {
            return Ok(());
        }
        let now = data.clock.now();
        let existing = db::links::get(&txn, group.row.id, peer.row.id).await?;
        if self.kind == "Remove" {
            if let Some(l) = existing {
                db::links::delete(&txn, l.id).await?;
                db::moderation::log(
                    &txn,
                    group.row.id,
                    &peer.handle(),
                    "link.removed",
                    &peer.handle(),
                    None,
                )
                .await?;
            }
            txn.commit().await?;
            tracing::info!(group = %group.handle(), peer = %peer.handle(), "link ended by the other group");
            return Ok(());
        }
        if access::visibility(&peer.row) != Visibility::Public {
            return Err(AppError::forbidden(
                "only public groups link with other groups",
            ));
        }
        match existing {
            // We had asked them too: both sides want it.
            Some(l) if l.state == db::links::REQUESTED => {
                db::links::accept(&txn, l.id, now).await?;
                accept_add(&txn, &data.urls, &group, &peer, self.id.as_str()).await?;
                db::moderation::log(
                    &txn,
                    group.row.id,
                    &peer.handle(),
                    "link.accepted",
                    &peer.handle(),
                    None,
                )
                .await?;
            }
            // Their Accept was lost, or they asked again: answer again.
            Some(l) if l.state == db::links::ACCEPTED => {
                accept_add(&txn, &data.urls, &group, &peer, self.id.as_str()).await?;
            }
            Some(_) => {}
            None => {
                db::links::insert(
                    &txn,
                    group.row.id,
                    peer.row.id,
                    db::links::PENDING,
                    Some(self.id.to_string()),
                    &peer.handle(),
                    now,
                )
                .await?;
                db::moderation::log(
                    &txn,
                    group.row.id,
                    &peer.handle(),
                    "link.requested",
                    &peer.handle(),
                    None,
                )
                .await?;
            }
        }
        txn.commit().await?;
        tracing::info!(group = %group.handle(), peer = %peer.handle(), "link request received");
        Ok(())
    }
}

/// `group` accepts `peer`'s `Add` (by its id).
pub async fn accept_add(
    db: &impl sea_orm::ConnectionTrait,
    urls: &Urls,
    group: &DbActor,
    peer: &DbActor,
    add_id: &str,
) -> Result<(), AppError> {
    answer_add(db, urls, "Accept", group, peer, add_id).await
}

pub async fn answer_add(
    db: &impl sea_orm::ConnectionTrait,
    urls: &Urls,
    kind: &str,
    group: &DbActor,
    peer: &DbActor,
    add_id: &str,
) -> Result<(), AppError> {
    let id = urls.new_activity(&kind.to_ascii_lowercase());
    let answer = serde_json::json!({
        "type": kind,
        "id": id,
        "actor": group.row.ap_id,
        "object": Link::rebuilt_add(add_id, peer, group)?,
        "to": [peer.row.ap_id],
    });
    outbox::queue(db, urls, &id, &answer, group, vec![peer.row.inbox.clone()]).await
}

/// An `Accept` or `Reject` whose object is an `Add`: the answer to a link
/// we asked for. True when it was one (handled), false to go on as a Follow.
pub async fn answered(
    data: &Data<AppState>,
    answer_id: &Url,
    kind: &str,
    peer_id: &Url,
    object: &serde_json::Value,
) -> Result<bool, AppError> {
    if object.get("type").and_then(|t| t.as_str()) != Some("Add") {
        return Ok(false);
    }
    let ours = object.get("actor").and_then(id_of);
    let Some(ours) = ours else {
        return Ok(true);
    };
    let (Some(group), Some(peer)) = (
        db::actors::by_ap_id(&data.db, ours.as_str())
            .await?
            .filter(|g| g.local),
        db::actors::by_ap_id(&data.db, peer_id.as_str()).await?,
    ) else {
        tracing::info!(actor = %peer_id, "ignored an answer to a link we did not ask for");
        return Ok(true);
    };
    let Some(link) = db::links::get(&data.db, group.id, peer.id)
        .await?
        .filter(|l| l.state == db::links::REQUESTED)
    else {
        tracing::info!(actor = %peer_id, "ignored an answer to a link we did not ask for");
        return Ok(true);
    };
    let txn = db::write_txn(&data.db).await?;
    if !db::activities::record(&txn, answer_id.as_str(), kind, peer_id.as_str()).await? {
        return Ok(true);
    }
    let who = format!("{}@{}", peer.username, peer.domain);
    if kind == "Accept" {
        db::links::accept(&txn, link.id, data.clock.now()).await?;
        db::moderation::log(&txn, group.id, &who, "link.accepted", &who, None).await?;
    } else {
        db::links::delete(&txn, link.id).await?;
        db::moderation::log(&txn, group.id, &who, "link.refused", &who, None).await?;
    }
    txn.commit().await?;
    tracing::info!(group = %group.username, peer = %who, answer = kind, "link answered");
    Ok(true)
}
