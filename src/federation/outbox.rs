//! Outgoing activities: build them and queue them for delivery in the caller's
//! transaction. Inboxes on our own domain are skipped: local members are served
//! in-process, never over HTTP.

use activitypub_federation::{kinds::activity::AnnounceType, protocol::context::WithContext};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use url::Url;

use super::{PUBLIC_AUDIENCE, activities::announce::Announce, objects::actor::DbActor, urls::Urls};
use crate::{db, domain::group::Visibility, error::AppError};

/// Queue `activity`, signed later by `signer`, for each inbox not on our domain.
pub async fn queue<A: Serialize>(
    db: &impl ConnectionTrait,
    urls: &Urls,
    activity_id: &Url,
    activity: &A,
    signer: &DbActor,
    inboxes: Vec<String>,
) -> Result<(), AppError> {
    let remote = not_ours(urls, inboxes);
    queue_remote(db, activity_id, activity, signer, &remote).await
}

/// The inboxes not on our domain.
fn not_ours(urls: &Urls, inboxes: Vec<String>) -> Vec<String> {
    let ours = urls.base();
    inboxes
        .into_iter()
        .filter(|i| Url::parse(i).is_ok_and(|u| !super::objects::same_origin(&u, ours)))
        .collect()
}

/// `queue` to inboxes already known not to be ours.
async fn queue_remote<A: Serialize>(
    db: &impl ConnectionTrait,
    activity_id: &Url,
    activity: &A,
    signer: &DbActor,
    remote: &[String],
) -> Result<(), AppError> {
    if remote.is_empty() {
        return Ok(());
    }
    let payload = serde_json::to_string(&WithContext::new(
        activity,
        super::objects::object_context(),
    ))?;
    db::deliveries::enqueue(db, activity_id.as_str(), signer.row.id, &payload, remote).await?;
    Ok(())
}

/// FEP-1b12: a group re-shares `inner` (an activity) with every remote member
/// server.
pub async fn announce_to_members<A: Serialize>(
    db: &impl ConnectionTrait,
    urls: &Urls,
    group: &DbActor,
    inner: &A,
) -> Result<(), AppError> {
    let inboxes = member_inboxes(db, group).await?;
    announce(db, urls, group, serde_json::to_value(inner)?, inboxes).await
}

/// `announce_to_members` for a received post, edit or deletion (the inbox's
/// hot path): the member inboxes come from `docs` when read there within the
/// second and no membership changed in this process since
/// (`GroupDocs::members`), not from a 50-row read in the write transaction. A change made by another process,
/// or committed while the list was being read, reaches the list within
/// `docs::TTL`.
pub async fn announce_to_kept_members<A: Serialize>(
    db: &impl ConnectionTrait,
    urls: &Urls,
    docs: &super::docs::GroupDocs,
    group: &DbActor,
    inner: &A,
) -> Result<(), AppError> {
    let visibility = crate::service::access::visibility(&group.row);
    if !visibility.federates() {
        return Ok(());
    }
    let personal = visibility != Visibility::Public;
    let inboxes = match docs.members(group.row.id, personal) {
        Some(kept) => kept,
        None => {
            let stamp = docs.stamp();
            let list = std::sync::Arc::new(not_ours(urls, member_inboxes(db, group).await?));
            docs.put_members(group.row.id, personal, list.clone(), stamp);
            list
        }
    };
    let Some((id, announce)) = group_announce(urls, group, serde_json::to_value(inner)?) else {
        return Ok(());
    };
    queue_remote(db, &id, &announce, group, &inboxes).await
}

/// The group boosts a post by id (a public group) or whole (a members-only
/// one: only members may fetch it): what Mastodon and other microblogs show
/// in their followers' timelines. FEP-1b12 servers find the post they
/// already have.
pub async fn announce_object_to_members(
    db: &impl ConnectionTrait,
    urls: &Urls,
    group: &DbActor,
    object: &Url,
    embedded: serde_json::Value,
) -> Result<(), AppError> {
    let inboxes = member_inboxes(db, group).await?;
    let object = boosted(group, object, embedded);
    announce(db, urls, group, object, inboxes).await
}

