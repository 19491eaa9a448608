//! PostgreSQL through sqlx: a pool sized by the configuration, an optional read replica for
//! /admin_stats, migrations run before the first write.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::OnceCell;

use super::sql::SqlStore;
use super::{AdminStats, RequestRecord, StoreError, StoreSettings};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A dead or unreachable server makes a write fail after this long instead of hanging, so
/// the recorder can spill and retry.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// /admin_stats is an occasional admin query: a small replica pool is enough.
const REPLICA_POOL_MAX: u32 = 2;

/// Cheap to clone: clones share the pools.
#[derive(Clone)]
pub struct PostgresStore {
    primary: SqlStore<Postgres>,
    replica: Option<SqlStore<Postgres>>,
    /// Set once this process has run (or confirmed) the migrations on the primary.
    migrated: Arc<OnceCell<()>>,
}

impl PostgresStore {
    /// The pools connect lazily and the migrations run now if the server answers, else
    /// before the first write: a database that is down at start must not keep the bot from
    /// answering (records wait in the recorder's queue and spill file). Anything else that
    /// fails here (bad URL, refused login, a migration that does not apply) stops start-up.
    pub async fn connect(settings: &StoreSettings) -> Result<PostgresStore, StoreError> {
        let primary = lazy_pool(&settings.url, settings.pool_min, settings.pool_max)?;
        let replica = match &settings.replica_url {
            Some(url) => Some(SqlStore::new(lazy_pool(url, 0, REPLICA_POOL_MAX)?)),
            None => None,
        };
        let store = PostgresStore {
            primary: SqlStore::new(primary),
            replica,
            migrated: Arc::new(OnceCell::new()),
        };
        match store.migrate().await {
            Ok(()) => {}
            Err(error) if error.is_unreachable() => {
                tracing::warn!(%error, "PostgreSQL is not reachable; starting anyway, records \
                    wait until it is");
            }
            Err(error) => return Err(error),
        }
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.migrated
            .get_or_try_init(|| async {
                MIGRATOR.run(&self.primary.pool).await?;
                Ok::<(), StoreError>(())
            })
            .await?;
        Ok(())
    }

    pub(super) async fn record_batch(&self, records: &[RequestRecord]) -> Result<(), StoreError> {
        self.migrate().await?;
        self.primary.record_batch(records).await
    }

    /// From the replica when configured; the primary answers when the replica does not.
    pub(super) async fn admin_stats(&self, now_ms: i64) -> Result<AdminStats, StoreError> {
        if let Some(replica) = &self.replica {
            match replica.admin_stats(now_ms).await {
                Ok(stats) => return Ok(stats),
                Err(error) => {
                    tracing::warn!(%error, "the database replica failed; asking the primary")
                }
            }
        }
        self.migrate().await?;
        self.primary.admin_stats(now_ms).await
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.primary.ping().await
    }

    pub(super) async fn delete_older_than(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        self.migrate().await?;
        self.primary.delete_older_than(cutoff_ms).await
    }

    pub(super) async fn close(&self) {
        self.primary.pool.close().await;
        if let Some(replica) = &self.replica {
            replica.pool.close().await;
        }
    }

    #[cfg(test)]
    pub(super) fn faults(&self) -> &super::sql::Faults {
        &self.primary.faults
    }
}

fn lazy_pool(url: &str, min: u32, max: u32) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url)?.application_name("prism-bot");
    Ok(PgPoolOptions::new()
        .min_connections(min)
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options))
}

/// A TCP proxy that can cut the connection to the server (shared with the workspace tests).
#[cfg(test)]
#[path = "../../../tests/faultproxy/mod.rs"]
mod faultproxy;

