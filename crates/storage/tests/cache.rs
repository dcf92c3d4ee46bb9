//! Cache-tier checks that need to look inside: eviction bounds, warming, the epoch guard, and
//! L2 contents. The behavioural suite runs through the cache in `backends.rs`.

use std::sync::Arc;
use std::time::Duration;

use schema_registry_core::{
    Bump, NewSchema, SchemaContent, SchemaFormat, SchemaState, Subject, VersionRequest,
};
use schema_registry_storage::{
    CacheOptions, CachedBackend, Operations, SqliteBackend, SqliteOptions, Storage, StorageBackend,
};
use schema_registry_testkit::{redis_url, unique_prefix, PrivateRedis};
use serde_json::json;

async fn sqlite() -> (tempfile::TempDir, Arc<dyn Storage>) {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let b = SqliteBackend::open(&url, &SqliteOptions::default())
        .await
        .expect("open");
    (dir, Arc::new(b))
}

/// Waits (at most 5 s) until each cache's L2 is up and subscribed to invalidations.
async fn wait_for_l2(caches: &[&CachedBackend]) {
    for c in caches {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while c.cache_stats().expect("stats").l2_state != "up" {
            assert!(std::time::Instant::now() < deadline, "L2 not up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn schema(subject: &str, n: usize, pad: usize) -> NewSchema {
    NewSchema::new(
        Subject::parse(subject).expect("subject"),
        VersionRequest::Next(Bump::Minor),
        SchemaContent::parse(
            SchemaFormat::JsonSchema,
            &json!({"n": n, "pad": "x".repeat(pad)}),
        )
        .expect("content"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_respects_its_byte_budget_and_entry_limit() {
    let (_dir, inner) = sqlite().await;
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(
            inner
                .register(schema("big", n, 2000))
                .await
                .expect("register")
                .record
                .id,
        );
    }
    // A 16 KiB budget, 1000 entries: a few documents of 2 KiB (plus their JSON and the
    // per-entry allowance) fit.
    let cache = CachedBackend::new(
        inner.clone(),
        CacheOptions {
            l1_max_bytes: 16 * 1024,
            l1_max_entries: 1000,
            ..CacheOptions::default()
        },
    )
    .expect("cache");
    for id in &ids {
        cache.get_by_id(*id).await.expect("read");
    }
    cache.sync().await;
    let stats = cache.cache_stats().expect("stats");
    assert!(
        stats.l1_entries <= 8,
        "byte budget bounds the entries: {stats:?}"
    );
    assert!(stats.evictions >= 30, "evictions are counted: {stats:?}");

    // Entry limit with small documents: 5 entries in a 1 MiB budget.
    let cache = CachedBackend::new(
        inner,
        CacheOptions {
            l1_max_bytes: 1024 * 1024,
            l1_max_entries: 5,
            ..CacheOptions::default()
        },
    )
    .expect("cache");
    for id in &ids {
        cache.get_by_id(*id).await.expect("read");
    }
    cache.sync().await;
    let stats = cache.cache_stats().expect("stats");
    assert!(stats.l1_entries <= 5, "entry limit holds: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_and_precise_invalidation() {
    let (_dir, inner) = sqlite().await;
    let cache = CachedBackend::new(inner, CacheOptions::default()).expect("cache");
    let a = cache.register(schema("a", 1, 0)).await.expect("a").record;
    let b = cache.register(schema("b", 1, 0)).await.expect("b").record;
    let sa = a.subject.clone();
    assert_eq!(cache.get_latest(&sa).await.expect("latest").id, a.id);
    cache.get_latest(&b.subject).await.expect("latest b");
    assert_eq!(cache.get_latest(&sa).await.expect("latest").id, a.id);
    let s = cache.cache_stats().expect("stats");
    assert_eq!((s.l1_hits, s.misses), (1, 2));

    // A new version in `a` is visible at once and does not evict `b`.
    let a2 = cache.register(schema("a", 2, 0)).await.expect("a2").record;
    assert_eq!(cache.get_latest(&sa).await.expect("latest").id, a2.id);
    cache.get_latest(&b.subject).await.expect("latest b");
    let s = cache.cache_stats().expect("stats");
    assert_eq!(
        (s.l1_hits, s.misses),
        (2, 3),
        "b stayed cached; a was invalidated"
    );

    // State changes are visible through every cached path.
    cache.get_by_id(a2.id).await.expect("by id");
    cache
        .get_version(&sa, &a2.version)
        .await
        .expect("by version");
    cache
        .set_state(a2.id, SchemaState::Deprecated)
        .await
        .expect("deprecate");
    assert_eq!(
        cache.get_by_id(a2.id).await.expect("by id").state,
        SchemaState::Deprecated
    );
    assert_eq!(
        cache.get_version(&sa, &a2.version).await.expect("v").state,
        SchemaState::Deprecated
    );
    assert_eq!(
        cache.get_latest(&sa).await.expect("latest").state,
        SchemaState::Deprecated
    );
    cache.soft_delete_subject(&sa).await.expect("delete");
    assert!(
        cache.get_latest(&sa).await.is_err(),
        "latest of a deleted subject is gone"
    );
    assert_eq!(
        cache.get_by_id(a.id).await.expect("by id").state,
        SchemaState::Deleted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_loads_the_most_read_schemas() {
    let (_dir, inner) = sqlite().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            inner
                .register(schema("w", n, 0))
                .await
                .expect("register")
                .record
                .id,
        );
    }
    for (i, id) in ids.iter().enumerate() {
        for _ in 0..=i {
            inner.get_by_id(*id).await.expect("read");
        }
    }
    inner.run_maintenance().await.expect("flush counters");
    let cache = CachedBackend::new(inner, CacheOptions::default()).expect("cache");
    assert_eq!(cache.warm(3, Duration::from_secs(2)).await, 3);
    for id in &ids[2..] {
        cache.get_by_id(*id).await.expect("read");
    }
    let s = cache.cache_stats().expect("stats");
    assert_eq!(
        (s.l1_hits, s.misses),
        (3, 0),
        "the three most read were warm"
    );
}

/// L2 stores what a miss read, serves it to a second cache (another server), and a write
/// through one cache removes it from Redis and from the other cache's L1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2_is_shared_and_invalidated_across_caches() {
    let (_dir, inner) = sqlite().await;
    let prefix = unique_prefix();
    let options = CacheOptions {
        redis_url: Some(redis_url()),
        key_prefix: prefix.clone(),
        ..CacheOptions::default()
    };
    let one = CachedBackend::new(inner.clone(), options.clone()).expect("cache one");
    let two = CachedBackend::new(inner.clone(), options).expect("cache two");
    // Both subscribed before the test goes on.
    wait_for_l2(&[&one, &two]).await;
    let rec = one
        .register(schema("shared", 1, 0))
        .await
        .expect("register")
        .record;
    one.get_by_id(rec.id).await.expect("miss fills L2");
    two.get_by_id(rec.id).await.expect("hit from L2");
    assert_eq!(two.cache_stats().expect("stats").l2_hits, 1);
    two.get_by_id(rec.id).await.expect("now from L1");
    assert_eq!(two.cache_stats().expect("stats").l1_hits, 1);

    let client = redis::Client::open(redis_url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let key = format!("{prefix}:v1:id:{}", rec.id);
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("exists");
    assert!(exists, "the entry is in Redis");

    one.set_state(rec.id, SchemaState::Deprecated)
        .await
        .expect("deprecate via one");
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("exists");
    assert!(!exists, "the write removed it from Redis");
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let seen = two.get_by_id(rec.id).await.expect("read via two");
        if seen.state == SchemaState::Deprecated {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "two's L1 was not invalidated"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    one.close().await;
    two.close().await;
}

/// A new version is written through to L2 under its id and its version: another server's first
/// read of it is an L2 hit, not a database query. A version changed since (its id's epoch
/// exists) is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_writes_through_to_l2() {
    let (_dir, inner) = sqlite().await;
    let options = CacheOptions {
        redis_url: Some(redis_url()),
        key_prefix: unique_prefix(),
        ..CacheOptions::default()
    };
    let writer = CachedBackend::new(inner.clone(), options.clone()).expect("writer");
    let reader = CachedBackend::new(inner.clone(), options).expect("reader");
    wait_for_l2(&[&writer, &reader]).await;
    let single = writer
        .register(schema("through", 1, 0))
        .await
        .expect("register")
        .record;
    let batch = writer
        .register_all(vec![schema("through", 2, 0), schema("through.b", 3, 0)])
        .await
        .expect("register_all");
    let mut records = vec![single.clone()];
    records.extend(batch.iter().map(|r| r.record.clone()));
    for r in &records {
        assert_eq!(reader.get_by_id(r.id).await.expect("by id").id, r.id);
        let by_version = reader
            .get_version(&r.subject, &r.version)
            .await
            .expect("by version");
        assert_eq!(by_version.id, r.id);
    }
    let stats = reader.cache_stats().expect("stats");
    assert_eq!((stats.l2_hits, stats.misses), (6, 0), "{stats:?}");
    // `latest` is not written through (only the database knows whether a version is latest).
    reader.get_latest(&single.subject).await.expect("latest");
    assert_eq!(reader.cache_stats().expect("stats").misses, 1);

    // An identical registration creates nothing and writes nothing through; a state change
    // removes the entry, and the next reader sees the new state.
    let again = writer
        .register(schema("through", 1, 0))
        .await
        .expect("again");
    assert!(!again.created);
    writer
        .set_state(single.id, SchemaState::Deprecated)
        .await
        .expect("deprecate");
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while reader.get_by_id(single.id).await.expect("read").state != SchemaState::Deprecated
        || reader
            .get_version(&single.subject, &single.version)
            .await
            .expect("read")
            .state
            != SchemaState::Deprecated
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the reader kept the written-through state"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.close().await;
    reader.close().await;
}

/// The write-through guard itself: a version whose id's epoch exists (a state change or a
/// delete touched it) is not stored under either key; a fresh one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_through_refuses_a_version_touched_since_creation() {
    use schema_registry_storage::cache::keys::Invalidation;
    use schema_registry_storage::cache::l2::{L2Options, L2};

    let (_dir, inner) = sqlite().await;
    let fresh = inner
        .register(schema("guard", 1, 0))
        .await
        .expect("fresh")
        .record;
    let touched = inner
        .register(schema("guard", 2, 0))
        .await
        .expect("touched")
        .record;
    let prefix = unique_prefix();
    let l2 = L2::new(L2Options {
        url: redis_url(),
        ttl: Duration::from_secs(60),
        timeout: Duration::from_secs(2),
        prefix: prefix.clone(),
        ca_cert: None,
        breaker_threshold: 3,
        breaker_cooldown: Duration::from_secs(1),
    })
    .expect("l2");
    let mut changed = Invalidation::default();
    changed.changed(&touched);
    l2.invalidate(changed).await;
    l2.fill_new(&[&fresh, &touched]).await.expect("fill");

    let client = redis::Client::open(redis_url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    for (record, stored) in [(&fresh, true), (&touched, false)] {
        for key in [
            format!("{prefix}:v1:id:{}", record.id),
            format!("{prefix}:v1:ver:{}:{}", record.version, record.subject),
        ] {
            let exists: bool = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("exists");
            assert_eq!(exists, stored, "{key}");
        }
    }
    l2.stop();
}

/// With a password-protected Redis: the right password gives a working L2; a wrong one leaves
/// L2 degraded while every read still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_auth() {
    let redis = PrivateRedis::start(Some("s3cret-pass"));
    let (_dir, inner) = sqlite().await;
    let rec = inner
        .register(schema("auth", 1, 0))
        .await
        .expect("register")
        .record;

    let good = CachedBackend::new(
        inner.clone(),
        CacheOptions {
            redis_url: Some(redis.url()),
            ..CacheOptions::default()
        },
    )
    .expect("cache");
    good.get_by_id(rec.id).await.expect("miss");
    let s = good.cache_stats().expect("stats");
    assert_eq!(s.l2_errors, 0, "authenticated: {s:?}");
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let n: i64 = redis::cmd("DBSIZE")
        .query_async(&mut conn)
        .await
        .expect("dbsize");
    assert!(n >= 1, "the entry was written with AUTH");

    let bad = CachedBackend::new(
        inner,
        CacheOptions {
            redis_url: Some(redis.url_with_password(Some("wrong"))),
            ..CacheOptions::default()
        },
    )
    .expect("cache");
    for _ in 0..5 {
        assert_eq!(
            bad.get_by_id(rec.id).await.expect("reads never fail").id,
            rec.id
        );
    }
    let s = bad.cache_stats().expect("stats");
    assert_eq!(s.l2_state, "degraded");
    assert!(s.l2_errors >= 1, "{s:?}");
    good.close().await;
    bad.close().await;
}

/// The default L1 is bounded by memory: it holds far more small versions than the storage
/// 10,000 entries a count-sized L1 holds, and the per-entry allowance counts against the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_l1_is_bounded_by_memory_not_by_a_count() {
    use schema_registry_storage::cache::keys::CacheKey;
    use schema_registry_storage::cache::l1::{L1Options, ENTRY_OVERHEAD_BYTES, L1};
    use schema_registry_storage::EncodedRecord;

    /// Fills `n` id keys with copies of `encoded`, then lets moka settle its counts.
    async fn fill_ids(l1: &L1, encoded: &Arc<EncodedRecord>, n: u128) {
        for i in 0..n {
            let key = CacheKey::Id(uuid::Uuid::from_u128(i));
            let epoch = l1.epoch(&key);
            l1.fill(key, encoded.clone(), epoch).await;
        }
        l1.sync().await;
    }

    let (_dir, inner) = sqlite().await;
    let rec = inner
        .register(schema("small", 1, 0))
        .await
        .expect("register")
        .record;
    let encoded = Arc::new(EncodedRecord::new(
        rec,
        &[&schema_registry_api::native::json::RECORD],
    ));
    let l1 = L1::new(&CacheOptions::default().l1_options());
    let room = l1.capacity_for(&encoded);
    assert!(
        (100_000..1_000_000).contains(&room),
        "the default budget holds {room} small versions"
    );
    fill_ids(&l1, &encoded, 20_000).await;
    assert_eq!(
        l1.entry_count(),
        20_000,
        "twice a count-sized L1's 10,000 fit"
    );

    // A budget of exactly 50 entries' weight, allowance included, holds at most 50 of them
    // (without the allowance, more would fit).
    let weight = encoded.weight_bytes() + ENTRY_OVERHEAD_BYTES;
    let tight = L1::new(&L1Options {
        byte_budget: 50 * weight,
        ..CacheOptions::default().l1_options()
    });
    assert_eq!(tight.capacity_for(&encoded), 50);
    fill_ids(&tight, &encoded, 200).await;
    // The 50th entry fits exactly; after that each admission swaps one entry for another.
    assert_eq!(tight.entry_count(), 50, "entries in a 50-entry budget");
}