/// A new thread in our group, `create` by its author: each member server
/// gets the boost it reads, by the software its NodeInfo names (see
/// `boost_form`): FEP-1b12 servers the `Announce(Create)`, microblogs the
/// `Announce` of the post, an unknown server both. Every boost is a signed
/// delivery, and signing is most of a fan-out's cost.
pub async fn announce_thread_to_members<A: Serialize>(
    db: &impl ConnectionTrait,
    urls: &Urls,
    group: &DbActor,
    create: &A,
    object: &Url,
    embedded: serde_json::Value,
) -> Result<(), AppError> {
    let inboxes = member_inboxes(db, group).await?;
    let mut hosts: Vec<String> = inboxes
        .iter()
        .map(|i| super::delivery::host_of(i))
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    let mut known = std::collections::HashMap::new();
    for chunk in hosts.chunks(500) {
        known.extend(db::instances::by_domains(db, chunk.to_vec()).await?);
    }
    let form = |inbox: &String| {
        boost_form(
            known
                .get(&super::delivery::host_of(inbox))
                .and_then(|i| i.software.as_deref()),
        )
    };
    let (activity, object_form): (Vec<String>, Vec<String>) = (
        inboxes
            .iter()
            .filter(|i| form(i) != BoostForm::Object)
            .cloned()
            .collect(),
        inboxes
            .iter()
            .filter(|i| form(i) != BoostForm::Activity)
            .cloned()
            .collect(),
    );
    announce(db, urls, group, serde_json::to_value(create)?, activity).await?;
    let object = boosted(group, object, embedded);
    announce(db, urls, group, object, object_form).await
}

/// Which boost of a new thread a server reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoostForm {
    /// `Announce(Create(Page))` (FEP-1b12 group software).
    Activity,
    /// `Announce(Page)` by id or whole (microblogs: they cannot process an
    /// announced activity).
    Object,
    /// Not known: both.
    Both,
}

/// By the NodeInfo `software.name` of the member's server.
pub fn boost_form(software: Option<&str>) -> BoostForm {
    let name = software.map(str::to_ascii_lowercase);
    match name.as_deref() {
        Some("kindred" | "lemmy" | "mbin" | "kbin" | "piefed") => BoostForm::Activity,
        Some(
            "mastodon" | "hometown" | "glitchsoc" | "pleroma" | "akkoma" | "misskey" | "sharkey"
            | "firefish" | "iceshrimp" | "gotosocial" | "snac" | "takahe",
        ) => BoostForm::Object,
        _ => BoostForm::Both,
    }
}

/// What a boost of the post names: its id (a public group), or the post
/// itself (members-only: nobody else may fetch it).
fn boosted(group: &DbActor, object: &Url, embedded: serde_json::Value) -> serde_json::Value {
    if crate::service::access::visibility(&group.row) == Visibility::Public {
        serde_json::Value::String(object.to_string())
    } else {
        embedded
    }
}

/// A public group's remote members' (shared) inboxes; a members-only
/// group's members' own inboxes (a shared inbox would hand the post to a
/// server to pass around). None for a group that does not federate.
async fn member_inboxes(
    db: &impl ConnectionTrait,
    group: &DbActor,
) -> Result<Vec<String>, AppError> {
    Ok(match crate::service::access::visibility(&group.row) {
        v if !v.federates() => vec![],
        Visibility::Public => db::follows::remote_member_inboxes(db, group.row.id).await?,
        _ => db::follows::remote_member_personal_inboxes(db, group.row.id).await?,
    })
}

async fn announce(
    db: &impl ConnectionTrait,
    urls: &Urls,
    group: &DbActor,
    object: serde_json::Value,
    inboxes: Vec<String>,
) -> Result<(), AppError> {
    if inboxes.is_empty() {
        return Ok(());
    }
    let Some((id, announce)) = group_announce(urls, group, object) else {
        return Ok(());
    };
    queue(db, urls, &id, &announce, group, inboxes).await
}

/// The group's Announce of `object`, addressed as its visibility says (none
/// when the group does not federate).
fn group_announce(
    urls: &Urls,
    group: &DbActor,
    object: serde_json::Value,
) -> Option<(Url, Announce)> {
    let visibility = crate::service::access::visibility(&group.row);
    if !visibility.federates() {
        return None;
    }
    let id = urls.new_activity("announce");
    let mut cc = vec![];
    if let Some(f) = &group.row.followers {
        cc.push(f.clone());
    }
    let to = if visibility == Visibility::Public {
        vec![PUBLIC_AUDIENCE.to_string()]
    } else {
        std::mem::take(&mut cc)
    };
    let announce = Announce {
        kind: AnnounceType::Announce,
        id: id.clone(),
        actor: group.object_id(),
        object,
        to,
        cc,
        audience: Some(group.object_id()),
    };
    Some((id, announce))
}

#[cfg(test)]
mod tests {
    use super::{BoostForm, boost_form};

    #[test]
    fn each_server_gets_the_boost_it_reads() {
        assert_eq!(boost_form(Some("lemmy")), BoostForm::Activity);
        assert_eq!(boost_form(Some("Kindred")), BoostForm::Activity);
        assert_eq!(boost_form(Some("mastodon")), BoostForm::Object);
        assert_eq!(boost_form(Some("gotosocial")), BoostForm::Object);
        assert_eq!(boost_form(Some("friendica")), BoostForm::Both);
        assert_eq!(boost_form(None), BoostForm::Both);
    }
}
