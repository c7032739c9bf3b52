//! Accounts through the web app: the first admin, sign-up in each
//! registration mode, approvals, invitation links, browser sessions, password
//! and profile changes, admin rights.

use chrono::{Duration, Utc};

use super::{
    instance::{self, require_admin},
    users::{self, CurrentUser, NewAccount, random_token, token_hash},
};
use crate::{
    app::AppState,
    db,
    domain::{RegistrationMode, UserStatus, content},
    error::AppError,
};

pub const MAX_APPLICATION_CHARS: usize = 1000;
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
pub const MAX_BIO_CHARS: usize = 2000;
pub const MAX_EMAIL_CHARS: usize = 254;

/// Make the first admin account. Only once: whoever comes second (or after
/// an admin was made with the CLI) is refused.
pub async fn setup_first_admin(
    state: &AppState,
    instance_name: &str,
    username: &str,
    password: &str,
) -> Result<CurrentUser, AppError> {
    let settings = instance::settings(state).await?;
    if settings.setup_done {
        return Err(AppError::forbidden("this instance already has an admin"));
    }
    crate::domain::handle::validate_local_name(username).map_err(AppError::BadRequest)?;
    users::validate_password(password)?;
    let name = content::strip_invisible(instance_name);
    let name = name.trim();
    if name.is_empty() || name.chars().count() > instance::MAX_NAME_CHARS {
        return Err(AppError::bad_request(format!(
            "the instance name has 1 to {} characters",
            instance::MAX_NAME_CHARS
        )));
    }
    if !db::instance::claim_setup(&state.db).await? {
        return Err(AppError::forbidden("this instance already has an admin"));
    }
    let made = users::create_account(
        state,
        NewAccount {
            username,
            password,
            is_admin: true,
            status: UserStatus::Active,
            application: None,
            email: None,
        },
    )
    .await;
    match made {
        Ok(u) => {
            db::instance::update(
                &state.db,
                name,
                &settings.description,
                &settings.registration_mode,
            )
            .await?;
            Ok(u)
        }
        Err(e) => {
            db::instance::release_setup(&state.db).await?;
            Err(e)
        }
    }
}

/// What a visitor fills in to sign up.
pub struct SignUp<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub email: &'a str,
    /// Approval mode: why they want to join.
    pub application: &'a str,
    /// Invite mode: the code from the link.
    pub invite: &'a str,
}

pub enum SignedUp {
    /// The account can be used now.
    Active(Box<CurrentUser>),
    /// An admin must approve it first.
    Pending,
}

pub async fn sign_up(state: &AppState, form: SignUp<'_>) -> Result<SignedUp, AppError> {
    let settings = instance::settings(state).await?;
    if !settings.setup_done {
        return Err(AppError::forbidden(
            "this instance is not set up yet: its first visitor creates the admin account",
        ));
    }
    let mode = instance::registration_mode(&settings);
    let email = validate_email(form.email)?;
    let mut invite_id = None;
    let (status, application) = match mode {
        RegistrationMode::Closed => {
            return Err(AppError::forbidden("sign-ups are closed on this instance"));
        }
        RegistrationMode::Open => (UserStatus::Active, None),
        RegistrationMode::Approval => {
            let note = content::strip_invisible(form.application);
            let note = note.trim();
            if note.is_empty() {
                return Err(AppError::bad_request(
                    "please write a few words about why you want to join",
                ));
            }
            if note.chars().count() > MAX_APPLICATION_CHARS {
                return Err(AppError::bad_request(format!(
                    "the note has at most {MAX_APPLICATION_CHARS} characters"
                )));
            }
            (UserStatus::Pending, Some(note.to_string()))
        }
        RegistrationMode::Invite => {
            let code = form.invite.trim();
            let live = if code.is_empty() {
                None
            } else {
                db::sessions::live_invite(&state.db, &token_hash(code), Utc::now()).await?
            };
            let Some(inv) = live else {
                return Err(AppError::forbidden(
                    "sign-up needs a valid invitation link; this one is missing, used up or expired",
                ));
            };
            invite_id = Some(inv.id);
            (UserStatus::Active, None)
        }
    };
    let user = users::create_account(
        state,
        NewAccount {
            username: form.username,
            password: form.password,
            is_admin: false,
            status,
            application,
            email,
        },
    )
    .await?;
    if let Some(id) = invite_id
        && !db::sessions::use_invite(&state.db, id).await?
    {
        // Someone else took the last use between our check and now.
        remove_account(state, &user).await?;
        return Err(AppError::forbidden(
            "sign-up needs a valid invitation link; this one is missing, used up or expired",
        ));
    }
    Ok(match status {
        UserStatus::Active => SignedUp::Active(Box::new(user)),
        UserStatus::Pending => SignedUp::Pending,
    })
}

fn validate_email(email: &str) -> Result<Option<String>, AppError> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let valid = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, host)| !local.is_empty() && host.contains('.'));
    if valid {
        Ok(Some(email.to_string()))
    } else {
        Err(AppError::bad_request(
            "that email address does not look right (it is optional: leave it empty if you like)",
        ))
    }
}

/// A refused applicant, or a sign-up that lost its invite: the account has
/// never been used or federated, so it goes entirely and the name is free.
async fn remove_account(state: &AppState, u: &CurrentUser) -> Result<(), AppError> {
    db::actors::delete_local(&state.db, u.actor.id).await?;
    Ok(())
}

