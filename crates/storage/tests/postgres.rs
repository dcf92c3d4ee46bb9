//! PostgreSQL-only checks: migrations both ways, index use on a large table, roles, the
//! read-only pool, and the materialized views. The behavioural suite lives in `backends.rs`.

use std::sync::Arc;

use schema_registry_core::{Bump, NewSchema, SchemaContent, SchemaFormat, Subject, VersionRequest};
use schema_registry_storage::postgres::{
    LIST_VERSIONS, SELECT_BY_ID, SELECT_BY_VERSION, SELECT_LATEST,
};
use schema_registry_storage::{
    migrate, Operations, PostgresBackend, PostgresOptions, SearchQuery, StorageBackend,
};
use schema_registry_testkit::TestDatabase;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, Row};

fn options() -> PostgresOptions {
    PostgresOptions {
        max_connections: 4,
        min_connections: 0,
        ..PostgresOptions::default()
    }
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect")
}

async fn table_exists(conn: &mut PgConnection, name: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("public.{name}"))
        .fetch_one(conn)
        .await
        .expect("to_regclass")
}

async fn column_exists(conn: &mut PgConnection, table: &str, column: &str) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = $2)",
    )
    .bind(table)
    .bind(column)
    .fetch_one(conn)
    .await
    .expect("columns")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_revert_and_reapply() {
    let db = TestDatabase::create_empty().await;
    let url = db.url();
    let info = migrate::info(url).await.expect("info");
    assert_eq!(
        info.iter()
            .map(|m| (m.version, m.applied))
            .collect::<Vec<_>>(),
        vec![(1, false), (2, false), (3, false)]
    );

    assert_eq!(migrate::run(url).await.expect("up"), vec![1, 2, 3]);
    let mut conn = connect(url).await;
    for t in [
        "subjects",
        "schemas",
        "schema_dependencies",
        "validation_history",
        "subject_versions",
        "schema_access_log",
        "popular_schemas",
    ] {
        assert!(table_exists(&mut conn, t).await, "{t} after up");
    }
    assert!(column_exists(&mut conn, "schemas", "search_vector").await);
    assert!(column_exists(&mut conn, "subjects", "revision").await);

    assert_eq!(migrate::revert(url).await.expect("down 3"), Some(3));
    assert!(!column_exists(&mut conn, "subjects", "revision").await);
    assert!(column_exists(&mut conn, "schemas", "search_vector").await);

    assert_eq!(migrate::revert(url).await.expect("down 2"), Some(2));
    assert!(!table_exists(&mut conn, "schema_access_log").await);
    assert!(!table_exists(&mut conn, "popular_schemas").await);
    assert!(!column_exists(&mut conn, "schemas", "search_vector").await);
    assert!(table_exists(&mut conn, "schemas").await);

    assert_eq!(migrate::revert(url).await.expect("down 1"), Some(1));
    for t in [
        "subjects",
        "schemas",
        "schema_dependencies",
        "validation_history",
        "subject_versions",
    ] {
        assert!(!table_exists(&mut conn, t).await, "{t} after down");
    }
    assert_eq!(migrate::revert(url).await.expect("nothing left"), None);

    assert_eq!(migrate::run(url).await.expect("up again"), vec![1, 2, 3]);
    assert!(migrate::run(url).await.expect("idempotent").is_empty());
    conn.close().await.expect("close");

    // And the re-applied schema works.
    let backend = PostgresBackend::open(url, &options()).await.expect("open");
    let content = SchemaContent::parse(SchemaFormat::JsonSchema, &json!({"type": "object"}))
        .expect("content");
    let rec = backend
        .register(NewSchema::new(
            Subject::parse("after.reapply").expect("s"),
            VersionRequest::Next(Bump::Minor),
            content,
        ))
        .await
        .expect("register");
    assert!(rec.created);
    backend.close().await;
}

