//! A Telegram Bot API stand-in on 127.0.0.1 for end-to-end tests of prism-bot: it speaks the
//! real method shapes (JSON and multipart, PascalCase method names, `attach://` parts,
//! `%2F` in file paths), serves files, queues updates for getUpdates or posts them to a
//! webhook, records every call, and can answer 429 with `retry_after`.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prism_engine::{Engine, EngineConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

pub const TOKEN: &str = "123456:TEST-token";
pub const BOT_ID: i64 = 4242;
/// The stand-in server's thread name (as /proc shows it, at most 15 bytes).
pub const STANDIN_THREAD: &str = "telegram-stand";

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
    retry_after: u32,
    download_delay: Duration,
    webhook: Option<String>,
    webhook_secret: Option<String>,
}

struct Shared {
    inner: Mutex<Inner>,
    /// While true, file downloads wait (to hold jobs in flight deterministically).
    downloads_held: tokio::sync::watch::Sender<bool>,
    updates: Notify,
    calls: Notify,
    engine: Engine,
}

pub struct StandIn {
    pub url: String,
    shared: Arc<Shared>,
}

impl StandIn {
    pub async fn start() -> StandIn {
        let engine = Engine::new(EngineConfig {
            threads: 1,
            ..EngineConfig::default()
        })
        .expect("engine");
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                next_update_id: 1,
                next_message_id: 1000,
                ..Inner::default()
            }),
            updates: Notify::new(),
            calls: Notify::new(),
            downloads_held: tokio::sync::watch::Sender::new(false),
            engine,
        });
        let app = Router::new()
            .route("/file/{bot}/{*path}", get(download))
            .route("/{bot}/{method}", post(method))
            .with_state(Arc::clone(&shared));
        // Its own thread and runtime, so its CPU time can be told apart from the bot's.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        std::thread::Builder::new()
            .name(STANDIN_THREAD.into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    axum::serve(listener, app).await
                })
            })
            .expect("stand-in thread");
        StandIn { url, shared }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a file the bot may fetch, as if a user had uploaded it.
    pub fn add_file(&self, bytes: &[u8]) -> FileRef {
        store_file(&self.shared.engine, &mut self.lock(), "in", bytes)
    }

    /// The next `count` send* calls get 429 with `retry_after` seconds.
    pub fn fail_next_sends(&self, count: usize, retry_after: u32) {
        let mut inner = self.lock();
        inner.fail_sends = count;
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

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
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

    /// A user sends a photo (Telegram-style: a small thumbnail size plus the full size).
    pub fn photo(&self, user: i64, chat: i64, file: &FileRef, caption: Option<&str>) -> Value {
        let sizes = json!([
            {"file_id": "thumb-not-fetchable", "file_unique_id": "uniq-thumb", "width": 90, "height": 60, "file_size": 1000},
            {"file_id": file.file_id, "file_unique_id": file.unique_id, "width": file.width,
             "height": file.height, "file_size": file.size},
        ]);
        let mut fields = json!({ "photo": sizes });
        if let Some(caption) = caption {
            fields["caption"] = json!(caption);
        }
        self.message(user, chat, fields)
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
        let mime = if name.ends_with(".png") {
            "image/png"
        } else {
            "image/jpeg"
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
        self.push_update(json!({ "message": message.clone() }));
        message
    }

    /// A user taps an inline button under `keyboard` (a message the bot sent, which
    /// replied to `original`).
    pub fn press(&self, user: i64, keyboard: &Call, original: &Value, data: &str) {
        let mut message = keyboard.result.clone();
        message["reply_to_message"] = original.clone();
        self.push_update(json!({ "callback_query": {
            "id": format!("cb-{}", unix_now()),
            "from": user_json(user),
            "chat_instance": "42",
            "data": data,
            "message": message,
        }}));
    }

    fn push_update(&self, update: Value) {
        let webhook = {
            let mut inner = self.lock();
            let mut update = update;
            update["update_id"] = json!(inner.next_update_id);
            inner.next_update_id += 1;
            match inner.webhook.clone() {
                Some(url) => Some((url, inner.webhook_secret.clone(), update)),
                None => {
                    inner.pending.push(update);
                    None
                }
            }
        };
        match webhook {
            Some((url, secret, update)) => {
                tokio::spawn(async move { post_json(&url, secret.as_deref(), &update).await });
            }
            None => self.shared.updates.notify_waiters(),
        }
    }
}

pub fn user_json(user: i64) -> Value {
    json!({ "id": user, "is_bot": false, "first_name": "Test", "username": format!("user{user}"),
            "language_code": "en" })
}

fn chat_json(chat: i64) -> Value {
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
        let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
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
        record(&shared, &method, params.clone(), files, 200, Value::Null);
        return get_updates(&shared, &params).await;
    }
    let is_send = method.starts_with("send") && method != "sendchataction";
    {
        let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
        if is_send && inner.fail_sends > 0 {
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
    shared
        .inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .calls
        .push(Call {
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

async fn get_updates(shared: &Shared, params: &Value) -> Response {
    let offset = as_i64(&params["offset"]).unwrap_or(0);
    // Long polling, capped so a stopping bot is not kept waiting.
    let timeout = Duration::from_secs(as_i64(&params["timeout"]).unwrap_or(0).clamp(0, 1) as u64);
    let deadline = Instant::now() + timeout;
    loop {
        let notified = shared.updates.notified();
        {
            let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
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
    shared: &Shared,
    method: &str,
    params: &Value,
    files: &HashMap<String, Vec<u8>>,
) -> (StatusCode, Value) {
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
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
            (StatusCode::OK, json!(true))
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
                Some(bytes) => store_file(&shared.engine, &mut inner, "sent", bytes),
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
fn store_file(engine: &Engine, inner: &mut Inner, origin: &str, bytes: &[u8]) -> FileRef {
    let (width, height) = engine
        .probe(bytes)
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

/// What Telegram does for a webhook: POST the update as JSON.
async fn post_json(url: &str, secret: Option<&str>, body: &Value) {
    let Some(rest) = url.strip_prefix("http://") else {
        return;
    };
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let body = body.to_string();
    let Ok(mut stream) = tokio::net::TcpStream::connect(host).await else {
        return;
    };
    let secret = secret.map_or(String::new(), |s| {
        format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n")
    });
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{secret}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).await.is_ok() {
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
    }
}

/// A plain HTTP/1.1 GET (for the bot's health endpoint): (status, body).
pub async fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8_lossy(&response).to_string();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}
