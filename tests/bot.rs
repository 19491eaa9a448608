//! prism-bot end to end, against the Telegram Bot API stand-in on 127.0.0.1: every test
//! starts a real bot (polling or webhook), sends updates as Telegram would, and checks what
//! the bot sent back.

mod botkit;
mod standin;

use std::time::Duration;

use botkit::{database, photo_bytes, start_bot};
use prism_engine::{Engine, EngineConfig, ImageFormat};
use serde_json::Value;
use standin::{Call, StandIn};

const ADMIN: i64 = 1;
const ALICE: i64 = 100;
/// A group chat (Telegram numbers groups below zero).
const GROUP: i64 = -500;
const BOB: i64 = 200;

fn png_bytes() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pngsuite/basn2c08.png"
    ))
    .expect("fixture")
}

/// Width and height of an encoded image, read independently of the bot.
fn dimensions(bytes: &[u8]) -> (ImageFormat, u32, u32) {
    static CHECKER: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    let engine = CHECKER.get_or_init(|| {
        Engine::new(EngineConfig {
            threads: 1,
            ..EngineConfig::default()
        })
        .expect("engine")
    });
    let info = engine.probe(bytes).expect("a valid image");
    (info.format, info.width, info.height)
}

fn message_id(message: &Value) -> i64 {
    message["message_id"].as_i64().expect("message id")
}

