//! The bot's configuration: environment variables (and `.env`), with defaults sized for
//! the machine, validated once at start-up with messages that name the variable.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use teloxide::types::UserId;

use crate::redact;

/// Telegram's getFile refuses files above 20 MB, so the bot refuses them before asking.
pub const TELEGRAM_DOWNLOAD_LIMIT: u64 = 20 * 1024 * 1024;
/// The Bot API accepts uploads of at most 50 MB.
pub const TELEGRAM_UPLOAD_LIMIT: u64 = 50 * 1000 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required (get a token from @BotFather)")]
    Missing(&'static str),
    #[error("{name}={value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// How updates reach the bot.
#[derive(Clone, PartialEq, Eq)]
pub enum UpdateSource {
    /// getUpdates long polling (the default: works behind NAT, needs no certificate).
    Polling,
    /// Telegram posts updates to `url`; the bot listens on `listen`. Every instance behind
    /// one URL shares `secret`, which Telegram sends with each update.
    Webhook {
        url: String,
        listen: SocketAddr,
        secret: String,
        /// Connections Telegram may open to deliver updates (WEBHOOK_MAX_CONNECTIONS).
        max_connections: u8,
    },
}

/// The secret never reaches a log (the configuration is logged at start).
impl std::fmt::Debug for UpdateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateSource::Polling => f.write_str("Polling"),
            UpdateSource::Webhook {
                url,
                listen,
                max_connections,
                ..
            } => f
                .debug_struct("Webhook")
                .field("url", &redact::url(url))
                .field("listen", listen)
                .field("secret", &"***")
                .field("max_connections", max_connections)
                .finish(),
        }
    }
}

/// Where requests are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// Everything the bot reads from its environment.
#[derive(Clone)]
pub struct BotConfig {
    pub token: String,
    /// Bot API server, e.g. a local `telegram-bot-api` or a test stand-in.
    pub api_url: String,
    pub updates: UpdateSource,
    /// `sqlite://path?mode=rwc` (created if missing) or `postgres://...`.
    pub database_url: String,
    pub database_kind: DatabaseKind,
    /// A PostgreSQL read replica that serves /admin_stats (writes always go to the primary).
    pub database_replica_url: Option<String>,
    pub db_pool_min: u32,
    pub db_pool_max: u32,
    /// Records older than this are deleted every CLEANUP_INTERVAL.
    pub record_retention: Duration,
    /// Records waiting in memory for the database; beyond this they spill to `record_spill_path`.
    pub record_queue_size: usize,
    /// Append-only file of records the database could not take yet; replayed at start.
    pub record_spill_path: std::path::PathBuf,
    /// Bound of the spill file (RECORD_SPILL_MAX_MB): past 80 % of it refusal records are
    /// only counted, at it every record is dropped, with an alert.
    pub record_spill_max_bytes: u64,
    /// Shared cache, limits, locks and update ids for several instances; `None`: in-process.
    /// The local durable queue of accepted updates (SQLite): every update without REDIS_URL,
    /// and those accepted while Redis fails (INTAKE_QUEUE_PATH).
    pub intake_queue_path: std::path::PathBuf,
    /// An entry not acknowledged for this long is taken over by a live instance
    /// (INTAKE_VISIBILITY_SECONDS); a job in progress renews its claim well within it.
    pub intake_visibility: Duration,
    /// Accepted updates waiting or in progress, over all instances, beyond which new ones
    /// are refused with 429 for Telegram to retry (INTAKE_MAX_BACKLOG).
    pub intake_max_backlog: usize,
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several deployments (or tests) can share one server.
    pub redis_prefix: String,
    /// Names this process in logs, locks and record ids; unique per instance.
    pub instance_id: String,
    /// Engine worker threads.
    pub threads: usize,
    /// Images being downloaded, processed or uploaded at once.
    pub max_concurrent: usize,
    /// Requests allowed to wait for one of those slots; beyond it users are told to retry.
    pub queue_size: usize,
    pub cache_ttl: Duration,
    pub cache_bytes: usize,
    /// Image requests per user per hour; admins are exempt.
    pub rate_limit_per_hour: u32,
    /// One user's image requests in flight (USER_MAX_IN_FLIGHT); more wait for one of
    /// them to finish before they queue. Admins are exempt.
    pub user_max_in_flight: usize,
    /// The whole process's memory target; the engine gets 60 % of it, the cache 10 %.
    pub memory_limit_bytes: usize,
    pub cleanup_interval: Duration,
    pub performance_monitoring: bool,
    pub health_check_interval: Duration,
    pub admins: HashSet<UserId>,
    /// Telegram's outbound limits (about 30 messages/s); off only for benchmarks.
    pub throttle: bool,
    /// getUpdates long-poll timeout; kept well below the HTTP client's timeout.
    pub polling_timeout: Duration,
    /// Serves /health/live, /health/ready, /metrics and POST /cleanup; `None` with
    /// HEALTH_ADDR=off. Port 0 picks a free port (see `RunningBot::health_address`).
    pub health_addr: Option<SocketAddr>,
    /// Bearer token POST /cleanup requires; without one the endpoint does not exist.
    pub cleanup_token: Option<String>,
    pub alerts: AlertThresholds,
}

