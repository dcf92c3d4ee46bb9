//! The SQL text of the statements both dialects share (see `sql::shared`), in SQLite's
//! dialect: `?N` parameters, JSON held as text, time as microseconds since the epoch.

use chrono::{DateTime, Utc};

use crate::sql::rows::{latest_order, record_columns, to_micros};

pub(super) const SELECT_BY_ID: &str = concat!(
    "SELECT ",
    record_columns!("content"),
    " FROM schemas WHERE id = ?1"
);
pub(super) const SELECT_BY_VERSION: &str = concat!(
    "SELECT ",
    record_columns!("content"),
    " FROM schemas WHERE subject = ?1 AND major = ?2 AND minor = ?3 AND patch = ?4 AND pre = ?5"
);
pub(super) const SELECT_LATEST: &str = concat!(
    "SELECT ",
    record_columns!("content"),
    " FROM schemas WHERE subject = ?1 AND state <> 'deleted' ORDER BY ",
    latest_order!(),
    " LIMIT 1"
);
pub(super) const LIST_VERSIONS: &str = "SELECT major, minor, patch, pre FROM schemas
     WHERE subject = ?1 AND (?2 OR state <> 'deleted')
     ORDER BY major, minor, patch, pre_key";
/// One window over the live versions: each subject's latest and its count.
pub(super) const SUBJECTS_PAGE: &str = concat!(
    "WITH ranked AS (
        SELECT subject, major, minor, patch, pre,
               ROW_NUMBER() OVER (PARTITION BY subject ORDER BY ",
    latest_order!(),
    ") AS rn,
               COUNT(*) OVER (PARTITION BY subject) AS version_count
        FROM schemas
        WHERE state <> 'deleted' AND (?1 IS NULL OR substr(subject, 1, length(?1)) = ?1)
     )
     SELECT subject, major, minor, patch, pre, version_count FROM ranked WHERE rn = 1
     ORDER BY subject LIMIT ?2 OFFSET ?3"
);
pub(super) const SUBJECTS_TOTAL: &str = "SELECT COUNT(DISTINCT subject) FROM schemas
     WHERE state <> 'deleted' AND (?1 IS NULL OR substr(subject, 1, length(?1)) = ?1)";
pub(super) const EXISTS: &str = "SELECT 1 FROM schemas WHERE id = ?1";

/// A dependency walk: from the rows whose `$start` column is the schema asked about, follow
/// `$next`; once (direct) or until no new version appears (transitive, `?2`), bounded by depth.
macro_rules! walk_sql {
    ($start:literal, $next:literal) => {
        concat!(
            "WITH RECURSIVE walk(id, depth) AS (
                SELECT ", $next, ", 1 FROM schema_dependencies WHERE ", $start, " = ?1
                UNION
                SELECT d.", $next, ", w.depth + 1
                FROM schema_dependencies d JOIN walk w ON d.", $start, " = w.id
                WHERE ?2 AND w.depth < ?3
            )
            SELECT s.id, s.subject, s.major, s.minor, s.patch, s.pre, s.format, s.state, MIN(w.depth) AS depth
            FROM walk w JOIN schemas s ON s.id = w.id
            GROUP BY s.id
            ORDER BY depth, s.subject, s.major, s.minor, s.patch, s.pre_key"
        )
    };
}
pub(super) const DEPENDENCIES: &str = walk_sql!("schema_id", "depends_on_id");
pub(super) const DEPENDENTS: &str = walk_sql!("depends_on_id", "schema_id");
/// The depth bound, in the type the walk's parameter has here.
pub(super) const WALK_DEPTH: i64 = crate::sql::rows::MAX_WALK_DEPTH as i64;

pub(super) const STATISTICS: &str = "SELECT COUNT(*) AS schemas,
        COALESCE(SUM(state = 'active'), 0) AS active,
        COALESCE(SUM(state = 'deprecated'), 0) AS deprecated,
        COALESCE(SUM(state = 'deleted'), 0) AS deleted,
        COALESCE(SUM(size_bytes), 0) AS bytes,
        (SELECT COUNT(DISTINCT subject) FROM schemas WHERE state <> 'deleted') AS subjects
     FROM schemas";
