-- LLM Schema Registry, production (PostgreSQL 14+) schema: core tables, constraints, the
-- version-listing indexes, the audit table, the subject_versions materialized view and the
-- read-only / read-write roles. Search and access-log indexes are in 0002.

-- Text columns that are compared or ordered byte-wise use COLLATE "C": semver precedence keys
-- and subject names must sort identically on every server locale (and as SQLite sorts them),
-- and "C" lets a btree index answer `LIKE 'prefix%'`.

-- One row per subject ever registered. max_* is the highest version ever assigned: it never
-- decreases, even after a permanent delete, so an auto-assigned version is never reused.
CREATE TABLE subjects (
    subject    text COLLATE "C" PRIMARY KEY,
    max_major  bigint NOT NULL,
    max_minor  bigint NOT NULL,
    max_patch  bigint NOT NULL,
    max_pre    text   NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE schemas (
    id               uuid PRIMARY KEY,                     -- UUIDv7: sorts by creation time
    subject          text COLLATE "C" NOT NULL REFERENCES subjects (subject),
    major            bigint NOT NULL CHECK (major >= 0),
    minor            bigint NOT NULL CHECK (minor >= 0),
    patch            bigint NOT NULL CHECK (patch >= 0),
    pre              text COLLATE "C" NOT NULL DEFAULT '', -- pre-release as written, '' for a release
    pre_key          text COLLATE "C" NOT NULL,            -- semver precedence key (core::version)
    format           text NOT NULL CHECK (format IN ('json_schema', 'avro', 'protobuf')),
    -- The canonical document's exact bytes: the source of truth that the checksum covers.
    -- NULL only when the content lives in object storage (content_location).
    content_text     text,
    -- The same document as JSONB (JSON Schema and Avro), for JSON queries. JSONB reorders keys
    -- and normalises numbers, so it can never be the byte-exact copy; hence content_text.
    content          jsonb,
    -- Object-storage key when the content is held there (the object tier).
    content_location text,
    -- True while the content is kept inline because the object store was down at registration;
    -- the reconciler moves it and clears the flag.
    content_pending  boolean NOT NULL DEFAULT false,
    checksum         text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
    state            text NOT NULL CHECK (state IN ('active', 'deprecated', 'deleted')),
    description      text,
    metadata         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    tags             text[] NOT NULL DEFAULT '{}',
    refs             jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(refs) = 'array'),
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    CONSTRAINT schemas_content_present CHECK (content_text IS NOT NULL OR content_location IS NOT NULL),
    CONSTRAINT schemas_deleted_at_matches_state CHECK ((state = 'deleted') = (deleted_at IS NOT NULL))
);

-- Uniqueness of (subject, version); also serves lookups by subject and exact version.
CREATE UNIQUE INDEX schemas_subject_version_key ON schemas (subject, major, minor, patch, pre);
-- Version listing in precedence order, covering: the listing is an index-only scan.
CREATE INDEX schemas_subject_version_desc ON schemas
    (subject, major DESC, minor DESC, patch DESC, pre_key DESC) INCLUDE (pre, state, id);
-- `latest` and the subject listing only look at versions that are not deleted, in exactly the
-- order `latest` means (releases before pre-releases, then precedence): one index probe.
CREATE INDEX schemas_live_subject ON schemas
    (subject, (pre = '') DESC, major DESC, minor DESC, patch DESC, pre_key DESC) INCLUDE (pre, id)
    WHERE state <> 'deleted';
-- Time-based queries (newest first, audits).
CREATE INDEX schemas_created_at ON schemas (created_at);
-- Idempotent registration: is this content already registered in the subject?
CREATE INDEX schemas_subject_checksum ON schemas (subject, checksum);
-- Object tier: who points to an object (permanent deletes), and what waits to be moved there.
CREATE INDEX schemas_content_location ON schemas (content_location) WHERE content_location IS NOT NULL;
CREATE INDEX schemas_content_pending ON schemas (id) WHERE content_pending;

-- The dependency graph: schema_id references depends_on_id.
CREATE TABLE schema_dependencies (
    schema_id     uuid NOT NULL REFERENCES schemas (id) ON DELETE CASCADE,
    depends_on_id uuid NOT NULL REFERENCES schemas (id) ON DELETE CASCADE,
    position      integer NOT NULL,
    PRIMARY KEY (schema_id, depends_on_id)
);
CREATE INDEX schema_dependencies_depends_on ON schema_dependencies (depends_on_id, schema_id);

-- Audit trail of payload validations (written by the validation engine).
CREATE TABLE validation_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_id    uuid NOT NULL REFERENCES schemas (id) ON DELETE CASCADE,
    valid        boolean NOT NULL,
    error_count  integer NOT NULL DEFAULT 0 CHECK (error_count >= 0),
    errors       jsonb NOT NULL DEFAULT '[]',
    duration_us  bigint NOT NULL CHECK (duration_us >= 0),
    validated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX validation_history_schema_time ON validation_history (schema_id, validated_at DESC);

-- Pre-aggregated subject listing for dashboards and reports: one row per live subject with its
-- latest version and version count. Refreshed CONCURRENTLY by the server's background task
-- (never by a trigger on the write path). The API does not read it, because the API promises
-- read-your-writes and a materialized view is by nature a little behind.
CREATE MATERIALIZED VIEW subject_versions AS
SELECT DISTINCT ON (subject)
       subject,
       id AS latest_id,
       major, minor, patch, pre,
       count(*) OVER (PARTITION BY subject) AS version_count,
       max(created_at) OVER (PARTITION BY subject) AS last_registered_at
FROM schemas
WHERE state <> 'deleted'
ORDER BY subject, (pre = '') DESC, major DESC, minor DESC, patch DESC, pre_key DESC;
-- REFRESH ... CONCURRENTLY requires a unique index.
CREATE UNIQUE INDEX subject_versions_subject ON subject_versions (subject);

-- Roles: schema_registry_reader (SELECT only) and schema_registry_writer (read-write). They are
-- NOLOGIN groups: grant them to login roles (`GRANT schema_registry_reader TO registry_ro;`).
-- Roles are cluster-wide, so they are created only if missing; without the CREATEROLE privilege
-- the grants are skipped with a notice and an operator can create the roles and rerun the GRANTs.
DO $$
BEGIN
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'schema_registry_reader') THEN
            CREATE ROLE schema_registry_reader NOLOGIN;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'schema_registry_writer') THEN
            CREATE ROLE schema_registry_writer NOLOGIN;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO schema_registry_reader, schema_registry_writer', current_database());
    GRANT USAGE ON SCHEMA public TO schema_registry_reader, schema_registry_writer;
    GRANT SELECT ON subjects, schemas, schema_dependencies, validation_history, subject_versions
        TO schema_registry_reader;
    GRANT SELECT, INSERT, UPDATE, DELETE ON subjects, schemas, schema_dependencies, validation_history
        TO schema_registry_writer;
    GRANT SELECT ON subject_versions TO schema_registry_writer;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'schema registry roles not created or granted (needs CREATEROLE): %', SQLERRM;
END
$$;
