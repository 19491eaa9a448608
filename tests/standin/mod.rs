//! A Telegram Bot API stand-in on 127.0.0.1 for end-to-end tests of prism-bot: it speaks the
//! real method shapes (JSON and multipart, PascalCase method names, `attach://` parts,
//! `%2F` in file paths), serves files, queues updates for getUpdates or posts them to a
//! webhook (or round-robin to several bot instances, re-delivering after a failure), records
//! every call, can answer 429 with `retry_after`, and 409 to a second concurrent getUpdates.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prism_engine::Limits;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};

pub const TOKEN: &str = "123456:TEST-token";
pub const BOT_ID: i64 = 4242;
/// The stand-in server's thread name (as /proc shows it, at most 15 bytes).
pub const STANDIN_THREAD: &str = "telegram-stand";

/// A failed webhook POST is sent again this many times in all, after growing pauses.
const WEBHOOK_ATTEMPTS: u32 = 5;
const WEBHOOK_RETRY: Duration = Duration::from_millis(200);
/// Longer than any webhook answer the bot may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(60);
const CONFLICT: &str = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";

/// One recorded call from the bot.
#[derive(Debug, Clone)]
pub struct Call {
    /// Lower-case method name, e.g. `sendphoto`.
    pub method: String,
    /// Non-file parameters (multipart text fields are JSON-decoded when they are JSON).
    pub params: Value,
    /// Uploaded files by parameter name.
    pub files: HashMap<String, Vec<u8>>,
    /// The HTTP status the stand-in answered.
    pub status: u16,
    /// The `result` the stand-in answered (a sent message, for send methods).
    pub result: Value,
    pub at: Instant,
}

impl Call {
    pub fn chat_id(&self) -> Option<i64> {
        as_i64(&self.params["chat_id"])
    }

    pub fn text(&self) -> &str {
        self.params["text"].as_str().unwrap_or_default()
    }

    /// The replied-to message id (`reply_parameters.message_id`).
    pub fn reply_to(&self) -> Option<i64> {
        as_i64(&self.params["reply_parameters"]["message_id"])
    }
}

fn as_i64(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str()?.parse().ok())
}

/// A file the stand-in holds.
#[derive(Debug, Clone)]
pub struct FileRef {
    pub file_id: String,
    pub unique_id: String,
    pub size: u64,
    pub width: u32,
    pub height: u32,
}

#[derive(Default)]
struct Inner {
    pending: Vec<Value>,
    next_update_id: i64,
    next_message_id: i64,
    next_file: u64,
    files: HashMap<String, (FileRef, Bytes)>,
    calls: Vec<Call>,
    fail_sends: usize,
    fail_method: String,
    retry_after: u32,
    download_delay: Duration,
    webhook: Option<String>,
    webhook_secret: Option<String>,
    webhook_max_connections: Option<i64>,
    /// Where updates are POSTed instead of `webhook`, round-robin, while one is registered.
    webhook_targets: Vec<String>,
    next_target: usize,
    /// One in-order delivery task per target URL.
    deliveries: HashMap<String, mpsc::UnboundedSender<Value>>,
    undelivered: usize,
    /// (unix time, message) of the last failed webhook POST, for getWebhookInfo.
    last_webhook_error: Option<(i64, String)>,
    conflict_detection: bool,
    /// getUpdates requests in flight.
    polling: usize,
}

impl Inner {
    /// Where the next update is POSTed; `None`: it waits for getUpdates.
    fn next_target(&mut self) -> Option<String> {
        let webhook = self.webhook.clone()?;
        if self.webhook_targets.is_empty() {
            return Some(webhook);
        }
        let target = self.webhook_targets[self.next_target % self.webhook_targets.len()].clone();
        self.next_target += 1;
        Some(target)
    }
}

