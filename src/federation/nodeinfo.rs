//! What we learn about the instances we meet: when we last heard from them,
//! and their software and version from NodeInfo (read at most once a day,
//! in the background, through the federation policy, size- and time-bounded).

use std::time::{Duration, Instant};

use url::Url;

use crate::{app::AppState, db, error::AppError};

/// How often one process writes a host's contact time (it is only shown).
const CONTACT_EVERY: Duration = Duration::from_secs(600);
/// A NodeInfo document larger than this is not read.
const MAX_BYTES: usize = 64 * 1024;

/// `host` answered us or wrote to us: note it (throttled per process) and
/// read its NodeInfo if we have not for a day.
pub async fn met(state: &AppState, host: &str, wrote_to_us: bool) -> Result<(), AppError> {
    {
        let Ok(mut seen) = state.contacts.lock() else {
            return Ok(());
        };
        if seen.get(host).is_some_and(|t| t.elapsed() < CONTACT_EVERY) {
            return Ok(());
        }
        if seen.len() > 50_000 {
            seen.retain(|_, t| t.elapsed() < CONTACT_EVERY);
        }
        seen.insert(host.to_string(), Instant::now());
    }
    let now = state.clock.now();
    let due = db::instances::touch(&state.db, host, now, wrote_to_us).await?;
    if due {
        let state = state.clone();
        let host = host.to_string();
        tokio::spawn(async move {
            let found = refresh(&state, &host).await;
            let (software, version) = match &found {
                Ok(sv) => sv.clone(),
                Err(e) => {
                    tracing::info!(instance = %host, error = %e, "no NodeInfo");
                    (None, None)
                }
            };
            if let Err(e) =
                db::instances::set_software(&state.db, &host, software, version, state.clock.now())
                    .await
            {
                tracing::warn!(error = %e, "cannot store NodeInfo");
            }
        });
    }
    Ok(())
}

/// Read `host`'s NodeInfo: (software name, version).
pub async fn refresh(
    state: &AppState,
    host: &str,
) -> Result<(Option<String>, Option<String>), AppError> {
    let doc = read(state, host).await?;
    let field = |k: &str| {
        doc.get("software")
            .and_then(|s| s.get(k))
            .and_then(|v| v.as_str())
            .map(|v| v.chars().filter(|c| !c.is_control()).take(100).collect())
    };
    Ok((field("name"), field("version")))
}

/// `host`'s base URL: http only for localhost peers in dev mode.
pub fn base_of(state: &AppState, host: &str) -> Result<Url, AppError> {
    let scheme = if state.settings.dev_mode() && host.starts_with("localhost") {
        "http"
    } else {
        "https"
    };
    Ok(Url::parse(&format!("{scheme}://{host}/"))?)
}

/// A client for plain (unsigned) reads of other servers' public documents:
/// the federation client's settings (no redirects, our timeouts, the same
/// address checks), without the GET-signing middleware.
pub fn client(state: &AppState) -> Result<reqwest::Client, AppError> {
    super::http_client(state)
}

/// `host`'s NodeInfo document: the well-known links, then the newest 2.x
/// schema on the same host; through the federation policy.
pub async fn read(state: &AppState, host: &str) -> Result<serde_json::Value, AppError> {
    super::policy::check(state, host, None).await?;
    let base = base_of(state, host)?;
    let client = client(state)?;
    let links = get_json(&client, &base.join(".well-known/nodeinfo")?, MAX_BYTES).await?;
    let href = links
        .get("links")
        .and_then(|l| l.as_array())
        .into_iter()
        .flatten()
        .filter(|l| {
            l.get("rel")
                .and_then(|r| r.as_str())
                .is_some_and(|r| r.starts_with("http://nodeinfo.diaspora.software/ns/schema/2."))
        })
        .filter_map(|l| l.get("href").and_then(|h| h.as_str()))
        .filter_map(|h| Url::parse(h).ok())
        .filter(|u| super::objects::authority(u) == host)
        .max_by(|a, b| a.as_str().cmp(b.as_str()))
        .ok_or_else(|| AppError::Remote("no NodeInfo 2.x link on the same host".into()))?;
    get_json(&client, &href, MAX_BYTES).await
}

/// GET `url` as JSON, refusing a body over `max_bytes`.
pub async fn get_json(
    client: &reqwest::Client,
    url: &Url,
    max_bytes: usize,
) -> Result<serde_json::Value, AppError> {
    let mut res = client
        .get(url.as_str())
        .header(
            "accept",
            "application/activity+json, application/ld+json, application/json",
        )
        .send()
        .await
        .map_err(|e| AppError::Remote(e.to_string()))?;
    if !res.status().is_success() {
        return Err(AppError::Remote(format!("{url} answered {}", res.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| AppError::Remote(e.to_string()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > max_bytes {
            return Err(AppError::Remote(format!("{url} is too large")));
        }
    }
    serde_json::from_slice(&body).map_err(|e| AppError::Remote(format!("{url}: {e}")))
}
