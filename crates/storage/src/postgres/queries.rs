//! The SQL text of the statements both dialects share (see `sql::shared`), in PostgreSQL's
//! dialect: `$N` parameters, `jsonb`, `timestamptz`, and the row locks a rule relies on.

use chrono::{DateTime, Utc};

use crate::sql::rows::{latest_order, record_columns};

/// The point reads, public so that tests can check the plans PostgreSQL makes of them.
pub const SELECT_BY_ID: &str = concat!(
    "SELECT ",
    record_columns!("content_text"),
    " FROM schemas WHERE id = $1"
);
pub const SELECT_BY_VERSION: &str = concat!(
    "SELECT ",
    record_columns!("content_text"),
    " FROM schemas WHERE subject = $1 AND major = $2 AND minor = $3 AND patch = $4 AND pre = $5"
);
pub const SELECT_LATEST: &str = concat!(
    "SELECT ",
    record_columns!("content_text"),
    " FROM schemas WHERE subject = $1 AND state <> 'deleted' ORDER BY ",
    latest_order!(),
    " LIMIT 1"
);
/// A subject's versions in precedence order. Parameters: subject, include_deleted.
pub const LIST_VERSIONS: &str = "SELECT major, minor, patch, pre FROM schemas
     WHERE subject = $1 AND ($2 OR state <> 'deleted')
     ORDER BY major, minor, patch, pre_key";
/// Walks the small `subjects` table in name order and probes the live-version index per
/// subject, so a page costs O(limit) index lookups whatever the total number of versions.
pub(super) const SUBJECTS_PAGE: &str = concat!(
    "SELECT sub.subject, l.major, l.minor, l.patch, l.pre, c.version_count
     FROM subjects sub
     CROSS JOIN LATERAL (
         SELECT major, minor, patch, pre FROM schemas s
         WHERE s.subject = sub.subject AND s.state <> 'deleted'
         ORDER BY ",
    latest_order!(),
    " LIMIT 1
     ) l
     CROSS JOIN LATERAL (
         SELECT count(*) AS version_count FROM schemas s
         WHERE s.subject = sub.subject AND s.state <> 'deleted'
     ) c
     WHERE ($1::text IS NULL OR sub.subject LIKE $1)
     ORDER BY sub.subject
     LIMIT $2 OFFSET $3"
);
pub(super) const SUBJECTS_TOTAL: &str = "SELECT count(*) FROM subjects sub
     WHERE ($1::text IS NULL OR sub.subject LIKE $1)
       AND EXISTS (SELECT 1 FROM schemas s WHERE s.subject = sub.subject AND s.state <> 'deleted')";
pub(super) const EXISTS: &str = "SELECT 1 FROM schemas WHERE id = $1";

/// A dependency walk: from the rows whose `$start` column is the schema asked about, follow
/// `$next`; once (direct) or until no new version appears (transitive, `$2`), bounded by depth.
/// `UNION` drops repeated (id, depth) pairs; `shortest` keeps each version once, at its
/// shortest depth.
macro_rules! walk_sql {
    ($start:literal, $next:literal) => {
        concat!(
            "WITH RECURSIVE walk(id, depth) AS (
                SELECT ", $next, ", 1 FROM schema_dependencies WHERE ", $start, " = $1
                UNION
                SELECT d.", $next, ", w.depth + 1
                FROM schema_dependencies d JOIN walk w ON d.", $start, " = w.id
                WHERE $2 AND w.depth < $3
            ), shortest AS (
                SELECT id, min(depth) AS depth FROM walk GROUP BY id
            )
            SELECT s.id, s.subject, s.major, s.minor, s.patch, s.pre, s.format, s.state, w.depth::bigint AS depth
            FROM shortest w JOIN schemas s ON s.id = w.id
            ORDER BY w.depth, s.subject, s.major, s.minor, s.patch, s.pre_key"
        )
    };
}
pub(super) const DEPENDENCIES: &str = walk_sql!("schema_id", "depends_on_id");
pub(super) const DEPENDENTS: &str = walk_sql!("depends_on_id", "schema_id");
/// The depth bound, in the type the walk's parameter has here.
pub(super) const WALK_DEPTH: i32 = crate::sql::rows::MAX_WALK_DEPTH;

pub(super) const STATISTICS: &str = "SELECT count(*) AS schemas,
        count(*) FILTER (WHERE state = 'active') AS active,
        count(*) FILTER (WHERE state = 'deprecated') AS deprecated,
        count(*) FILTER (WHERE state = 'deleted') AS deleted,
        coalesce(sum(size_bytes), 0)::bigint AS bytes,
        (SELECT count(DISTINCT subject) FROM schemas WHERE state <> 'deleted') AS subjects
     FROM schemas";
