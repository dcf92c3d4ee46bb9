//! TLS to PostgreSQL (`sslmode` in the URL) and to Redis (`rediss://`), against real servers
//! with a throwaway certificate authority.

use std::sync::Arc;

use schema_registry_core::{Bump, NewSchema, SchemaContent, SchemaFormat, Subject, VersionRequest};
use schema_registry_storage::{
    CacheOptions, CachedBackend, Operations, PostgresBackend, PostgresOptions, SqliteBackend,
    SqliteOptions, Storage, StorageBackend,
};
use schema_registry_testkit::{PrivateCluster, PrivateRedis, TlsMaterial};
use serde_json::json;

fn schema(n: u32) -> NewSchema {
    NewSchema::new(
        Subject::parse("tls").expect("subject"),
        VersionRequest::Next(Bump::Minor),
        SchemaContent::parse(SchemaFormat::JsonSchema, &json!({"n": n})).expect("content"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_verified_tls() {
    let tls = TlsMaterial::generate();
    let cluster = PrivateCluster::start_tls(&tls);
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        cluster.url(),
        tls.ca_cert.display()
    );
    let options = PostgresOptions {
        max_connections: 2,
        min_connections: 0,
        ..PostgresOptions::default()
    };
    let backend = PostgresBackend::open(&url, &options)
        .await
        .expect("open over TLS");
    let rec = backend.register(schema(1)).await.expect("register").record;
    assert_eq!(backend.get_by_id(rec.id).await.expect("read").id, rec.id);
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(backend.pool())
        .await
        .expect("pg_stat_ssl");
    assert!(ssl, "the connection is encrypted");
    backend.close().await;

    // Without the CA, verification fails: the certificate is not trusted.
    let untrusted = format!("{}?sslmode=verify-full", cluster.url());
    assert!(
        PostgresBackend::open(&untrusted, &options).await.is_err(),
        "an untrusted certificate is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_verified_tls() {
    let tls = TlsMaterial::generate();
    let redis = PrivateRedis::start_tls(&tls);
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let inner: Arc<dyn Storage> = Arc::new(
        SqliteBackend::open(&url, &SqliteOptions::default())
            .await
            .expect("open"),
    );
    let rec = inner.register(schema(1)).await.expect("register").record;

    let options = CacheOptions {
        redis_url: Some(redis.tls_url()),
        redis_ca_cert: Some(tls.ca_cert.clone()),
        ..CacheOptions::default()
    };
    let cache = CachedBackend::new(inner.clone(), options).expect("cache");
    cache
        .get_by_id(rec.id)
        .await
        .expect("miss fills L2 over TLS");
    let stats = cache.cache_stats().expect("stats");
    assert_eq!(stats.l2_errors, 0, "{stats:?}");
    let pem = std::fs::read(&tls.ca_cert).expect("ca");
    let client = redis::Client::build_with_tls(
        redis.tls_url(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        },
    )
    .expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("TLS connection");
    let keys: i64 = redis::cmd("DBSIZE")
        .query_async(&mut conn)
        .await
        .expect("dbsize");
    assert!(keys >= 1, "the entry was written over TLS");

    // Without the CA the handshake fails: L2 is degraded, reads still succeed.
    let untrusted = CachedBackend::new(
        inner,
        CacheOptions {
            redis_url: Some(redis.tls_url()),
            ..CacheOptions::default()
        },
    )
    .expect("cache");
    for _ in 0..3 {
        assert_eq!(
            untrusted
                .get_by_id(rec.id)
                .await
                .expect("reads never fail")
                .id,
            rec.id
        );
    }
    assert!(untrusted.cache_stats().expect("stats").l2_errors >= 1);
    cache.close().await;
    untrusted.close().await;
}
