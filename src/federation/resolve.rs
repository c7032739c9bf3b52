//! Finding remote actors by handle (WebFinger, then a signed fetch of the
//! actor), and making key pairs for new local actors.

use activitypub_federation::{
    fetch::webfinger::webfinger_resolve_actor, http_signatures::generate_actor_keypair,
};

use super::{FedData, objects::actor::DbActor};
use crate::error::AppError;

/// `name@host` → the actor, stored or refreshed. The WebFinger answer must
/// point back to an actor on the same host (checked by the fetch).
pub async fn actor_by_handle(data: &FedData, name: &str, host: &str) -> Result<DbActor, AppError> {
    webfinger_resolve_actor(&format!("{name}@{host}"), data).await
}

/// A fresh RSA-2048 key pair (public, private) in PEM. Slow: off the runtime.
pub async fn new_keypair() -> Result<(String, String), AppError> {
    let kp = tokio::task::spawn_blocking(generate_actor_keypair)
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    Ok((kp.public_key, kp.private_key))
}