/// When the monitoring loop alerts the admins (ALERT_*); percentages are 0-100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertThresholds {
    pub cpu_warn: f64,
    pub cpu_crit: f64,
    /// Of MEMORY_LIMIT_MB.
    pub memory_warn: f64,
    pub memory_crit: f64,
    pub disk_warn: f64,
    /// Mean arrival-to-reply time of the requests processed since the last check.
    pub processing_seconds: f64,
    /// Failed requests among those that ended since the last check.
    pub error_rate: f64,
    /// Judged over windows of at least a few dozen lookups.
    pub cache_hit_min: f64,
    /// The oldest accepted update still unanswered (ALERT_INTAKE_AGE_SECONDS).
    pub intake_age_seconds: f64,
}

impl std::fmt::Debug for BotConfig {
    // Never print the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotConfig")
            .field("api_url", &redact::url(&self.api_url))
            .field("updates", &self.updates)
            .field("database_kind", &self.database_kind)
            .field("redis", &self.redis_url.is_some())
            .field("redis_prefix", &self.redis_prefix)
            .field("intake_visibility", &self.intake_visibility)
            .field("intake_max_backlog", &self.intake_max_backlog)
            .field("instance_id", &self.instance_id)
            .field("threads", &self.threads)
            .field("max_concurrent", &self.max_concurrent)
            .field("queue_size", &self.queue_size)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_bytes", &self.cache_bytes)
            .field("rate_limit_per_hour", &self.rate_limit_per_hour)
            .field("user_max_in_flight", &self.user_max_in_flight)
            .field("memory_limit_bytes", &self.memory_limit_bytes)
            .field("admins", &self.admins.len())
            .field("throttle", &self.throttle)
            .field("health_addr", &self.health_addr)
            .field("cleanup_token", &self.cleanup_token.is_some())
            .field("alerts", &self.alerts)
            .finish_non_exhaustive()
    }
}

