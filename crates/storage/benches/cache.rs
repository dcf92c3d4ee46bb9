//! Cache-tier benchmarks (issue 4): L1 (moka) and L2 (Redis) hits and fills, the L2 codec
//! against JSON, L1 under concurrent readers, an end-to-end cached read against an uncached
//! SQLite read, and a Zipf hit-rate simulation over the real L1. Results: docs/PERFORMANCE.md.
//!
//! Needs a real Redis: run it through the test script, which provides `REDIS_URL`:
//!
//! ```text
//! scripts/test.sh -- cargo bench -p llm-schema-registry-storage --bench cache
//! ```
//!
//! Without `REDIS_URL` the bench panics: it never silently skips the L2 figures.
//!
//! The hit-rate simulation is not a criterion timing: it runs once, before the timed
//! benchmarks, and prints its table on stderr (lines starting with `hit_rate`). The encoded sizes
//! of the codec comparison are printed the same way (lines starting with `codec size`), and so is
//! an interleaved comparison of the L2 read with raw Redis GETs (lines starting with
//! `interleaved`; it runs `redis-benchmark` when it is on PATH), which holds up better than
//! separate criterion timings on a shared machine. Both run even when a criterion filter is given.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use schema_registry_core::{
    NewSchema, SchemaContent, SchemaFormat, SchemaRecord, SchemaReference, SchemaState,
    SchemaVersion, Subject, VersionRequest,
};
use schema_registry_storage::cache::codec::{decode, encode};
use schema_registry_storage::cache::keys::CacheKey;
use schema_registry_storage::cache::l1::{L1Options, L1};
use schema_registry_storage::cache::l2::{L2Options, L2};
use schema_registry_storage::{
    CacheOptions, CachedBackend, EncodedRecord, Operations, SqliteBackend, SqliteOptions, Storage,
    StorageBackend,
};
use schema_registry_testkit::unique_prefix;
use serde_json::{json, Map, Value};
use tokio::runtime::Runtime;
use uuid::Uuid;

/// Entries in the warm L1: a count-sized L1 (the default until the byte budget
/// became the bound).
const WARM_ENTRIES: usize = 10_000;
/// Gets each task does in `l1/concurrent_get`.
const GETS_PER_TASK: usize = 1_000;
/// Distinct keys `l2/get_hit` cycles over.
const L2_KEYS: usize = 1_000;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A realistic JSON Schema (an event with typed, described properties) whose canonical form is
/// at least `target` bytes: properties are added until it is.
fn json_schema(target: usize) -> SchemaContent {
    let kinds = [
        json!({"type": "string", "maxLength": 256}),
        json!({"type": "integer", "minimum": 0}),
        json!({"type": "string", "format": "date-time"}),
        json!({"type": "number", "exclusiveMinimum": 0}),
        json!({"type": "boolean"}),
        json!({"type": "string", "enum": ["pending", "paid", "shipped", "cancelled"]}),
    ];
    let mut properties = Map::new();
    let mut required = Vec::new();
    for i in 0.. {
        let mut p = kinds[i % kinds.len()].clone();
        p["description"] = json!(format!("Field {i} of the order, as sent by checkout."));
        properties.insert(format!("field_{i:03}"), p);
        if i % 3 == 0 {
            required.push(json!(format!("field_{i:03}")));
        }
        let doc = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://schemas.example.com/commerce/orders/order-placed.json",
            "title": "OrderPlaced",
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        });
        let content = SchemaContent::parse(SchemaFormat::JsonSchema, &doc).expect("schema");
        if content.size_bytes() >= target as u64 {
            return content;
        }
    }
    unreachable!()
}

