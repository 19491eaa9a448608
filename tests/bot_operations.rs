//! The operator's view of a running bot: the HEALTH_ADDR endpoint (liveness, readiness,
//! Prometheus metrics, authenticated cleanup), the deploy/ files that query it, and the
//! monitoring loop's alerts in Telegram.

mod botkit;
mod standin;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use botkit::{database, photo_bytes, sample, start_bot, wait_for_metric};
use serde_json::Value;
use standin::{StandIn, component_status, http_get, http_get_as, http_post};

const ADMIN: i64 = 1;
const ALICE: i64 = 100;

fn message_id(message: &Value) -> i64 {
    message["message_id"].as_i64().expect("message id")
}

/// Names of every series exposed (labels dropped).
fn series_names(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Every `prism_*` metric a deploy/ file queries.
fn queried_metrics(file: &str) -> BTreeSet<String> {
    let path = format!("{}/deploy/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("deploy file");
    let mut names = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("prism_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

async fn ready_report(address: &str) -> (u16, Value) {
    let (status, body) = http_get(address, "/health/ready").await;
    (status, serde_json::from_str(&body).expect("JSON report"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_report_health_metrics_and_cleanup() {
    let standin = StandIn::start().await;
    let (dir, db) = database("operations");
    let bot = start_bot(
        &standin,
        &db,
        &[("CLEANUP_TOKEN", "s3cret-token-of-at-least-32-characters")],
    )
    .await;
    let address = bot.health_address().expect("endpoint").to_string();

    let (status, body) = http_get(&address, "/health/live").await;
    assert_eq!(status, 200, "{body}");
    let (status, report) = ready_report(&address).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["status"], "ok", "{report}");
    let body = report.to_string();
    for part in [
        "engine",
        "backend",
        "cache",
        "store",
        "rate_limiter",
        "telegram",
    ] {
        assert_eq!(component_status(&body, part), "ok", "{part}: {report}");
    }
    // The public report names each part and its status; the details (which can name hosts
    // and quote server errors) come only with the operator token.
    let details = |report: &Value| -> Vec<String> {
        report["components"]
            .as_array()
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|part| part["detail"].as_str())
                    .filter(|detail| !detail.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(details(&report).is_empty(), "{report}");
    let (status, body) = http_get_as(
        &address,
        "/health/ready",
        "s3cret-token-of-at-least-32-characters",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let operators: Value = serde_json::from_str(&body).expect("JSON report");
    assert!(details(&operators).len() >= 6, "{operators}");
    assert!(report["uptime_seconds"].as_f64().is_some(), "{report}");
    assert!(
        report["memory"]["resident_bytes"].as_u64() > Some(0),
        "{report}"
    );
    assert!(
        report["memory"]["limit_bytes"].as_u64() > Some(0),
        "{report}"
    );
    let (status, body) = http_get(&address, "/health").await;
    assert_eq!(status, 200);
    assert_eq!(component_status(&body, "store"), "ok", "{body}");

    let (status, before) = http_get(&address, "/metrics").await;
    assert_eq!(status, 200);
    assert!(before.ends_with("# EOF\n"), "OpenMetrics text: {before}");
    assert_eq!(
        sample(&before, r#"prism_requests_total{outcome="processed"}"#),
        None
    );
    assert_eq!(sample(&before, "prism_workers"), Some(2.0));
    let file = standin.add_file(&photo_bytes());
    let message = standin.photo(ALICE, ALICE, &file, Some("fit 200"));
    standin
        .wait_reply("sendphoto", ALICE, message_id(&message))
        .await;
    // The same again: a cache hit.
    let again = standin.photo(ALICE + 1, ALICE + 1, &file, Some("fit 200"));
    standin
        .wait_reply("sendphoto", ALICE + 1, message_id(&again))
        .await;

    // Without the token, with a wrong one, with the right one.
    assert_eq!(http_post(&address, "/cleanup", None).await.0, 401);
    assert_eq!(http_post(&address, "/cleanup", Some("guess")).await.0, 401);
    let (status, body) = http_post(
        &address,
        "/cleanup",
        Some("s3cret-token-of-at-least-32-characters"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let freed: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(freed["trigger"], "endpoint", "{freed}");
    for field in [
        "cache_entries_dropped",
        "cache_bytes_freed",
        "rate_limit_users_forgotten",
    ] {
        assert!(freed[field].as_u64().is_some(), "{field}: {freed}");
    }

    // Counters moved; the outcome and backend are counted once the reply is sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let (_, metrics) = http_get(&address, "/metrics").await;
        let done = sample(&metrics, r#"prism_requests_total{outcome="cached"}"#) == Some(1.0);
        if done || Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (series, value) in [
        (r#"prism_requests_total{outcome="processed"}"#, 1.0),
        (r#"prism_requests_total{outcome="cached"}"#, 1.0),
        (r#"prism_backend_jobs_total{backend="cpu"}"#, 1.0),
        (
            r#"prism_request_duration_seconds_count{stage="total"}"#,
            1.0,
        ),
        (
            r#"prism_request_duration_seconds_count{stage="decode"}"#,
            1.0,
        ),
        (
            r#"prism_request_duration_seconds_count{stage="cache_hit"}"#,
            1.0,
        ),
        (r#"prism_engine_jobs_total{result="completed"}"#, 1.0),
        (
            r#"prism_cache_requests_total{layer="memory",result="hit"}"#,
            1.0,
        ),
        (r#"prism_cleanups_total{trigger="endpoint"}"#, 1.0),
        ("prism_requests_in_progress", 0.0),
    ] {
        assert_eq!(
            sample(&metrics, series),
            Some(value),
            "{series} in {metrics}"
        );
    }
    assert!(sample(&metrics, "prism_resident_memory_bytes") > Some(0.0));
    assert!(sample(&metrics, "prism_process_cpu_seconds_total") > Some(0.0));

    // Every metric the dashboard and the alert rules query is exposed.
    let exposed = series_names(&metrics);
    for file in ["grafana-dashboard.json", "alerts.yml"] {
        for name in queried_metrics(file) {
            let found = ["", "_bucket", "_total"]
                .iter()
                .any(|suffix| exposed.contains(&format!("{name}{suffix}")));
            assert!(found, "{file} queries {name}, which /metrics lacks");
        }
    }

    // /health in Telegram is the same report.
    let command = standin.text(ADMIN, ADMIN, "/health", None);
    let text = standin
        .wait_reply("sendmessage", ADMIN, message_id(&command))
        .await;
    let text = text.params["text"].as_str().unwrap_or_default().to_string();
    assert!(text.starts_with("Status: ok"), "{text}");
    assert!(text.contains("rate_limiter: ok"), "{text}");

    // A stopped engine takes no work: down, and 503 for the load balancer; alive still.
    bot.engine().shutdown();
    let (status, report) = ready_report(&address).await;
    assert_eq!((status, report["status"].as_str()), (503, Some("down")));
    assert_eq!(component_status(&report.to_string(), "engine"), "down");
    assert_eq!(http_get(&address, "/health/live").await.0, 200);
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

/// Redis and PostgreSQL configured but not answering (closed ports): the bot still serves,
/// reports degraded with 200, and liveness does not depend on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_when_redis_and_postgres_are_unreachable() {
    let standin = StandIn::start().await;
    let (dir, _) = database("degraded");
    let closed = || {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        probe.local_addr().expect("address").port()
    };
    let redis = format!("redis://127.0.0.1:{}", closed());
    let postgres = format!("postgres://postgres@127.0.0.1:{}/test", closed());
    let bot = start_bot(
        &standin,
        &postgres,
        &[
            ("REDIS_URL", &redis),
            (
                "RECORD_SPILL_PATH",
                &dir.join("spill").display().to_string(),
            ),
        ],
    )
    .await;
    let address = bot.health_address().expect("endpoint").to_string();
    let (status, report) = ready_report(&address).await;
    assert_eq!((status, report["status"].as_str()), (200, Some("degraded")));
    let body = report.to_string();
    for part in ["redis", "store", "cache", "rate_limiter"] {
        assert_eq!(component_status(&body, part), "degraded", "{part}: {body}");
    }
    assert_eq!(component_status(&body, "engine"), "ok", "{body}");
    assert_eq!(http_get(&address, "/health/live").await.0, 200);
    // Photos are still answered.
    let file = standin.add_file(&photo_bytes());
    let message = standin.photo(ALICE, ALICE, &file, Some("fit 120"));
    standin
        .wait_reply("sendphoto", ALICE, message_id(&message))
        .await;
    // No CLEANUP_TOKEN: the endpoint does not exist.
    assert_eq!(http_post(&address, "/cleanup", Some("any")).await.0, 404);
    assert_eq!(http_get(&address, "/metrics").await.0, 200);
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

/// An error-rate threshold of 0 makes one failed request breach it: one alert to the admin;
/// a photo answered afterwards clears it (one recovery message), and quiet checks after that
/// send nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_raised_once_and_cleared_once() {
    let standin = StandIn::start().await;
    let (dir, db) = database("alerts");
    let bot = start_bot(
        &standin,
        &db,
        &[("ALERT_ERROR_RATE", "0"), ("HEALTH_CHECK_INTERVAL", "1")],
    )
    .await;
    let address = bot.health_address().expect("endpoint").to_string();
    let about_errors = |call: &standin::Call| {
        call.method == "sendmessage"
            && call.chat_id() == Some(ADMIN)
            && call.text().contains("error rate")
    };
    let junk = standin.add_file(b"not an image");
    let bad = standin.document(ALICE, ALICE, &junk, "junk.jpg", Some("fit 100"));
    standin
        .wait_reply("sendmessage", ALICE, message_id(&bad))
        .await;
    let raised = standin
        .wait_for("the alert", |c| {
            about_errors(c) && c.text().contains("warning")
        })
        .await;
    assert!(raised.text().contains("threshold 0"), "{}", raised.text());
    let (_, metrics) = http_get(&address, "/metrics").await;
    assert_eq!(
        sample(&metrics, r#"prism_alert_active{check="error_rate"}"#),
        Some(1.0)
    );
    let file = standin.add_file(&photo_bytes());
    let message = standin.photo(ALICE, ALICE, &file, Some("fit 100"));
    standin
        .wait_reply("sendphoto", ALICE, message_id(&message))
        .await;
    standin
        .wait_for("the recovery", |c| {
            about_errors(c) && c.text().contains("recovered")
        })
        .await;
    // Three more quiet checks (counted by the bot once their alerts are sent): no further
    // messages about it.
    let (_, metrics) = http_get(&address, "/metrics").await;
    let checks = sample(&metrics, "prism_health_checks_total").expect("checks are counted");
    assert!(wait_for_metric(&address, "prism_health_checks_total", |v| v >= checks + 3.0).await);
    let messages = standin.calls().iter().filter(|c| about_errors(c)).count();
    assert_eq!(messages, 2);
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}
