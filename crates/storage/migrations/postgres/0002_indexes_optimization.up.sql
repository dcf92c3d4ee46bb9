-- Search indexes, the access log, the popular_schemas view and planner statistics.
-- Plain CREATE INDEX (not CONCURRENTLY): migrations run inside a transaction. On a large live
-- table, create the indexes below CONCURRENTLY by hand first, with the same names: these
-- statements say IF NOT EXISTS and leave them as they are.

-- pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Full-text search over subject (weight A), description (B) and schema text (C). The 'simple'
-- configuration: no stemming and no stop words, because schema text is identifiers, not prose.
-- Only the first 256 KiB of a document is indexed (tsvector's own limit is 1 MiB).
ALTER TABLE schemas ADD COLUMN IF NOT EXISTS search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple'::regconfig, subject), 'A') ||
    setweight(to_tsvector('simple'::regconfig, coalesce(description, '')), 'B') ||
    setweight(to_tsvector('simple'::regconfig, left(coalesce(content_text, ''), 262144)), 'C')
) STORED;
CREATE INDEX IF NOT EXISTS schemas_search_vector ON schemas USING gin (search_vector);

-- Substring search on subject and description (ILIKE '%q%').
CREATE INDEX IF NOT EXISTS schemas_subject_trgm ON schemas USING gin (subject gin_trgm_ops);
CREATE INDEX IF NOT EXISTS schemas_description_trgm ON schemas USING gin (description gin_trgm_ops);

-- Metadata containment (metadata @> '{"team": "payments"}').
CREATE INDEX IF NOT EXISTS schemas_metadata ON schemas USING gin (metadata jsonb_path_ops);
-- Tag filters (tags @> ARRAY['pii']).
CREATE INDEX IF NOT EXISTS schemas_tags ON schemas USING gin (tags);

-- Read counters, fed in batches by the server (a read never waits on this table).
CREATE TABLE schema_access_log (
    schema_id        uuid PRIMARY KEY REFERENCES schemas (id) ON DELETE CASCADE,
    access_count     bigint NOT NULL DEFAULT 0 CHECK (access_count >= 0),
    total_latency_us bigint NOT NULL DEFAULT 0 CHECK (total_latency_us >= 0),
    last_accessed_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS schema_access_log_count ON schema_access_log (access_count DESC);

-- The 1000 most read live versions: the cache-warming source.
CREATE MATERIALIZED VIEW popular_schemas AS
SELECT l.schema_id,
       s.subject,
       l.access_count,
       (l.total_latency_us / GREATEST(l.access_count, 1)) AS avg_latency_us,
       l.last_accessed_at
FROM schema_access_log l
JOIN schemas s ON s.id = l.schema_id
WHERE s.state <> 'deleted'
ORDER BY l.access_count DESC, l.schema_id
LIMIT 1000;
CREATE UNIQUE INDEX IF NOT EXISTS popular_schemas_schema_id ON popular_schemas (schema_id);
CREATE INDEX IF NOT EXISTS popular_schemas_access_count ON popular_schemas (access_count DESC);

-- Subject and state are correlated (a deleted subject has only deleted versions): tell the
-- planner, so estimates for "live versions of subject X" stay accurate.
CREATE STATISTICS schemas_subject_state (dependencies, ndistinct) ON subject, state FROM schemas;
-- Analyze the busy table more often than the default 10 % churn.
ALTER TABLE schemas SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_scale_factor = 0.05);

DO $$
BEGIN
    GRANT SELECT ON schema_access_log, popular_schemas TO schema_registry_reader;
    GRANT SELECT, INSERT, UPDATE, DELETE ON schema_access_log TO schema_registry_writer;
    GRANT SELECT ON popular_schemas TO schema_registry_writer;
EXCEPTION WHEN undefined_object OR insufficient_privilege THEN
    RAISE NOTICE 'schema registry grants skipped: %', SQLERRM;
END
$$;
