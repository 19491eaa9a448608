//! Writes records off the reply path: [`Recorder::record`] never waits on the database.
//! Records go to a bounded in-memory queue, or to the spill file when it is full; one writer
//! task stores them in batches, retries a failed batch with backoff, and replays the spill
//! file (at start and whenever the database took a batch again). Ids make every write
//! idempotent, so a retried batch or a replayed file never writes a record twice. A batch the
//! database refuses [`REFUSALS_BEFORE_SETTING_ASIDE`] times running is written a record at a
//! time, and the records it still refuses go to the dead-letter file, so one bad record
//! never blocks the ones after it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::dead_letter::DeadLetter;
use super::spill::{Appended, Spill, SpillReader, count_lines};
use super::{RequestRecord, Store, new_record_id};
use crate::clock::unix_millis;

/// Records per transaction: large enough to amortise a commit, small enough to bound one
/// retry's memory and a replay chunk.
const MAX_BATCH: usize = 200;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A write to a hung server is given up after this long (its outcome is unknown: the batch
/// is retried, which the ids make safe).
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// Refusals of the same batch in a row before its records are tried one by one.
const REFUSALS_BEFORE_SETTING_ASIDE: u32 = 3;
/// Flush time when the recorder is dropped without [`Recorder::close`].
const DROP_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct RecorderSettings {
    /// Records waiting in memory; beyond this they go to the spill file.
    pub queue_capacity: usize,
    pub spill_path: PathBuf,
    /// Bound of the spill file (RECORD_SPILL_MAX_MB).
    pub spill_max_bytes: u64,
    /// Records older than this are deleted...
    pub retention: Duration,
    /// ...this often (and once at start).
    pub cleanup_interval: Duration,
    /// First part of the ids given to records that come without one.
    pub instance_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// In memory, waiting to be written.
    pub queued: usize,
    /// In the spill file, waiting to be written.
    pub spilled: u64,
    /// Written since start (replayed ones included; a record replayed twice counts twice).
    pub written: u64,
    /// Could be neither written nor spilled (the spill file failed too).
    pub lost: u64,
    /// Refusals kept only as this count: the spill file was near its bound.
    pub refusals_counted: u64,
    /// Dropped: the spill file was at its bound.
    pub dropped: u64,
    /// Refused by the database for good, and set aside in the dead-letter file.
    pub dead_lettered: u64,
    /// The last write failed; records wait.
    pub failing: bool,
    pub last_error: Option<String>,
}

/// Called once a record is safe: written to the database, or appended to the spill file
/// (which the next start replays). What waited for it (the intake's acknowledgement) may go on.
pub type OnSafe = Box<dyn FnOnce() + Send>;

/// A record on its way to the writer, with what to call once it is safe.
struct Queued {
    record: RequestRecord,
    on_safe: Option<OnSafe>,
}

/// Cheap to clone: clones feed the same writer.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    sender: mpsc::Sender<Queued>,
    capacity: usize,
    instance_id: String,
    state: Arc<State>,
    store: Store,
    /// `Some(deadline)` asks the tasks to stop; dropping it does too.
    close: watch::Sender<Option<Instant>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// What the recorder and its writer share.
struct State {
    spill: Mutex<Spill>,
    dead_letter: DeadLetter,
    /// The spill file may hold records (set on every spill and at start).
    spill_pending: AtomicBool,
    spilled: AtomicU64,
    written: AtomicU64,
    lost: AtomicU64,
    refusals_counted: AtomicU64,
    dropped: AtomicU64,
    dead_lettered: AtomicU64,
    /// Records the writer has taken from the queue and not written yet.
    held: AtomicUsize,
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Recorder {
    /// Starts the writer (which first replays a spill file left by an earlier run) and the
    /// retention task. Call within a tokio runtime.
    pub fn start(store: Store, settings: RecorderSettings) -> Recorder {
        let capacity = settings.queue_capacity.max(1);
        let (sender, receiver) = mpsc::channel(capacity);
        let (close, close_rx) = watch::channel(None);
        let dead_letter = DeadLetter::beside(&settings.spill_path);
        let spill = Spill::new(settings.spill_path, settings.spill_max_bytes);
        let earlier = spill.sizes();
        let state = Arc::new(State {
            spill: Mutex::new(spill),
            dead_letter,
            spill_pending: AtomicBool::new(true),
            spilled: AtomicU64::new(0),
            written: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            refusals_counted: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            held: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
        });
        let writer = tokio::spawn(write_loop(
            store.clone(),
            Arc::clone(&state),
            receiver,
            close_rx.clone(),
            earlier,
        ));
        let retention = tokio::spawn(retention_loop(
            store.clone(),
            settings.retention,
            settings.cleanup_interval,
            close_rx,
        ));
        Recorder {
            inner: Arc::new(Inner {
                sender,
                capacity,
                instance_id: settings.instance_id,
                state,
                store,
                close,
                tasks: Mutex::new(vec![writer, retention]),
            }),
        }
    }

    /// Queues `record`, or appends it to the spill file when the queue is full (or the
    /// recorder closed). Gives it an id first when it has none.
    pub fn record(&self, record: RequestRecord) {
        self.queue(record, None);
    }

    /// As [`Recorder::record`], and calls `on_safe` once the record is written or spilled
    /// (never when it is lost).
    pub fn record_then(&self, record: RequestRecord, on_safe: OnSafe) {
        self.queue(record, Some(on_safe));
    }

    fn queue(&self, mut record: RequestRecord, on_safe: Option<OnSafe>) {
        if record.id.is_empty() {
            record.id = new_record_id(&self.inner.instance_id);
        }
        match self.inner.sender.try_send(Queued { record, on_safe }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(queued))
            | Err(mpsc::error::TrySendError::Closed(queued)) => {
                if self
                    .inner
                    .state
                    .spill_records(std::slice::from_ref(&queued.record))
                {
                    call_all(queued.on_safe);
                }
            }
        }
    }

    pub fn stats(&self) -> RecorderStats {
        let state = &self.inner.state;
        RecorderStats {
            queued: self.inner.capacity - self.inner.sender.capacity()
                + state.held.load(Ordering::Relaxed),
            spilled: state.spilled.load(Ordering::Relaxed),
            written: state.written.load(Ordering::Relaxed),
            lost: state.lost.load(Ordering::Relaxed),
            refusals_counted: state.refusals_counted.load(Ordering::Relaxed),
            dropped: state.dropped.load(Ordering::Relaxed),
            dead_lettered: state.dead_lettered.load(Ordering::Relaxed),
            failing: state.failing.load(Ordering::Relaxed),
            last_error: lock(&state.last_error).clone(),
        }
    }

    /// Writes what is queued until `deadline`, appends what is left to the spill file (for
    /// the next start), stops the tasks and closes the store. Records that arrive later go
    /// to the spill file.
    pub async fn close(&self, deadline: Duration) {
        self.inner
            .close
            .send_replace(Some(Instant::now() + deadline));
        let tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "a recorder task failed");
            }
        }
        self.inner.store.close().await;
    }
}

