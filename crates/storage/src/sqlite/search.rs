//! Search on SQLite: one statement per kind of subject-prefix clause.
//!
//! SQLite plans a statement once, so a catch-all `?2 IS NULL OR ...` clause could never use an
//! index; a prefix search gets its own statement whose range on `subject` walks the subject
//! index instead of the whole table.

use sqlx::sqlite::SqlitePool;

use crate::sql::rows::{to_i64, to_u64, RawRecord};
use crate::{Page, SearchQuery, StorageResult};

/// The search filter, shared by the page query and the count query. Parameters:
/// ?1 text, ?2 subject prefix, ?3 format, ?4 state, ?5 tags (JSON array), ?6 metadata (JSON object),
/// ?9 the first string after every subject that starts with the prefix ([`prefix_upper_bound`]).
/// `$prefix` is one of the `PREFIX_*` clauses: SQLite plans a statement once, so a
/// `?2 IS NULL OR ...` clause could never use an index; a prefix search gets its own statement
/// whose range on `subject` walks the subject index instead of the whole table.
macro_rules! search_filter {
    ($prefix:expr) => {
        concat!(
            " FROM schemas s WHERE
            (?1 IS NULL OR instr(lower(s.subject), lower(?1)) > 0
                        OR instr(lower(coalesce(s.description, '')), lower(?1)) > 0
                        OR instr(lower(s.content), lower(?1)) > 0)",
            $prefix,
            "
        AND (?3 IS NULL OR s.format = ?3)
        AND ((?4 IS NULL AND s.state <> 'deleted') OR s.state = ?4)
        AND NOT EXISTS (SELECT 1 FROM json_each(?5) t
                        WHERE t.value NOT IN (SELECT value FROM json_each(s.tags)))
        AND NOT EXISTS (SELECT 1 FROM json_each(?6) f
                        WHERE NOT EXISTS (SELECT 1 FROM json_each(s.metadata) m
                                          WHERE m.key = f.key AND m.type = f.type
                                            AND (CASE WHEN f.type IN ('object', 'array')
                                                      THEN json(m.value) = json(f.value)
                                                      ELSE m.atom IS f.atom END)))"
        )
    };
}

/// No prefix asked for.
macro_rules! prefix_none {
    () => {
        " AND ?2 IS NULL AND ?9 IS NULL"
    };
}
/// A prefix with an upper bound: an index range, then the exact check.
macro_rules! prefix_range {
    () => {
        " AND s.subject >= ?2 AND s.subject < ?9 AND substr(s.subject, 1, length(?2)) = ?2"
    };
}
/// A prefix without an upper bound (only characters U+10FFFF): the exact check alone.
macro_rules! prefix_scan {
    () => {
        " AND ?9 IS NULL AND substr(s.subject, 1, length(?2)) = ?2"
    };
}

macro_rules! search_page {
    ($prefix:expr) => {
        concat!(
            "SELECT ",
            "s.id, s.subject, s.major, s.minor, s.patch, s.pre, s.format, s.content, s.content_location, s.checksum, s.state, s.description, s.metadata, s.tags, s.refs, s.created_at, s.updated_at,
     CASE WHEN ?1 IS NULL THEN 0 ELSE
        (instr(lower(s.subject), lower(?1)) > 0) * 4
      + (instr(lower(coalesce(s.description, '')), lower(?1)) > 0) * 2
      + (instr(lower(s.content), lower(?1)) > 0) END AS relevance",
            search_filter!($prefix),
            " ORDER BY relevance DESC, s.created_at DESC, s.id DESC LIMIT ?7 OFFSET ?8"
        )
    };
}

/// (page, count) statements for each kind of prefix clause.
pub(super) const SEARCH_NO_PREFIX: (&str, &str) = (
    search_page!(prefix_none!()),
    concat!("SELECT COUNT(*)", search_filter!(prefix_none!())),
);
pub(super) const SEARCH_PREFIX_RANGE: (&str, &str) = (
    search_page!(prefix_range!()),
    concat!("SELECT COUNT(*)", search_filter!(prefix_range!())),
);
pub(super) const SEARCH_PREFIX_SCAN: (&str, &str) = (
    search_page!(prefix_scan!()),
    concat!("SELECT COUNT(*)", search_filter!(prefix_scan!())),
);

