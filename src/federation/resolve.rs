//! Finding remote actors by handle (WebFinger, then a signed fetch of the
//! actor), and making key pairs for new local actors.

use activitypub_federation::{
    fetch::webfinger::webfinger_resolve_actor, http_signatures::generate_actor_keypair,
};

use super::{FedData, objects::actor::DbActor};
use crate::error::AppError;

/// `name@host` → the actor, stored or refreshed. A WebFinger answer may point
/// anywhere, so unless the actor found is `name@host` itself, its own handle
/// must resolve back to the same actor (as Mastodon checks); then it is known
/// by that handle, never by the one asked for.
pub async fn actor_by_handle(data: &FedData, name: &str, host: &str) -> Result<DbActor, AppError> {
    let actor: DbActor = webfinger_resolve_actor(&format!("{name}@{host}"), data).await?;
    let same = actor.row.username.eq_ignore_ascii_case(name)
        && actor.row.domain.eq_ignore_ascii_case(host);
    if same {
        return Ok(actor);
    }
    let back: Result<DbActor, AppError> = webfinger_resolve_actor(&actor.handle(), data).await;
    match back {
        Ok(b) if b.row.ap_id == actor.row.ap_id => Ok(actor),
        _ => Err(AppError::not_found(format!(
            "{name}@{host} (its WebFinger points at an actor that does not point back)"
        ))),
    }
}

/// A fresh RSA-2048 key pair (public, private) in PEM. Slow: off the runtime.
pub async fn new_keypair() -> Result<(String, String), AppError> {
    let kp = tokio::task::spawn_blocking(generate_actor_keypair)
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    Ok((kp.public_key, kp.private_key))
}
