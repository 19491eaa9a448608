//! Helpers of the scale-out tests: each test's own PostgreSQL database and Redis key prefix on
//! the shared servers (PRISM_TEST_REDIS_URL / PRISM_TEST_DATABASE_URL, defaults 127.0.0.1),
//! and bot instances started in webhook mode as a multi-instance deployment runs them.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use prism_bot::{BotConfig, RunningBot};
use serde_json::Value;
use sqlx::Connection;

use crate::faultproxy::FaultProxy;
use crate::standin::{self, StandIn, TOKEN};

pub const ADMIN: i64 = 1;
pub const SECRET: &str = "scale-test-secret-of-at-least-32-characters";

pub fn photo_bytes() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/photos/dragonfly-1280.jpg"
    ))
    .expect("fixture")
}

pub fn redis_url() -> String {
    std::env::var("PRISM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn postgres_url() -> String {
    std::env::var("PRISM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `host:port` of a service URL.
pub fn service_address(url: &str) -> SocketAddr {
    let parsed = url::Url::parse(url).expect("service URL");
    let host = parsed.host_str().unwrap_or("127.0.0.1");
    let port = parsed.port().expect("service URL with a port");
    format!("{host}:{port}")
        .parse()
        .expect("a loopback address")
}

/// One test's own database and key prefix on the shared servers.
pub struct Services {
    pub name: String,
    pub prefix: String,
    pub dir: std::path::PathBuf,
}

impl Services {
    /// None (after saying why) when the servers are not there and CI is not set.
    pub async fn create(test: &str) -> Option<Services> {
        let name = format!("prism_scale_{test}_{}", std::process::id());
        let created = async {
            let mut admin = sqlx::PgConnection::connect(&postgres_url()).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await?;
            let client = redis::Client::open(redis_url())
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            let mut redis = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            let _: String = redis::cmd("PING")
                .query_async(&mut redis)
                .await
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        if let Err(error) = created {
            let message =
                format!("Redis/PostgreSQL not available ({error}); see scripts/test-services.sh");
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{message}");
            }
            eprintln!("skipped: {message}");
            return None;
        }
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Some(Services {
            prefix: format!("prism-test:{name}:"),
            name,
            dir,
        })
    }

    /// This test's database, through `via` when a fault proxy stands in between.
    pub fn database_url(&self, via: Option<&FaultProxy>) -> String {
        let mut url = url::Url::parse(&postgres_url()).expect("URL");
        if let Some(proxy) = via {
            url.set_port(Some(proxy.port())).expect("port");
            url.set_host(Some("127.0.0.1")).expect("host");
        }
        url.set_path(&format!("/{}", self.name));
        url.to_string()
    }

    pub fn redis_url(&self, via: Option<&FaultProxy>) -> String {
        match via {
            Some(proxy) => format!("redis://127.0.0.1:{}", proxy.port()),
            None => redis_url(),
        }
    }

    /// (records, distinct record ids) in this test's database.
    pub async fn record_counts(&self) -> (i64, i64) {
        let mut db = sqlx::PgConnection::connect(&self.database_url(None))
            .await
            .expect("test database");
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT record_id) FROM requests")
            .fetch_one(&mut db)
            .await
            .expect("count records")
    }

    /// Waits until `expected` records are in the database (written in the background).
    pub async fn wait_for_records(&self, expected: i64) -> (i64, i64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let counts = self.record_counts().await;
            if counts.0 >= expected || Instant::now() > deadline {
                return counts;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn remove(self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&postgres_url()).await {
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = sqlx::query(&drop).execute(&mut admin).await;
        }
        if let Ok(client) = redis::Client::open(redis_url())
            && let Ok(mut redis) = client.get_multiplexed_async_connection().await
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query_async(&mut redis)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query_async(&mut redis).await;
            }
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    probe.local_addr().expect("address").port()
}

/// One instance in webhook mode, as a deployment would run it; returns it and the URL the
/// load balancer posts its updates to.
pub struct Instance {
    pub bot: RunningBot,
    /// Where the load balancer posts this instance's updates.
    pub hook: String,
    pub health: String,
}

pub async fn start_instance(
    standin: &StandIn,
    services: &Services,
    name: &str,
    redis: Option<&FaultProxy>,
    database: Option<&FaultProxy>,
    settings: &[(&str, &str)],
) -> Instance {
    let port = free_port();
    let health = format!("127.0.0.1:{}", free_port());
    let hook = format!("http://127.0.0.1:{port}/telegram");
    let spill = services.dir.join(format!("{name}.spill"));
    let mut env: HashMap<String, String> = [
        ("TELEGRAM_BOT_TOKEN", TOKEN.to_string()),
        ("TELEGRAM_API_URL", standin.url.clone()),
        ("TELEGRAM_THROTTLE", "false".into()),
        // The load balancer's address: the same on every instance.
        ("WEBHOOK_URL", "http://127.0.0.1:9/telegram".into()),
        ("WEBHOOK_LISTEN", format!("127.0.0.1:{port}")),
        ("WEBHOOK_SECRET", SECRET.into()),
        ("HEALTH_ADDR", health.clone()),
        ("REDIS_URL", services.redis_url(redis)),
        ("REDIS_KEY_PREFIX", services.prefix.clone()),
        ("DATABASE_URL", services.database_url(database)),
        ("RECORD_SPILL_PATH", spill.display().to_string()),
        (
            "INTAKE_QUEUE_PATH",
            services
                .dir
                .join(format!("{name}.intake"))
                .display()
                .to_string(),
        ),
        ("INSTANCE_ID", name.into()),
        ("THREAD_POOL_SIZE", "1".into()),
        ("ADMIN_IDS", ADMIN.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = BotConfig::from_lookup(|name| env.get(name).cloned()).expect("config");
    let bot = prism_bot::start(config).await.expect("instance starts");
    Instance { bot, hook, health }
}

pub fn message_id(update: &Value) -> i64 {
    update["message"]["message_id"]
        .as_i64()
        .expect("message id")
}

/// Delivers a new photo update to `target` as the load balancer would; returns the update.
pub async fn send_photo(
    standin: &StandIn,
    target: &Instance,
    user: i64,
    file: &standin::FileRef,
    caption: &str,
) -> Value {
    let update = standin.photo_update(user, user, file, Some(caption));
    assert_eq!(standin.deliver_to(&target.hook, &update).await, 200);
    update
}

pub async fn stop_all(instances: Vec<Instance>) {
    for instance in instances {
        instance.bot.stop().await;
    }
}