fn metadata() -> Map<String, Value> {
    match json!({
        "owner": "team-checkout",
        "pii": false,
        "retention_days": 30,
        "source": "checkout-service",
    }) {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn record(content: SchemaContent) -> SchemaRecord {
    // Microsecond precision, as records come back from the database (and from the codec).
    let now = chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros())
        .expect("now");
    SchemaRecord {
        id: Uuid::now_v7(),
        subject: Subject::parse("commerce.orders.order-placed").expect("subject"),
        version: SchemaVersion::parse("3.2.0").expect("version"),
        content,
        state: SchemaState::Active,
        description: Some("Emitted once per order when checkout completes.".into()),
        metadata: metadata(),
        tags: vec!["orders".into(), "checkout".into()],
        references: vec![SchemaReference {
            subject: Subject::parse("commerce.common.money").expect("subject"),
            version: SchemaVersion::parse("1.4.0").expect("version"),
        }],
        created_at: now,
        updated_at: now,
    }
}

/// The L1 options the server derives from the default [`CacheOptions`].
fn default_options() -> L1Options {
    CacheOptions::default().l1_options()
}

/// A count-sized L1: 10,000 entries (`WARM_ENTRIES`), the default budget, TTL and TTI.
/// The warm-L1 benches use it so that their L1 is full and a fill of a new key evicts.
fn report_options() -> L1Options {
    L1Options {
        max_entries: WARM_ENTRIES as u64,
        ..default_options()
    }
}

fn id_key(n: u128) -> CacheKey {
    CacheKey::Id(Uuid::from_u128(n))
}

/// What `CachedBackend` stores in L1 for `rec`: the record and its JSON, encoded at fill.
fn encoded(rec: &SchemaRecord) -> Arc<EncodedRecord> {
    Arc::new(EncodedRecord::new(
        rec.clone(),
        &[&schema_registry_api::native::json::RECORD],
    ))
}

/// The count-sized L1, full: `WARM_ENTRIES` copies of `rec` under distinct id keys, and those keys.
fn warm_l1(rt: &Runtime, rec: &SchemaRecord) -> (Arc<L1>, Arc<Vec<CacheKey>>) {
    let l1 = Arc::new(L1::new(&report_options()));
    let keys: Vec<CacheKey> = (0..WARM_ENTRIES as u128)
        .map(|n| id_key((1 << 100) + n))
        .collect();
    rt.block_on(async {
        for k in &keys {
            let e = l1.epoch(k);
            l1.fill(k.clone(), encoded(rec), e).await;
        }
        l1.sync().await;
        let mut hits = 0;
        for k in &keys {
            hits += usize::from(l1.get(k, None).await.is_some());
        }
        l1.sync().await;
        assert_eq!(
            hits, WARM_ENTRIES,
            "the warm L1 must hold every one of its {WARM_ENTRIES} entries"
        );
        eprintln!("l1 warm: {} entries", l1.entry_count());
    });
    (l1, Arc::new(keys))
}

/// A fixed pseudo-random visiting order over `n` indexes (so hits do not walk the keys in
/// insertion order).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64(seed);
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// splitmix64: a tiny seeded PRNG, enough for benchmarks and the simulation.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// 1. L1 get / fill on a warm L1, 4. L1 under concurrent readers
// ---------------------------------------------------------------------------------------------

fn bench_l1(c: &mut Criterion, rt: &Runtime, rec: &SchemaRecord) {
    let (l1_get, keys) = warm_l1(rt, rec);
    let (l1_fill, fill_keys) = warm_l1(rt, rec);
    let order = shuffled(WARM_ENTRIES, 0x5EED_0001);

    let mut group = c.benchmark_group("l1");
    group.throughput(Throughput::Elements(1));

    {
        let (l1, keys, order) = (&*l1_get, &*keys, &order);
        let mut i = 0usize;
        group.bench_function("get_hit", |b| {
            b.to_async(rt).iter(move || {
                i = (i + 1) % WARM_ENTRIES;
                let key = &keys[order[i]];
                async move { black_box(l1.get(key, None).await.expect("hit")) }
            })
        });
    }
    {
        // The same key every time (its moka node stays in the CPU caches).
        let (l1, key) = (&*l1_get, &keys[0]);
        group.bench_function("get_hit_same_key", |b| {
            b.to_async(rt)
                .iter(|| async move { black_box(l1.get(key, None).await.expect("hit")) })
        });
    }
    {
        // A fill after a miss: a key L1 does not hold, into a full L1 (so moka evicts or
        // rejects one entry per fill). Includes the epoch read, the record clone and its JSON
        // encoding (what a fill in CachedBackend pays).
        let (l1, rec) = (&*l1_fill, rec);
        let mut next: u128 = 1 << 120;
        group.bench_function("fill", |b| {
            b.to_async(rt).iter(move || {
                next += 1;
                let key = id_key(next);
                async move {
                    let epoch = l1.epoch(&key);
                    l1.fill(key, encoded(rec), epoch).await;
                }
            })
        });
    }
    {
        // A fill of a key L1 already holds (replacement, no eviction).
        let (l1, keys, order, rec) = (&*l1_fill, &*fill_keys, &order, rec);
        let mut i = 0usize;
        group.bench_function("fill_existing", |b| {
            b.to_async(rt).iter(move || {
                i = (i + 1) % WARM_ENTRIES;
                let key = keys[order[i]].clone();
                async move {
                    let epoch = l1.epoch(&key);
                    l1.fill(key, encoded(rec), epoch).await;
                }
            })
        });
    }

    for tasks in [1usize, 10, 50, 100] {
        group.throughput(Throughput::Elements((tasks * GETS_PER_TASK) as u64));
        group.bench_with_input(
            BenchmarkId::new("concurrent_get", tasks),
            &tasks,
            |b, &tasks| {
                b.to_async(rt).iter(|| {
                    let (l1, keys) = (l1_get.clone(), keys.clone());
                    async move {
                        let handles: Vec<_> = (0..tasks)
                            .map(|t| {
                                let (l1, keys) = (l1.clone(), keys.clone());
                                tokio::spawn(async move {
                                    let mut hits = 0usize;
                                    let mut k = t * 7_919;
                                    for _ in 0..GETS_PER_TASK {
                                        k = (k + 13) % WARM_ENTRIES;
                                        hits += usize::from(l1.get(&keys[k], None).await.is_some());
                                    }
                                    hits
                                })
                            })
                            .collect();
                        let mut hits = 0;
                        for h in handles {
                            hits += h.await.expect("task");
                        }
                        assert_eq!(hits, tasks * GETS_PER_TASK, "every get must hit");
                    }
                })
            },
        );
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// 2. L2 against the real Redis
// ---------------------------------------------------------------------------------------------

fn l2_options(redis_url: &str, prefix: &str) -> L2Options {
    L2Options {
        url: redis_url.to_string(),
        ttl: Duration::from_secs(3600),
        // Longer than the product's 250 ms so that a scheduling hiccup on a shared machine
        // does not abort the run; it does not change the cost of a call that succeeds.
        timeout: Duration::from_secs(5),
        prefix: prefix.to_string(),
        ca_cert: None,
        breaker_threshold: 3,
        breaker_cooldown: Duration::from_secs(5),
    }
}

fn bench_l2(c: &mut Criterion, rt: &Runtime, redis_url: &str, records: &[(&str, &SchemaRecord)]) {
    let prefix = unique_prefix();
    eprintln!("l2: redis {redis_url}, key prefix {prefix}");
    let l2 = rt.block_on(async {
        let l2 = L2::new(l2_options(redis_url, &prefix)).expect("L2");
        assert!(l2.ready().await, "L2 not ready");
        l2
    });
    let key_set = |size: usize| -> Vec<CacheKey> {
        (0..L2_KEYS as u128)
            .map(|n| id_key(((size as u128 + 1) << 64) + n))
            .collect()
    };

    let mut group = c.benchmark_group("l2");
    group.throughput(Throughput::Elements(1));
    for (size, (label, rec)) in records.iter().enumerate() {
        // L2_KEYS keys per size, filled and checked to be hits.
        let keys = key_set(size);
        rt.block_on(async {
            for k in &keys {
                l2.fill(k, rec, "").await.expect("L2 fill");
            }
            for k in &keys {
                let found = l2.get(k).await.expect("L2 get");
                assert_eq!(found.record.as_ref(), Some(*rec), "L2 must hold the record");
            }
        });
        {
            let (l2, keys) = (&l2, &keys);
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new("get_hit", label), |b| {
                b.to_async(rt).iter(move || {
                    i = (i + 1) % L2_KEYS;
                    let key = &keys[i];
                    async move {
                        let found = l2.get(key).await.expect("L2 get");
                        black_box(found.record.expect("hit"))
                    }
                })
            });
        }
        {
            // A fill as after a database read: Lua compare-and-set against the epoch ("" = the
            // epoch key is absent, as for a key never invalidated). Includes encoding.
            let (l2, keys) = (&l2, &keys);
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new("fill", label), |b| {
                b.to_async(rt).iter(move || {
                    i = (i + 1) % L2_KEYS;
                    let key = &keys[i];
                    async move { l2.fill(key, rec, "").await.expect("L2 fill") }
                })
            });
        }
    }

    // Decomposition of the L2 read (1 KiB record), to compare with redis-benchmark:
    // (a) the same L2 get on a current-thread runtime: the caller and the connection's driver
    //     task share one thread, so no cross-thread wake-ups (redis-benchmark's situation);
    // (b) the L2 read's own command (MGET of the value and its epoch key) through the redis
    //     crate directly: no decode, no timeout, no breaker;
    // (c) a plain GET of a 1024-byte value through the redis crate (what redis-benchmark
    //     -d 1024 sends), with a default ConnectionManager and with one configured as L2's.
    let ct = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current-thread runtime");
    let l2_ct = ct.block_on(async {
        let l2 = L2::new(l2_options(redis_url, &prefix)).expect("L2");
        assert!(l2.ready().await, "L2 not ready");
        l2
    });
    let keys_1k = key_set(0);
    let raw_key = format!("{prefix}:raw");
    let (conn, lazy) = rt.block_on(async {
        let client = redis::Client::open(redis_url).expect("redis url");
        let mut conn = redis::aio::ConnectionManager::new(client.clone())
            .await
            .expect("redis connection");
        let () = redis::cmd("SET")
            .arg(&raw_key)
            .arg(vec![b'x'; 1024])
            .query_async(&mut conn)
            .await
            .expect("SET");
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let lazy = redis::aio::ConnectionManager::new_lazy_with_config(client, config)
            .expect("redis connection");
        (conn, lazy)
    });
    let mget_keys: Vec<[String; 2]> = keys_1k
        .iter()
        .map(|k| [k.redis_key(&prefix), k.epoch().redis_key(&prefix)])
        .collect();
    let probes = Probes {
        l2: &l2,
        l2_ct: &l2_ct,
        keys: &keys_1k,
        conn: &conn,
        lazy: &lazy,
        raw_key: &raw_key,
        mget_keys: &mget_keys,
    };
    {
        let probes = &probes;
        let mut i = 0usize;
        group.bench_function(
            BenchmarkId::new("get_hit_current_thread", records[0].0),
            |b| {
                b.to_async(&ct).iter(move || {
                    i = (i + 1) % L2_KEYS;
                    probes.l2_get(probes.l2_ct, i)
                })
            },
        );
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("redis_rs_mget", records[0].0), |b| {
            b.to_async(rt).iter(move || {
                i = (i + 1) % L2_KEYS;
                probes.raw_mget(i)
            })
        });
        group.bench_function("redis_rs_get_l2_config/1024B", |b| {
            b.to_async(rt).iter(|| probes.raw_get(probes.lazy))
        });
        group.bench_function("redis_rs_get/1024B", |b| {
            b.to_async(rt).iter(|| probes.raw_get(probes.conn))
        });
    }
    group.finish();
    interleaved(rt, &ct, &probes, redis_url);
    l2_ct.stop();
    l2.stop();
}

