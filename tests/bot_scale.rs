//! Several prism-bot instances on the real Redis and PostgreSQL (127.0.0.1), behind the
//! Telegram stand-in acting as Telegram and load balancer: shared cache, coalescing, exact
//! rate limit, update de-duplication, per-chat order, and faults injected through TCP proxies
//! the tests control (the shared servers are never stopped). Each test uses its own database
//! and Redis key prefix and removes them at the end.
//!
//! The services come from PRISM_TEST_REDIS_URL / PRISM_TEST_DATABASE_URL (defaults:
//! 127.0.0.1:6379 and postgres://postgres@127.0.0.1:5432/postgres). When they do not answer
//! the tests fail under CI=true and are skipped with a message elsewhere.

mod faultproxy;
mod scale;
mod standin;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use faultproxy::FaultProxy;
use prism_bot::BotConfig;
use scale::{
    ADMIN, Services, message_id, photo_bytes, postgres_url, redis_url, send_photo, service_address,
    start_instance, stop_all,
};
use serde_json::Value;
use standin::{StandIn, TOKEN, component_status, http_get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_on_the_other_instance_is_answered_from_the_shared_cache() {
    let Some(services) = Services::create("cache").await else {
        return;
    };
    let standin = StandIn::start().await;
    let a = start_instance(&standin, &services, "a", None, None, &[]).await;
    let b = start_instance(&standin, &services, "b", None, None, &[]).await;
    // Each start registers the webhook with all its parameters (idempotent).
    assert_eq!(standin.count("setwebhook"), 2);
    let file = standin.add_file(&photo_bytes());
    let first = send_photo(&standin, &a, 100, &file, "fit 200").await;
    let sent = standin
        .wait_reply("sendphoto", 100, message_id(&first))
        .await;
    assert!(
        sent.files.contains_key("photo"),
        "the first result is uploaded"
    );
    let repeat = send_photo(&standin, &b, 101, &file, "fit 200").await;
    let again = standin
        .wait_reply("sendphoto", 101, message_id(&repeat))
        .await;
    // Instance B sent A's file id: no download, no processing, no upload.
    assert!(again.files.is_empty(), "the repeat is sent by file id");
    assert!(
        again.params["photo"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(standin.count("download"), 1);
    let (records, distinct) = services.wait_for_records(2).await;
    assert_eq!((records, distinct), (2, 2));
    stop_all(vec![a, b]).await;
    // Stopping instances never unregisters the shared webhook.
    assert_eq!(standin.count("deletewebhook"), 0);
    services.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_identical_requests_over_two_instances_run_the_engine_once() {
    let Some(services) = Services::create("coalesce").await else {
        return;
    };
    let standin = StandIn::start().await;
    let a = start_instance(&standin, &services, "a", None, None, &[]).await;
    let b = start_instance(&standin, &services, "b", None, None, &[]).await;
    let file = standin.add_file(&photo_bytes());
    // The first download waits, so every request arrives while the job is in flight.
    standin.hold_downloads();
    let mut updates = Vec::new();
    for user in 0..50 {
        let target = if user % 2 == 0 { &a } else { &b };
        updates.push((
            1000 + user,
            send_photo(&standin, target, 1000 + user, &file, "fit 300 gray").await,
        ));
    }
    standin.release_downloads();
    for (user, update) in &updates {
        standin
            .wait_reply("sendphoto", *user, message_id(update))
            .await;
    }
    assert_eq!(standin.count("download"), 1, "exactly one engine job");
    let (records, distinct) = services.wait_for_records(50).await;
    assert_eq!((records, distinct), (50, 50));
    stop_all(vec![a, b]).await;
    services.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_exact_across_instances_and_updates_are_handled_once() {
    let Some(services) = Services::create("limit").await else {
        return;
    };
    let standin = StandIn::start().await;
    let limit = [("RATE_LIMIT_PER_USER", "5")];
    let a = start_instance(&standin, &services, "a", None, None, &limit).await;
    let b = start_instance(&standin, &services, "b", None, None, &limit).await;
    let file = standin.add_file(&photo_bytes());
    let user = 300;
    for i in 0..8 {
        let target = if i % 2 == 0 { &a } else { &b };
        let update = send_photo(&standin, target, user, &file, &format!("fit {}", 100 + i)).await;
        // The same update again, at the other instance (a re-delivery): handled once.
        let other = if i % 2 == 0 { &b } else { &a };
        assert_eq!(standin.deliver_to(&other.hook, &update).await, 200);
    }
    let services_written = services.wait_for_records(8).await;
    assert_eq!(services_written, (8, 8), "8 updates, each recorded once");
    assert_eq!(
        standin.count("sendphoto"),
        5,
        "exactly the limit was served"
    );
    let refusals: Vec<_> = standin
        .calls()
        .into_iter()
        .filter(|c| c.method == "sendmessage" && c.text().contains("images per hour"))
        .collect();
    // Told once (then at most once a minute), with when the next request is accepted.
    assert_eq!(refusals.len(), 1);
    assert!(
        refusals[0].text().contains("accepted in"),
        "{}",
        refusals[0].text()
    );
    // Admins are exempt.
    for i in 0..7 {
        let target = if i % 2 == 0 { &a } else { &b };
        let update = send_photo(&standin, target, ADMIN, &file, &format!("fit {}", 120 + i)).await;
        standin
            .wait_reply("sendphoto", ADMIN, message_id(&update))
            .await;
    }
    stop_all(vec![a, b]).await;
    services.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_album_spread_over_instances_comes_back_in_order() {
    let Some(services) = Services::create("order").await else {
        return;
    };
    let standin = StandIn::start().await;
    let a = start_instance(&standin, &services, "a", None, None, &[]).await;
    let b = start_instance(&standin, &services, "b", None, None, &[]).await;
    let photo = photo_bytes();
    let chat = 400;
    // The first photo's job is the slowest (largest output, blur), later ones are quick.
    let captions = ["blur 3 jpeg 95", "fit 64", "fit 48", "fit 32", "fit 16"];
    let mut sent = Vec::new();
    for (i, caption) in captions.iter().enumerate() {
        let file = standin.add_file(&photo);
        let target = if i % 2 == 0 { &a } else { &b };
        sent.push(message_id(
            &send_photo(&standin, target, chat, &file, caption).await,
        ));
    }
    for id in &sent {
        standin.wait_reply("sendphoto", chat, *id).await;
    }
    let replied: Vec<i64> = standin
        .calls()
        .into_iter()
        .filter(|c| c.method == "sendphoto" && c.chat_id() == Some(chat))
        .filter_map(|c| c.reply_to())
        .collect();
    assert_eq!(replied, sent, "replies in the order the photos were sent");
    stop_all(vec![a, b]).await;
    services.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cut_and_restored_mid_load_loses_no_reply() {
    let Some(services) = Services::create("redis_cut").await else {
        return;
    };
    let standin = StandIn::start().await;
    let proxy = FaultProxy::start(service_address(&redis_url()));
    let a = start_instance(&standin, &services, "a", Some(&proxy), None, &[]).await;
    let b = start_instance(&standin, &services, "b", Some(&proxy), None, &[]).await;
    let file = standin.add_file(&photo_bytes());
    let mut updates = Vec::new();
    for i in 0..30 {
        if i == 10 {
            proxy.cut();
        }
        if i == 20 {
            let (status, body) = http_get(&a.health, "/health").await;
            assert_eq!(status, 200, "degraded still serves: {body}");
            assert_eq!(component_status(&body, "redis"), "degraded", "{body}");
            proxy.restore();
        }
        let target = if i % 2 == 0 { &a } else { &b };
        let user = 500 + i;
        updates.push((
            user,
            send_photo(&standin, target, user, &file, &format!("fit {}", 60 + i)).await,
        ));
    }
    for (user, update) in &updates {
        standin
            .wait_reply("sendphoto", *user, message_id(update))
            .await;
    }
    // Back in shared mode by itself: a repeat on B is served by A's file id.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = http_get(&b.health, "/health").await;
        let redis = component_status(&body, "redis");
        if redis == "ok" || Instant::now() > deadline {
            assert_eq!(redis, "ok", "{body}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = send_photo(&standin, &a, 600, &file, "fit 33").await;
    standin
        .wait_reply("sendphoto", 600, message_id(&first))
        .await;
    let downloads = standin.count("download");
    let repeat = send_photo(&standin, &b, 601, &file, "fit 33").await;
    standin
        .wait_reply("sendphoto", 601, message_id(&repeat))
        .await;
    assert_eq!(standin.count("download"), downloads, "shared cache again");
    let (records, distinct) = services.wait_for_records(32).await;
    assert_eq!((records, distinct), (32, 32));
    stop_all(vec![a, b]).await;
    services.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_and_a_restart_with_spilled_records_lose_and_duplicate_nothing() {
    let Some(services) = Services::create("pg_cut").await else {
        return;
    };
    let standin = StandIn::start().await;
    let proxy = FaultProxy::start(service_address(&postgres_url()));
    // A tiny queue, so records spill to the file while the database is away.
    let small = [("RECORD_QUEUE_SIZE", "4")];
    let a = start_instance(&standin, &services, "a", None, Some(&proxy), &small).await;
    let file = standin.add_file(&photo_bytes());
    let mut sent = 0;
    for i in 0..5 {
        let update = send_photo(&standin, &a, 700 + i, &file, &format!("fit {}", 50 + i)).await;
        standin
            .wait_reply("sendphoto", 700 + i, message_id(&update))
            .await;
        sent += 1;
    }
    assert_eq!(services.wait_for_records(sent).await, (sent, sent));
    proxy.cut();
    for i in 5..20 {
        let update = send_photo(&standin, &a, 700 + i, &file, &format!("fit {}", 50 + i)).await;
        // Replies never wait on the database.
        standin
            .wait_reply("sendphoto", 700 + i, message_id(&update))
            .await;
        sent += 1;
    }
    let (status, body) = http_get(&a.health, "/health").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(component_status(&body, "store"), "degraded", "{body}");
    // SIGTERM-like stop with the database still away: the backlog goes to the spill file.
    a.bot.stop().await;
    assert_eq!(services.record_counts().await.0, 5);
    proxy.restore();
    // A new process with the same spill file replays it.
    let restarted = start_instance(&standin, &services, "a", None, Some(&proxy), &small).await;
    let update = send_photo(&standin, &restarted, 799, &file, "fit 40").await;
    standin
        .wait_reply("sendphoto", 799, message_id(&update))
        .await;
    sent += 1;
    let (records, distinct) = services.wait_for_records(sent).await;
    assert_eq!(
        (records, distinct),
        (sent, sent),
        "every record exactly once"
    );
    restarted.bot.stop().await;
    assert_eq!(services.record_counts().await, (sent, sent));
    services.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_and_a_second_poller_stops() {
    let Some(services) = Services::create("intake").await else {
        return;
    };
    let standin = StandIn::start().await;
    let a = start_instance(&standin, &services, "a", None, None, &[]).await;
    let file = standin.add_file(&photo_bytes());
    let update = standin.photo_update(800, 800, &file, Some("fit 50"));
    let client = reqwest_free_post(&a.hook, "wrong-secret", &update).await;
    assert_eq!(client, 401);
    a.bot.stop().await;
    // Two pollers with one token: Telegram answers the second with 409 Conflict.
    standin.set_conflict_detection(true);
    let db = format!(
        "sqlite://{}?mode=rwc",
        services.dir.join("poll.sqlite").display()
    );
    let poller = |name: &'static str| {
        let env: HashMap<&str, String> = [
            ("TELEGRAM_BOT_TOKEN", TOKEN.to_string()),
            ("TELEGRAM_API_URL", standin.url.clone()),
            ("TELEGRAM_THROTTLE", "false".into()),
            ("POLLING_TIMEOUT", "2".into()),
            ("DATABASE_URL", db.clone()),
            (
                "RECORD_SPILL_PATH",
                services.dir.join(name).display().to_string(),
            ),
            (
                "INTAKE_QUEUE_PATH",
                services
                    .dir
                    .join(format!("{name}.intake"))
                    .display()
                    .to_string(),
            ),
            ("THREAD_POOL_SIZE", "1".into()),
            ("HEALTH_ADDR", "off".into()),
        ]
        .into_iter()
        .collect();
        BotConfig::from_lookup(|key| env.get(key).cloned()).expect("config")
    };
    let first = prism_bot::start(poller("first")).await.expect("starts");
    let second = prism_bot::start(poller("second")).await.expect("starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while first.is_dispatching() && second.is_dispatching() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        first.lost_to_another_poller() || second.lost_to_another_poller(),
        "one poller gives way"
    );
    first.stop().await;
    second.stop().await;
    services.remove().await;
}

/// POSTs an update with the given secret header, as an impostor would; returns the status.
async fn reqwest_free_post(url: &str, secret: &str, update: &Value) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let parsed = url::Url::parse(url).expect("URL");
    let address = format!(
        "{}:{}",
        parsed.host_str().expect("host"),
        parsed.port().expect("port")
    );
    let body = update.to_string();
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         X-Telegram-Bot-Api-Secret-Token: {secret}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        parsed.path(),
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("answer");
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_of_one_chat_arriving_out_of_order_both_reply_in_order() {
    let Some(services) = Services::create("out_of_order").await else {
        return;
    };
    let standin = StandIn::start().await;
    let a = start_instance(&standin, &services, "a", None, None, &[]).await;
    let b = start_instance(&standin, &services, "b", None, None, &[]).await;
    // A double tap: the same photo and preset twice; the later update is handled first, so
    // it leads the job while the earlier one waits for it, and it must reply after it.
    for (round, (later_to, earlier_to)) in [(&a, &a), (&a, &b)].into_iter().enumerate() {
        let chat = 900 + round as i64;
        let file = standin.add_file(&photo_bytes());
        let earlier = standin.photo_update(chat, chat, &file, Some("fit 90"));
        let later = standin.photo_update(chat, chat, &file, Some("fit 90"));
        standin.hold_downloads();
        assert_eq!(standin.deliver_to(&later_to.hook, &later).await, 200);
        assert_eq!(standin.deliver_to(&earlier_to.hook, &earlier).await, 200);
        standin.release_downloads();
        standin
            .wait_reply("sendphoto", chat, message_id(&earlier))
            .await;
        standin
            .wait_reply("sendphoto", chat, message_id(&later))
            .await;
        let replied: Vec<i64> = standin
            .calls()
            .into_iter()
            .filter(|c| c.method == "sendphoto" && c.chat_id() == Some(chat))
            .filter_map(|c| c.reply_to())
            .collect();
        assert_eq!(replied, vec![message_id(&earlier), message_id(&later)]);
    }
    stop_all(vec![a, b]).await;
    services.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_inbox_answers_429_and_keeps_telegrams_retry_once_there_is_room() {
    let Some(services) = Services::create("inbox_full").await else {
        return;
    };
    let standin = StandIn::start().await;
    let bound = [("INTAKE_MAX_BACKLOG", "2")];
    let a = start_instance(&standin, &services, "a", None, None, &bound).await;
    standin.hold_downloads();
    let file = standin.add_file(&photo_bytes());
    let first = send_photo(&standin, &a, 700, &file, "fit 40").await;
    let second = send_photo(&standin, &a, 701, &file, "fit 41").await;
    let third = standin.photo_update(702, 702, &file, Some("fit 42"));
    // Over the bound: Telegram is told to send it again later, never 200-and-drop; the user
    // is told to try again.
    assert_eq!(standin.deliver_to(&a.hook, &third).await, 429);
    let told = standin
        .wait_for("the user told", |c| {
            c.method == "sendmessage" && c.chat_id() == Some(702)
        })
        .await;
    assert!(told.text().contains("try again"), "{}", told.text());
    standin.release_downloads();
    for (user, update) in [(700, &first), (701, &second)] {
        standin
            .wait_reply("sendphoto", user, message_id(update))
            .await;
    }
    // Telegram's retry, once the two are answered, is kept and answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    while standin.deliver_to(&a.hook, &third).await != 200 {
        assert!(Instant::now() < deadline, "the retry was never kept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    standin
        .wait_reply("sendphoto", 702, message_id(&third))
        .await;
    assert_eq!(services.wait_for_records(3).await, (3, 3));
    stop_all(vec![a]).await;
    services.remove().await;
}

/// A noisy RGB PNG of `side`², which no encoder can make much smaller than its pixels.
fn noise_png(side: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let pixels: Vec<u8> = (0..side * side * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, side, side);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("PNG header");
    writer.write_image_data(&pixels).expect("PNG data");
    writer.finish().expect("PNG end");
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_result_repeated_through_the_shared_cache_is_the_same_document() {
    let Some(services) = Services::create("large").await else {
        return;
    };
    let standin = StandIn::start().await;
    let a = start_instance(&standin, &services, "a", None, None, &[]).await;
    let b = start_instance(&standin, &services, "b", None, None, &[]).await;
    // Over sendPhoto's 10 MB, though its size alone would make a photo: a document.
    let file = standin.add_file(&noise_png(2000));
    let first = send_photo(&standin, &a, 900, &file, "png").await;
    let sent = standin
        .wait_reply("senddocument", 900, message_id(&first))
        .await;
    assert!(
        sent.files
            .get("document")
            .is_some_and(|bytes| bytes.len() > 10_000_000),
        "the first result is uploaded as a document"
    );
    let file_id = sent.result["document"]["file_id"]
        .as_str()
        .expect("a file id")
        .to_string();
    // Instance B has no bytes of it, only the shared entry: it sends the file id.
    let repeat = send_photo(&standin, &b, 901, &file, "png").await;
    let again = standin
        .wait_reply("senddocument", 901, message_id(&repeat))
        .await;
    assert!(again.files.is_empty(), "the repeat is sent by file id");
    assert_eq!(again.params["document"].as_str(), Some(file_id.as_str()));
    assert_eq!(standin.count("sendphoto"), 0);
    assert_eq!(standin.count("download"), 1);
    stop_all(vec![a, b]).await;
    services.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_webhook_secret_is_registered_at_the_next_start() {
    let Some(services) = Services::create("rotate").await else {
        return;
    };
    let standin = StandIn::start().await;
    let a = start_instance(&standin, &services, "a", None, None, &[]).await;
    stop_all(vec![a]).await;
    let rotated = "a-rotated-secret-of-at-least-32-characters";
    let a = start_instance(
        &standin,
        &services,
        "a",
        None,
        None,
        &[("WEBHOOK_SECRET", rotated)],
    )
    .await;
    let registered = standin
        .calls()
        .into_iter()
        .rfind(|c| c.method == "setwebhook")
        .expect("setWebhook at start");
    assert_eq!(registered.params["secret_token"].as_str(), Some(rotated));
    assert_eq!(
        registered.params["allowed_updates"],
        serde_json::json!(["message", "callback_query"])
    );
    assert_eq!(registered.params["max_connections"].as_u64(), Some(40));
    // Telegram now posts with the new secret, and the instance takes it.
    let file = standin.add_file(&photo_bytes());
    let update = send_photo(&standin, &a, 950, &file, "fit 40").await;
    standin
        .wait_reply("sendphoto", 950, message_id(&update))
        .await;
    stop_all(vec![a]).await;
    services.remove().await;
}