struct Shared {
    inner: Mutex<Inner>,
    /// While true, file downloads wait (to hold jobs in flight deterministically).
    downloads_held: tokio::sync::watch::Sender<bool>,
    updates: Notify,
    calls: Notify,
    /// The stand-in's own runtime, which also runs the webhook deliveries.
    runtime: tokio::runtime::Handle,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct StandIn {
    pub url: String,
    shared: Arc<Shared>,
}

impl StandIn {
    pub async fn start() -> StandIn {
        // Its own thread and runtime, so its CPU time can be told apart from the bot's.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                next_update_id: 1,
                next_message_id: 1000,
                ..Inner::default()
            }),
            updates: Notify::new(),
            calls: Notify::new(),
            downloads_held: tokio::sync::watch::Sender::new(false),
            runtime: runtime.handle().clone(),
        });
        let app = Router::new()
            .route("/file/{bot}/{*path}", get(download))
            .route("/{bot}/{method}", post(method))
            // Telegram takes uploads up to 50 MB (axum's default limit is 2 MB).
            .layer(DefaultBodyLimit::max(50 << 20))
            .with_state(Arc::clone(&shared));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        std::thread::Builder::new()
            .name(STANDIN_THREAD.into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    axum::serve(listener, app).await
                })
            })
            .expect("stand-in thread");
        StandIn { url, shared }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.lock()
    }

    /// Stores a file the bot may fetch, as if a user had uploaded it.
    pub fn add_file(&self, bytes: &[u8]) -> FileRef {
        store_file(&mut self.lock(), "in", bytes)
    }

    /// The next `count` calls of `method` (e.g. `sendphoto`) get 429 with `retry_after`
    /// seconds; other sends, such as a queue notice on a slow machine, go through.
    pub fn fail_next_sends(&self, method: &str, count: usize, retry_after: u32) {
        let mut inner = self.lock();
        inner.fail_sends = count;
        inner.fail_method = method.to_ascii_lowercase();
        inner.retry_after = retry_after;
    }

    /// Holds every file download until `release_downloads`.
    pub fn hold_downloads(&self) {
        self.shared.downloads_held.send_replace(true);
    }

    pub fn release_downloads(&self) {
        self.shared.downloads_held.send_replace(false);
    }

    /// Slows every file download.
    pub fn set_download_delay(&self, delay: Duration) {
        self.lock().download_delay = delay;
    }

    pub fn webhook(&self) -> Option<String> {
        self.lock().webhook.clone()
    }

    /// While a webhook is registered, updates are POSTed to these URLs round-robin (a load
    /// balancer in front of several bot instances) instead of the registered URL; empty:
    /// back to that URL.
    pub fn set_webhook_targets(&self, urls: Vec<String>) {
        let mut inner = self.lock();
        inner.webhook_targets = urls;
        inner.next_target = 0;
    }

    /// POSTs `update` once to `url` with the registered secret, as Telegram would, and
    /// returns the HTTP status (0: no answer). Recorded as a `webhook_delivery` call.
    pub async fn deliver_to(&self, url: &str, update: &Value) -> u16 {
        let secret = self.lock().webhook_secret.clone();
        let status = post_json(url, secret.as_deref(), update).await;
        record_delivery(&self.shared, update, url, status);
        status
    }

    /// Answers a getUpdates that overlaps another with 409 Conflict, as Telegram does when
    /// two bots poll with one token. Off by default.
    pub fn set_conflict_detection(&self, on: bool) {
        self.lock().conflict_detection = on;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Drops the record of every call so far (a long run would otherwise keep every upload).
    pub fn forget_calls(&self) {
        self.lock().calls.clear();
    }

    pub fn count(&self, method: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .count()
    }

    /// Waits until a call matching `predicate` has been recorded.
    pub async fn wait_for(&self, what: &str, predicate: impl Fn(&Call) -> bool) -> Call {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let notified = self.shared.calls.notified();
            if let Some(call) = self.lock().calls.iter().find(|c| predicate(c)) {
                return call.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; calls: {:#?}",
                self.summary()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// The reply to a given message in a chat (any send method).
    pub async fn wait_reply(&self, method: &str, chat: i64, reply_to: i64) -> Call {
        self.wait_for(
            &format!("{method} to chat {chat} replying to {reply_to}"),
            |c| {
                c.method == method
                    && c.status == 200
                    && c.chat_id() == Some(chat)
                    && c.reply_to() == Some(reply_to)
            },
        )
        .await
    }

    fn summary(&self) -> Vec<String> {
        self.lock()
            .calls
            .iter()
            .map(|c| format!("{} {} {}", c.method, c.status, c.params))
            .collect()
    }

    /// A user sends a photo (Telegram-style: a small thumbnail size plus the full size);
    /// returns the message.
    pub fn photo(&self, user: i64, chat: i64, file: &FileRef, caption: Option<&str>) -> Value {
        self.send(self.photo_update(user, chat, file, caption))
    }

    /// The whole update (with a fresh update_id) of a user sending a photo, not delivered:
    /// for `deliver_to` or `push_update`.
    pub fn photo_update(
        &self,
        user: i64,
        chat: i64,
        file: &FileRef,
        caption: Option<&str>,
    ) -> Value {
        let sizes = json!([
            {"file_id": "thumb-not-fetchable", "file_unique_id": "uniq-thumb", "width": 90, "height": 60, "file_size": 1000},
            {"file_id": file.file_id, "file_unique_id": file.unique_id, "width": file.width,
             "height": file.height, "file_size": file.size},
        ]);
        let mut fields = json!({ "photo": sizes });
        if let Some(caption) = caption {
            fields["caption"] = json!(caption);
        }
        self.message_update(user, chat, fields)
    }

    /// A user sends a GIF as Telegram delivers it: an MP4 "animation" (with its document).
    pub fn animation(&self, user: i64, chat: i64) -> Value {
        let video = json!({
            "file_id": "animation-1", "file_unique_id": "uniq-animation-1", "width": 320,
            "height": 240, "duration": 2, "file_name": "funny.gif.mp4", "mime_type": "video/mp4",
            "file_size": 50_000,
        });
        let document = json!({
            "file_id": "animation-1", "file_unique_id": "uniq-animation-1",
            "file_name": "funny.gif.mp4", "mime_type": "video/mp4", "file_size": 50_000,
        });
        self.message(
            user,
            chat,
            json!({ "animation": video, "document": document }),
        )
    }

    /// A user sends an image as a document.
    pub fn document(
        &self,
        user: i64,
        chat: i64,
        file: &FileRef,
        name: &str,
        caption: Option<&str>,
    ) -> Value {
        let extension = name.rsplit('.').next().unwrap_or_default();
        let mime = match extension.to_ascii_lowercase().as_str() {
            "png" => "image/png",
            "heic" => "image/heic",
            "avif" => "image/avif",
            _ => "image/jpeg",
        };
        let mut fields = json!({ "document": {
            "file_id": file.file_id, "file_unique_id": file.unique_id, "file_name": name,
            "mime_type": mime, "file_size": file.size,
        }});
        if let Some(caption) = caption {
            fields["caption"] = json!(caption);
        }
        self.message(user, chat, fields)
    }

    /// A user sends text; a leading /command gets its `bot_command` entity.
    pub fn text(&self, user: i64, chat: i64, text: &str, reply_to: Option<&Value>) -> Value {
        let mut fields = json!({ "text": text });
        if text.starts_with('/') {
            let length = text
                .split_whitespace()
                .next()
                .map_or(0, |c| c.encode_utf16().count());
            fields["entities"] = json!([{ "type": "bot_command", "offset": 0, "length": length }]);
        }
        if let Some(original) = reply_to {
            fields["reply_to_message"] = original.clone();
        }
        self.message(user, chat, fields)
    }

    /// Builds a message with every field real Telegram sends, queues it as an update, and
    /// returns it.
    fn message(&self, user: i64, chat: i64, fields: Value) -> Value {
        self.send(self.message_update(user, chat, fields))
    }

    /// Delivers a message update and returns its message.
    fn send(&self, update: Value) -> Value {
        let message = update["message"].clone();
        self.push_update(update);
        message
    }

    /// A message update with every field real Telegram sends.
    fn message_update(&self, user: i64, chat: i64, fields: Value) -> Value {
        let mut message = {
            let mut inner = self.lock();
            inner.next_message_id += 1;
            json!({
                "message_id": inner.next_message_id,
                "date": unix_now(),
                "chat": chat_json(chat),
                "from": user_json(user),
            })
        };
        for (key, value) in fields.as_object().cloned().unwrap_or_default() {
            message[key] = value;
        }
        self.new_update(json!({ "message": message }))
    }

    /// Gives an update body its update_id.
    fn new_update(&self, mut update: Value) -> Value {
        let mut inner = self.lock();
        update["update_id"] = json!(inner.next_update_id);
        inner.next_update_id += 1;
        update
    }

    /// A user taps an inline button under `keyboard` (a message the bot sent, which
    /// replied to `original`).
    pub fn press(&self, user: i64, keyboard: &Call, original: &Value, data: &str) {
        let mut message = keyboard.result.clone();
        message["reply_to_message"] = original.clone();
        self.push_update(self.new_update(json!({ "callback_query": {
            "id": format!("cb-{}", unix_now()),
            "from": user_json(user),
            "chat_instance": "42",
            "data": data,
            "message": message,
        }})));
    }

    /// Hands an update (with its update_id) to the bot as Telegram would: to the webhook
    /// when one is registered, else to getUpdates.
    pub fn push_update(&self, update: Value) {
        dispatch(&self.shared, &mut self.lock(), update);
    }
}

/// Queues an update for the webhook, or for getUpdates when none is registered.
fn dispatch(shared: &Arc<Shared>, inner: &mut Inner, update: Value) {
    let Some(url) = inner.next_target() else {
        inner.pending.push(update);
        shared.updates.notify_waiters();
        return;
    };
    inner.undelivered += 1;
    let queue = inner.deliveries.entry(url.clone()).or_insert_with(|| {
        let (queue, updates) = mpsc::unbounded_channel();
        shared
            .runtime
            .spawn(deliver_in_order(Arc::clone(shared), url, updates));
        queue
    });
    // The receiver lives as long as the stand-in's runtime.
    let _ = queue.send(update);
}

/// One target's deliveries, one at a time like Telegram's; a failed POST (non-2xx or no
/// answer) is sent again after a pause, a few times.
async fn deliver_in_order(
    shared: Arc<Shared>,
    url: String,
    mut updates: mpsc::UnboundedReceiver<Value>,
) {
    while let Some(update) = updates.recv().await {
        for attempt in 1..=WEBHOOK_ATTEMPTS {
            let secret = shared.lock().webhook_secret.clone();
            let status = post_json(&url, secret.as_deref(), &update).await;
            record_delivery(&shared, &update, &url, status);
            if (200..300).contains(&status) || attempt == WEBHOOK_ATTEMPTS {
                break;
            }
            tokio::time::sleep(WEBHOOK_RETRY * attempt).await;
        }
        shared.lock().undelivered -= 1;
    }
}

fn record_delivery(shared: &Shared, update: &Value, url: &str, status: u16) {
    if !(200..300).contains(&status) {
        let message = match status {
            0 => "Connection failed".to_string(),
            _ => format!("Wrong response from the webhook: {status}"),
        };
        shared.lock().last_webhook_error = Some((unix_now(), message));
    }
    let params = json!({ "update_id": update["update_id"], "target": url, "status": status });
    record(
        shared,
        "webhook_delivery",
        params,
        HashMap::new(),
        status,
        Value::Null,
    );
}

pub fn user_json(user: i64) -> Value {
    json!({ "id": user, "is_bot": false, "first_name": "Test", "username": format!("user{user}"),
            "language_code": "en" })
}

/// A user's private chat; a negative id is a group, as Telegram numbers them.
fn chat_json(chat: i64) -> Value {
    if chat < 0 {
        return json!({ "id": chat, "type": "group", "title": "Test group" });
    }
    json!({ "id": chat, "type": "private", "first_name": "Test", "username": format!("user{chat}") })
}

fn bot_json() -> Value {
    json!({ "id": BOT_ID, "is_bot": true, "first_name": "Prism", "username": "prism_test_bot" })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn ok(result: Value) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({ "ok": true, "result": result })),
    )
        .into_response()
}

fn error(status: StatusCode, description: &str, parameters: Option<Value>) -> Response {
    let mut body =
        json!({ "ok": false, "error_code": status.as_u16(), "description": description });
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    (status, axum::Json(body)).into_response()
}

async fn download(
    State(shared): State<Arc<Shared>>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    if bot != format!("bot{TOKEN}") {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized", None);
    }
    let (delay, bytes) = {
        let inner = shared.lock();
        let bytes = path
            .strip_prefix("photos/")
            .and_then(|p| p.strip_suffix(".bin"))
            .and_then(|id| inner.files.get(id))
            .map(|(_, bytes)| bytes.clone());
        (inner.download_delay, bytes)
    };
    let mut held = shared.downloads_held.subscribe();
    let _ = held.wait_for(|held| !held).await;
    tokio::time::sleep(delay).await;
    record(
        &shared,
        "download",
        json!({ "path": path }),
        HashMap::new(),
        200,
        Value::Null,
    );
    match bytes {
        Some(bytes) => (StatusCode::OK, bytes).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found", None),
    }
}

/// A boolean parameter, sent as JSON or as multipart text.
fn is_true(value: &Value) -> bool {
    value
        .as_bool()
        .unwrap_or_else(|| value.as_str() == Some("true"))
}

fn file_path(file_id: &str) -> String {
    format!("photos/{file_id}.bin")
}

async fn method(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    request: Request,
) -> Response {
    if bot != format!("bot{TOKEN}") {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized", None);
    }
    let method = method.to_ascii_lowercase();
    let (params, files) = match read_params(request).await {
        Ok(read) => read,
        Err(reason) => return error(StatusCode::BAD_REQUEST, &reason, None),
    };
    if method == "getupdates" {
        let Some(_polling) = Polling::start(&shared) else {
            record(&shared, &method, params, files, 409, Value::Null);
            return error(StatusCode::CONFLICT, CONFLICT, None);
        };
        record(&shared, &method, params.clone(), files, 200, Value::Null);
        return get_updates(&shared, &params).await;
    }
    let is_send = method.starts_with("send") && method != "sendchataction";
    {
        let mut inner = shared.lock();
        if is_send && inner.fail_sends > 0 && method == inner.fail_method {
            inner.fail_sends -= 1;
            let retry_after = inner.retry_after;
            drop(inner);
            let description = format!("Too Many Requests: retry after {retry_after}");
            record(&shared, &method, params, files, 429, Value::Null);
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                &description,
                Some(json!({ "retry_after": retry_after })),
            );
        }
    }
    let (status, result) = answer(&shared, &method, &params, &files);
    record(
        &shared,
        &method,
        params,
        files,
        status.as_u16(),
        result.clone(),
    );
    if status == StatusCode::OK {
        ok(result)
    } else {
        error(status, result.as_str().unwrap_or("Bad Request"), None)
    }
}

