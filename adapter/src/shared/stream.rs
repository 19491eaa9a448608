//! The deployment's intake on Redis: one stream (`<prefix>intake`) with one consumer group that
//! every instance reads as its own consumer (INSTANCE_ID). An update is appended before Telegram
//! is told it arrived, and deleted once answered and recorded; an entry whose consumer went
//! quiet is claimed by another after the visibility timeout, and a consumer renews the claim on
//! what it is working on. Replies are marked per update (`<prefix>replied:<update_id>`, holding
//! the request's record) so that a reclaimed entry records its request instead of replying again.
//!
//! Redis persistence decides what survives Redis's own crash: `appendonly yes` with
//! `appendfsync everysec` loses at most a second of appends (README "Several instances").

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamInfoConsumersReply, StreamReadReply};
use redis::{RedisResult, Script};

use super::redis::{SharedRedis, Unavailable};

const GROUP: &str = "prism";
/// A reply marker outlives any redelivery of its update.
const REPLIED_FOR: Duration = Duration::from_secs(86_400);
/// Telegram re-delivers an update it did not see answered within minutes; an update id is
/// remembered for an hour, one small key per update.
const UPDATE_REMEMBERED_FOR: Duration = Duration::from_secs(3600);

/// Appends an update once: not when its id was appended before (Telegram delivered it again,
/// perhaps to another instance), nor when the stream holds `bound` entries. KEYS: the stream,
/// the update id's key. ARGV: bound, update id, update JSON, how long the id is remembered
/// (ms). Returns 1 appended, 0 full, 2 appended before. One script: the id is remembered only
/// with the entry, so a crash between the two cannot drop an update.
const APPEND_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('XADD', KEYS[1], '*', 'u', ARGV[2], 'b', ARGV[3])
redis.call('SET', KEYS[2], '1', 'PX', tonumber(ARGV[4]))
return 1
";

/// What became of an update offered for keeping (here, or in the local queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Kept: Telegram may be told it arrived.
    Kept,
    /// Kept before (Telegram delivered it again, perhaps to another instance): Telegram may
    /// be told it arrived.
    Duplicate,
    /// The backlog is at INTAKE_MAX_BACKLOG: Telegram should send it again later.
    Full,
}

/// Acknowledges and deletes an answered entry, so the stream's length is the backlog.
/// KEYS: the stream. ARGV: the group, the entry id.
const ACK_SCRIPT: &str = r"
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
";

static APPEND: LazyLock<Script> = LazyLock::new(|| Script::new(APPEND_SCRIPT));
static ACK: LazyLock<Script> = LazyLock::new(|| Script::new(ACK_SCRIPT));

/// One update taken from the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    pub id: String,
    pub update_id: u32,
    pub update: String,
}

impl StreamEntry {
    fn from_reply(entry: &StreamId) -> Option<StreamEntry> {
        Some(StreamEntry {
            id: entry.id.clone(),
            update_id: entry.get("u")?,
            update: entry.get("b")?,
        })
    }
}

/// When an entry was appended (Unix milliseconds), from its id.
fn entry_millis(id: &str) -> i64 {
    id.split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0)
}

impl SharedRedis {
    fn intake_key(&self) -> String {
        self.key("intake", "stream")
    }

    /// Creates the consumer group (and the stream) unless they exist.
    pub async fn intake_prepare(&self) -> Result<(), Unavailable> {
        let key = self.intake_key();
        self.call(|mut c| async move { create_group(&mut c, &key).await })
            .await
    }

