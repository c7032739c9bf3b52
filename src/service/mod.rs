//! Use cases started by local people (CLI, API, later the web app): accounts,
//! groups and membership, posts. Each checks the rules in `domain`, writes in
//! one transaction, and queues what must go out in that same transaction.

pub mod groups;
pub mod instance;
pub mod posts;
pub mod users;

use crate::error::AppError;

/// A fresh RSA-2048 key pair (public, private) in PEM. Slow: off the runtime.
pub async fn new_keypair() -> Result<(String, String), AppError> {
    let kp = tokio::task::spawn_blocking(
        activitypub_federation::http_signatures::generate_actor_keypair,
    )
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)?;
    Ok((kp.public_key, kp.private_key))
}
