-- Read counters, fed in batches by the server (a read never waits on this table); the source of
-- the embedded backend's popular-schemas list (cache warming).
CREATE TABLE schema_access_log (
    schema_id        BLOB    NOT NULL PRIMARY KEY REFERENCES schemas (id) ON DELETE CASCADE,
    access_count     INTEGER NOT NULL DEFAULT 0 CHECK (access_count >= 0),
    total_latency_us INTEGER NOT NULL DEFAULT 0 CHECK (total_latency_us >= 0),
    last_accessed_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX schema_access_log_count ON schema_access_log (access_count DESC);
