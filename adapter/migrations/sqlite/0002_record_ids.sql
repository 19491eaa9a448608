-- Every record carries a unique id, so a batch retried after an unknown commit outcome
-- (or a spill file replayed after a crash) never writes a request twice.
-- Rows written before this migration keep NULL (UNIQUE allows several NULLs).
ALTER TABLE requests ADD COLUMN record_id TEXT;

CREATE UNIQUE INDEX requests_by_record_id ON requests (record_id);