impl State {
    /// Appends to the spill file, as far as its bound allows (what it leaves out is counted
    /// and alerted on, and deliberately not retried); counts the records as lost if even the
    /// append fails. True unless it failed.
    fn spill_records(&self, records: &[RequestRecord]) -> bool {
        let mut spill = lock(&self.spill);
        match spill.append(records) {
            Ok(appended) => {
                self.spilled
                    .fetch_add(appended.kept as u64, Ordering::Relaxed);
                self.spill_pending.store(true, Ordering::Relaxed);
                self.count_left_out(appended);
                true
            }
            Err(error) => {
                self.lost.fetch_add(records.len() as u64, Ordering::Relaxed);
                tracing::error!(path = %spill.path().display(), %error, count = records.len(),
                    "could not append records to the spill file; they are lost");
                false
            }
        }
    }

    fn count_left_out(&self, appended: Appended) {
        let (counted, dropped) = (appended.refusals_counted as u64, appended.dropped as u64);
        if counted == 0 && dropped == 0 {
            return;
        }
        let before = self.refusals_counted.fetch_add(counted, Ordering::Relaxed)
            + self.dropped.fetch_add(dropped, Ordering::Relaxed);
        // A log line per thousand: the database is away and the disk bound is reached.
        if before / 1000 != (before + counted + dropped) / 1000 || before == 0 {
            tracing::error!(
                refusals_counted = self.refusals_counted.load(Ordering::Relaxed),
                dropped = self.dropped.load(Ordering::Relaxed),
                "the spill file is at RECORD_SPILL_MAX_MB: refusal records are only counted, \
                 and past the bound every record is dropped"
            );
        }
    }

