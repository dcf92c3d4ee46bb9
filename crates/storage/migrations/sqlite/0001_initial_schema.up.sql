-- LLM Schema Registry, embedded (SQLite) schema. Mirrors the PostgreSQL schema's meaning; the
-- conformance suite proves both behave the same.

-- One row per subject ever registered. `max_*` is the highest version ever assigned in the
-- subject (it never decreases, even after a permanent delete), so an automatically assigned
-- version is never handed out twice.
CREATE TABLE subjects (
    subject    TEXT    NOT NULL PRIMARY KEY,
    max_major  INTEGER NOT NULL,
    max_minor  INTEGER NOT NULL,
    max_patch  INTEGER NOT NULL,
    max_pre    TEXT    NOT NULL,
    created_at INTEGER NOT NULL            -- unix microseconds
) WITHOUT ROWID;

CREATE TABLE schemas (
    id          BLOB    NOT NULL PRIMARY KEY,   -- UUIDv7, 16 bytes: byte order is time order
    subject     TEXT    NOT NULL REFERENCES subjects (subject),
    major       INTEGER NOT NULL CHECK (major >= 0),
    minor       INTEGER NOT NULL CHECK (minor >= 0),
    patch       INTEGER NOT NULL CHECK (patch >= 0),
    pre         TEXT    NOT NULL,               -- pre-release as written, '' for a release
    pre_key     TEXT    NOT NULL,               -- semver precedence key (see core::version)
    format      TEXT    NOT NULL CHECK (format IN ('json_schema', 'avro', 'protobuf')),
    content     TEXT,                           -- canonical document; NULL when in object storage
    content_location TEXT,                      -- object-storage key when the content is there
    content_pending  INTEGER NOT NULL DEFAULT 0, -- 1: kept inline while the object store was down
    checksum    TEXT    NOT NULL,               -- hex SHA-256 of content
    size_bytes  INTEGER NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('active', 'deprecated', 'deleted')),
    description TEXT,
    metadata    TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(metadata) = 'object'),
    tags        TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(tags) = 'array'),
    refs        TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(refs) = 'array'),  -- [{subject, version}] as registered
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    UNIQUE (subject, major, minor, patch, pre),
    CHECK (content IS NOT NULL OR content_location IS NOT NULL)
);

-- Version listing and `latest`, in precedence order.
CREATE INDEX schemas_subject_version ON schemas (subject, major DESC, minor DESC, patch DESC, pre_key DESC);
-- Newest-first listings and search.
CREATE INDEX schemas_created_at ON schemas (created_at);
-- Idempotent registration: is this content already registered under the subject?
CREATE INDEX schemas_subject_checksum ON schemas (subject, checksum);
-- Object tier: who points to an object, and what waits to be moved there.
CREATE INDEX schemas_content_location ON schemas (content_location) WHERE content_location IS NOT NULL;
CREATE INDEX schemas_content_pending ON schemas (id) WHERE content_pending = 1;

-- The dependency graph: `schema_id` references `depends_on_id`.
CREATE TABLE schema_dependencies (
    schema_id     BLOB    NOT NULL REFERENCES schemas (id) ON DELETE CASCADE,
    depends_on_id BLOB    NOT NULL REFERENCES schemas (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    PRIMARY KEY (schema_id, depends_on_id)
) WITHOUT ROWID;
CREATE INDEX schema_dependencies_depends_on ON schema_dependencies (depends_on_id, schema_id);
