//! Every call to Telegram's Bot API in one place: the client (timeouts sized for 20 MB
//! transfers), the outbound throttle, retries that honour `retry_after`, bounded downloads,
//! and sending a result as a photo, document or sticker.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use teloxide::adaptors::Throttle;
use teloxide::adaptors::throttle::{Limits, Settings};
use teloxide::net::Download;
use teloxide::payloads::{
    SendDocumentSetters, SendMessageSetters, SendPhotoSetters, SendStickerSetters,
};
use teloxide::prelude::*;
use teloxide::types::{ChatAction, FileId, InputFile, MessageId, ReplyMarkup, ReplyParameters};
use teloxide::{ApiError, RequestError};

use crate::config::BotConfig;
use crate::telegram::delivery::Delivery;

/// The HTTP client's total timeout: a 20 MB upload on a slow link needs minutes, and the
/// long-poll timeout must stay below it.
const HTTP_TIMEOUT: Duration = Duration::from_secs(300);
/// A getMe answer for /health, and when it came.
type Reachability = (Instant, Result<(), String>);

/// How long a getMe answer stands for /health, and how long one is waited for.
const REACHABILITY_TTL: Duration = Duration::from_secs(5);
const REACHABILITY_TIMEOUT: Duration = Duration::from_secs(2);
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

/// The Bot API: messages go through the throttle when it is on; getFile, downloads and
/// getMe are not messages and go direct.
#[derive(Clone)]
pub struct Telegram {
    pub bot: Bot,
    throttled: Option<Throttle<Bot>>,
    /// Calls repeated after Telegram asked to retry later, since start.
    retries: Arc<AtomicU64>,
    /// The last getMe answer for /health, and when it came.
    reachability: Arc<Mutex<Option<Reachability>>>,
}

/// Runs `$call` (an expression using `$api`, ending in `.send()`) on the throttled
/// requester when there is one, else on the plain bot; both give the same result type.
macro_rules! on_api {
    ($telegram:expr, |$api:ident| $call:expr) => {
        match &$telegram.throttled {
            Some($api) => $call.await,
            None => {
                let $api = &$telegram.bot;
                $call.await
            }
        }
    };
}

impl Telegram {
    /// Must be called inside the tokio runtime (the throttle spawns its worker).
    pub fn connect(config: &BotConfig) -> Result<Telegram, TelegramError> {
        let client = teloxide::net::default_reqwest_settings()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| TelegramError::Client(e.to_string()))?;
        let url = url::Url::parse(&config.api_url)
            .map_err(|e| TelegramError::ApiUrl(format!("{}: {e}", config.api_url)))?;
        let bot = Bot::with_client(&config.token, client).set_api_url(url);
        // Our own retry loop below handles `retry_after`; the throttle only shapes.
        let throttled = config.throttle.then(|| {
            let settings = Settings::default().limits(Limits::default()).no_retry();
            Throttle::spawn_with_settings(bot.clone(), settings)
        });
        Ok(Telegram {
            bot,
            throttled,
            retries: Arc::new(AtomicU64::new(0)),
            reachability: Arc::new(Mutex::new(None)),
        })
    }

    /// Calls repeated after Telegram asked to retry later, since start.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
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

    /// A text reply (Markdown-free, so user text is never misparsed).
    pub async fn reply(
        &self,
        chat: ChatId,
        to: Option<MessageId>,
        text: &str,
    ) -> Result<Message, TelegramError> {
        Ok(with_retry(&self.retries, || {
            let reply = to.map(|to| ReplyParameters::new(to).allow_sending_without_reply());
            async move {
                on_api!(self, |api| {
                    let mut request = api.send_message(chat, text);
                    if let Some(reply) = reply {
                        request = request.reply_parameters(reply);
                    }
                    request.send()
                })
            }
        })
        .await?)
    }

    pub async fn reply_with_markup(
        &self,
        chat: ChatId,
        to: MessageId,
        text: &str,
        markup: ReplyMarkup,
    ) -> Result<Message, TelegramError> {
        Ok(with_retry(&self.retries, || {
            let markup = markup.clone();
            async move {
                on_api!(self, |api| api
                    .send_message(chat, text)
                    .reply_parameters(ReplyParameters::new(to).allow_sending_without_reply())
                    .reply_markup(markup)
                    .send())
            }
        })
        .await?)
    }

    pub async fn edit_text(
        &self,
        chat: ChatId,
        message: MessageId,
        text: &str,
    ) -> Result<(), TelegramError> {
        with_retry(&self.retries, || async move {
            on_api!(self, |api| api
                .edit_message_text(chat, message, text)
                .send())
        })
        .await?;
        Ok(())
    }

    pub async fn answer_callback(
        &self,
        id: &teloxide::types::CallbackQueryId,
        text: Option<&str>,
    ) -> Result<(), TelegramError> {
        with_retry(&self.retries, || async move {
            on_api!(self, |api| {
                let mut request = api.answer_callback_query(id.clone());
                if let Some(text) = text {
                    request = request.text(text);
                }
                request.send()
            })
        })
        .await?;
        Ok(())
    }

    /// "Sending a photo…" in the chat header while work runs (best effort).
    pub async fn show_working(&self, chat: ChatId) {
        if let Err(error) = on_api!(self, |api| api
            .send_chat_action(chat, ChatAction::UploadPhoto)
            .send())
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
                with_retry(&self.retries, || async {
                    on_api!(self, |api| api
                        .send_photo(chat, input())
                        .reply_parameters(reply.clone())
                        .send())
                })
                .await?
            }
            Delivery::Document => {
                with_retry(&self.retries, || async {
                    on_api!(self, |api| api
                        .send_document(chat, input())
                        .reply_parameters(reply.clone())
                        .send())
                })
                .await?
            }
            Delivery::Sticker => {
                with_retry(&self.retries, || async {
                    on_api!(self, |api| api
                        .send_sticker(chat, input())
                        .reply_parameters(reply.clone())
                        .send())
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

    /// Registers the webhook unless Telegram already has it: every instance of a deployment
    /// starts with the same URL and secret, and re-setting it on each start would only churn.
    /// Telegram does not reveal the secret, so a mismatch shows up as 401 errors from our
    /// own endpoint in `last_error_message`; then it is set again. Returns whether it set it.
    pub async fn ensure_webhook(
        &self,
        url: &url::Url,
        secret: &str,
    ) -> Result<bool, TelegramError> {
        match with_retry(&self.retries, || self.bot.get_webhook_info().send()).await {
            Ok(info) => {
                let same_url = info.url.as_ref() == Some(url);
                let refused = info
                    .last_error_message
                    .as_deref()
                    .is_some_and(|error| error.contains("401"));
                if same_url && !refused {
                    return Ok(false);
                }
            }
            // Not knowing what is set is no reason not to serve: set it.
            Err(error) => tracing::warn!(%error, "getWebhookInfo failed; setting the webhook"),
        }
        with_retry(&self.retries, || {
            self.bot
                .set_webhook(url.clone())
                .secret_token(secret.to_string())
                .send()
        })
        .await?;
        Ok(true)
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

/// Runs a request again after each `retry_after` Telegram asks for (flood control), so
/// a reply is delayed, never dropped.
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
                retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    seconds = after.seconds(),
                    attempt,
                    "Telegram asked to retry later"
                );
                tokio::time::sleep(after.duration()).await;
            }
            result => return result,
        }
    }
}