pub(super) const POPULAR: &str = concat!(
    "SELECT ",
    "s.id, s.subject, s.major, s.minor, s.patch, s.pre, s.format, s.content_text, s.content_location, s.checksum, s.state, s.description, s.metadata, s.tags, s.refs, s.created_at, s.updated_at",
    " FROM popular_schemas p JOIN schemas s ON s.id = p.schema_id
      WHERE s.state <> 'deleted'
      ORDER BY p.access_count DESC, p.schema_id LIMIT $1"
);
pub(super) const CONTENT_LOCATION: &str = "SELECT content_location FROM schemas WHERE id = $1";
pub(super) const PENDING: &str =
    "SELECT id, format, content_text, checksum FROM schemas WHERE content_pending LIMIT $1";
pub(super) const COUNT_PENDING: &str = "SELECT count(*) FROM schemas WHERE content_pending";

pub(super) const FIND_IDENTICAL: &str = concat!(
    "SELECT id, major, minor, patch, pre FROM schemas
     WHERE subject = $1 AND checksum = $2 AND format = $3 AND state <> 'deleted'
     ORDER BY ",
    latest_order!(),
    " LIMIT 1"
);
pub(super) const ID_AND_STATE: &str = "SELECT id, state FROM schemas WHERE subject = $1 AND major = $2 AND minor = $3 AND patch = $4 AND pre = $5";
pub(super) const MAX_ASSIGNED: &str =
    "SELECT max_major AS major, max_minor AS minor, max_patch AS patch, max_pre AS pre
     FROM subjects WHERE subject = $1";
pub(super) const STATE_FOR_UPDATE: &str = "SELECT state FROM schemas WHERE id = $1 FOR UPDATE";
pub(super) const UPDATE_STATE: &str =
    "UPDATE schemas SET state = $2, updated_at = $3 WHERE id = $1";
pub(super) const MARK_VERSION_DELETED: &str = concat!(
    "UPDATE schemas SET state = 'deleted', deleted_at = coalesce(deleted_at, $6),
            updated_at = CASE WHEN state = 'deleted' THEN updated_at ELSE $6 END
     WHERE subject = $1 AND major = $2 AND minor = $3 AND patch = $4 AND pre = $5
     RETURNING ",
    record_columns!("content_text")
);
pub(super) const MARK_SUBJECT_DELETED: &str = concat!(
    "UPDATE schemas SET state = 'deleted', deleted_at = $2, updated_at = $2
     WHERE subject = $1 AND state <> 'deleted'
     RETURNING ",
    record_columns!("content_text")
);
/// `FOR SHARE`: the referrer cannot be deleted or change state before this transaction ends.
pub(super) const LIVE_REFERRER: &str = "SELECT s.subject, s.major, s.minor, s.patch, s.pre
     FROM schema_dependencies d JOIN schemas s ON s.id = d.schema_id
     WHERE d.depends_on_id = $1 AND s.state <> 'deleted'
     ORDER BY s.subject, s.major, s.minor, s.patch, s.pre_key LIMIT 1
     FOR SHARE OF s";
pub(super) const DELETE_ROW: &str = "DELETE FROM schemas WHERE id = $1";
pub(super) const ROWS_POINTING_TO: &str =
    "SELECT count(*) FROM schemas WHERE content_location = $1";
pub(super) const POINT_TO_OBJECT: &str = "UPDATE schemas SET content_text = NULL, content = NULL, content_location = $2, content_pending = false
     WHERE id = $1 AND content_pending";

/// A time as this dialect stores it.
pub(super) fn time(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

/// The subject-prefix parameter of the listing: a `LIKE` pattern, wildcards escaped.
pub(super) fn subject_prefix(prefix: Option<&str>) -> Option<String> {
    prefix.map(|p| format!("{}%", super::search::escape_like(p)))
}

/// Metadata as this dialect stores it: `jsonb`.
pub(super) fn metadata(m: &serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    serde_json::Value::Object(m.clone())
}

/// Tags as this dialect stores them: `text[]`.
pub(super) fn tags(t: &[String]) -> &[String] {
    t
}

/// References as this dialect stores them: `jsonb`. Plain data, for which serde_json cannot
/// fail; an empty array is the unreachable fallback.
pub(super) fn references(r: &[schema_registry_core::SchemaReference]) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or(serde_json::Value::Array(Vec::new()))
}