fn record(
    shared: &Shared,
    method: &str,
    params: Value,
    files: HashMap<String, Vec<u8>>,
    status: u16,
    result: Value,
) {
    shared.lock().calls.push(Call {
        method: method.to_string(),
        params,
        files,
        status,
        result,
        at: Instant::now(),
    });
    shared.calls.notify_waiters();
}

/// JSON bodies and multipart forms alike; `attach://name` values resolve to the named part.
async fn read_params(request: Request) -> Result<(Value, HashMap<String, Vec<u8>>), String> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !is_multipart {
        let body = axum::body::to_bytes(request.into_body(), 1 << 20)
            .await
            .map_err(|e| e.to_string())?;
        let params = if body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&body).map_err(|e| e.to_string())?
        };
        return Ok((params, HashMap::new()));
    }
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| e.to_string())?;
    let mut params = serde_json::Map::new();
    let mut parts: HashMap<String, Vec<u8>> = HashMap::new();
    while let Some(field) = multipart.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_string();
        let is_file = field.file_name().is_some();
        let bytes = field.bytes().await.map_err(|e| e.to_string())?;
        if is_file {
            parts.insert(name, bytes.to_vec());
        } else {
            let text = String::from_utf8_lossy(&bytes).to_string();
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            params.insert(name, value);
        }
    }
    let mut files = HashMap::new();
    for (name, value) in &params {
        if let Some(part) = value.as_str().and_then(|v| v.strip_prefix("attach://"))
            && let Some(bytes) = parts.remove(part)
        {
            files.insert(name.clone(), bytes);
        }
    }
    files.extend(parts);
    Ok((Value::Object(params), files))
}