impl BotConfig {
    /// Reads the process environment (after `.env`, if the caller loaded one).
    pub fn from_env() -> Result<BotConfig, ConfigError> {
        BotConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<BotConfig, ConfigError> {
        let env = Env { lookup: &lookup };
        let token = env
            .text("TELEGRAM_BOT_TOKEN")
            .ok_or(ConfigError::Missing("TELEGRAM_BOT_TOKEN"))?;
        if !token.contains(':') {
            return Err(ConfigError::Invalid {
                name: "TELEGRAM_BOT_TOKEN",
                value: "<hidden>".into(),
                reason: "a bot token looks like 123456:ABC-DEF...".into(),
            });
        }
        let threads = env.number("THREAD_POOL_SIZE", default_threads(), 1, 256)?;
        let memory_limit_mb =
            env.number("MEMORY_LIMIT_MB", default_memory_limit_mb(), 64, 1 << 20)?;
        let max_concurrent = env.number("MAX_CONCURRENT_REQUESTS", threads * 2, 1, 4096)?;
        let cache_mb_default = (memory_limit_mb / 10).max(1);
        let redis_url = env.text("REDIS_URL");
        if let Some(url) = &redis_url
            && !url.starts_with("redis://")
            && !url.starts_with("rediss://")
        {
            return Err(ConfigError::Invalid {
                name: "REDIS_URL",
                value: redact::url(url),
                reason: "expected redis://host:port[/db]".into(),
            });
        }
        let updates = match env.text("WEBHOOK_URL") {
            None => UpdateSource::Polling,
            Some(url) => {
                if !url.starts_with("https://") && !url.starts_with("http://") {
                    return Err(ConfigError::Invalid {
                        name: "WEBHOOK_URL",
                        value: url,
                        reason: "must be an http(s) URL that reaches this process".into(),
                    });
                }
                let secret = match env.text("WEBHOOK_SECRET") {
                    Some(secret) => check_webhook_secret(secret)?,
                    // Several instances behind one URL must agree on the secret: each
                    // instance's setWebhook would otherwise lock the others out.
                    None if redis_url.is_some() => {
                        return Err(ConfigError::Invalid {
                            name: "WEBHOOK_SECRET",
                            value: String::new(),
                            reason: "required with WEBHOOK_URL and REDIS_URL (several instances \
                                     share one webhook and must share its secret)"
                                .into(),
                        });
                    }
                    None => secret_from_token(&token)?,
                };
                UpdateSource::Webhook {
                    url,
                    listen: env.parsed("WEBHOOK_LISTEN", "0.0.0.0:8443")?,
                    secret,
                    max_connections: env.number("WEBHOOK_MAX_CONNECTIONS", 40, 1, 100)?,
                }
            }
        };
        let database_url = env
            .text("DATABASE_URL")
            .unwrap_or_else(|| "sqlite://prism-bot.sqlite?mode=rwc".into());
        let database_kind = if database_url.starts_with("sqlite:") {
            DatabaseKind::Sqlite
        } else if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            DatabaseKind::Postgres
        } else {
            return Err(ConfigError::Invalid {
                name: "DATABASE_URL",
                value: redact::url(&database_url),
                reason: "expected sqlite://PATH?mode=rwc or postgres://USER@HOST:PORT/DB".into(),
            });
        };
        // SQLite is one file with one writer; PostgreSQL gets a few more connections, sized
        // so that 5 instances stay far below the server's default max_connections (100).
        let (pool_min, pool_max) = match database_kind {
            DatabaseKind::Sqlite => (1, 4),
            DatabaseKind::Postgres => (2, 8),
        };
        let config = BotConfig {
            token,
            api_url: env
                .text("TELEGRAM_API_URL")
                .unwrap_or_else(|| "https://api.telegram.org".into()),
            updates,
            database_url,
            database_kind,
            database_replica_url: env.text("DATABASE_REPLICA_URL"),
            db_pool_min: env.number("DB_POOL_MIN_SIZE", pool_min, 0, 1000)?,
            db_pool_max: env.number("DB_POOL_MAX_SIZE", pool_max, 1, 1000)?,
            record_retention: Duration::from_secs(
                86_400 * env.number("RECORD_RETENTION_DAYS", 90u64, 1, 36_500)?,
            ),
            record_queue_size: env.number("RECORD_QUEUE_SIZE", 10_000, 1, 10_000_000)?,
            record_spill_path: env
                .text("RECORD_SPILL_PATH")
                .unwrap_or_else(|| "prism-bot-records.spill".into())
                .into(),
            record_spill_max_bytes: env.number("RECORD_SPILL_MAX_MB", 1024u64, 1, 1 << 24)? << 20,
            intake_queue_path: env
                .text("INTAKE_QUEUE_PATH")
                .unwrap_or_else(|| "prism-bot-intake.sqlite".into())
                .into(),
            intake_visibility: Duration::from_secs(env.number(
                "INTAKE_VISIBILITY_SECONDS",
                30,
                2,
                86_400,
            )?),
            intake_max_backlog: env.number("INTAKE_MAX_BACKLOG", 10_000, 1, 10_000_000)?,
            redis_url,
            redis_prefix: env
                .text("REDIS_KEY_PREFIX")
                .unwrap_or_else(|| "prism:".into()),
            instance_id: env.text("INSTANCE_ID").unwrap_or_else(default_instance_id),
            threads,
            max_concurrent,
            queue_size: env.number("REQUEST_QUEUE_SIZE", 256, 0, 1 << 20)?,
            cache_ttl: Duration::from_secs(env.number(
                "IMAGE_CACHE_TTL",
                86_400,
                1,
                30 * 86_400,
            )?),
            cache_bytes: env.number("IMAGE_CACHE_MB", cache_mb_default, 0, 1 << 20)? << 20,
            rate_limit_per_hour: env.number("RATE_LIMIT_PER_USER", 50, 1, 1_000_000)?,
            user_max_in_flight: env.number("USER_MAX_IN_FLIGHT", 2, 1, 4096)?,
            memory_limit_bytes: memory_limit_mb << 20,
            cleanup_interval: Duration::from_secs(env.number(
                "CLEANUP_INTERVAL",
                300,
                1,
                86_400,
            )?),
            performance_monitoring: env.flag("ENABLE_PERFORMANCE_MONITORING", true)?,
            health_check_interval: Duration::from_secs(env.number(
                "HEALTH_CHECK_INTERVAL",
                60,
                1,
                86_400,
            )?),
            admins: env.admins()?,
            throttle: env.flag("TELEGRAM_THROTTLE", true)?,
            polling_timeout: Duration::from_secs(env.number("POLLING_TIMEOUT", 10, 0, 50)?),
            health_addr: match env.text("HEALTH_ADDR").as_deref() {
                Some("off" | "none" | "false") => None,
                _ => Some(env.parsed("HEALTH_ADDR", "127.0.0.1:8000")?),
            },
            cleanup_token: env
                .text("CLEANUP_TOKEN")
                .map(|token| strong_secret("CLEANUP_TOKEN", token))
                .transpose()?,
            alerts: AlertThresholds {
                cpu_warn: env.number("ALERT_CPU_WARN", 80.0, 0.0, 100.0)?,
                cpu_crit: env.number("ALERT_CPU_CRIT", 95.0, 0.0, 100.0)?,
                memory_warn: env.number("ALERT_MEMORY_WARN", 80.0, 0.0, 1000.0)?,
                memory_crit: env.number("ALERT_MEMORY_CRIT", 95.0, 0.0, 1000.0)?,
                disk_warn: env.number("ALERT_DISK_WARN", 80.0, 0.0, 100.0)?,
                processing_seconds: env.number("ALERT_PROCESSING_SECONDS", 15.0, 0.0, 86_400.0)?,
                error_rate: env.number("ALERT_ERROR_RATE", 10.0, 0.0, 100.0)?,
                cache_hit_min: env.number("ALERT_CACHE_HIT_MIN", 70.0, 0.0, 100.0)?,
                intake_age_seconds: env.number("ALERT_INTAKE_AGE_SECONDS", 120.0, 0.0, 86_400.0)?,
            },
        };
        let alerts = &config.alerts;
        for (name, critical, warning) in [
            ("ALERT_CPU_CRIT", alerts.cpu_crit, alerts.cpu_warn),
            ("ALERT_MEMORY_CRIT", alerts.memory_crit, alerts.memory_warn),
        ] {
            if critical < warning {
                return Err(ConfigError::Invalid {
                    name,
                    value: critical.to_string(),
                    reason: format!("below its warning threshold ({warning})"),
                });
            }
        }
        if config.db_pool_min > config.db_pool_max {
            return Err(ConfigError::Invalid {
                name: "DB_POOL_MIN_SIZE",
                value: config.db_pool_min.to_string(),
                reason: format!("larger than DB_POOL_MAX_SIZE ({})", config.db_pool_max),
            });
        }
        Ok(config)
    }