    /// Appends an update once, unless the stream holds `bound` entries.
    pub async fn intake_append(
        &self,
        bound: usize,
        update_id: u32,
        update: &str,
    ) -> Result<Appended, Unavailable> {
        let (key, update) = (self.intake_key(), update.to_string());
        let seen = self.key("update", &update_id.to_string());
        let status: i64 = self
            .call(|mut c| async move {
                APPEND
                    .key(&key)
                    .key(&seen)
                    .arg(bound)
                    .arg(update_id)
                    .arg(&update)
                    .arg(UPDATE_REMEMBERED_FOR.as_millis() as u64)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(match status {
            1 => Appended::Kept,
            2 => Appended::Duplicate,
            _ => Appended::Full,
        })
    }

    /// Up to `count` entries for `consumer`: new ones, or with `own_pending` those it was
    /// given before and has not acknowledged (a restart under the same INSTANCE_ID).
    pub async fn intake_read(
        &self,
        consumer: &str,
        count: usize,
        own_pending: bool,
    ) -> Result<Vec<StreamEntry>, Unavailable> {
        let (key, consumer) = (self.intake_key(), consumer.to_string());
        let reply: Option<StreamReadReply> = self
            .call(|mut c| async move {
                let read = redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg(&consumer)
                    .arg("COUNT")
                    .arg(count)
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(if own_pending { "0" } else { ">" })
                    .query_async(&mut c)
                    .await;
                or_recreated(read, &mut c, &key).await
            })
            .await?;
        Ok(reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|stream| stream.ids)
            .filter_map(|entry| StreamEntry::from_reply(&entry))
            .collect())
    }

    /// Claims for `consumer` up to `count` entries no consumer touched for `idle`: those of
    /// an instance that died.
    pub async fn intake_reclaim(
        &self,
        consumer: &str,
        idle: Duration,
        count: usize,
    ) -> Result<Vec<StreamEntry>, Unavailable> {
        let (key, consumer) = (self.intake_key(), consumer.to_string());
        let reply: StreamAutoClaimReply = self
            .call(|mut c| async move {
                let claimed = redis::cmd("XAUTOCLAIM")
                    .arg(&key)
                    .arg(GROUP)
                    .arg(&consumer)
                    .arg(idle.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut c)
                    .await;
                or_recreated(claimed, &mut c, &key).await
            })
            .await?;
        Ok(reply
            .claimed
            .iter()
            .filter_map(StreamEntry::from_reply)
            .collect())
    }

    /// Removes from the group the consumers (other than `consumer`) that hold nothing and were
    /// silent for `idle`: instances that died and whose entries were taken over. With the
    /// default INSTANCE_ID (hostname-pid) every restart is a new consumer, and the group would
    /// otherwise grow by one each time. Returns how many were removed.
    pub async fn intake_forget_consumers(
        &self,
        consumer: &str,
        idle: Duration,
    ) -> Result<usize, Unavailable> {
        let (key, consumer) = (self.intake_key(), consumer.to_string());
        self.clean_up(|mut c| async move {
            let info: StreamInfoConsumersReply = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(&key)
                .arg(GROUP)
                .query_async(&mut c)
                .await?;
            let mut removed = 0;
            for gone in info.consumers.iter().filter(|other| {
                other.name != consumer
                    && other.pending == 0
                    && other.idle as u128 >= idle.as_millis()
            }) {
                let _: i64 = redis::cmd("XGROUP")
                    .arg("DELCONSUMER")
                    .arg(&key)
                    .arg(GROUP)
                    .arg(&gone.name)
                    .query_async(&mut c)
                    .await?;
                removed += 1;
            }
            Ok(removed)
        })
        .await
    }

    /// Renews `consumer`'s claim on entries it is working on (their idle time starts again),
    /// so that a slow job is never taken from a live instance.
    pub async fn intake_renew(&self, consumer: &str, ids: &[String]) -> Result<(), Unavailable> {
        if ids.is_empty() {
            return Ok(());
        }
        let (key, consumer, ids) = (self.intake_key(), consumer.to_string(), ids.to_vec());
        self.clean_up(|mut c| async move {
            let renewed = redis::cmd("XCLAIM")
                .arg(&key)
                .arg(GROUP)
                .arg(&consumer)
                .arg(0)
                .arg(&ids)
                .arg("JUSTID")
                .query_async::<redis::Value>(&mut c)
                .await
                .map(drop);
            or_recreated(renewed, &mut c, &key).await
        })
        .await
    }

    /// Acknowledges and deletes an answered entry.
    pub async fn intake_ack(&self, id: &str) -> Result<(), Unavailable> {
        let (key, id) = (self.intake_key(), id.to_string());
        self.clean_up(|mut c| async move {
            ACK.key(&key)
                .arg(GROUP)
                .arg(&id)
                .invoke_async::<i64>(&mut c)
                .await
                .map(drop)
        })
        .await
    }

    /// Entries waiting or in progress over the deployment, and when the oldest was appended
    /// (Unix milliseconds).
    pub async fn intake_backlog(&self) -> Result<(u64, Option<i64>), Unavailable> {
        let key = self.intake_key();
        self.call(|mut c| async move {
            let (length, first): (u64, Vec<(String, redis::Value)>) = redis::pipe()
                .cmd("XLEN")
                .arg(&key)
                .cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut c)
                .await?;
            Ok((length, first.first().map(|(id, _)| entry_millis(id))))
        })
        .await
    }

    /// Marks an update as replied to, keeping its request's record.
    pub async fn intake_mark_replied(
        &self,
        update_id: u32,
        record: &str,
    ) -> Result<(), Unavailable> {
        let key = self.key("replied", &update_id.to_string());
        self.set_with_ttl(&key, record.as_bytes(), REPLIED_FOR)
            .await
    }

    /// The record kept when the update was replied to, if it was.
    pub async fn intake_replied(&self, update_id: u32) -> Result<Option<String>, Unavailable> {
        let key = self.key("replied", &update_id.to_string());
        Ok(self
            .get(&key)
            .await?
            .and_then(|bytes| String::from_utf8(bytes).ok()))
    }
}

/// `XGROUP CREATE ... MKSTREAM`; a group that exists already is fine.
async fn create_group(c: &mut ConnectionManager, key: &str) -> RedisResult<()> {
    let created: RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(c)
        .await;
    match created {
        Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// A stream or group that is gone (a Redis restarted without persistence, its keys deleted) is
/// created again, and the call finds nothing, instead of counting as Redis failing (which
/// would degrade every shared part, again and again).
async fn or_recreated<T: Default>(
    result: RedisResult<T>,
    c: &mut ConnectionManager,
    key: &str,
) -> RedisResult<T> {
    match result {
        Err(error) if error.code() == Some("NOGROUP") => {
            tracing::warn!("the intake stream's group was gone: created again");
            create_group(c, key).await.map(|()| T::default())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_id_gives_its_append_time() {
        assert_eq!(entry_millis("1700000000123-4"), 1_700_000_000_123);
        assert_eq!(entry_millis("garbage"), 0);
    }
}
