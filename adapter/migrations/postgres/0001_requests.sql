-- Users seen and every request the bot answered (or refused), for /admin_stats.
-- The same tables as migrations/sqlite (0001 + 0002) in PostgreSQL types.
CREATE TABLE users (
    id          BIGINT PRIMARY KEY,
    username    TEXT,
    first_seen  BIGINT NOT NULL, -- unix milliseconds
    last_seen   BIGINT NOT NULL,
    requests    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE requests (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_id      TEXT NOT NULL UNIQUE, -- makes retried and replayed writes idempotent
    at             BIGINT NOT NULL,      -- unix milliseconds
    user_id        BIGINT NOT NULL,
    chat_id        BIGINT NOT NULL,
    pipeline       TEXT NOT NULL,        -- canonical pipeline, or the text that failed to parse
    input_bytes    BIGINT,
    input_width    BIGINT,
    input_height   BIGINT,
    output_bytes   BIGINT,
    output_width   BIGINT,
    output_height  BIGINT,
    queue_ms       DOUBLE PRECISION,
    download_ms    DOUBLE PRECISION,
    engine_ms      DOUBLE PRECISION,
    upload_ms      DOUBLE PRECISION,
    total_ms       DOUBLE PRECISION NOT NULL,
    backend        TEXT NOT NULL,
    cache_hit      BOOLEAN NOT NULL,
    delivery       TEXT,
    outcome        TEXT NOT NULL,        -- ok | error
    error_kind     TEXT
);

CREATE INDEX requests_by_time ON requests (at);