/// What the L2 decomposition and the interleaved comparison call.
struct Probes<'a> {
    l2: &'a L2,
    l2_ct: &'a L2,
    keys: &'a [CacheKey],
    conn: &'a redis::aio::ConnectionManager,
    lazy: &'a redis::aio::ConnectionManager,
    raw_key: &'a str,
    mget_keys: &'a [[String; 2]],
}

impl Probes<'_> {
    async fn l2_get(&self, l2: &L2, i: usize) -> SchemaRecord {
        let found = l2.get(&self.keys[i % L2_KEYS]).await.expect("L2 get");
        black_box(found.record.expect("hit"))
    }

    async fn raw_mget(&self, i: usize) -> Vec<u8> {
        let mut conn = self.conn.clone();
        let (v, e): (Option<Vec<u8>>, Option<String>) = redis::cmd("MGET")
            .arg(&self.mget_keys[i % L2_KEYS][..])
            .query_async(&mut conn)
            .await
            .expect("MGET");
        assert!(e.is_none());
        black_box(v.expect("value"))
    }

    async fn raw_get(&self, conn: &redis::aio::ConnectionManager) -> Vec<u8> {
        let mut conn = conn.clone();
        let v: Vec<u8> = redis::cmd("GET")
            .arg(self.raw_key)
            .query_async(&mut conn)
            .await
            .expect("GET");
        assert_eq!(v.len(), 1024);
        black_box(v)
    }
}

