//! The instance actor (`Application`): signs our fetches, so servers in
//! secure mode answer us.

use crate::{
    app::AppState, db, domain::ActorKind, error::AppError, federation::objects::actor::DbActor,
};

pub async fn ensure_instance_actor(state: &AppState) -> Result<DbActor, AppError> {
    if let Some(row) = db::actors::instance_actor(&state.db).await? {
        return DbActor::new(row);
    }
    let keys = super::new_keypair().await?;
    let domain = &state.settings.server.domain;
    let id = state.urls.instance_actor();
    let mut row =
        db::actors::new_local(id.to_string(), ActorKind::Application, domain, domain, keys);
    row.discoverable = sea_orm::Set(false);
    row.manually_approves_followers = sea_orm::Set(true);
    // It follows nobody and posts nothing: no collections to advertise.
    row.outbox = sea_orm::Set(None);
    row.followers = sea_orm::Set(None);
    match db::actors::insert(&state.db, row).await {
        Ok(row) => DbActor::new(row),
        // Another replica created it first.
        Err(e) if db::is_unique_violation(&e) => {
            let row = db::actors::instance_actor(&state.db)
                .await?
                .ok_or_else(|| AppError::internal("instance actor vanished"))?;
            DbActor::new(row)
        }
        Err(e) => Err(e.into()),
    }
}
