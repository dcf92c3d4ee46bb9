//! Search on PostgreSQL: SQL assembled from fixed fragments with [`sqlx::QueryBuilder`], binding
//! every value, so each combination of filters gets its own prepared statement and plan instead
//! of one catch-all statement whose `$1 IS NULL OR ...` branches defeat the indexes.

use serde_json::Value;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, QueryBuilder};

use super::PostgresBackend;
use crate::sql::rows::{to_i64, to_u64, RawRecord};
use crate::{Page, SearchQuery, StorageResult};

/// Runs `query`: the page and the total that match.
pub(super) async fn search(reader: &PgPool, query: &SearchQuery) -> StorageResult<Page<RawRecord>> {
    let mut page = PostgresBackend::search_statement("", query);
    let rows = page.build().fetch_all(reader).await?;
    let mut count = QueryBuilder::<Postgres>::new("SELECT count(*)");
    push_search_filter(&mut count, query);
    let total: i64 = count.build_query_scalar().fetch_one(reader).await?;
    Ok(Page {
        items: RawRecord::decode_all(&rows)?,
        total: to_u64(total),
    })
}

impl PostgresBackend {
    /// The exact search statement [`crate::StorageBackend::search`] runs for `query`, after `prefix`
    /// (empty, or `EXPLAIN (FORMAT JSON) ` to inspect the plan). Public so that tests and
    /// operators can check which indexes a search uses.
    pub fn search_statement<'q>(
        prefix: &str,
        query: &'q SearchQuery,
    ) -> QueryBuilder<'q, Postgres> {
        let mut page = QueryBuilder::<Postgres>::new(prefix);
        page.push(concat!(
            "SELECT s.",
            "id, s.subject, s.major, s.minor, s.patch, s.pre, s.format, s.content_text, s.content_location, s.checksum, s.state, s.description, s.metadata, s.tags, s.refs, s.created_at, s.updated_at"
        ));
        match query.text.as_deref().filter(|t| !t.is_empty()) {
            Some(text) => {
                let pattern = format!("%{}%", escape_like(text));
                page.push(", (CASE WHEN s.subject ILIKE ")
                    .push_bind(pattern.clone())
                    .push(" THEN 4 ELSE 0 END + CASE WHEN s.description ILIKE ")
                    .push_bind(pattern)
                    .push(" THEN 2 ELSE 0 END + CASE WHEN s.search_vector @@ websearch_to_tsquery('simple', ")
                    .push_bind(text.to_string())
                    .push(") THEN 1 ELSE 0 END) AS relevance");
            }
            None => {
                page.push(", 0 AS relevance");
            }
        }
        push_search_filter(&mut page, query);
        // Newest first is `created_at` (its index serves an unfiltered listing); the id, a
        // UUIDv7, breaks ties between versions registered in the same microsecond.
        let has_text = query.text.as_deref().is_some_and(|t| !t.is_empty());
        page.push(if has_text {
            " ORDER BY relevance DESC, s.created_at DESC, s.id DESC LIMIT "
        } else {
            " ORDER BY s.created_at DESC, s.id DESC LIMIT "
        })
        .push_bind(i64::from(query.limit))
        .push(" OFFSET ")
        .push_bind(to_i64(query.offset));
        page
    }
}

/// Appends the search filter (every given condition, AND-ed) to `qb`.
fn push_search_filter(qb: &mut QueryBuilder<'_, Postgres>, query: &SearchQuery) {
    qb.push(" FROM schemas s WHERE ");
    match query.state {
        Some(state) => qb.push("s.state = ").push_bind(state.as_str().to_string()),
        None => qb.push("s.state <> 'deleted'"),
    };
    if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", escape_like(text));
        qb.push(" AND (s.subject ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR s.description ILIKE ")
            .push_bind(pattern)
            .push(" OR s.search_vector @@ websearch_to_tsquery('simple', ")
            .push_bind(text.to_string())
            .push("))");
    }
    if let Some(prefix) = &query.subject_prefix {
        qb.push(" AND s.subject LIKE ")
            .push_bind(format!("{}%", escape_like(prefix)));
    }
    if let Some(format) = query.format {
        qb.push(" AND s.format = ")
            .push_bind(format.as_str().to_string());
    }
    if !query.tags.is_empty() {
        qb.push(" AND s.tags @> ").push_bind(query.tags.clone());
    }
    if !query.metadata.is_empty() {
        qb.push(" AND s.metadata @> ")
            .push_bind(Value::Object(query.metadata.clone()));
    }
}

/// Escapes `LIKE` wildcards so user text matches literally (backslash is PostgreSQL's default
/// `LIKE` escape character).
pub(super) fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