/// A getUpdates in flight, counted while it lasts (also when the request is dropped).
struct Polling<'a>(&'a Shared);

impl<'a> Polling<'a> {
    /// `None` when conflict detection is on and another getUpdates is in flight.
    fn start(shared: &'a Shared) -> Option<Polling<'a>> {
        let mut inner = shared.lock();
        if inner.conflict_detection && inner.polling > 0 {
            return None;
        }
        inner.polling += 1;
        Some(Polling(shared))
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.0.lock().polling -= 1;
    }
}

async fn get_updates(shared: &Shared, params: &Value) -> Response {
    let offset = as_i64(&params["offset"]).unwrap_or(0);
    // Long polling, capped so a stopping bot is not kept waiting.
    let timeout = Duration::from_secs(as_i64(&params["timeout"]).unwrap_or(0).clamp(0, 1) as u64);
    let deadline = Instant::now() + timeout;
    loop {
        let notified = shared.updates.notified();
        {
            let mut inner = shared.lock();
            inner
                .pending
                .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            if !inner.pending.is_empty() {
                return ok(Value::Array(inner.pending.clone()));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
            return ok(json!([]));
        }
    }
}

/// The stand-in's answer to one method: (status, result or error description).
fn answer(
    shared: &Arc<Shared>,
    method: &str,
    params: &Value,
    files: &HashMap<String, Vec<u8>>,
) -> (StatusCode, Value) {
    let mut inner = shared.lock();
    match method {
        "getme" => {
            let mut me = bot_json();
            me["can_join_groups"] = json!(true);
            me["can_read_all_group_messages"] = json!(false);
            me["supports_inline_queries"] = json!(false);
            me["has_main_web_app"] = json!(false);
            (StatusCode::OK, me)
        }
        "setwebhook" => {
            inner.webhook = params["url"].as_str().map(str::to_string);
            inner.webhook_secret = params["secret_token"].as_str().map(str::to_string);
            inner.webhook_max_connections = as_i64(&params["max_connections"]);
            // Updates waiting for getUpdates go to the new webhook, unless dropped.
            let pending = std::mem::take(&mut inner.pending);
            if !is_true(&params["drop_pending_updates"]) {
                for update in pending {
                    dispatch(shared, &mut inner, update);
                }
            }
            (StatusCode::OK, json!(true))
        }
        "getwebhookinfo" => {
            let pending = match inner.webhook {
                Some(_) => inner.undelivered,
                None => inner.pending.len(),
            };
            let mut info = json!({
                "url": inner.webhook.clone().unwrap_or_default(),
                "has_custom_certificate": false,
                "pending_update_count": pending,
                "max_connections": inner.webhook_max_connections.unwrap_or(40),
            });
            if let Some((date, message)) = &inner.last_webhook_error {
                info["last_error_date"] = json!(date);
                info["last_error_message"] = json!(message);
            }
            (StatusCode::OK, info)
        }
        "deletewebhook" => {
            inner.webhook = None;
            (StatusCode::OK, json!(true))
        }
        "setmycommands" | "sendchataction" | "answercallbackquery" => (StatusCode::OK, json!(true)),
        "getfile" => {
            let id = params["file_id"].as_str().unwrap_or_default();
            match inner.files.get(id) {
                Some((file, _)) => (
                    StatusCode::OK,
                    json!({ "file_id": file.file_id, "file_unique_id": file.unique_id,
                            "file_size": file.size, "file_path": file_path(&file.file_id) }),
                ),
                None => (
                    StatusCode::BAD_REQUEST,
                    json!("Bad Request: invalid file_id"),
                ),
            }
        }
        "sendmessage" | "editmessagetext" => {
            let mut message = sent_message(&mut inner, params);
            message["text"] = params["text"].clone();
            if !params["reply_markup"].is_null() {
                message["reply_markup"] = params["reply_markup"].clone();
            }
            if method == "editmessagetext" {
                message["message_id"] = params["message_id"].clone();
            }
            (StatusCode::OK, message)
        }
        "sendphoto" | "senddocument" | "sendsticker" => {
            let field = &method["send".len()..];
            let file = match files.get(field) {
                Some(bytes) => store_file(&mut inner, "sent", bytes),
                None => match params[field].as_str().and_then(|id| inner.files.get(id)) {
                    Some((file, _)) => file.clone(),
                    None => {
                        return (
                            StatusCode::BAD_REQUEST,
                            json!("Bad Request: wrong file identifier"),
                        );
                    }
                },
            };
            let mut message = sent_message(&mut inner, params);
            let meta = json!({ "file_id": file.file_id, "file_unique_id": file.unique_id,
                               "file_size": file.size, "width": file.width, "height": file.height });
            match field {
                "photo" => message["photo"] = json!([meta]),
                "document" => {
                    message["document"] = json!({ "file_id": file.file_id, "file_unique_id": file.unique_id,
                                                   "file_size": file.size, "file_name": "prism" })
                }
                _ => {
                    let mut sticker = meta;
                    sticker["type"] = json!("regular");
                    sticker["is_animated"] = json!(false);
                    sticker["is_video"] = json!(false);
                    message["sticker"] = sticker;
                }
            }
            (StatusCode::OK, message)
        }
        _ => (StatusCode::NOT_FOUND, json!("Not Found: method not found")),
    }
}

/// Keeps a file (uploaded by a user, `in-N`, or by the bot, `sent-N`) so it can be fetched.
fn store_file(inner: &mut Inner, origin: &str, bytes: &[u8]) -> FileRef {
    // Probed without an engine: the stand-in never opens a GPU or starts workers.
    let (width, height) = prism_engine::probe(bytes, &Limits::default())
        .map_or((0, 0), |info| (info.width, info.height));
    inner.next_file += 1;
    let file = FileRef {
        file_id: format!("{origin}-{}", inner.next_file),
        unique_id: format!("uniq-{origin}-{}", inner.next_file),
        size: bytes.len() as u64,
        width,
        height,
    };
    inner.files.insert(
        file.file_id.clone(),
        (file.clone(), Bytes::copy_from_slice(bytes)),
    );
    file
}

fn sent_message(inner: &mut Inner, params: &Value) -> Value {
    inner.next_message_id += 1;
    let chat = as_i64(&params["chat_id"]).unwrap_or(0);
    json!({ "message_id": inner.next_message_id, "date": unix_now(), "chat": chat_json(chat), "from": bot_json() })
}

/// What Telegram does for a webhook: POST the update as JSON. The HTTP status, 0 when
/// there was no answer (connection refused or cut, timeout, not an http:// URL).
async fn post_json(url: &str, secret: Option<&str>, body: &Value) -> u16 {
    let Some(rest) = url.strip_prefix("http://") else {
        return 0;
    };
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let body = body.to_string();
    let secret = secret.map_or(String::new(), |s| {
        format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n")
    });
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{secret}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    match tokio::time::timeout(WEBHOOK_TIMEOUT, exchange).await {
        Ok(Ok(response)) => status_of(&response),
        _ => 0,
    }
}

/// The status code of a raw HTTP/1.1 response (0 when there is none).
fn status_of(response: &[u8]) -> u16 {
    String::from_utf8_lossy(response)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A plain HTTP/1.1 GET (for the bot's operator endpoint): (status, body).
pub async fn http_get(address: &str, path: &str) -> (u16, String) {
    http_request(address, "GET", path, None).await
}

/// A GET with a bearer token: (status, body).
pub async fn http_get_as(address: &str, path: &str, bearer: &str) -> (u16, String) {
    http_request(address, "GET", path, Some(bearer)).await
}

/// A POST without a body, with a bearer token when given: (status, body).
pub async fn http_post(address: &str, path: &str, bearer: Option<&str>) -> (u16, String) {
    http_request(address, "POST", path, bearer).await
}

async fn http_request(
    address: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let authorization = bearer.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{authorization}Content-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let status = status_of(&response);
    let response = String::from_utf8_lossy(&response).to_string();
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// A component's status (`ok`, `degraded`, `down`) in the bot's JSON health report.
pub fn component_status(report: &str, name: &str) -> String {
    let report: Value = serde_json::from_str(report).expect("a JSON health report");
    report["components"]
        .as_array()
        .and_then(|components| components.iter().find(|c| c["name"] == name))
        .and_then(|component| component["status"].as_str())
        .unwrap_or("absent")
        .to_string()
}
