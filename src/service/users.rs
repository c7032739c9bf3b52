//! Local accounts: create, sign in with a password for an API token, resolve
//! a token, sign out. Passwords are hashed with argon2; tokens stored hashed.

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{
    app::AppState,
    db::{
        self,
        entities::{actor, user},
    },
    domain::{ActorKind, handle},
    error::AppError,
};

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// A signed-in local person.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: user::Model,
    pub actor: actor::Model,
}

#[tracing::instrument(skip(state, password))]
pub async fn create_user(
    state: &AppState,
    username: &str,
    password: &str,
    is_admin: bool,
) -> Result<CurrentUser, AppError> {
    handle::validate_local_name(username).map_err(AppError::BadRequest)?;
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(AppError::bad_request(format!(
            "a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    if db::actors::local_by_name(&state.db, username)
        .await?
        .is_some()
    {
        return Err(AppError::Conflict(format!(
            "the name '{username}' is taken"
        )));
    }
    let hash = hash_password(password.to_string()).await?;
    let keys = super::new_keypair().await?;
    let id = state.urls.person(username);
    let txn = db::write_txn(&state.db).await?;
    let actor = db::actors::insert(
        &txn,
        db::actors::new_local(
            id.to_string(),
            ActorKind::Person,
            username,
            &state.settings.server.domain,
            keys,
        ),
    )
    .await
    .map_err(|e| name_taken(e, username))?;
    let user = db::users::insert(&txn, actor.id, hash, is_admin).await?;
    txn.commit().await?;
    tracing::info!(username, is_admin, "user created");
    Ok(CurrentUser { user, actor })
}

pub(crate) fn name_taken(e: sea_orm::DbErr, name: &str) -> AppError {
    if db::is_unique_violation(&e) {
        AppError::Conflict(format!("the name '{name}' is taken"))
    } else {
        e.into()
    }
}

async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::internal(format!("hash: {e}")))
    })
    .await
    .map_err(AppError::internal)?
}

async fn verify_password(password: String, hash: String) -> Result<bool, AppError> {
    tokio::task::spawn_blocking(move || {
        let parsed =
            PasswordHash::new(&hash).map_err(|e| AppError::internal(format!("hash: {e}")))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(AppError::internal)?
}

/// Check the password and hand out a new API token. Unknown names and wrong
/// passwords get the same answer, after the same work.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<(String, CurrentUser), AppError> {
    let found = db::users::by_username(&state.db, username).await?;
    let (hash, found) = match found {
        Some((u, a)) => (
            u.password_hash.clone(),
            Some(CurrentUser { user: u, actor: a }),
        ),
        None => (DUMMY_HASH.to_string(), None),
    };
    let ok = verify_password(password.to_string(), hash).await?;
    let Some(current) = found.filter(|_| ok) else {
        return Err(AppError::Unauthorized);
    };
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    db::users::insert_token(&state.db, current.user.id, token_hash(&token)).await?;
    Ok((token, current))
}

pub async fn authenticate(state: &AppState, token: &str) -> Result<CurrentUser, AppError> {
    db::users::by_token(&state.db, &token_hash(token))
        .await?
        .map(|(user, actor)| CurrentUser { user, actor })
        .ok_or(AppError::Unauthorized)
}

pub async fn logout(state: &AppState, token: &str) -> Result<(), AppError> {
    db::users::delete_token(&state.db, &token_hash(token)).await?;
    Ok(())
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An argon2 hash of a random string: verifying against it costs what a real
/// check costs, so response times don't tell which names exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0SqXRS4Gbd6yB5K1hMi5mvPLpAwvJXuk1GZAvP/qS3A";
