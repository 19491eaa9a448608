-- Users seen and every request the bot answered (or refused), for /admin_stats.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    username    TEXT,
    first_seen  INTEGER NOT NULL, -- unix milliseconds
    last_seen   INTEGER NOT NULL,
    requests    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE requests (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL, -- unix milliseconds
    user_id        INTEGER NOT NULL,
    chat_id        INTEGER NOT NULL,
    pipeline       TEXT NOT NULL,    -- canonical pipeline, or the text that failed to parse
    input_bytes    INTEGER,
    input_width    INTEGER,
    input_height   INTEGER,
    output_bytes   INTEGER,
    output_width   INTEGER,
    output_height  INTEGER,
    queue_ms       REAL,
    download_ms    REAL,
    engine_ms      REAL,
    upload_ms      REAL,
    total_ms       REAL NOT NULL,
    backend        TEXT NOT NULL,
    cache_hit      INTEGER NOT NULL,
    delivery       TEXT,
    outcome        TEXT NOT NULL,    -- ok | error
    error_kind     TEXT
);

CREATE INDEX requests_by_time ON requests (at);
