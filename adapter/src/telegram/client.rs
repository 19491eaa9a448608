//! Every call to Telegram's Bot API in one place: the client (timeouts sized for 20 MB
//! transfers), each message's turn in the outbound pacing (`outbound.rs`), retries that
//! honour `retry_after`, bounded downloads, and sending a result as a photo, document or
//! sticker.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use teloxide::net::Download;
use teloxide::payloads::{
    SendDocumentSetters, SendMessageSetters, SendPhotoSetters, SendStickerSetters,
};
use teloxide::prelude::*;
use teloxide::types::{
    AllowedUpdate, ChatAction, FileId, InputFile, MessageId, ReplyMarkup, ReplyParameters,
};
use teloxide::{ApiError, RequestError};

use crate::config::BotConfig;
use crate::redact;
use crate::telegram::delivery::Delivery;
use crate::telegram::outbound::{Dropped, Outbound, Pace, Weight};

/// The HTTP client's total timeout: a 20 MB upload on a slow link needs minutes, and the
/// long-poll timeout must stay below it.
const HTTP_TIMEOUT: Duration = Duration::from_secs(300);
/// A getMe answer for /health, and when it came.
type Reachability = (Instant, Result<(), String>);

/// How long a getMe answer stands for /health, and how long one is waited for.
const REACHABILITY_TTL: Duration = Duration::from_secs(5);
const REACHABILITY_TIMEOUT: Duration = Duration::from_secs(2);
/// The updates the bot handles; Telegram sends no others (webhook and polling alike).
pub const ALLOWED_UPDATES: [AllowedUpdate; 2] =
    [AllowedUpdate::Message, AllowedUpdate::CallbackQuery];
/// A `retry_after` is honoured this many times before the request is given up.
const MAX_RETRIES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("Telegram API: {0}")]
    Request(#[from] RequestError),
    #[error("download: {0}")]
    Download(String),
    #[error("the file is {size} bytes; at most {limit} can be fetched")]
    TooLarge { size: u64, limit: u64 },
    #[error("invalid TELEGRAM_API_URL: {0}")]
    ApiUrl(String),
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("notice {0}")]
    Dropped(#[from] Dropped),
}