    /// Sets aside records the database refused for good; false when the file failed too.
    fn set_aside(&self, record: &RequestRecord, reason: &str) -> bool {
        match self.dead_letter.set_aside(record, reason) {
            Ok(()) => {
                self.dead_lettered.fetch_add(1, Ordering::Relaxed);
                tracing::error!(id = %record.id, reason, path = %self.dead_letter.path().display(),
                    "the database refused a record for good; set aside in the dead-letter file");
                true
            }
            Err(error) => {
                tracing::error!(id = %record.id, %error, "could not write the dead-letter file");
                false
            }
        }
    }

    /// Fsyncs what was spilled since the last call, outside the lock and off the runtime.
    async fn sync_spill(&self) {
        let handle = lock(&self.spill).sync_handle();
        let result = match handle {
            Ok(Some(file)) => tokio::task::spawn_blocking(move || file.sync_data())
                .await
                .unwrap_or_else(|error| Err(std::io::Error::other(error))),
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "could not fsync the spill file");
        }
    }

    fn failed(&self, error: String) {
        if self.failing.swap(true, Ordering::Relaxed) {
            tracing::debug!(%error, "recording still failing");
        } else {
            tracing::warn!(%error, "recording failed; records wait in memory and the spill file");
        }
        *lock(&self.last_error) = Some(error);
    }

    fn succeeded(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("the database takes records again");
        }
    }
}

fn call_all(on_safe: impl IntoIterator<Item = OnSafe>) {
    for call in on_safe {
        call();
    }
}