/// Against the server at `PRISM_TEST_DATABASE_URL`; each test in a database of its own.
#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use futures::FutureExt;
    use sqlx::{Connection, Executor, PgConnection};

    use super::faultproxy::FaultProxy;
    use crate::clock::unix_millis;
    use crate::store::{
        Dimensions, Recorder, RecorderSettings, RequestRecord, SqliteStore, Store, StoreSettings,
    };

    const DAY_MS: i64 = 86_400_000;

    fn server_url() -> String {
        std::env::var("PRISM_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    /// Runs `test` with the URLs of `databases` new databases, dropped afterwards (also when
    /// the test fails). Without a server: fails under CI=true, else skips.
    async fn with_databases<F, Fut>(databases: usize, test: F)
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = ()>,
    {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let server = server_url();
        let connected =
            tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&server)).await;
        let mut admin = match connected {
            Ok(Ok(connection)) => connection,
            failed => {
                let reason = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => "no answer in 5 s".into(),
                };
                if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                    panic!("PostgreSQL at PRISM_TEST_DATABASE_URL: {reason}");
                }
                eprintln!("skipped: no PostgreSQL at PRISM_TEST_DATABASE_URL ({reason})");
                return;
            }
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let mut names = Vec::new();
        let mut urls = Vec::new();
        for _ in 0..databases {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("prism_test_{}_{stamp:x}_{n}", std::process::id());
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create database");
            let mut url = url::Url::parse(&server).expect("server URL");
            url.set_path(&format!("/{name}"));
            urls.push(url.to_string());
            names.push(name);
        }
        let outcome = std::panic::AssertUnwindSafe(test(urls))
            .catch_unwind()
            .await;
        for name in names {
            admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await
                .expect("drop database");
        }
        admin.close().await.ok();
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    fn settings(url: &str) -> StoreSettings {
        StoreSettings {
            url: url.into(),
            replica_url: None,
            pool_min: 1,
            pool_max: 4,
        }
    }

    async fn users_requests(url: &str) -> i64 {
        let mut connection = PgConnection::connect(url).await.expect("connect");
        sqlx::query_scalar("SELECT COALESCE(SUM(requests), 0)::BIGINT FROM users")
            .fetch_one(&mut connection)
            .await
            .expect("users")
    }

    /// A mix of users, outcomes, pipelines, optional fields and ages.
    fn sample(now: i64) -> Vec<RequestRecord> {
        let pipelines = [
            "fit:800x800|gray|jpeg:85",
            "blur:2|png",
            "crop:1x1+0+0|webp:80",
        ];
        (0..40u64)
            .map(|n| RequestRecord {
                id: format!("sample-{n}"),
                at: now - (n as i64 % 4) * 9 * 3_600_000,
                user_id: u64::MAX - n % 5, // ids above i64::MAX survive the round trip
                username: (n % 2 == 0).then(|| format!("user{}", n % 5)),
                chat_id: -(n as i64),
                pipeline: pipelines[n as usize % 3].into(),
                input: (n % 3 != 0).then_some(Dimensions {
                    bytes: 1000 + n,
                    width: 640,
                    height: 480,
                }),
                output: (n % 4 == 0).then_some(Dimensions {
                    bytes: 500,
                    width: 320,
                    height: 240,
                }),
                queue_ms: Some(n as f64 / 3.0),
                total_ms: 10.0 + n as f64,
                backend: if n % 2 == 0 { "cpu" } else { "gpu" }.into(),
                cache_hit: n % 3 == 1,
                delivery: (n % 2 == 1).then(|| "photo".into()),
                error_kind: match n % 7 {
                    0 => Some("malformed".into()),
                    3 => Some("too_large".into()),
                    _ => None,
                },
                ..RequestRecord::default()
            })
            .collect()
    }

    #[tokio::test]
    async fn records_and_admin_stats_match_sqlite() {
        with_databases(1, |urls| async move {
            let now = unix_millis();
            let records = sample(now);
            let dir =
                std::env::temp_dir().join(format!("prism-pg-vs-sqlite-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let sqlite_url = format!("sqlite://{}?mode=rwc", dir.join("s.sqlite").display());
            let sqlite = Store::Sqlite(
                SqliteStore::connect(&sqlite_url, 1, 2)
                    .await
                    .expect("sqlite"),
            );
            let postgres = Store::connect(&settings(&urls[0])).await.expect("postgres");
            assert_eq!(postgres.backend_name(), "postgres");
            for store in [&sqlite, &postgres] {
                store.record_batch(&records[..25]).await.expect("batch");
                store.record_batch(&records[25..]).await.expect("batch");
            }
            let expected = sqlite.admin_stats(now).await.expect("sqlite stats");
            assert_eq!(
                postgres.admin_stats(now).await.expect("postgres stats"),
                expected
            );
            assert_eq!((expected.users, expected.requests_total), (5, 40));
            assert!(expected.requests_today < 40 && !expected.errors_by_kind.is_empty());
            postgres.ping().await.expect("ping");
            sqlite.close().await;
            postgres.close().await;
            std::fs::remove_dir_all(&dir).ok();
        })
        .await;
    }

    #[tokio::test]
    async fn a_batch_written_twice_is_stored_once() {
        with_databases(1, |urls| async move {
            let records = sample(unix_millis());
            let store = Store::connect(&settings(&urls[0])).await.expect("postgres");
            store.record_batch(&records[..30]).await.expect("batch");
            // A retry of a batch whose commit was not acknowledged, overlapping new records.
            store.record_batch(&records[20..]).await.expect("retry");
            store.record_batch(&records).await.expect("retry");
            let stats = store.admin_stats(unix_millis()).await.expect("stats");
            assert_eq!(stats.requests_total, 40);
            assert_eq!(users_requests(&urls[0]).await, 40);
            store.close().await;
        })
        .await;
    }

    #[tokio::test]
    async fn retention_deletes_old_rows() {
        with_databases(1, |urls| async move {
            let now = unix_millis();
            let records: Vec<RequestRecord> = (0..10)
                .map(|n| RequestRecord {
                    at: now - n * DAY_MS,
                    ..sample(now)[n as usize].clone()
                })
                .collect();
            let store = Store::connect(&settings(&urls[0])).await.expect("postgres");
            store.record_batch(&records).await.expect("batch");
            let deleted = store
                .delete_older_than(now - 4 * DAY_MS + 1)
                .await
                .expect("delete");
            assert_eq!(deleted, 6); // 4 to 9 days old
            let stats = store.admin_stats(now).await.expect("stats");
            assert_eq!(stats.requests_total, 4);
            assert_eq!(stats.users, 5, "users are kept");
            store.close().await;
        })
        .await;
    }

    #[tokio::test]
    async fn admin_stats_come_from_the_replica() {
        with_databases(2, |urls| async move {
            let now = unix_millis();
            let records = sample(now);
            let (primary_url, replica_url) = (&urls[0], &urls[1]);
            // The "replica" here is a separate database with other rows, to tell them apart.
            let replica = Store::connect(&settings(replica_url))
                .await
                .expect("replica");
            replica
                .record_batch(&records[..3])
                .await
                .expect("replica rows");
            let store = Store::connect(&StoreSettings {
                replica_url: Some(replica_url.clone()),
                ..settings(primary_url)
            })
            .await
            .expect("postgres");
            store.record_batch(&records).await.expect("primary rows");
            assert_eq!(
                store.admin_stats(now).await.expect("stats").requests_total,
                3
            );
            store.close().await;
            replica.close().await;

            // The replica down: the primary answers.
            let store = Store::connect(&StoreSettings {
                replica_url: Some("postgres://postgres@127.0.0.1:1/none".into()),
                ..settings(primary_url)
            })
            .await
            .expect("postgres");
            assert_eq!(
                store.admin_stats(now).await.expect("stats").requests_total,
                40
            );
            store.close().await;
        })
        .await;
    }

    /// The server unreachable at start and for a while: the store opens anyway, records
    /// wait (queue, then spill file), and are all written once it answers, migrations first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_down_at_start_gets_every_record_when_it_returns() {
        with_databases(1, |urls| async move {
            let mut url = url::Url::parse(&urls[0]).expect("url");
            let upstream = tokio::net::lookup_host((
                url.host_str().expect("host").to_string(),
                url.port().unwrap_or(5432),
            ))
            .await
            .expect("resolve")
            .next()
            .expect("an address");
            let proxy = FaultProxy::start(upstream);
            proxy.cut();
            url.set_host(Some("127.0.0.1")).expect("host");
            url.set_port(Some(proxy.port())).expect("port");
            let store = Store::connect(&settings(url.as_str()))
                .await
                .expect("lazy start");
            let error = store.ping().await.expect_err("down");
            assert!(error.is_unreachable(), "{error}");

            let dir = std::env::temp_dir().join(format!("prism-pg-outage-{}", std::process::id()));
            std::fs::remove_dir_all(&dir).ok();
            let recorder = Recorder::start(
                store.clone(),
                RecorderSettings {
                    queue_capacity: 5,
                    spill_path: dir.join("records.spill"),
                    spill_max_bytes: 1 << 30,
                    retention: Duration::from_secs(86_400 * 365),
                    cleanup_interval: Duration::from_secs(3600),
                    instance_id: "pg-test".into(),
                },
            );
            let records = sample(unix_millis());
            for record in &records {
                recorder.record(RequestRecord {
                    id: String::new(), // the recorder assigns ids
                    ..record.clone()
                });
            }
            // The writer may already hold a batch taken from the queue (counted as queued),
            // so only "some spilled, none lost" is certain here; all 40 are checked below.
            let stats = recorder.stats();
            assert!(stats.spilled > 0 && stats.lost == 0, "{stats:?}");
            for _ in 0..500 {
                if recorder.stats().failing {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(recorder.stats().failing);

            proxy.restore();
            for _ in 0..1500 {
                let stats = recorder.stats();
                if stats.written >= 40 && stats.queued == 0 && stats.spilled == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let stats = recorder.stats();
            assert_eq!(
                (stats.queued, stats.spilled, stats.failing),
                (0, 0, false),
                "{stats:?}"
            );
            let admin = store.admin_stats(unix_millis()).await.expect("stats");
            assert_eq!(admin.requests_total, 40);
            assert_eq!(users_requests(&urls[0]).await, 40);
            recorder.close(Duration::from_secs(2)).await;
            std::fs::remove_dir_all(&dir).ok();
        })
        .await;
    }
}
