//! Everything that speaks ActivityPub: the crate's configuration, wire types
//! (`objects/`, `activities/`), the inbox, the served documents, WebFinger and
//! NodeInfo, outgoing activities and the persistent delivery worker. Only this
//! module (and `app` for wiring) names `activitypub_federation`.

pub mod activities;
pub mod delivery;
pub mod directory;
pub mod docs;
pub mod inbox;
pub mod membership;
pub mod memo;
pub mod nodeinfo;
pub mod objects;
pub mod outbox;
pub mod outcomes;
pub mod policy;
pub mod resolve;
pub mod routes;
pub mod signing;
pub mod urls;
pub mod wellknown;

use std::time::Duration;

use activitypub_federation::{
    config::{Data, FederationConfig},
    resolver::ValidatingDnsResolver,
};

use crate::{app::AppState, error::AppError};

/// Request-scoped federation data: the app state plus the crate's config.
pub type FedData = Data<AppState>;

pub use activitypub_federation::config::FederationMiddleware;
pub use objects::PUBLIC as PUBLIC_AUDIENCE;

/// Our HTTP client for fetches and deliveries: no redirects, our timeouts,
/// and (outside dev mode) no private or loopback addresses.
pub fn http_client(state: &AppState) -> Result<reqwest::Client, AppError> {
    let dev = state.settings.dev_mode();
    let timeout = Duration::from_secs(state.settings.federation.request_timeout_secs);
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(format!(
            "Kindred/{} (+{})",
            env!("CARGO_PKG_VERSION"),
            state.urls.base()
        ))
        .dns_resolver(ValidatingDnsResolver::new(vec![], !dev))
        .build()
        .map_err(|e| AppError::internal(format!("http client: {e}")))
}

/// The crate's configuration. In dev mode plain http, ports and loopback
/// peers are allowed (tests, local demos); otherwise the DNS resolver refuses
/// private and loopback addresses at connect time.
pub async fn build_config(
    state: AppState,
    instance_actor: &objects::actor::DbActor,
) -> Result<FederationConfig<AppState>, AppError> {
    let dev = state.settings.dev_mode();
    let timeout = Duration::from_secs(state.settings.federation.request_timeout_secs);
    let client = http_client(&state)?;
    FederationConfig::builder()
        .domain(state.settings.server.domain.clone())
        .app_data(state.clone())
        .client(
            reqwest_middleware::ClientBuilder::new(client)
                .with(signing::SignGets::new(
                    signing::Key::from_pem(
                        &instance_actor.row.ap_id,
                        instance_actor
                            .row
                            .private_key
                            .as_deref()
                            .unwrap_or_default(),
                    )?,
                    state.signer.clone(),
                ))
                .build(),
        )
        .debug(dev)
        .allow_http_urls(dev)
        .request_timeout(timeout)
        .http_fetch_limit(state.settings.federation.http_fetch_limit)
        .signed_fetch_actor(instance_actor)
        .url_verifier(Box::new(policy::Verifier(state.clone())))
        .build()
        .await
        .map_err(|e| AppError::internal(format!("federation config: {e}")))
}