/// Splits what the queue gave into the records and their callbacks.
fn take_into(taken: &mut Vec<Queued>, batch: &mut Vec<RequestRecord>, on_safe: &mut Vec<OnSafe>) {
    for queued in taken.drain(..) {
        batch.push(queued.record);
        on_safe.extend(queued.on_safe);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding one of these leaves consistent data: keep going.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn deadline_of(close: &watch::Receiver<Option<Instant>>) -> Instant {
    close
        .borrow()
        .unwrap_or_else(|| Instant::now() + DROP_DEADLINE)
}

/// The writer: in-memory batch first, then the spill file, then the queue.
async fn write_loop(
    store: Store,
    state: Arc<State>,
    mut queue: mpsc::Receiver<Queued>,
    mut close: watch::Receiver<Option<Instant>>,
    earlier: [(PathBuf, u64); 2],
) {
    count_spilled(&state, earlier).await;
    let mut batch: Vec<RequestRecord> = Vec::with_capacity(MAX_BATCH);
    let mut on_safe: Vec<OnSafe> = Vec::new();
    let mut taken: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    let mut backoff = MIN_BACKOFF;
    let deadline = loop {
        let replaying = batch.is_empty();
        if replaying && !state.spill_pending.load(Ordering::Relaxed) {
            tokio::select! {
                count = queue.recv_many(&mut taken, MAX_BATCH) => {
                    if count == 0 {
                        break deadline_of(&close); // every Recorder dropped
                    }
                    take_into(&mut taken, &mut batch, &mut on_safe);
                    state.held.store(batch.len(), Ordering::Relaxed);
                    continue;
                }
                _ = close.changed() => break deadline_of(&close),
            }
        }
        let attempt = async {
            if replaying {
                replay(&store, &state).await.map(|()| 0)
            } else {
                write_or_set_aside(&store, &state, &batch)
                    .await
                    .map_err(String::from)
            }
        };
        let result = tokio::select! {
            result = attempt => result,
            _ = close.changed() => break deadline_of(&close),
        };
        state.sync_spill().await;
        match result {
            Ok(written) => {
                if !replaying {
                    state.written.fetch_add(written, Ordering::Relaxed);
                    batch.clear();
                    call_all(on_safe.drain(..));
                    state.held.store(0, Ordering::Relaxed);
                }
                state.succeeded();
                backoff = MIN_BACKOFF;
            }
            Err(error) => {
                state.failed(error);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = close.changed() => break deadline_of(&close),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    };
    flush(&store, &state, queue, batch, on_safe, deadline).await;
}

/// Why a write did not happen.
struct WriteFailure {
    message: String,
    /// The database answered and refused (as opposed to not answering).
    refused: bool,
}

impl From<WriteFailure> for String {
    fn from(failure: WriteFailure) -> String {
        failure.message
    }
}

async fn write(store: &Store, records: &[RequestRecord]) -> Result<(), WriteFailure> {
    match tokio::time::timeout(WRITE_TIMEOUT, store.record_batch(records)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(WriteFailure {
            refused: error.is_refusal(),
            message: error.to_string(),
        }),
        Err(_) => Err(WriteFailure {
            message: format!("database: no answer in {WRITE_TIMEOUT:?}"),
            refused: false,
        }),
    }
}

/// Writes `records`; when the database refuses them [`REFUSALS_BEFORE_SETTING_ASIDE`]
/// times running, writes them one by one and sets aside those it still refuses. Ok (with
/// how many were written) once each is written or set aside.
async fn write_or_set_aside(
    store: &Store,
    state: &State,
    records: &[RequestRecord],
) -> Result<u64, WriteFailure> {
    let mut refusals = 0;
    loop {
        match write(store, records).await {
            Ok(()) => return Ok(records.len() as u64),
            Err(failure) if failure.refused => {
                refusals += 1;
                if refusals >= REFUSALS_BEFORE_SETTING_ASIDE {
                    break;
                }
                tokio::time::sleep(MIN_BACKOFF * refusals).await;
            }
            Err(failure) => return Err(failure),
        }
    }
    let mut written = 0;
    for record in records {
        match write(store, std::slice::from_ref(record)).await {
            Ok(()) => written += 1,
            Err(failure) if failure.refused && state.set_aside(record, &failure.message) => {}
            Err(failure) => return Err(failure),
        }
    }
    Ok(written)
}

/// Writes every record of every spill file, then removes the file. Stops at the first
/// failure: the file stays and is replayed from its start next time (ids skip the records
/// already written).
async fn replay(store: &Store, state: &State) -> Result<(), String> {
    loop {
        let path = {
            let mut spill = lock(&state.spill);
            match spill.take_for_replay() {
                Ok(Some(path)) => path,
                Ok(None) => {
                    // Under the lock: a record spilled now sets the flag again after this.
                    state.spill_pending.store(false, Ordering::Relaxed);
                    return Ok(());
                }
                Err(error) => return Err(format!("spill file: {error}")),
            }
        };
        let mut reader = SpillReader::open(&path).map_err(|e| format!("spill file: {e}"))?;
        let mut written = 0u64;
        loop {
            let (back, chunk) = tokio::task::spawn_blocking(move || {
                let chunk = reader.next_chunk(MAX_BATCH);
                (reader, chunk)
            })
            .await
            .map_err(|error| format!("spill file: {error}"))?;
            reader = back;
            let chunk = chunk.map_err(|error| format!("spill file: {error}"))?;
            if chunk.is_empty() {
                break;
            }
            let stored = write_or_set_aside(store, state, &chunk).await?;
            written += stored;
            state.written.fetch_add(stored, Ordering::Relaxed);
        }
        std::fs::remove_file(&path).map_err(|error| format!("spill file: {error}"))?;
        let _ = state
            .spilled
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(reader.lines))
            });
        tracing::info!(records = written, "replayed the spill file");
    }
}

/// At start: how many records an earlier run left in the spill file (for the stats).
async fn count_spilled(state: &State, files: [(PathBuf, u64); 2]) {
    let count = tokio::task::spawn_blocking(move || count_lines(&files))
        .await
        .unwrap_or(0);
    if count > 0 {
        tracing::info!(
            records = count,
            "the spill file holds records from an earlier run"
        );
        state.spilled.fetch_add(count, Ordering::Relaxed);
    }
}

/// Shutdown: writes the held batch and the queue until `deadline` (straight to the spill
/// file when the database is failing), spills the rest and fsyncs.
async fn flush(
    store: &Store,
    state: &State,
    mut queue: mpsc::Receiver<Queued>,
    mut pending: Vec<RequestRecord>,
    mut on_safe: Vec<OnSafe>,
    deadline: Instant,
) {
    queue.close(); // later records go straight to the spill file
    while let Ok(queued) = queue.try_recv() {
        pending.push(queued.record);
        on_safe.extend(queued.on_safe);
    }
    let mut rest: &[RequestRecord] = &pending;
    while !rest.is_empty() && !state.failing.load(Ordering::Relaxed) {
        let chunk = &rest[..rest.len().min(MAX_BATCH)];
        match tokio::time::timeout_at(deadline, store.record_batch(chunk)).await {
            Ok(Ok(())) => {
                state
                    .written
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                rest = &rest[chunk.len()..];
            }
            Ok(Err(error)) => {
                state.failed(error.to_string());
                break;
            }
            Err(_) => {
                tracing::warn!("the shutdown deadline passed while writing records");
                break;
            }
        }
    }
    if !rest.is_empty() {
        tracing::warn!(
            records = rest.len(),
            "records not written at shutdown; spilled for the next start"
        );
        if !state.spill_records(rest) {
            // Lost: nothing that waited for these may go on as if they were safe.
            on_safe.clear();
        }
    }
    state.held.store(0, Ordering::Relaxed);
    state.sync_spill().await;
    call_all(on_safe);
}

/// Deletes records older than `retention` every `interval`, starting now.
async fn retention_loop(
    store: Store,
    retention: Duration,
    interval: Duration,
    mut close: watch::Receiver<Option<Instant>>,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_secs(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = close.changed() => return,
        }
        let cutoff = unix_millis().saturating_sub(retention_ms);
        let result = tokio::select! {
            result = store.delete_older_than(cutoff) => result,
            _ = close.changed() => return,
        };
        match result {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted records past their retention"),
            Err(error) => tracing::warn!(%error, "deleting old records failed; retrying later"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::SeqCst;

    use super::*;
    use crate::store::{SqliteStore, Store};

    const DAY_MS: i64 = 86_400_000;

    struct Fixture {
        dir: PathBuf,
        url: String,
    }

    impl Fixture {
        fn new(name: &str) -> Fixture {
            let dir =
                std::env::temp_dir().join(format!("prism-recorder-{name}-{}", std::process::id()));
            std::fs::remove_dir_all(&dir).ok();
            std::fs::create_dir_all(&dir).expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.join("store.sqlite").display());
            Fixture { dir, url }
        }

        async fn store(&self) -> Store {
            Store::Sqlite(SqliteStore::connect(&self.url, 1, 2).await.expect("open"))
        }

        fn settings(&self, queue_capacity: usize) -> RecorderSettings {
            RecorderSettings {
                queue_capacity,
                spill_path: self.dir.join("records.spill"),
                spill_max_bytes: 1 << 30,
                retention: Duration::from_secs(30 * 86_400),
                cleanup_interval: Duration::from_secs(3600),
                instance_id: "test".into(),
            }
        }

        fn spill_files(&self) -> usize {
            ["records.spill", "records.spill.replaying"]
                .iter()
                .filter(|name| self.dir.join(name).exists())
                .count()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.dir).ok();
        }
    }

    fn record(n: u64) -> RequestRecord {
        RequestRecord {
            at: unix_millis(),
            user_id: n % 3,
            chat_id: 1,
            pipeline: "fit:10x10|gray|png".into(),
            total_ms: 1.0,
            backend: "cpu".into(),
            ..RequestRecord::default()
        }
    }

    /// Waits (up to 10 s) until `done` holds.
    async fn eventually(what: &str, done: impl Fn() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting until {what}");
    }

    async fn totals(store: &Store) -> (u64, i64) {
        let Store::Sqlite(sqlite) = store else {
            panic!("sqlite expected")
        };
        let requests: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(requests), 0) FROM users")
            .fetch_one(&sqlite.sql.pool)
            .await
            .expect("users");
        let stats = store.admin_stats(unix_millis()).await.expect("stats");
        (stats.requests_total, requests)
    }

    #[tokio::test]
    async fn a_full_queue_spills_and_the_file_is_replayed_after_a_restart() {
        let fixture = Fixture::new("restart");
        let store = fixture.store().await;
        store.faults().fail_writes.store(true, SeqCst);
        let recorder = Recorder::start(store, fixture.settings(2));
        for n in 0..10 {
            recorder.record(record(n));
        }
        let stats = recorder.stats();
        assert_eq!((stats.queued, stats.spilled), (2, 8));
        // Shutdown with the database failing: the queued two are spilled too.
        recorder.close(Duration::from_secs(1)).await;
        let stats = recorder.stats();
        assert_eq!((stats.queued, stats.spilled, stats.written), (0, 10, 0));

        let store = fixture.store().await;
        let recorder = Recorder::start(store.clone(), fixture.settings(2));
        eventually("the spill file is replayed", || {
            recorder.stats().spilled == 0 && fixture.spill_files() == 0
        })
        .await;
        assert_eq!(recorder.stats().written, 10);
        assert_eq!(totals(&store).await, (10, 10));
        recorder.close(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn a_record_refused_for_good_is_set_aside_and_the_others_are_written() {
        use sqlx::Connection;
        let fixture = Fixture::new("poison");
        let store = fixture.store().await;
        let mut db = sqlx::SqliteConnection::connect(&fixture.url)
            .await
            .expect("open");
        // A constraint only this record breaks, as a schema change or a bad value would.
        sqlx::query(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON requests \
             WHEN NEW.pipeline = 'poison' BEGIN SELECT RAISE(ABORT, 'poison refused'); END",
        )
        .execute(&mut db)
        .await
        .expect("trigger");
        let recorder = Recorder::start(store.clone(), fixture.settings(100));
        for n in 0..10 {
            let record = match n {
                4 => RequestRecord {
                    pipeline: "poison".into(),
                    ..record(n)
                },
                _ => record(n),
            };
            recorder.record(record);
        }
        eventually("the others written, the refused one set aside", || {
            let stats = recorder.stats();
            stats.written == 9 && stats.dead_lettered == 1 && stats.queued == 0
        })
        .await;
        assert_eq!(totals(&store).await, (9, 9));
        let dead = std::fs::read_to_string(fixture.dir.join("records.spill.dead"))
            .expect("the dead-letter file");
        assert!(dead.contains("poison refused"), "{dead}");
        assert!(dead.contains("\"pipeline\":\"poison\""), "{dead}");
        // The writer goes on.
        recorder.record(record(11));
        eventually("a later record", || recorder.stats().written == 10).await;
        recorder.close(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn records_wait_while_the_database_fails_and_are_written_once_it_returns() {
        let fixture = Fixture::new("outage");
        let store = fixture.store().await;
        store.faults().fail_writes.store(true, SeqCst);
        let recorder = Recorder::start(store.clone(), fixture.settings(4));
        recorder.record(record(0));
        eventually("the writer notices", || recorder.stats().failing).await;
        for n in 1..30 {
            recorder.record(record(n));
        }
        let stats = recorder.stats();
        assert!(stats.queued <= 5 && stats.spilled >= 25, "{stats:?}");
        assert!(stats.last_error.is_some());
        store.faults().fail_writes.store(false, SeqCst);
        eventually("everything is written", || {
            let stats = recorder.stats();
            stats.written == 30 && stats.queued == 0 && stats.spilled == 0 && !stats.failing
        })
        .await;
        assert_eq!(fixture.spill_files(), 0);
        assert_eq!(totals(&store).await, (30, 30));
        recorder.close(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn a_batch_retried_after_a_lost_commit_is_written_once() {
        let fixture = Fixture::new("retry");
        let store = fixture.store().await;
        // The first commit succeeds but reports a failure: the writer must retry it.
        store.faults().fail_after_commit.store(1, SeqCst);
        let recorder = Recorder::start(store.clone(), fixture.settings(100));
        for n in 0..5 {
            recorder.record(record(n));
        }
        eventually("the batch is retried", || {
            store.faults().commits.load(SeqCst) >= 2 && recorder.stats().queued == 0
        })
        .await;
        assert!(recorder.stats().last_error.is_some());
        assert_eq!(totals(&store).await, (5, 5));
        recorder.close(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn a_torn_line_in_the_spill_file_is_skipped() {
        let fixture = Fixture::new("torn");
        let mut lines = String::new();
        for n in 0..2 {
            let mut good = record(n);
            good.id = format!("earlier-{n}");
            lines.push_str(&serde_json::to_string(&good).expect("json"));
            lines.push('\n');
        }
        lines.push_str("{\"id\":\"earlier-2\",\"at\":17"); // a crash mid-append
        std::fs::write(fixture.dir.join("records.spill"), lines).expect("spill file");
        let store = fixture.store().await;
        let recorder = Recorder::start(store.clone(), fixture.settings(10));
        eventually("the spill file is replayed", || fixture.spill_files() == 0).await;
        assert_eq!(totals(&store).await, (2, 2));
        recorder.close(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn records_past_their_retention_are_deleted() {
        let fixture = Fixture::new("retention");
        let store = fixture.store().await;
        let now = unix_millis();
        let records: Vec<RequestRecord> = [0, 1, 2, 4, 5, 6]
            .into_iter()
            .map(|n| RequestRecord {
                id: format!("r{n}"),
                at: now - n * 10 * DAY_MS,
                ..record(n as u64)
            })
            .collect();
        store.record_batch(&records).await.expect("insert");
        let recorder = Recorder::start(store.clone(), fixture.settings(10));
        // Retention is 30 days: ages 0, 10 and 20 days stay.
        for _ in 0..1000 {
            if totals(&store).await.0 == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(totals(&store).await.0, 3);
        recorder.close(Duration::from_secs(1)).await;
    }
}