async fn reply_text(standin: &StandIn, chat: i64, message: &Value) -> String {
    standin
        .wait_reply("sendmessage", chat, message_id(message))
        .await
        .text()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photo_with_caption_comes_back_processed() {
    let standin = StandIn::start().await;
    let (dir, db) = database("photo");
    let bot = start_bot(&standin, &db, &[]).await;
    let file = standin.add_file(&photo_bytes());
    let message = standin.photo(ALICE, ALICE, &file, Some("fit 200 gray"));
    let sent = standin
        .wait_reply("sendphoto", ALICE, message_id(&message))
        .await;
    let (format, width, height) = dimensions(&sent.files["photo"]);
    assert_eq!(format, ImageFormat::Jpeg);
    assert_eq!(width.max(height), 200);
    // The largest size was fetched, never the thumbnail; "uploading" was shown.
    let download = standin
        .wait_for("download", |c| c.method == "download")
        .await;
    assert!(
        download.params["path"]
            .as_str()
            .unwrap_or_default()
            .contains(&file.file_id)
    );
    assert!(standin.count("sendchataction") >= 1);
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_in_document_out_and_file_word() {
    let standin = StandIn::start().await;
    let (dir, db) = database("document");
    let bot = start_bot(&standin, &db, &[]).await;
    let png = standin.add_file(&png_bytes());
    let message = standin.document(ALICE, ALICE, &png, "pic.png", Some("rotate 90 png"));
    let sent = standin
        .wait_reply("senddocument", ALICE, message_id(&message))
        .await;
    assert_eq!(
        dimensions(&sent.files["document"]),
        (ImageFormat::Png, 32, 32)
    );
    // A photo with `file` in the caption also comes back as a document.
    let photo = standin.add_file(&photo_bytes());
    let message = standin.photo(ALICE, ALICE, &photo, Some("fit 100 file"));
    let sent = standin
        .wait_reply("senddocument", ALICE, message_id(&message))
        .await;
    assert_eq!(dimensions(&sent.files["document"]).1, 100);
    // An iPhone photo sent "as a file" is HEIC: read, and answered with a JPEG.
    let heic = standin.add_file(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/heif/display-p3.heic"
        ))
        .expect("fixture"),
    );
    let message = standin.document(ALICE, ALICE, &heic, "IMG_0001.HEIC", Some("fit 100"));
    let sent = standin
        .wait_reply("senddocument", ALICE, message_id(&message))
        .await;
    assert_eq!(
        dimensions(&sent.files["document"]),
        (ImageFormat::Jpeg, 100, 75)
    );
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_flow_and_sticker() {
    let standin = StandIn::start().await;
    let (dir, db) = database("keyboard");
    let bot = start_bot(&standin, &db, &[]).await;
    let file = standin.add_file(&photo_bytes());
    let original = standin.photo(ALICE, ALICE, &file, None);
    let keyboard = standin
        .wait_reply("sendmessage", ALICE, message_id(&original))
        .await;
    let buttons = keyboard.params["reply_markup"]["inline_keyboard"].to_string();
    for preset in [
        "thumbnail",
        "sticker",
        "avatar",
        "compress",
        "gray",
        "sharpen",
        "rotate",
    ] {
        assert!(
            buttons.contains(&format!("preset:{preset}")),
            "{preset} in {buttons}"
        );
    }
    standin.press(ALICE, &keyboard, &original, "preset:thumbnail");
    let sent = standin
        .wait_reply("sendphoto", ALICE, message_id(&original))
        .await;
    let (_, width, height) = dimensions(&sent.files["photo"]);
    assert_eq!(width.max(height), 320);
    standin
        .wait_for("answerCallbackQuery", |c| c.method == "answercallbackquery")
        .await;
    let edit = standin
        .wait_for("editMessageText", |c| c.method == "editmessagetext")
        .await;
    assert!(edit.text().contains("Thumbnail"), "{}", edit.text());

    standin.press(ALICE, &keyboard, &original, "preset:sticker");
    let sticker = standin
        .wait_reply("sendsticker", ALICE, message_id(&original))
        .await;
    let (format, width, height) = dimensions(&sticker.files["sticker"]);
    assert_eq!((format, width.max(height)), (ImageFormat::Webp, 512));
    assert!(sticker.files["sticker"].len() <= 512 * 1024);
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_captions_and_corrupt_images_get_helpful_errors() {
    let standin = StandIn::start().await;
    let (dir, db) = database("errors");
    let bot = start_bot(&standin, &db, &[]).await;
    let file = standin.add_file(&photo_bytes());
    let message = standin.photo(ALICE, ALICE, &file, Some("fit 800 sparkle"));
    let text = reply_text(&standin, ALICE, &message).await;
    assert!(
        text.contains("sparkle") && text.contains("fit 800"),
        "{text}"
    );
    let message = standin.photo(ALICE, ALICE, &file, Some("blur 900"));
    let text = reply_text(&standin, ALICE, &message).await;
    assert!(text.contains("blur"), "{text}");

    let mut corrupt = photo_bytes();
    corrupt.truncate(600);
    let broken = standin.add_file(&corrupt);
    let message = standin.document(ALICE, ALICE, &broken, "broken.jpg", Some("fit 100"));
    let text = reply_text(&standin, ALICE, &message).await;
    assert!(text.contains("couldn't read"), "{text}");
    let garbage = standin.add_file(b"this is not an image at all");
    let message = standin.document(ALICE, ALICE, &garbage, "x.png", Some("fit 100"));
    let text = reply_text(&standin, ALICE, &message).await;
    assert!(text.contains("couldn't read"), "{text}");

    // Still running: commands answer, unknown ones are named.
    let message = standin.text(ALICE, ALICE, "/help", None);
    assert!(
        reply_text(&standin, ALICE, &message)
            .await
            .contains("/again")
    );
    let message = standin.text(ALICE, ALICE, "/ops", None);
    assert!(
        reply_text(&standin, ALICE, &message)
            .await
            .contains("pixelate")
    );
    let message = standin.text(ALICE, ALICE, "/frobnicate", None);
    assert!(
        reply_text(&standin, ALICE, &message)
            .await
            .contains("/frobnicate")
    );
    // An input over the Bot API's 20 MB download limit is refused without fetching it.
    let mut huge = file.clone();
    huge.size = 25 * 1024 * 1024;
    let message = standin.photo(ALICE, ALICE, &huge, Some("fit 100"));
    let text = reply_text(&standin, ALICE, &message).await;
    assert!(text.contains("20 MB"), "{text}");
    assert_eq!(
        standin.count("getfile"),
        2,
        "only the two corrupt files were fetched"
    );
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn again_reprocesses_a_replied_photo() {
    let standin = StandIn::start().await;
    let (dir, db) = database("again");
    let bot = start_bot(&standin, &db, &[]).await;
    let file = standin.add_file(&photo_bytes());
    let original = standin.photo(ALICE, ALICE, &file, Some("fit 300"));
    standin
        .wait_reply("sendphoto", ALICE, message_id(&original))
        .await;
    let again = standin.text(ALICE, ALICE, "/again fit 120 invert", Some(&original));
    let longest = |c: &Call| {
        c.files.get("photo").map(|bytes| {
            let (_, w, h) = dimensions(bytes);
            w.max(h)
        })
    };
    standin
        .wait_for("the second result", |c| {
            c.method == "sendphoto"
                && c.reply_to() == Some(message_id(&again))
                && longest(c) == Some(120)
        })
        .await;
    let lonely = standin.text(ALICE, ALICE, "/again fit 100", None);
    assert!(
        reply_text(&standin, ALICE, &lonely)
            .await
            .contains("Reply to a photo")
    );
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_user_with_admins_exempt() {
    let standin = StandIn::start().await;
    let (dir, db) = database("rate");
    let bot = start_bot(&standin, &db, &[("RATE_LIMIT_PER_USER", "2")]).await;
    let file = standin.add_file(&photo_bytes());
    for size in [100, 110] {
        let message = standin.photo(ALICE, ALICE, &file, Some(&format!("fit {size}")));
        standin
            .wait_reply("sendphoto", ALICE, message_id(&message))
            .await;
    }
    let message = standin.photo(ALICE, ALICE, &file, Some("fit 120"));
    let text = reply_text(&standin, ALICE, &message).await;
    assert!(text.contains("next request will be accepted in"), "{text}");
    // Told once a minute at most, not once per message (counted once the bot has stopped:
    // stopping lets every accepted request through and waits for every reply it started).
    standin.photo(ALICE, ALICE, &file, Some("fit 130"));
    // Another user is not affected, and admins have no limit.
    let message = standin.photo(BOB, BOB, &file, Some("fit 120"));
    standin
        .wait_reply("sendphoto", BOB, message_id(&message))
        .await;
    for size in [100, 110, 120] {
        let message = standin.photo(ADMIN, ADMIN, &file, Some(&format!("fit {size}")));
        standin
            .wait_reply("sendphoto", ADMIN, message_id(&message))
            .await;
    }
    bot.stop().await;
    let refusals = standin
        .calls()
        .iter()
        .filter(|c| c.text().contains("next request will be accepted"))
        .count();
    assert_eq!(refusals, 1);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_says_retry_later_and_queued_users_learn_their_place() {
    let standin = StandIn::start().await;
    let (dir, db) = database("queue");
    // One running, one queued: the bot holds two accepted updates, the inbox's bound.
    let settings = [
        ("MAX_CONCURRENT_REQUESTS", "1"),
        ("REQUEST_QUEUE_SIZE", "1"),
        ("INTAKE_MAX_BACKLOG", "2"),
    ];
    let bot = start_bot(&standin, &db, &settings).await;
    standin.hold_downloads();
    let file = standin.add_file(&photo_bytes());
    let first = standin.photo(ALICE, ALICE, &file, Some("fit 100"));
    standin
        .wait_for("first download", |c| c.method == "getfile")
        .await;
    let second = standin.photo(BOB, BOB, &file, Some("fit 110"));
    let text = reply_text(&standin, BOB, &second).await;
    assert!(text.contains("number 1 in the queue"), "{text}");
    let third = standin.photo(300, 300, &file, Some("fit 120"));
    let text = reply_text(&standin, 300, &third).await;
    assert!(text.contains("try again"), "{text}");
    // The running and the queued request both finish.
    standin.release_downloads();
    standin
        .wait_reply("sendphoto", ALICE, message_id(&first))
        .await;
    standin
        .wait_reply("sendphoto", BOB, message_id(&second))
        .await;
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_requests_of_one_chat_all_complete_in_order_with_one_slot() {
    let standin = StandIn::start().await;
    let (dir, db) = database("one-slot");
    let bot = start_bot(&standin, &db, &[("MAX_CONCURRENT_REQUESTS", "1")]).await;
    standin.hold_downloads();
    let file = standin.add_file(&photo_bytes());
    let other = standin.photo(BOB, BOB, &file, Some("fit 100"));
    standin
        .wait_for("the slot to be taken", |c| c.method == "getfile")
        .await;
    let first = standin.photo(ALICE, ALICE, &file, Some("fit 1000 blur 2"));
    let second = standin.photo(ALICE, ALICE, &file, Some("fit 60"));
    let junk = standin.add_file(b"not an image");
    let third = standin.document(ALICE, ALICE, &junk, "junk.jpg", Some("fit 50"));
    assert!(
        reply_text(&standin, ALICE, &first)
            .await
            .contains("number 1 in the queue")
    );
    assert!(
        reply_text(&standin, ALICE, &second)
            .await
            .contains("number 2 in the queue")
    );
    standin.release_downloads();
    standin
        .wait_reply("sendphoto", BOB, message_id(&other))
        .await;
    let first_reply = standin
        .wait_reply("sendphoto", ALICE, message_id(&first))
        .await;
    let second_reply = standin
        .wait_reply("sendphoto", ALICE, message_id(&second))
        .await;
    // An error keeps its place in the chat's order too.
    let error = standin
        .wait_for("the third request's error", |c| {
            c.method == "sendmessage"
                && c.reply_to() == Some(message_id(&third))
                && c.text().contains("couldn't read")
        })
        .await;
    assert!(first_reply.at <= second_reply.at && second_reply.at <= error.at);
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_job_does_not_block_its_chats_commands_and_replies_keep_order() {
    let standin = StandIn::start().await;
    let (dir, db) = database("order");
    let bot = start_bot(&standin, &db, &[]).await;
    standin.set_download_delay(Duration::from_millis(500));
    let file = standin.add_file(&photo_bytes());
    let slow = standin.photo(ALICE, ALICE, &file, Some("fit 400"));
    let help = standin.text(ALICE, ALICE, "/help", None);
    let help_reply = standin
        .wait_reply("sendmessage", ALICE, message_id(&help))
        .await;
    let slow_reply = standin
        .wait_reply("sendphoto", ALICE, message_id(&slow))
        .await;
    assert!(help_reply.at < slow_reply.at, "/help waited for the image");

    // Two images in one chat: the second (smaller, faster) still replies second.
    standin.set_download_delay(Duration::ZERO);
    let big = standin.photo(BOB, BOB, &file, Some("fit 1200 blur 3"));
    let small = standin.photo(BOB, BOB, &file, Some("fit 50"));
    let big_reply = standin.wait_reply("sendphoto", BOB, message_id(&big)).await;
    let small_reply = standin
        .wait_reply("sendphoto", BOB, message_id(&small))
        .await;
    assert!(big_reply.at <= small_reply.at);
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_are_for_admins_only() {
    let standin = StandIn::start().await;
    let (dir, db) = database("admin");
    let bot = start_bot(&standin, &db, &[]).await;
    let file = standin.add_file(&photo_bytes());
    let message = standin.photo(ALICE, ALICE, &file, Some("fit 100"));
    standin
        .wait_reply("sendphoto", ALICE, message_id(&message))
        .await;
    let junk = standin.add_file(b"junk");
    let bad = standin.document(ALICE, ALICE, &junk, "junk.jpg", Some("fit 100"));
    reply_text(&standin, ALICE, &bad).await;
    for command in ["/health", "/performance", "/admin_stats"] {
        let message = standin.text(ALICE, ALICE, command, None);
        let text = reply_text(&standin, ALICE, &message).await;
        assert!(text.contains("not allowed"), "{command}: {text}");
    }
    // Asked in a group, even by an admin: the report is not posted for every member to read.
    for command in ["/health", "/performance", "/admin_stats"] {
        let message = standin.text(ADMIN, GROUP, command, None);
        let text = reply_text(&standin, GROUP, &message).await;
        assert!(text.contains("private chat"), "{command}: {text}");
    }
    let message = standin.text(ADMIN, ADMIN, "/health", None);
    let text = reply_text(&standin, ADMIN, &message).await;
    for part in [
        "Status: ok",
        "engine: ok",
        "backend: ok (auto",
        "cache: ok",
        "store: ok",
        "telegram: ok (reachable)",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
    let message = standin.text(ADMIN, ADMIN, "/performance", None);
    let text = reply_text(&standin, ADMIN, &message).await;
    for part in [
        "images/s",
        "decode",
        "p50 / p95 / p99",
        "Queue:",
        "Cache:",
        "Memory: resident",
        "cpu 1 jobs",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
    // Records are written in the background; wait until both are in.
    let mut text = String::new();
    for _ in 0..50 {
        let message = standin.text(ADMIN, ADMIN, "/admin_stats", None);
        text = reply_text(&standin, ADMIN, &message).await;
        if text.contains("2 in total") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for part in ["Users: 1", "2 in total", "fit: 1", "unsupported: 1"] {
        assert!(text.contains(part), "{part} in {text}");
    }
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

/// Polls /performance (as the admin) until the bot counts `done` completed requests.
async fn wait_until_completed(standin: &StandIn, done: u64) {
    for _ in 0..100 {
        let message = standin.text(ADMIN, ADMIN, "/performance", None);
        let text = reply_text(standin, ADMIN, &message).await;
        if text.contains(&format!("(done {done},")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the bot never completed {done} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_hit_skips_download_and_upload() {
    let standin = StandIn::start().await;
    let (dir, db) = database("cache");
    let bot = start_bot(&standin, &db, &[]).await;
    let file = standin.add_file(&photo_bytes());
    let first = standin.photo(ALICE, ALICE, &file, Some("fit 150"));
    let sent = standin
        .wait_reply("sendphoto", ALICE, message_id(&first))
        .await;
    assert!(sent.files.contains_key("photo"), "first result is uploaded");
    // The bot stores the file id Telegram answered with once the send returns.
    wait_until_completed(&standin, 1).await;
    // Same photo, same meaning written differently, another user: a hit.
    let second = standin.photo(BOB, BOB, &file, Some("fit:150x150"));
    let again = standin
        .wait_reply("sendphoto", BOB, message_id(&second))
        .await;
    assert!(again.files.is_empty(), "a hit is answered by file_id");
    assert_eq!(again.params["photo"], sent.result["photo"][0]["file_id"]);
    assert_eq!(standin.count("getfile"), 1);
    assert_eq!(standin.count("download"), 1);
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_not_dropped() {
    let standin = StandIn::start().await;
    let (dir, db) = database("retry");
    // With Telegram's outbound throttle on, as in production.
    let bot = start_bot(&standin, &db, &[("TELEGRAM_THROTTLE", "true")]).await;
    let file = standin.add_file(&photo_bytes());
    // Only the photo is refused: a queue notice, sent on a slow machine, must not take a
    // refusal meant for it.
    standin.fail_next_sends("sendphoto", 2, 1);
    let message = standin.photo(ALICE, ALICE, &file, Some("fit 100"));
    let sent = standin
        .wait_reply("sendphoto", ALICE, message_id(&message))
        .await;
    let refused: Vec<Call> = standin
        .calls()
        .into_iter()
        .filter(|c| c.status == 429)
        .collect();
    assert_eq!(refused.len(), 2);
    assert!(sent.at.duration_since(refused[0].at) >= Duration::from_millis(1900));
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_stats_and_shutdown_finishes_jobs_in_flight() {
    let standin = StandIn::start().await;
    let (dir, db) = database("restart");
    let bot = start_bot(&standin, &db, &[]).await;
    standin.set_download_delay(Duration::from_millis(400));
    let file = standin.add_file(&photo_bytes());
    let message = standin.photo(ALICE, ALICE, &file, Some("fit 100"));
    standin
        .wait_for("the job to start", |c| c.method == "getfile")
        .await;
    // Stopping now must still deliver the image and record it.
    bot.stop().await;
    standin
        .wait_reply("sendphoto", ALICE, message_id(&message))
        .await;

    let bot = start_bot(&standin, &db, &[]).await;
    let message = standin.text(ADMIN, ADMIN, "/admin_stats", None);
    let text = reply_text(&standin, ADMIN, &message).await;
    assert!(
        text.contains("Users: 1") && text.contains("1 in total"),
        "{text}"
    );
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    probe.local_addr().expect("address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mode() {
    let standin = StandIn::start().await;
    let (dir, db) = database("webhook");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/telegram");
    let listen = format!("127.0.0.1:{port}");
    let bot = start_bot(
        &standin,
        &db,
        &[("WEBHOOK_URL", &url), ("WEBHOOK_LISTEN", &listen)],
    )
    .await;
    assert_eq!(standin.webhook().as_deref(), Some(url.as_str()));
    let file = standin.add_file(&photo_bytes());
    let message = standin.photo(ALICE, ALICE, &file, Some("fit 64"));
    let sent = standin
        .wait_reply("sendphoto", ALICE, message_id(&message))
        .await;
    assert_eq!(
        dimensions(&sent.files["photo"])
            .1
            .max(dimensions(&sent.files["photo"]).2),
        64
    );
    assert_eq!(standin.count("getupdates"), 0);
    bot.stop().await;
    // Other instances may share this webhook: stopping one never unregisters it.
    assert_eq!(standin.count("deletewebhook"), 0);
    std::fs::remove_dir_all(dir).ok();
}

/// Every call the bot made to `chat` with `method`.
fn sent_to(standin: &StandIn, method: &str, chat: i64) -> Vec<Call> {
    standin
        .calls()
        .into_iter()
        .filter(|c| c.method == method && c.chat_id() == Some(chat))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_chat_does_not_hold_up_another_users_result() {
    let standin = StandIn::start().await;
    let (dir, db) = database("flood");
    // Telegram's pace, as in production: one message a second per chat.
    let bot = start_bot(&standin, &db, &[("TELEGRAM_THROTTLE", "true")]).await;
    let file = standin.add_file(&photo_bytes());
    for n in 0..40 {
        standin.text(ALICE, ALICE, &format!("hello {n}"), None);
    }
    for _ in 0..10 {
        standin.photo(ALICE, ALICE, &file, None);
    }
    let bobs = standin.photo(BOB, BOB, &file, Some("fit 100"));
    let bobs_result = standin
        .wait_reply("sendphoto", BOB, message_id(&bobs))
        .await;
    // Alice's replies go on at her chat's pace (one a second): wait until none came for 2 s.
    let mut alices = sent_to(&standin, "sendmessage", ALICE);
    let mut quiet = 0;
    while quiet < 10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = sent_to(&standin, "sendmessage", ALICE);
        quiet = if now.len() == alices.len() {
            quiet + 1
        } else {
            0
        };
        alices = now;
    }
    assert!(
        alices.iter().any(|c| c.at > bobs_result.at),
        "Bob's result waited for Alice's chatter: {} replies to her before it",
        alices.len()
    );
    // Forty identical hints fold into one; of ten keyboards, a couple wait and the rest
    // are dropped.
    let hints = alices
        .iter()
        .filter(|c| c.text().starts_with("Send me a photo"))
        .count();
    assert_eq!(hints, 1, "the same hint twice in a minute");
    assert!(
        alices.len() <= 5,
        "{} replies to a flood of 50 messages",
        alices.len()
    );
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gif_sent_as_telegrams_mp4_animation_gets_an_explanation() {
    let standin = StandIn::start().await;
    let (dir, db) = database("animation");
    let bot = start_bot(&standin, &db, &[]).await;
    let message = standin.animation(ALICE, ALICE);
    let text = reply_text(&standin, ALICE, &message).await;
    assert!(
        text.contains("video") && text.contains("as a file"),
        "{text}"
    );
    assert_eq!(standin.count("getfile"), 0, "nothing is fetched");
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caption_of_a_hundred_steps_is_refused_before_the_download() {
    let standin = StandIn::start().await;
    let (dir, db) = database("steps");
    let bot = start_bot(&standin, &db, &[]).await;
    let file = standin.add_file(&photo_bytes());
    let caption = vec!["gray"; 100].join(" ");
    let message = standin.photo(ALICE, ALICE, &file, Some(&caption));
    let text = reply_text(&standin, ALICE, &message).await;
    assert!(
        text.contains("100 steps") && text.contains("32 (max_steps)"),
        "{text}"
    );
    let at_the_limit = vec!["gray"; 32].join(" ");
    let message = standin.photo(ALICE, ALICE, &file, Some(&at_the_limit));
    standin
        .wait_reply("sendphoto", ALICE, message_id(&message))
        .await;
    assert_eq!(
        standin.count("getfile"),
        1,
        "only the valid one was fetched"
    );
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_holds_at_most_two_slots_and_others_still_get_theirs() {
    let standin = StandIn::start().await;
    let (dir, db) = database("per-user");
    let bot = start_bot(&standin, &db, &[("MAX_CONCURRENT_REQUESTS", "8")]).await;
    standin.hold_downloads();
    let file = standin.add_file(&photo_bytes());
    let fetches = |standin: &StandIn| standin.count("getfile");
    let alices: Vec<Value> = (0..4)
        .map(|n| standin.photo(ALICE, ALICE, &file, Some(&format!("fit {}", 100 + n))))
        .collect();
    let admins: Vec<Value> = (0..3)
        .map(|n| standin.photo(ADMIN, ADMIN, &file, Some(&format!("fit {}", 200 + n))))
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fetches(&standin) < 5 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Alice's two, and every one of the admin's (admins are exempt).
    assert_eq!(fetches(&standin), 5);
    let bobs = standin.photo(BOB, BOB, &file, Some("fit 90"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fetches(&standin) < 6 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fetches(&standin), 6, "Bob's fetch, while Alice's two wait");
    standin.release_downloads();
    for (chat, message) in alices
        .iter()
        .map(|m| (ALICE, m))
        .chain(admins.iter().map(|m| (ADMIN, m)))
        .chain([(BOB, &bobs)])
    {
        standin
            .wait_reply("sendphoto", chat, message_id(message))
            .await;
    }
    bot.stop().await;
    std::fs::remove_dir_all(dir).ok();
}
