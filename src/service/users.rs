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
    domain::{ActorKind, UserStatus, handle},
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

/// What a new account is made of.
pub struct NewAccount<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub is_admin: bool,
    pub status: UserStatus,
    /// The applicant's note (approval mode).
    pub application: Option<String>,
    pub email: Option<String>,
}

/// An active account (CLI, tests, open sign-up).
pub async fn create_user(
    state: &AppState,
    username: &str,
    password: &str,
    is_admin: bool,
) -> Result<CurrentUser, AppError> {
    create_account(
        state,
        NewAccount {
            username,
            password,
            is_admin,
            status: UserStatus::Active,
            application: None,
            email: None,
        },
    )
    .await
}

pub fn validate_password(password: &str) -> Result<(), AppError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(AppError::bad_request(format!(
            "a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(username = new.username, is_admin = new.is_admin))]
pub async fn create_account(
    state: &AppState,
    new: NewAccount<'_>,
) -> Result<CurrentUser, AppError> {
    let username = new.username;
    handle::validate_local_name(username).map_err(AppError::BadRequest)?;
    validate_password(new.password)?;
    if db::actors::local_by_name(&state.db, username)
        .await?
        .is_some()
    {
        return Err(AppError::Conflict(format!(
            "the name '{username}' is taken"
        )));
    }
    let hash = hash_password(new.password.to_string()).await?;
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
    let user = db::users::insert(
        &txn,
        db::users::NewUser {
            actor_id: actor.id,
            password_hash: hash,
            is_admin: new.is_admin,
            status: new.status,
            application: new.application,
            email: new.email,
        },
    )
    .await?;
    txn.commit().await?;
    if new.is_admin {
        // An admin made another way (the CLI) means the web setup is done.
        super::instance::settings(state).await?;
        db::instance::mark_setup_done(&state.db).await?;
    }
    tracing::info!(status = new.status.as_str(), "user created");
    Ok(CurrentUser { user, actor })
}

pub(crate) fn name_taken(e: sea_orm::DbErr, name: &str) -> AppError {
    if db::is_unique_violation(&e) {
        AppError::Conflict(format!("the name '{name}' is taken"))
    } else {
        e.into()
    }
}

pub(crate) async fn hash_password(password: String) -> Result<String, AppError> {
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

pub(crate) async fn verify_password(password: String, hash: String) -> Result<bool, AppError> {
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
    let current = check_credentials(state, username, password).await?;
    let token = random_token();
    db::users::insert_token(&state.db, current.user.id, token_hash(&token)).await?;
    Ok((token, current))
}

/// The account behind a name and password. Unknown names and wrong passwords
/// get the same answer, after the same work; an account still waiting for
/// approval is told so (only to someone who knows its password).
pub async fn check_credentials(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<CurrentUser, AppError> {
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
    if current.user.status != UserStatus::Active.as_str() {
        return Err(AppError::forbidden(
            "this account is waiting for an admin's approval",
        ));
    }
    Ok(current)
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

/// 256 random bits, URL-safe: session cookies, API tokens, invite codes.
pub(crate) fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub(crate) fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An argon2 hash of a random string: verifying against it costs what a real
/// check costs, so response times don't tell which names exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0SqXRS4Gbd6yB5K1hMi5mvPLpAwvJXuk1GZAvP/qS3A";