    /// The engine's share of the memory limit.
    pub fn engine_memory_budget(&self) -> usize {
        self.memory_limit_bytes / 10 * 6
    }

    pub fn is_admin(&self, user: UserId) -> bool {
        self.admins.contains(&user)
    }

    /// Every value a log line must not show: the token, the shared secrets and the
    /// passwords in the service URLs (for [`redact::hide`]).
    pub fn secrets(&self) -> Vec<String> {
        // The part after the bot id is the secret one; it is hidden wherever it appears.
        let mut secrets = vec![self.token.clone()];
        secrets.extend(self.token.split_once(':').map(|(_, key)| key.to_string()));
        if let UpdateSource::Webhook { secret, .. } = &self.updates {
            secrets.push(secret.clone());
        }
        secrets.extend(self.cleanup_token.clone());
        for url in [
            Some(&self.database_url),
            self.database_replica_url.as_ref(),
            self.redis_url.as_ref(),
            Some(&self.api_url),
        ]
        .into_iter()
        .flatten()
        {
            secrets.extend(redact::url_secrets(url));
        }
        secrets
    }
}

struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    fn text(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
    }

    fn parsed<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: &str,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let value = self.text(name).unwrap_or_else(|| default.into());
        value.parse().map_err(|error: T::Err| ConfigError::Invalid {
            name,
            reason: error.to_string(),
            value,
        })
    }

    fn number<T>(&self, name: &'static str, default: T, min: T, max: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(value) = self.text(name) else {
            return Ok(default);
        };
        match value.parse::<T>() {
            Ok(number) if number >= min && number <= max => Ok(number),
            _ => Err(ConfigError::Invalid {
                name,
                value,
                reason: format!("expected a number from {min} to {max}"),
            }),
        }
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.text(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(value) => Err(ConfigError::Invalid {
                name,
                value,
                reason: "expected true or false".into(),
            }),
        }
    }

    fn admins(&self) -> Result<HashSet<UserId>, ConfigError> {
        let Some(list) = self.text("ADMIN_IDS") else {
            return Ok(HashSet::new());
        };
        list.split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| {
                id.parse::<u64>()
                    .map(UserId)
                    .map_err(|_| ConfigError::Invalid {
                        name: "ADMIN_IDS",
                        value: list.clone(),
                        reason: format!("`{id}` is not a numeric Telegram user id"),
                    })
            })
            .collect()
    }
}

