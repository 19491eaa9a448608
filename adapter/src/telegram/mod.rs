//! Telegram's Bot API on the way out: the client every call goes through, the turns chats
//! take to send, and how a result is delivered (photo, document or sticker).

pub mod client;
pub mod delivery;
pub mod outbound;