impl TelegramError {
    /// Telegram does not know (or no longer honours) a file id this bot sent before; other
    /// errors (a blocked bot, a deleted chat) say nothing about the file.
    pub fn is_unknown_file(&self) -> bool {
        match self {
            TelegramError::Request(RequestError::Api(error)) => match error {
                ApiError::WrongFileId | ApiError::WrongFileIdOrUrl | ApiError::FileIdInvalid => {
                    true
                }
                ApiError::Unknown(text) => {
                    let text = text.to_ascii_lowercase();
                    ["file id", "file_id", "file identifier", "file reference"]
                        .iter()
                        .any(|needle| text.contains(needle))
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// The Bot API: each message waits for its chat's turn; getFile, downloads, getMe, chat
/// actions and button answers are not messages and go direct.
#[derive(Clone)]
pub struct Telegram {
    pub bot: Bot,
    outbound: Outbound,
    /// Calls repeated after Telegram asked to retry later, since start.
    retries: Arc<AtomicU64>,
    /// The last getMe answer for /health, and when it came.
    reachability: Arc<Mutex<Option<Reachability>>>,
}

impl Telegram {
    /// Must be called inside the tokio runtime (the outbound pacing spawns its worker).
    pub fn connect(config: &BotConfig) -> Result<Telegram, TelegramError> {
        let client = teloxide::net::default_reqwest_settings()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| TelegramError::Client(e.to_string()))?;
        let url = url::Url::parse(&config.api_url)
            .map_err(|e| TelegramError::ApiUrl(format!("{}: {e}", redact::url(&config.api_url))))?;
        let bot = Bot::with_client(&config.token, client).set_api_url(url);
        Ok(Telegram {
            bot,
            outbound: Outbound::start(config.throttle.then(Pace::default)),
            retries: Arc::new(AtomicU64::new(0)),
            reachability: Arc::new(Mutex::new(None)),
        })
    }

    /// Calls repeated after Telegram asked to retry later, since start.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The outbound turn-taking, for its figures.
    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// Fetches a file by id, refusing more than `limit` bytes before and during transfer.
    pub async fn download(&self, file_id: &FileId, limit: u64) -> Result<Vec<u8>, TelegramError> {
        let file = with_retry(&self.retries, || self.bot.get_file(file_id.clone()).send()).await?;
        let announced = u64::from(file.meta.size);
        if announced != u64::from(u32::MAX) && announced > limit {
            return Err(TelegramError::TooLarge {
                size: announced,
                limit,
            });
        }
        let mut stream = self.bot.download_file_stream(&file.path);
        let mut bytes = Vec::with_capacity(announced.min(limit) as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| TelegramError::Download(e.without_url().to_string()))?;
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(TelegramError::TooLarge {
                    size: (bytes.len() + chunk.len()) as u64,
                    limit,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// A text reply (Markdown-free, so user text is never misparsed); a notice is dropped
    /// when its chat already has a couple waiting.
    pub async fn reply(
        &self,
        chat: ChatId,
        to: Option<MessageId>,
        text: &str,
        weight: Weight,
    ) -> Result<Message, TelegramError> {
        let reply = to.map(|to| ReplyParameters::new(to).allow_sending_without_reply());
        self.send(chat, weight, || {
            let mut request = self.bot.send_message(chat, text);
            if let Some(reply) = reply.clone() {
                request = request.reply_parameters(reply);
            }
            request.send()
        })
        .await
    }

    /// A notice with buttons, in reply to `to`.
    pub async fn reply_with_markup(
        &self,
        chat: ChatId,
        to: MessageId,
        text: &str,
        markup: ReplyMarkup,
    ) -> Result<Message, TelegramError> {
        self.send(chat, Weight::Notice, || {
            self.bot
                .send_message(chat, text)
                .reply_parameters(ReplyParameters::new(to).allow_sending_without_reply())
                .reply_markup(markup.clone())
                .send()
        })
        .await
    }

    /// Replaces a message's text (a keyboard by the choice made): part of the answer.
    pub async fn edit_text(
        &self,
        chat: ChatId,
        message: MessageId,
        text: &str,
    ) -> Result<(), TelegramError> {
        self.send(chat, Weight::Answer, || {
            self.bot.edit_message_text(chat, message, text).send()
        })
        .await?;
        Ok(())
    }

    pub async fn answer_callback(
        &self,
        id: &teloxide::types::CallbackQueryId,
        text: Option<&str>,
    ) -> Result<(), TelegramError> {
        with_retry(&self.retries, || {
            let mut request = self.bot.answer_callback_query(id.clone());
            if let Some(text) = text {
                request = request.text(text);
            }
            request.send()
        })
        .await?;
        Ok(())
    }

    /// One message: each try waits for the chat's turn, and is tried again after each
    /// `retry_after` Telegram asks for.
    async fn send<T, F, Fut>(
        &self,
        chat: ChatId,
        weight: Weight,
        mut request: F,
    ) -> Result<T, TelegramError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RequestError>>,
    {
        let mut attempt = 0;
        loop {
            self.outbound.turn(chat, weight).await?;
            match request().await {
                Err(RequestError::RetryAfter(after)) if attempt < MAX_RETRIES => {
                    attempt += 1;
                    wait_before_retry(&self.retries, after.duration(), attempt).await;
                }
                result => return Ok(result?),
            }
        }
    }

    /// "Sending a photo…" in the chat header while work runs (best effort).
    pub async fn show_working(&self, chat: ChatId) {
        if let Err(error) = self
            .bot
            .send_chat_action(chat, ChatAction::UploadPhoto)
            .send()
            .await
        {
            tracing::debug!(%error, "chat action failed");
        }
    }

    /// Sends a result, by `file_id` when Telegram already has it, else uploading `bytes`.
    /// Returns the file id Telegram assigned, for the cache.
    pub async fn send_result(
        &self,
        chat: ChatId,
        to: MessageId,
        delivery: Delivery,
        file: ResultFile,
    ) -> Result<Option<String>, TelegramError> {
        let input = || match &file {
            ResultFile::Known(id) => InputFile::file_id(FileId(id.clone())),
            ResultFile::Upload { bytes, name } => {
                InputFile::memory(bytes.clone()).file_name(name.clone())
            }
        };
        let reply = ReplyParameters::new(to).allow_sending_without_reply();
        let sent = match delivery {
            Delivery::Photo => {
                self.send(chat, Weight::Answer, || {
                    self.bot
                        .send_photo(chat, input())
                        .reply_parameters(reply.clone())
                        .send()
                })
                .await?
            }
            Delivery::Document => {
                self.send(chat, Weight::Answer, || {
                    self.bot
                        .send_document(chat, input())
                        .reply_parameters(reply.clone())
                        .send()
                })
                .await?
            }
            Delivery::Sticker => {
                self.send(chat, Weight::Answer, || {
                    self.bot
                        .send_sticker(chat, input())
                        .reply_parameters(reply.clone())
                        .send()
                })
                .await?
            }
        };
        Ok(sent_file_id(&sent, delivery))
    }

    /// getMe, for /health; an answer is reused for [`REACHABILITY_TTL`], so load balancers
    /// probing readiness every few seconds do not each cost a call to Telegram.
    pub async fn reachable(&self) -> Result<(), String> {
        if let Some((at, answer)) = &*self.lock_reachability()
            && at.elapsed() < REACHABILITY_TTL
        {
            return answer.clone();
        }
        let answer =
            match tokio::time::timeout(REACHABILITY_TIMEOUT, self.bot.get_me().send()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err(format!("no answer in {REACHABILITY_TIMEOUT:?}")),
            };
        *self.lock_reachability() = Some((Instant::now(), answer.clone()));
        answer
    }

    fn lock_reachability(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<(Instant, Result<(), String>)>> {
        self.reachability.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the webhook with every parameter it has (URL, secret, the updates the bot
    /// handles, connections), at each start: the call is idempotent, and Telegram does not
    /// reveal the secret it holds, so a rotated WEBHOOK_SECRET is only taken up this way.
    pub async fn set_webhook(
        &self,
        url: &url::Url,
        secret: &str,
        max_connections: u8,
    ) -> Result<(), TelegramError> {
        with_retry(&self.retries, || {
            self.bot
                .set_webhook(url.clone())
                .secret_token(secret.to_string())
                .allowed_updates(ALLOWED_UPDATES)
                .max_connections(max_connections)
                .send()
        })
        .await?;
        Ok(())
    }
}

/// What to send: a file Telegram already has, or new bytes.
pub enum ResultFile {
    Known(String),
    Upload { bytes: Bytes, name: String },
}

fn sent_file_id(message: &Message, delivery: Delivery) -> Option<String> {
    match delivery {
        Delivery::Photo => message
            .photo()
            .and_then(|sizes| {
                sizes
                    .iter()
                    .max_by_key(|p| u64::from(p.width) * u64::from(p.height))
            })
            .map(|p| p.file.id.0.clone()),
        Delivery::Document => message.document().map(|d| d.file.id.0.clone()),
        Delivery::Sticker => message.sticker().map(|s| s.file.id.0.clone()),
    }
}

/// Runs a request that is not a message again after each `retry_after` Telegram asks for
/// (flood control), so it is delayed, never dropped.
async fn with_retry<T, F, Fut>(retries: &AtomicU64, mut request: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let mut attempt = 0;
    loop {
        match request().await {
            Err(RequestError::RetryAfter(after)) if attempt < MAX_RETRIES => {
                attempt += 1;
                wait_before_retry(retries, after.duration(), attempt).await;
            }
            result => return result,
        }
    }
}

async fn wait_before_retry(retries: &AtomicU64, after: Duration, attempt: usize) {
    retries.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        seconds = after.as_secs(),
        attempt,
        "Telegram asked to retry later"
    );
    tokio::time::sleep(after).await;
}