/// Shared secrets shorter than this are refused: they could be guessed.
pub const SHORTEST_SECRET: usize = 32;

/// Telegram allows 1-256 characters of A-Z, a-z, 0-9, `_` and `-`; fewer than
/// [`SHORTEST_SECRET`] are refused.
fn check_webhook_secret(secret: String) -> Result<String, ConfigError> {
    let valid = (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        strong_secret("WEBHOOK_SECRET", secret)
    } else {
        Err(ConfigError::Invalid {
            name: "WEBHOOK_SECRET",
            value: "<hidden>".into(),
            reason: "1-256 characters of A-Z, a-z, 0-9, _ and -".into(),
        })
    }
}

/// Compares a secret a client offered without stopping at the first difference, so timing
/// tells nothing of the expected one.
pub fn same_secret(offered: impl AsRef<[u8]>, expected: impl AsRef<[u8]>) -> bool {
    let (offered, expected) = (offered.as_ref(), expected.as_ref());
    offered.len() == expected.len()
        && offered
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn strong_secret(name: &'static str, secret: String) -> Result<String, ConfigError> {
    if secret.chars().count() < SHORTEST_SECRET {
        return Err(ConfigError::Invalid {
            name,
            value: "<hidden>".into(),
            reason: format!(
                "{} characters; a secret needs at least {SHORTEST_SECRET} (e.g. openssl rand -hex 32)",
                secret.chars().count()
            ),
        });
    }
    Ok(secret)
}

/// A single instance without WEBHOOK_SECRET: a secret derived from the token with
/// HMAC-SHA256, so it stays the same across restarts, never appears in the URL, and tells
/// nothing of the token.
fn secret_from_token(token: &str) -> Result<String, ConfigError> {
    use hmac::{Hmac, Mac};
    // HMAC takes keys of any length; the error is only in the type.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes()).map_err(|error| {
        ConfigError::Invalid {
            name: "TELEGRAM_BOT_TOKEN",
            value: "<hidden>".into(),
            reason: format!("cannot derive the webhook secret from it: {error}"),
        }
    })?;
    mac.update(b"prism webhook secret");
    Ok(mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default();
    format!(
        "{}-{}",
        if host.is_empty() { "prism" } else { &host },
        std::process::id()
    )
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The engine's own default budget: a quarter of the machine's memory, at least 512 MiB.
fn default_memory_limit_mb() -> usize {
    prism_engine::EngineConfig::default().memory_budget_bytes >> 20
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<BotConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BotConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn a_token_alone_is_enough() {
        let config = config(&[("TELEGRAM_BOT_TOKEN", "1:abc")]).expect("valid");
        assert_eq!(config.updates, UpdateSource::Polling);
        assert_eq!(config.rate_limit_per_hour, 50);
        assert!(config.database_url.starts_with("sqlite:"));
        assert!(config.engine_memory_budget() < config.memory_limit_bytes);
        assert_eq!(config.health_addr, Some(([127, 0, 0, 1], 8000).into()));
        assert_eq!(config.cleanup_token, None);
        assert_eq!(config.alerts.cpu_warn, 80.0);
        assert_eq!(config.alerts.processing_seconds, 15.0);
    }

    #[test]
    fn the_endpoint_can_be_turned_off_and_thresholds_set() {
        let settings = config(&[
            ("TELEGRAM_BOT_TOKEN", "1:abc"),
            ("HEALTH_ADDR", "off"),
            ("ALERT_PROCESSING_SECONDS", "0.5"),
            ("ALERT_CACHE_HIT_MIN", "0"),
        ])
        .expect("valid");
        assert_eq!(settings.health_addr, None);
        assert_eq!(settings.alerts.processing_seconds, 0.5);
        assert_eq!(settings.alerts.cache_hit_min, 0.0);
        let error = config(&[("TELEGRAM_BOT_TOKEN", "1:abc"), ("ALERT_CPU_WARN", "200")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.starts_with("ALERT_CPU_WARN"), "{error}");
        let error = config(&[
            ("TELEGRAM_BOT_TOKEN", "1:abc"),
            ("ALERT_MEMORY_WARN", "90"),
            ("ALERT_MEMORY_CRIT", "85"),
        ])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(error.starts_with("ALERT_MEMORY_CRIT"), "{error}");
    }

    #[test]
    fn errors_name_the_variable() {
        assert!(matches!(
            config(&[]),
            Err(ConfigError::Missing("TELEGRAM_BOT_TOKEN"))
        ));
        let error = config(&[
            ("TELEGRAM_BOT_TOKEN", "1:abc"),
            ("RATE_LIMIT_PER_USER", "lots"),
        ])
        .expect_err("invalid");
        assert!(
            error
                .to_string()
                .starts_with("RATE_LIMIT_PER_USER=\"lots\""),
            "{error}"
        );
        let error =
            config(&[("TELEGRAM_BOT_TOKEN", "1:abc"), ("ADMIN_IDS", "1, x")]).expect_err("invalid");
        assert!(error.to_string().contains("`x`"), "{error}");
        let error = config(&[("TELEGRAM_BOT_TOKEN", "secret")]).expect_err("invalid");
        assert!(!error.to_string().contains("secret"));
    }

    #[test]
    fn webhook_mode_and_admins() {
        let config = config(&[
            ("TELEGRAM_BOT_TOKEN", "1:abc"),
            ("WEBHOOK_URL", "https://bot.example.com/hook"),
            ("WEBHOOK_LISTEN", "127.0.0.1:9000"),
            ("ADMIN_IDS", "7, 8"),
        ])
        .expect("valid");
        assert!(matches!(config.updates, UpdateSource::Webhook { .. }));
        assert!(config.is_admin(UserId(8)) && !config.is_admin(UserId(9)));
    }

    #[test]
    fn the_logged_configuration_holds_no_secret() {
        let secret = "a-webhook-secret-nobody-may-read";
        let config = config(&[
            ("TELEGRAM_BOT_TOKEN", "1:the-token"),
            ("WEBHOOK_URL", "https://bot.example.com/hook"),
            ("WEBHOOK_SECRET", secret),
            ("CLEANUP_TOKEN", "a-cleanup-token-nobody-may-ever-read"),
        ])
        .expect("valid");
        let logged = format!("{config:?}");
        for hidden in [secret, "the-token", "a-cleanup-token-nobody-may-ever-read"] {
            assert!(!logged.contains(hidden), "{hidden} in {logged}");
        }
        assert!(logged.contains("https://bot.example.com/hook"), "{logged}");
    }

    #[test]
    fn short_secrets_are_refused_naming_the_variable() {
        let webhook = |secret: &str| {
            config(&[
                ("TELEGRAM_BOT_TOKEN", "1:abc"),
                ("WEBHOOK_URL", "https://bot.example.com/hook"),
                ("WEBHOOK_SECRET", secret),
            ])
        };
        let error = webhook("x").expect_err("one character");
        assert!(error.to_string().starts_with("WEBHOOK_SECRET"), "{error}");
        assert!(!error.to_string().contains("\"x\""), "{error}");
        assert!(webhook(&"x".repeat(SHORTEST_SECRET)).is_ok());
        let error = config(&[("TELEGRAM_BOT_TOKEN", "1:abc"), ("CLEANUP_TOKEN", "short")])
            .expect_err("short");
        assert!(error.to_string().starts_with("CLEANUP_TOKEN"), "{error}");
        assert!(!error.to_string().contains("short\""), "{error}");
    }

    #[test]
    fn the_default_webhook_secret_is_an_hmac_of_the_token() {
        let secret = |token: &str| {
            let config = config(&[
                ("TELEGRAM_BOT_TOKEN", token),
                ("WEBHOOK_URL", "https://bot.example.com/hook"),
            ])
            .expect("valid");
            match config.updates {
                UpdateSource::Webhook { secret, .. } => secret,
                UpdateSource::Polling => String::new(),
            }
        };
        let first = secret("1:abc");
        assert_eq!(first.len(), 64, "{first}");
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(first, secret("1:abc"), "stable across restarts");
        assert_ne!(first, secret("1:abd"));
    }

    #[test]
    fn urls_in_errors_and_the_logged_configuration_carry_no_password() {
        let error = config(&[
            ("TELEGRAM_BOT_TOKEN", "1:abc"),
            ("DATABASE_URL", "mysql://prism:db-password-here@db/prism"),
        ])
        .expect_err("unsupported");
        assert!(!error.to_string().contains("db-password-here"), "{error}");
        let error = config(&[
            ("TELEGRAM_BOT_TOKEN", "1:abc"),
            ("REDIS_URL", "http://:redis-password-here@cache:6379"),
        ])
        .expect_err("not redis://");
        assert!(
            !error.to_string().contains("redis-password-here"),
            "{error}"
        );
        let settings = config(&[
            ("TELEGRAM_BOT_TOKEN", "1:abc"),
            ("DATABASE_URL", "postgres://prism:db-password-here@db/prism"),
        ])
        .expect("valid");
        assert!(settings.secrets().contains(&"db-password-here".to_string()));
        assert!(!format!("{settings:?}").contains("db-password-here"));
    }
}