pub(super) const POPULAR: &str = "SELECT s.id, s.subject, s.major, s.minor, s.patch, s.pre, s.format, s.content, s.content_location, s.checksum, s.state,
        s.description, s.metadata, s.tags, s.refs, s.created_at, s.updated_at
     FROM schema_access_log l JOIN schemas s ON s.id = l.schema_id
     WHERE s.state <> 'deleted'
     ORDER BY l.access_count DESC, l.schema_id LIMIT ?1";
pub(super) const CONTENT_LOCATION: &str = "SELECT content_location FROM schemas WHERE id = ?1";
pub(super) const PENDING: &str =
    "SELECT id, format, content, checksum FROM schemas WHERE content_pending = 1 LIMIT ?1";
pub(super) const COUNT_PENDING: &str = "SELECT COUNT(*) FROM schemas WHERE content_pending = 1";

pub(super) const FIND_IDENTICAL: &str = concat!(
    "SELECT id, major, minor, patch, pre FROM schemas
     WHERE subject = ?1 AND checksum = ?2 AND format = ?3 AND state <> 'deleted'
     ORDER BY ",
    latest_order!(),
    " LIMIT 1"
);
pub(super) const ID_AND_STATE: &str = "SELECT id, state FROM schemas WHERE subject = ?1 AND major = ?2 AND minor = ?3 AND patch = ?4 AND pre = ?5";
pub(super) const MAX_ASSIGNED: &str =
    "SELECT max_major AS major, max_minor AS minor, max_patch AS patch, max_pre AS pre
     FROM subjects WHERE subject = ?1";
/// The write lock, held since `BEGIN IMMEDIATE`, already excludes every other writer.
pub(super) const STATE_FOR_UPDATE: &str = "SELECT state FROM schemas WHERE id = ?1";
pub(super) const UPDATE_STATE: &str =
    "UPDATE schemas SET state = ?2, updated_at = ?3 WHERE id = ?1";
pub(super) const MARK_VERSION_DELETED: &str = concat!(
    "UPDATE schemas SET state = 'deleted', deleted_at = coalesce(deleted_at, ?6),
            updated_at = CASE WHEN state = 'deleted' THEN updated_at ELSE ?6 END
     WHERE subject = ?1 AND major = ?2 AND minor = ?3 AND patch = ?4 AND pre = ?5
     RETURNING ",
    record_columns!("content")
);
pub(super) const MARK_SUBJECT_DELETED: &str = concat!(
    "UPDATE schemas SET state = 'deleted', deleted_at = ?2, updated_at = ?2
     WHERE subject = ?1 AND state <> 'deleted'
     RETURNING ",
    record_columns!("content")
);
pub(super) const LIVE_REFERRER: &str = "SELECT s.subject, s.major, s.minor, s.patch, s.pre
     FROM schema_dependencies d JOIN schemas s ON s.id = d.schema_id
     WHERE d.depends_on_id = ?1 AND s.state <> 'deleted'
     ORDER BY s.subject, s.major, s.minor, s.patch, s.pre_key LIMIT 1";
pub(super) const DELETE_ROW: &str = "DELETE FROM schemas WHERE id = ?1";
pub(super) const ROWS_POINTING_TO: &str =
    "SELECT COUNT(*) FROM schemas WHERE content_location = ?1";
pub(super) const POINT_TO_OBJECT: &str =
    "UPDATE schemas SET content = NULL, content_location = ?2, content_pending = 0
     WHERE id = ?1 AND content_pending = 1";

/// A time as this dialect stores it.
pub(super) fn time(t: DateTime<Utc>) -> i64 {
    to_micros(t)
}

/// The subject-prefix parameter of the listing: the prefix itself (compared with `substr`).
pub(super) fn subject_prefix(prefix: Option<&str>) -> Option<String> {
    prefix.map(str::to_string)
}

/// Metadata as this dialect stores it: JSON text.
pub(super) fn metadata(m: &serde_json::Map<String, serde_json::Value>) -> String {
    json_text(m)
}

/// Tags as this dialect stores them: a JSON array as text.
pub(super) fn tags(t: &[String]) -> String {
    json_text(&t)
}

/// References as this dialect stores them: a JSON array as text.
pub(super) fn references(r: &[schema_registry_core::SchemaReference]) -> String {
    json_text(&r)
}

/// Serialises a JSON-valued column. The values are plain data (maps, strings, references), for
/// which serde_json cannot fail.
fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}