/// `redis-benchmark -t get -c 1 -d 1024 -n <n> -q` against the same Redis: µs per GET, or
/// `None` (said on stderr) when it cannot be run.
fn redis_benchmark_get_us(redis_url: &str, n: usize) -> Option<f64> {
    let hostport = redis_url.trim_start_matches("redis://");
    let hostport = hostport.rsplit('@').next()?.split('/').next()?;
    let (host, port) = hostport.rsplit_once(':')?;
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "-h", host, "-p", port, "-t", "get", "-c", "1", "-d", "1024", "-q",
        ])
        .args(["-n", &n.to_string()])
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        other => {
            eprintln!("interleaved: redis-benchmark could not be run: {other:?}");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let rps: f64 = text
        .split(['\r', '\n'])
        .filter_map(|l| l.trim().strip_prefix("GET: "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .next_back()?;
    Some(1e6 / rps)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The L2 read and its floors measured in alternating blocks, so that the load of a shared
/// machine, which drifts over seconds, affects them alike. Prints the median µs/op over the
/// rounds, its range, and the median of the per-round ratios to a raw GET.
fn interleaved(rt: &Runtime, ct: &Runtime, p: &Probes<'_>, redis_url: &str) {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let (rounds, ops) = if bench_mode { (20, 500) } else { (2, 10) };
    let names = [
        "L2::get (multi-thread)",
        "L2::get (current-thread)",
        "redis-rs MGET (no decode)",
        "redis-rs GET 1024 B (L2 config)",
        "redis-rs GET 1024 B",
        "redis-benchmark GET -c 1 -d 1024",
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let per_op = |t: Instant| t.elapsed().as_secs_f64() * 1e6 / ops as f64;
    for round in 0..rounds {
        for v in (0..names.len()).map(|k| (k + round) % names.len()) {
            let t = Instant::now();
            let us = match v {
                0 => rt.block_on(async {
                    for i in 0..ops {
                        p.l2_get(p.l2, i).await;
                    }
                    per_op(t)
                }),
                1 => ct.block_on(async {
                    for i in 0..ops {
                        p.l2_get(p.l2_ct, i).await;
                    }
                    per_op(t)
                }),
                2 => rt.block_on(async {
                    for i in 0..ops {
                        p.raw_mget(i).await;
                    }
                    per_op(t)
                }),
                3 => rt.block_on(async {
                    for _ in 0..ops {
                        p.raw_get(p.lazy).await;
                    }
                    per_op(t)
                }),
                4 => rt.block_on(async {
                    for _ in 0..ops {
                        p.raw_get(p.conn).await;
                    }
                    per_op(t)
                }),
                _ => match redis_benchmark_get_us(redis_url, ops * 4) {
                    Some(us) => us,
                    None => continue,
                },
            };
            samples[v].push(us);
        }
    }
    eprintln!(
        "interleaved: {rounds} rounds x {ops} sequential ops per variant (redis-benchmark: {} GETs), rotating order",
        ops * 4
    );
    eprintln!("interleaved | variant | median us/op | min | max | median ratio to redis-rs GET | median ratio to redis-benchmark GET");
    let ratio = |a: usize, b: usize| -> Option<f64> {
        if samples[a].len() != samples[b].len() {
            return None;
        }
        let mut r: Vec<f64> = samples[a]
            .iter()
            .zip(&samples[b])
            .map(|(x, y)| x / y)
            .collect();
        (!r.is_empty()).then(|| median(&mut r))
    };
    for (v, name) in names.iter().enumerate() {
        let mut s = samples[v].clone();
        if s.is_empty() {
            eprintln!("interleaved | {name} | not measured");
            continue;
        }
        let (lo, hi) = (
            s.iter().copied().fold(f64::INFINITY, f64::min),
            s.iter().copied().fold(0.0, f64::max),
        );
        let fmt = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
        eprintln!(
            "interleaved | {name} | {:.1} | {lo:.1} | {hi:.1} | {} | {}",
            median(&mut s),
            fmt(ratio(v, 4)),
            fmt(ratio(v, 5)),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Codec: MessagePack (the L2 encoding) against JSON (the API shape)
// ---------------------------------------------------------------------------------------------

fn bench_codec(c: &mut Criterion, records: &[(&str, &SchemaRecord)]) {
    let mut group = c.benchmark_group("codec");
    for (label, rec) in records {
        let mp = encode(rec).expect("encode");
        let js = schema_registry_api::native::json::record_json(rec);
        assert_eq!(decode(&mp).expect("decode").as_ref(), Some(*rec));
        eprintln!(
            "codec size {label}: content {} B, msgpack {} B, json {} B (msgpack/json {:.3})",
            rec.size_bytes(),
            mp.len(),
            js.len(),
            mp.len() as f64 / js.len() as f64
        );
        group.bench_with_input(
            BenchmarkId::new("encode", format!("msgpack-{label}")),
            *rec,
            |b, r| b.iter(|| encode(black_box(r)).expect("encode")),
        );
        group.bench_with_input(
            BenchmarkId::new("encode", format!("json-{label}")),
            *rec,
            |b, r| b.iter(|| schema_registry_api::native::json::record_json(black_box(r))),
        );
        group.bench_with_input(
            BenchmarkId::new("decode", format!("msgpack-{label}")),
            &mp,
            |b, bytes| b.iter(|| decode(black_box(bytes)).expect("decode").expect("v1")),
        );
        group.bench_with_input(
            BenchmarkId::new("decode", format!("json-{label}")),
            &js,
            |b, bytes| b.iter(|| serde_json::from_slice::<Value>(black_box(bytes)).expect("json")),
        );
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// End to end: a cached read (L1 hit through CachedBackend) against an uncached SQLite read
// ---------------------------------------------------------------------------------------------

fn bench_cached(c: &mut Criterion, rt: &Runtime, rec: &SchemaRecord) {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let (inner, cached, id) = rt.block_on(async {
        let inner: Arc<dyn Storage> = Arc::new(
            SqliteBackend::open(&url, &SqliteOptions::default())
                .await
                .expect("open sqlite"),
        );
        let dep = &rec.references[0];
        inner
            .register(NewSchema::new(
                dep.subject.clone(),
                VersionRequest::Exact(dep.version.clone()),
                SchemaContent::parse(
                    SchemaFormat::JsonSchema,
                    &json!({"type": "object", "properties": {"amount": {"type": "string"}, "currency": {"type": "string"}}}),
                )
                .expect("content"),
            ))
            .await
            .expect("register dependency");
        let id = inner
            .register(NewSchema {
                subject: rec.subject.clone(),
                version: VersionRequest::Exact(rec.version.clone()),
                content: rec.content.clone(),
                description: rec.description.clone(),
                metadata: rec.metadata.clone(),
                tags: rec.tags.clone(),
                references: rec.references.clone(),
            })
            .await
            .expect("register")
            .record
            .id;
        let options = CacheOptions {
            encodings: vec![&schema_registry_api::native::json::RECORD],
            ..CacheOptions::default()
        };
        let cached = CachedBackend::new(inner.clone(), options).expect("cache");
        cached.get_by_id(id).await.expect("fill L1");
        (inner, cached, id)
    });

    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Elements(1));
    {
        let cached = &cached;
        group.bench_function("cached_get_by_id_l1_hit", |b| {
            b.to_async(rt)
                .iter(|| async move { black_box(cached.get_by_id(id).await.expect("get")) })
        });
    }
    {
        let inner = &inner;
        group.bench_function("sqlite_get_by_id_uncached", |b| {
            b.to_async(rt)
                .iter(|| async move { black_box(inner.get_by_id(id).await.expect("get")) })
        });
    }
    group.finish();
    let stats = cached.cache_stats().expect("stats");
    eprintln!(
        "read: cached backend l1_hits {} l2_hits {} misses {}",
        stats.l1_hits, stats.l2_hits, stats.misses
    );
    rt.block_on(async {
        cached.close().await;
    });
    drop(dir);
}

// ---------------------------------------------------------------------------------------------
// 5. Hit-rate simulation: Zipf over 100,000 schemas, the real L1, L2 modelled as unbounded
// ---------------------------------------------------------------------------------------------

/// The Zipf(s) CDF over ranks 1..=n (index 0 is rank 1).
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n)
        .map(|k| {
            acc += (k as f64).powf(-s);
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

fn zipf_sample(cdf: &[f64], rng: &mut SplitMix64) -> usize {
    let u = rng.unit();
    cdf.partition_point(|&c| c < u).min(cdf.len() - 1)
}

#[derive(Default, Clone, Copy)]
struct Tally {
    requests: u64,
    l1: u64,
    l2: u64,
    miss: u64,
}

impl Tally {
    fn pct(&self, n: u64) -> f64 {
        100.0 * n as f64 / self.requests as f64
    }
}

/// The hit-rate simulation, for the default L1 and for a 10,000-entry L1
/// (which, unlike the default, cannot hold 100,000 keys and so tests moka's admission policy).
fn hit_rate(rt: &Runtime, schemas: usize, requests: usize) {
    hit_rate_with(rt, "default L1", &default_options(), schemas, requests);
    hit_rate_with(
        rt,
        "a 10,000-entry L1",
        &report_options(),
        schemas,
        requests,
    );
}

fn hit_rate_with(rt: &Runtime, label: &str, options: &L1Options, schemas: usize, requests: usize) {
    // A small record, so that the question is how many keys L1 holds, not how big they are.
    let small = record(
        SchemaContent::parse(SchemaFormat::JsonSchema, &json!({"type": "object"}))
            .expect("content"),
    );
    let keys: Vec<CacheKey> = (0..schemas as u128)
        .map(|n| id_key((7 << 100) + n))
        .collect();
    let capacity = usize::try_from(L1::new(options).capacity_for(&encoded(&small)))
        .unwrap_or(usize::MAX)
        .clamp(1, schemas);
    eprintln!(
        "hit_rate: {schemas} schemas, {requests} requests, {label} (room for {capacity} such entries, TTL 1 h, TTI 30 min), L2 = unbounded set, seed 0x5EED"
    );
    eprintln!("hit_rate | s   | L1 hit % | L2 hit % | combined % | miss % | L1 hit % (2nd half) | combined % (2nd half) | ideal top-{capacity} % | L1 entries | L1 evictions | secs");
    for s in [0.8, 1.0, 1.2] {
        let cdf = zipf_cdf(schemas, s);
        let ideal = 100.0 * cdf[capacity - 1];
        let l1 = L1::new(options);
        let mut seen = vec![false; schemas];
        let mut rng = SplitMix64(0x5EED);
        let mut all = Tally::default();
        let mut second = Tally::default();
        let started = Instant::now();
        rt.block_on(async {
            for i in 0..requests {
                let r = zipf_sample(&cdf, &mut rng);
                let key = &keys[r];
                let epoch = l1.epoch(key);
                let t = if i >= requests / 2 {
                    Some(&mut second)
                } else {
                    None
                };
                let outcome = if l1.get(key, None).await.is_some() {
                    0
                } else if seen[r] {
                    // L2 hit: CachedBackend fills L1 from it.
                    l1.fill(key.clone(), encoded(&small), epoch).await;
                    1
                } else {
                    // Miss: the database, then L2 and L1 are filled.
                    seen[r] = true;
                    l1.fill(key.clone(), encoded(&small), epoch).await;
                    2
                };
                for tally in [Some(&mut all), t].into_iter().flatten() {
                    tally.requests += 1;
                    match outcome {
                        0 => tally.l1 += 1,
                        1 => tally.l2 += 1,
                        _ => tally.miss += 1,
                    }
                }
            }
            l1.sync().await;
        });
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "hit_rate | {s:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {ideal:.2} | {} | {} | {secs:.1}",
            all.pct(all.l1),
            all.pct(all.l2),
            all.pct(all.l1 + all.l2),
            all.pct(all.miss),
            second.pct(second.l1),
            second.pct(second.l1 + second.l2),
            l1.entry_count(),
            l1.evictions(),
        );
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let redis_url = match std::env::var("REDIS_URL") {
        Ok(url) if url.starts_with("redis") => url,
        _ => panic!(
            "the cache benchmark needs Redis for its L2 figures: run it through the test script, \
             which provides REDIS_URL: scripts/test.sh -- cargo bench -p llm-schema-registry-storage --bench cache"
        ),
    };
    // `cargo bench` passes --bench; `cargo test --benches` does not (criterion's test mode runs
    // each benchmark once): then the simulation runs small, as a smoke test.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let rt = runtime();

    let rec_1k = record(json_schema(1024));
    let rec_10k = record(json_schema(10 * 1024));
    eprintln!(
        "records: 1KiB content {} B, 10KiB content {} B",
        rec_1k.size_bytes(),
        rec_10k.size_bytes()
    );
    let records = [("1KiB", &rec_1k), ("10KiB", &rec_10k)];

    if bench_mode {
        hit_rate(&rt, 100_000, 2_000_000);
    } else {
        hit_rate(&rt, 100_000, 20_000);
    }

    let mut c = Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    bench_codec(&mut c, &records);
    bench_l1(&mut c, &rt, &rec_1k);
    bench_l2(&mut c, &rt, &redis_url, &records);
    bench_cached(&mut c, &rt, &rec_1k);
    c.final_summary();
}