/// Approve a pending sign-up.
pub async fn approve(state: &AppState, me: &CurrentUser, user_id: i64) -> Result<(), AppError> {
    require_admin(me)?;
    if !db::users::set_status(&state.db, user_id, UserStatus::Pending, UserStatus::Active).await? {
        return Err(AppError::not_found("pending sign-up"));
    }
    tracing::info!(user_id, "sign-up approved");
    Ok(())
}

/// Refuse a pending sign-up: the account is removed.
pub async fn refuse(state: &AppState, me: &CurrentUser, user_id: i64) -> Result<(), AppError> {
    require_admin(me)?;
    let user = db::users::by_id(&state.db, user_id)
        .await?
        .filter(|u| u.status == UserStatus::Pending.as_str())
        .ok_or_else(|| AppError::not_found("pending sign-up"))?;
    db::actors::delete_local(&state.db, user.actor_id).await?;
    tracing::info!(user_id, "sign-up refused");
    Ok(())
}

/// A new invitation link's code (shown once; only its hash is kept).
pub async fn create_invite(
    state: &AppState,
    me: &CurrentUser,
    max_uses: i32,
) -> Result<String, AppError> {
    require_admin(me)?;
    if !(1..=1000).contains(&max_uses) {
        return Err(AppError::bad_request(
            "an invitation is for 1 to 1000 people",
        ));
    }
    let code = random_token();
    let expires = Utc::now() + Duration::days(state.settings.web.invite_days);
    db::sessions::insert_invite(&state.db, token_hash(&code), me.user.id, max_uses, expires)
        .await?;
    Ok(code)
}

pub async fn invite_is_live(state: &AppState, code: &str) -> Result<bool, AppError> {
    Ok(
        db::sessions::live_invite(&state.db, &token_hash(code), Utc::now())
            .await?
            .is_some(),
    )
}

pub async fn revoke_invite(state: &AppState, me: &CurrentUser, id: i64) -> Result<(), AppError> {
    require_admin(me)?;
    if db::sessions::delete_invite(&state.db, id).await? == 0 {
        return Err(AppError::not_found("invitation"));
    }
    Ok(())
}

/// Start a browser session; the token goes in the cookie, its hash in the DB.
pub async fn start_session(state: &AppState, user: &CurrentUser) -> Result<String, AppError> {
    let token = random_token();
    let expires = Utc::now() + Duration::days(state.settings.web.session_days);
    db::sessions::insert(&state.db, user.user.id, token_hash(&token), expires).await?;
    Ok(token)
}

/// The active account behind a session cookie, if the session is live.
pub async fn session_user(state: &AppState, token: &str) -> Result<Option<CurrentUser>, AppError> {
    let found = db::sessions::user_of(&state.db, &token_hash(token), Utc::now()).await?;
    Ok(found
        .filter(|(u, _)| u.status == UserStatus::Active.as_str())
        .map(|(user, actor)| CurrentUser { user, actor }))
}

pub async fn end_session(state: &AppState, token: &str) -> Result<(), AppError> {
    db::sessions::delete(&state.db, &token_hash(token)).await?;
    Ok(())
}

/// Change my password: the current one is checked; every other session of
/// mine ends.
pub async fn change_password(
    state: &AppState,
    me: &CurrentUser,
    current: &str,
    new: &str,
    this_session: Option<&str>,
) -> Result<(), AppError> {
    let ok = users::verify_password(current.to_string(), me.user.password_hash.clone()).await?;
    if !ok {
        return Err(AppError::bad_request("the current password is not right"));
    }
    users::validate_password(new)?;
    let hash = users::hash_password(new.to_string()).await?;
    db::users::set_password_hash(&state.db, me.user.id, hash).await?;
    let keep = this_session.map(token_hash);
    db::sessions::delete_all_of(&state.db, me.user.id, keep.as_deref()).await?;
    tracing::info!(user_id = me.user.id, "password changed");
    Ok(())
}

/// My display name and bio (plain text; the bio becomes simple HTML).
pub async fn update_profile(
    state: &AppState,
    me: &CurrentUser,
    display_name: &str,
    bio: &str,
) -> Result<(), AppError> {
    let name = content::strip_invisible(display_name);
    let name = name.trim();
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(AppError::bad_request(format!(
            "a display name has at most {MAX_DISPLAY_NAME_CHARS} characters"
        )));
    }
    if bio.chars().count() > MAX_BIO_CHARS {
        return Err(AppError::bad_request(format!(
            "a bio has at most {MAX_BIO_CHARS} characters"
        )));
    }
    let bio = content::strip_invisible(bio);
    let bio = bio.trim();
    db::actors::update_profile(
        &state.db,
        me.actor.id,
        (!name.is_empty()).then(|| name.to_string()),
        (!bio.is_empty()).then(|| content::plain_text_to_html(bio)),
    )
    .await?;
    Ok(())
}

/// Give or take admin rights. The last admin cannot remove their own.
pub async fn set_admin(
    state: &AppState,
    me: &CurrentUser,
    user_id: i64,
    admin: bool,
) -> Result<(), AppError> {
    require_admin(me)?;
    let user = db::users::by_id(&state.db, user_id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    if !admin && user.is_admin && db::users::count_admins(&state.db).await? <= 1 {
        return Err(AppError::bad_request(
            "the instance needs at least one admin: make someone else admin first",
        ));
    }
    db::users::set_admin(&state.db, user_id, admin).await?;
    tracing::info!(user_id, admin, "admin rights changed");
    Ok(())
}