/// The smallest string greater than every string that starts with `prefix` (in code-point
/// order, which is SQLite's `BINARY` order for UTF-8): the prefix with its last character that
/// can be raised raised by one. `None` when there is none (empty, or only U+10FFFF).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=0x10FFFF).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Runs `query`: the page and the total that match.
pub(super) async fn search(
    reader: &SqlitePool,
    query: &SearchQuery,
) -> StorageResult<Page<RawRecord>> {
    let tags = serde_json::to_string(&query.tags).unwrap_or_else(|_| "[]".into());
    let metadata = serde_json::to_string(&query.metadata).unwrap_or_else(|_| "{}".into());
    let text = query.text.as_deref().filter(|t| !t.is_empty());
    let format = query.format.map(|f| f.as_str());
    let state = query.state.map(|s| s.as_str());
    let prefix = query.subject_prefix.as_deref();
    let upper = prefix.and_then(prefix_upper_bound);
    let (page_sql, count_sql) = match (prefix, &upper) {
        (None, _) => SEARCH_NO_PREFIX,
        (Some(_), Some(_)) => SEARCH_PREFIX_RANGE,
        (Some(_), None) => SEARCH_PREFIX_SCAN,
    };
    let rows = sqlx::query(page_sql)
        .bind(text)
        .bind(prefix)
        .bind(format)
        .bind(state)
        .bind(&tags)
        .bind(&metadata)
        .bind(i64::from(query.limit))
        .bind(to_i64(query.offset))
        .bind(upper.as_deref())
        .fetch_all(reader)
        .await?;
    let total: i64 = sqlx::query_scalar(count_sql)
        .bind(text)
        .bind(prefix)
        .bind(format)
        .bind(state)
        .bind(&tags)
        .bind(&metadata)
        .bind(None::<i64>) // ?7, ?8: not used by the count
        .bind(None::<i64>)
        .bind(upper.as_deref())
        .fetch_one(reader)
        .await?;
    Ok(Page {
        items: RawRecord::decode_all(&rows)?,
        total: to_u64(total),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::{SqliteBackend, SqliteOptions};

    #[test]
    fn prefix_upper_bounds_are_the_next_string_after_the_prefix() {
        assert_eq!(prefix_upper_bound("orders."), Some("orders/".to_string()));
        assert_eq!(prefix_upper_bound("a"), Some("b".to_string()));
        assert_eq!(prefix_upper_bound("é"), Some("ê".to_string()));
        // The surrogate range is skipped.
        assert_eq!(
            prefix_upper_bound("x\u{D7FF}"),
            Some("x\u{E000}".to_string())
        );
        // A last character that cannot be raised is dropped, and the one before is raised.
        assert_eq!(prefix_upper_bound("ab\u{10FFFF}"), Some("ac".to_string()));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
        for p in ["orders.", "é", "ab\u{10FFFF}", "x\u{D7FF}"] {
            let upper = prefix_upper_bound(p).expect("bound");
            for s in [
                p.to_string(),
                format!("{p}\u{10FFFF}\u{10FFFF}"),
                format!("{p}zzz"),
            ] {
                assert!(s.as_str() >= p && s < upper, "{s:?} in [{p:?}, {upper:?})");
            }
        }
    }

    /// A prefix search walks the subject index, not the whole table.
    #[tokio::test]
    async fn prefix_search_uses_the_subject_index() {
        let dir = tempfile::tempdir().expect("tmp");
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let backend = SqliteBackend::open(&url, &SqliteOptions::default())
            .await
            .expect("open");
        let sql = format!("EXPLAIN QUERY PLAN {}", SEARCH_PREFIX_RANGE.0);
        let plan: Vec<String> = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql)
            .bind(None::<String>)
            .bind("orders.")
            .bind(None::<String>)
            .bind(None::<String>)
            .bind("[]")
            .bind("{}")
            .bind(10_i64)
            .bind(0_i64)
            .bind("orders/")
            .fetch_all(&backend.db.reader)
            .await
            .map(|rows| rows.into_iter().map(|r| r.3).collect())
            .expect("plan");
        let first = plan.first().cloned().unwrap_or_default();
        assert!(
            first.contains("USING INDEX") && first.contains("subject<?"),
            "{plan:?}"
        );
        backend.close().await;
    }
}
