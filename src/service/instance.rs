//! The instance itself: its actor (`Application`, which signs our fetches so
//! servers in secure mode answer us) and the admin's settings (name,
//! description, registration mode).

use super::users::CurrentUser;
use crate::{
    app::AppState,
    db::{self, entities::instance_setting},
    domain::{ActorKind, RegistrationMode, content},
    error::AppError,
    federation::objects::actor::DbActor,
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

/// The admin's settings for this instance (made with defaults on first use).
pub async fn settings(state: &AppState) -> Result<instance_setting::Model, AppError> {
    Ok(db::instance::get(
        &state.db,
        &state.settings.server.domain,
        &state.settings.web.registration_default,
    )
    .await?)
}

pub fn registration_mode(s: &instance_setting::Model) -> RegistrationMode {
    RegistrationMode::parse(&s.registration_mode).unwrap_or(RegistrationMode::Closed)
}

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 5000;

/// Change the instance's name, description and registration mode (admins).
pub async fn update_settings(
    state: &AppState,
    me: &CurrentUser,
    name: &str,
    description: &str,
    mode: &str,
) -> Result<(), AppError> {
    require_admin(me)?;
    let name = content::strip_invisible(name);
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::bad_request(format!(
            "the instance name has 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AppError::bad_request(format!(
            "the description has at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    let description = content::strip_invisible(description);
    let mode = RegistrationMode::parse(mode)
        .ok_or_else(|| AppError::bad_request("unknown registration mode"))?;
    settings(state).await?;
    db::instance::update(&state.db, name, description.trim(), mode.as_str()).await?;
    tracing::info!(mode = mode.as_str(), "instance settings changed");
    Ok(())
}

pub fn require_admin(me: &CurrentUser) -> Result<(), AppError> {
    if me.user.is_admin {
        Ok(())
    } else {
        Err(AppError::forbidden("only admins may do this"))
    }
}