/// Walks an `EXPLAIN (FORMAT JSON)` plan; returns the node types that touch `schemas` and
/// whether any of them is a sequential scan.
fn scans_of_schemas(plan: &Value, out: &mut Vec<String>) {
    match plan {
        Value::Object(node) => {
            let kind = node.get("Node Type").and_then(Value::as_str).unwrap_or("?");
            let index = node.get("Index Name").and_then(Value::as_str);
            if node.get("Relation Name").and_then(Value::as_str) == Some("schemas")
                || index.is_some_and(|i| i.starts_with("schemas_"))
            {
                out.push(format!("{kind} {}", index.unwrap_or("")).trim().to_string());
            }
            for v in node.values() {
                scans_of_schemas(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| scans_of_schemas(v, out)),
        _ => {}
    }
}

fn assert_indexed(what: &str, plan: &Value) {
    let mut scans = Vec::new();
    scans_of_schemas(plan, &mut scans);
    assert!(
        !scans.is_empty(),
        "{what}: plan does not touch schemas: {plan}"
    );
    assert!(
        scans.iter().all(|s| !s.starts_with("Seq Scan")),
        "{what} uses a sequential scan: {scans:?}\n{plan:#}"
    );
    eprintln!("{what}: {scans:?}");
}

async fn explain(
    conn: &mut PgConnection,
    sql: &str,
    binds: impl FnOnce(
        sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Value {
    let text = format!("EXPLAIN (FORMAT JSON) {sql}");
    let q = binds(sqlx::query(&text));
    let row = q.fetch_one(&mut *conn).await.expect("explain");
    row.try_get::<Value, _>(0).expect("plan json")
}

/// The main read paths use an index, not a sequential scan, on a table of 100,000 versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_paths_use_indexes_on_100k_rows() {
    let db = TestDatabase::create().await;
    let mut conn = connect(db.url()).await;
    // Subject names with real entropy (a shared prefix on every row would make any substring
    // search unselective, and the planner would rightly prefer a scan).
    sqlx::query("INSERT INTO subjects SELECT 'svc.' || substr(md5(g::text), 1, 12), 1, 99, 0, '', now() FROM generate_series(0, 999) g")
        .execute(&mut conn)
        .await
        .expect("subjects");
    sqlx::query(
        "INSERT INTO schemas (id, subject, major, minor, patch, pre, pre_key, format, content_text, content,
                              checksum, size_bytes, state, description, metadata, tags, refs, created_at, updated_at)
         SELECT gen_random_uuid(), 'svc.' || substr(md5((g % 1000)::text), 1, 12), 1, g / 1000, 0, '', '~', 'json_schema',
                '{\"title\":\"document ' || g || '\"}', ('{\"title\":\"document ' || g || '\"}')::jsonb,
                encode(sha256(g::text::bytea), 'hex'), 24, 'active', 'description ' || g,
                jsonb_build_object('team', 'team' || (g % 50), 'n', g), ARRAY['tag' || (g % 100), 'all'], '[]', now() - g * interval '1 second', now()
         FROM generate_series(0, 99999) g",
    )
    .execute(&mut conn)
    .await
    .expect("100k rows");
    sqlx::query("ANALYZE schemas")
        .execute(&mut conn)
        .await
        .expect("analyze");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM schemas")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(count, 100_000);
    let (id, subject): (uuid::Uuid, String) =
        sqlx::query_as("SELECT id, subject FROM schemas WHERE minor = 42 LIMIT 1")
            .fetch_one(&mut conn)
            .await
            .expect("a sample row");
    let subject = subject.as_str();
    let hex = &subject[4..];

    let plan = explain(&mut conn, SELECT_BY_ID, |q| q.bind(id)).await;
    assert_indexed("get by id", &plan);
    let plan = explain(&mut conn, SELECT_BY_VERSION, |q| {
        q.bind(subject.to_owned())
            .bind(1i64)
            .bind(42i64)
            .bind(0i64)
            .bind("")
    })
    .await;
    assert_indexed("get by subject+version", &plan);
    let plan = explain(&mut conn, SELECT_LATEST, |q| q.bind(subject.to_owned())).await;
    assert_indexed("latest", &plan);
    let plan = explain(&mut conn, LIST_VERSIONS, |q| {
        q.bind(subject.to_owned()).bind(false)
    })
    .await;
    assert_indexed("version list", &plan);

    let searches = [
        (
            "tag search",
            SearchQuery {
                tags: vec!["tag7".into()],
                ..SearchQuery::default()
            },
        ),
        (
            "metadata containment",
            SearchQuery {
                metadata: json!({"team": "team7"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                ..SearchQuery::default()
            },
        ),
        (
            "subject trigram + full-text search",
            SearchQuery {
                text: Some(hex[2..10].to_string()),
                ..SearchQuery::default()
            },
        ),
        (
            "full-text search",
            SearchQuery {
                text: Some("document 4242".into()),
                ..SearchQuery::default()
            },
        ),
        (
            "subject prefix",
            SearchQuery {
                subject_prefix: Some(subject[..9].to_string()),
                ..SearchQuery::default()
            },
        ),
        ("newest first, unfiltered", SearchQuery::default()),
    ];
    for (what, query) in &searches {
        let mut qb = PostgresBackend::search_statement("EXPLAIN (FORMAT JSON) ", query);
        let row = qb
            .build()
            .fetch_one(&mut conn)
            .await
            .expect("explain search");
        let plan: Value = row.try_get(0).expect("plan");
        assert_indexed(what, &plan);
    }
    conn.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_read_only_pool() {
    let db = TestDatabase::create().await;
    let mut conn = connect(db.url()).await;
    let privilege = |role: &'static str, table: &'static str, what: &'static str| {
        sqlx::query_scalar::<_, bool>("SELECT has_table_privilege($1, $2, $3)")
            .bind(role)
            .bind(table)
            .bind(what)
    };
    assert!(privilege("schema_registry_reader", "schemas", "SELECT")
        .fetch_one(&mut conn)
        .await
        .expect("q"));
    assert!(!privilege("schema_registry_reader", "schemas", "INSERT")
        .fetch_one(&mut conn)
        .await
        .expect("q"));
    assert!(privilege("schema_registry_writer", "schemas", "INSERT")
        .fetch_one(&mut conn)
        .await
        .expect("q"));
    assert!(
        privilege("schema_registry_reader", "popular_schemas", "SELECT")
            .fetch_one(&mut conn)
            .await
            .expect("q")
    );

    // A login role that is only a reader serves the read pool.
    let login = format!("sr_ro_{}", &db.name()[8..]);
    sqlx::query(&format!(
        "CREATE ROLE \"{login}\" LOGIN IN ROLE schema_registry_reader"
    ))
    .execute(&mut conn)
    .await
    .expect("create login role");
    let backend = PostgresBackend::open(
        db.url(),
        &PostgresOptions {
            read_url: Some(db.url_as(&login)),
            ..options()
        },
    )
    .await
    .expect("open with a read URL");
    let content = SchemaContent::parse(SchemaFormat::JsonSchema, &json!({"type": "object"}))
        .expect("content");
    let rec = backend
        .register(NewSchema::new(
            Subject::parse("ro").expect("s"),
            VersionRequest::Next(Bump::Minor),
            content,
        ))
        .await
        .expect("writes go to the primary")
        .record;
    assert_eq!(
        backend
            .get_by_id(rec.id)
            .await
            .expect("reads go to the reader")
            .id,
        rec.id
    );
    backend.health().await.expect("healthy with both pools");
    let readers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE usename = $1")
            .bind(&login)
            .fetch_one(&mut conn)
            .await
            .expect("activity");
    assert!(readers > 0, "the read pool connects as the read-only role");
    let mut ro = connect(&db.url_as(&login)).await;
    let denied = sqlx::query("INSERT INTO subjects VALUES ('x', 1, 0, 0, '', now())")
        .execute(&mut ro)
        .await;
    assert!(denied.is_err(), "the read-only role cannot write");
    ro.close().await.expect("close");
    backend.close().await;
    sqlx::query(&format!("DROP ROLE \"{login}\""))
        .execute(&mut conn)
        .await
        .ok();
    conn.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn materialized_views_refresh_in_the_background() {
    let db = TestDatabase::create().await;
    let mut opts = options();
    opts.maintenance.view_refresh_interval = std::time::Duration::from_millis(200);
    opts.maintenance.access_flush_interval = std::time::Duration::from_millis(100);
    let backend = Arc::new(PostgresBackend::open(db.url(), &opts).await.expect("open"));
    let content =
        |n: i32| SchemaContent::parse(SchemaFormat::JsonSchema, &json!({"n": n})).expect("content");
    let mut last = None;
    for n in 0..3 {
        let r = backend
            .register(NewSchema::new(
                Subject::parse("mv").expect("s"),
                VersionRequest::Next(Bump::Minor),
                content(n),
            ))
            .await
            .expect("register");
        last = Some(r.record);
    }
    let last = last.expect("registered");
    for _ in 0..4 {
        backend.get_by_id(last.id).await.expect("read");
    }
    let mut conn = connect(db.url()).await;
    // No explicit flush or refresh: the background tasks must get there by themselves.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let versions: Option<i64> =
            sqlx::query_scalar("SELECT version_count FROM subject_versions WHERE subject = 'mv'")
                .fetch_optional(&mut conn)
                .await
                .expect("query view");
        let popular: Option<i64> =
            sqlx::query_scalar("SELECT access_count FROM popular_schemas WHERE schema_id = $1")
                .bind(last.id)
                .fetch_optional(&mut conn)
                .await
                .expect("query view");
        if versions == Some(3) && popular == Some(4) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "views not refreshed: {versions:?} {popular:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let latest_id: uuid::Uuid =
        sqlx::query_scalar("SELECT latest_id FROM subject_versions WHERE subject = 'mv'")
            .fetch_one(&mut conn)
            .await
            .expect("latest id");
    assert_eq!(latest_id, last.id);
    let avg_us: i64 =
        sqlx::query_scalar("SELECT avg_latency_us FROM popular_schemas WHERE schema_id = $1")
            .bind(last.id)
            .fetch_one(&mut conn)
            .await
            .expect("avg latency");
    assert!(avg_us > 0, "read latency is recorded");
    conn.close().await.expect("close");
    backend.close().await;
}

/// Two servers on one database: each remembers what it last wrote into a subject and skips the
/// read on its next registration there. A memory gone stale, because the other server wrote in
/// between or deleted a version, must never hand out a version twice, skip one, or miss
/// identical content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_stay_exact_when_another_server_writes_in_between() {
    let db = TestDatabase::create().await;
    let a = PostgresBackend::open(db.url(), &options())
        .await
        .expect("open a");
    let b = PostgresBackend::open(db.url(), &options())
        .await
        .expect("open b");
    let subject = || Subject::parse("two-servers").expect("subject");
    let (x, y) = (&a, &b);
    // `server` registers the next version of document `n`: the version it got, whether it was
    // new, and how many of a's registrations so far were written on a's memory.
    let step = |server: &'static str, n: i32| async move {
        let backend = if server == "a" { x } else { y };
        let content =
            SchemaContent::parse(SchemaFormat::JsonSchema, &json!({ "n": n })).expect("content");
        let r = backend
            .register(NewSchema::new(
                subject(),
                VersionRequest::Next(Bump::Minor),
                content,
            ))
            .await
            .expect("register");
        (
            r.record.version.to_string(),
            r.created,
            x.registrations_without_read(),
        )
    };
    let got = |v: &str, created: bool, on_hint: u64| (v.to_string(), created, on_hint);

    assert_eq!(step("a", 0).await, got("1.0.0", true, 0));
    assert_eq!(step("a", 1).await, got("1.1.0", true, 1), "on a's memory");
    // b writes in between: a's memory of the subject is stale, and a reads again.
    assert_eq!(step("b", 2).await, got("1.2.0", true, 1));
    assert_eq!(step("a", 3).await, got("1.3.0", true, 1));
    // Content b registered is identical content for a, whatever a remembers.
    assert_eq!(step("a", 2).await, got("1.2.0", false, 1));
    assert_eq!(step("a", 4).await, got("1.4.0", true, 1));
    // Content a itself registered just before, sent again on a's memory: the same version.
    assert_eq!(step("a", 4).await, got("1.4.0", false, 1));
    assert_eq!(step("a", 5).await, got("1.5.0", true, 1));
    // b deletes it, which changes no revision: a's memory still holds, and on it the same
    // content is new again.
    b.soft_delete(&subject(), &"1.5.0".parse().expect("version"))
        .await
        .expect("b deletes 1.5.0");
    assert_eq!(step("a", 5).await, got("1.6.0", true, 2), "on a's memory");
    assert_eq!(step("a", 6).await, got("1.7.0", true, 3), "on a's memory");

    let listed: Vec<String> = a
        .list_versions(&subject(), true)
        .await
        .expect("list")
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(
        listed,
        ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0", "1.6.0", "1.7.0"],
        "every version once, none skipped"
    );
}
