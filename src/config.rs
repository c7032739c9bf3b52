//! Typed, layered settings: the built-in `config/default.toml`, then an optional
//! file, then `KINDRED_*` environment variables. Loaded once, passed as a value.

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use serde::Deserialize;

/// The defaults, compiled in so `kindred serve` needs no file on disk.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub federation: FederationSettings,
    pub delivery: DeliverySettings,
    pub web: WebSettings,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
    pub directory: DirectorySettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DirectorySettings {
    pub refresh_interval_secs: u64,
    pub max_instances: u64,
    pub max_groups_per_instance: usize,
    pub max_page_bytes: usize,
    pub trusted_instances: Vec<String>,
    pub max_peers_per_trusted: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSettings {
    /// Bearer token for `/metrics`; empty: only loopback, unproxied requests.
    pub token: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebSettings {
    pub registration_default: String,
    pub session_days: i64,
    pub invite_days: i64,
    pub signin_burst: u32,
    pub signin_refill_secs: u64,
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub domain: String,
    pub bind: String,
    #[serde(default)]
    pub dev_mode: Option<bool>,
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
}

#[derive(Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
}

// The URL may carry a password: never print it.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.url.split(':').next().unwrap_or("?");
        f.debug_struct("DatabaseSettings")
            .field("url", &format_args!("{scheme}://…"))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct FederationSettings {
    pub request_timeout_secs: u64,
    pub http_fetch_limit: u32,
    pub max_clock_skew_secs: i64,
    pub key_refetch_interval_secs: u64,
    pub inbox_burst: u32,
    pub inbox_per_sec: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeliverySettings {
    pub workers: usize,
    pub batch_size: u64,
    pub poll_interval_secs: f64,
    pub lease_secs: i64,
    pub retry_base_secs: i64,
    pub retry_max_secs: i64,
    pub retry_window_hours: i64,
    pub breaker_threshold: i32,
    pub breaker_base_secs: i64,
    pub per_host: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub filter: String,
}

impl Settings {
    /// Defaults → optional file → environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut fig = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "config file {} does not exist",
                    path.display()
                ))));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig.merge(env_provider());
        let s: Settings = fig.extract().map_err(Box::new)?;
        if crate::domain::RegistrationMode::parse(&s.web.registration_default).is_none() {
            return Err(Box::new(figment::Error::from(format!(
                "web.registration_default is '{}'; expected open, approval, invite or closed",
                s.web.registration_default
            ))));
        }
        Ok(s)
    }

    /// Defaults only, for tests and tools that set fields directly.
    pub fn defaults() -> Self {
        #[allow(clippy::expect_used)]
        Figment::from(Toml::string(DEFAULT_TOML))
            .extract()
            .expect("built-in default.toml is valid")
    }

    /// Plain http, explicit ports and loopback peers: only when asked, or for
    /// the zero-config localhost default.
    pub fn dev_mode(&self) -> bool {
        self.server
            .dev_mode
            .unwrap_or_else(|| is_local_domain(&self.server.domain))
    }

    /// `http` in dev mode, `https` otherwise.
    pub fn scheme(&self) -> &'static str {
        if self.dev_mode() { "http" } else { "https" }
    }
}

fn is_local_domain(domain: &str) -> bool {
    let host = domain.rsplit_once(':').map_or(domain, |(h, _)| h);
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "[::1]"
}

/// `KINDRED_DOMAIN`, `KINDRED_BIND`, `KINDRED_DATABASE_URL`, `KINDRED_DEV_MODE`,
/// and `KINDRED_<SECTION>__<KEY>` for everything else.
fn env_provider() -> Env {
    Env::prefixed("KINDRED_").map(|key| {
        let key = key.as_str().to_ascii_lowercase();
        match key.as_str() {
            "domain" => "server.domain".into(),
            "bind" => "server.bind".into(),
            "dev_mode" => "server.dev_mode".into(),
            "database_url" => "database.url".into(),
            _ => key.replace("__", ".").into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_zero_config_localhost_in_dev_mode() {
        let s = Settings::defaults();
        assert_eq!(s.server.domain, "localhost:8080");
        assert_eq!(s.server.bind, "127.0.0.1:8080");
        assert!(s.database.url.starts_with("sqlite:"));
        assert!(s.dev_mode());
        assert_eq!(s.scheme(), "http");
    }

    #[test]
    fn dev_mode_is_off_for_a_real_domain_unless_asked() {
        let mut s = Settings::defaults();
        s.server.domain = "kindred.example".into();
        assert!(!s.dev_mode());
        assert_eq!(s.scheme(), "https");
        s.server.dev_mode = Some(true);
        assert!(s.dev_mode());
        s.server.domain = "localhost:9000".into();
        s.server.dev_mode = Some(false);
        assert!(!s.dev_mode());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error
    fn environment_overrides_short_and_sectioned_names() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KINDRED_DOMAIN", "groups.example.org");
            jail.set_env("KINDRED_DATABASE_URL", "postgres://u@h/db");
            jail.set_env("KINDRED_DEV_MODE", "false");
            jail.set_env("KINDRED_DELIVERY__WORKERS", "9");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.server.domain, "groups.example.org");
            assert_eq!(s.database.url, "postgres://u@h/db");
            assert_eq!(s.server.dev_mode, Some(false));
            assert_eq!(s.delivery.workers, 9);
            assert!(!format!("{:?}", s.database).contains("u@h"));
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let err = Settings::load(Some(Path::new("/nonexistent/kindred.toml")))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("does not exist"), "{err}");
    }
}
