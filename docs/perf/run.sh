#!/usr/bin/env bash
# Reproduces the measurements of docs/PERFORMANCE.md (sections "Cached get-by-id vs bare axum"
# onwards).
#
#   scripts/test.sh -- bash docs/perf/run.sh PHASE [PHASE...]
#
# It first runs docs/perf/build.sh (release builds of the server, of the load generator beside
# it, which `llm-schema-registry load-test` runs, and of bare_axum; PERF_NO_BUILD=1 skips that).
#
# PHASE: machine | ceiling | loadtest | register | zipf | zipf2 | large | scaling | scaling_nocache |
#        scale1m | scale1m_db | scale1m_rate | scale1m_sized | diag
# (PERF_RECORD=sqlite with 'ceiling' also records a perf profile of that registry during wrk.)
# scripts/test.sh provides a throwaway PostgreSQL (DATABASE_URL, PG_BIN_DIR; fsync=off,
# synchronous_commit=off, full_page_writes=off), Redis (REDIS_URL) and s3s-fs (S3_ENDPOINT,
# S3_BUCKET_FOR_TESTS, AWS_*). Everything runs on 127.0.0.1; client and server share the box.
# Raw outputs (wrk text, load-test JSON, curl timings, server logs) go to $PERF_OUT
# (default /tmp/perf-results). Knobs: ZIPF_SCHEMAS (default 100000), SCALE_SCHEMAS (default
# 200000; 1000000 for scale1m), SCALE_SUBJECTS (default 10000), S1M_SIZED_BYTES (scale1m's
# sized L1, default 4 GiB).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$REPO/target/release/llm-schema-registry
BARE=$REPO/target/release/examples/bare_axum
OUT=${PERF_OUT:-/tmp/perf-results}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/perf-work.XXXXXX)
PIDS=()

# Another job on this box may run criterion benchmarks: wait (poll 20 s, up to 15 min) until
# none runs before each measured run, and flag a run during which one started.
busy() {
    pgrep -f 'release/deps/cache-' >/dev/null || pgrep -f 'cargo bench' >/dev/null ||
        pgrep -x redis-benchmark >/dev/null || pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null
}
wait_quiet() {
    local i
    for i in $(seq 1 45); do
        busy || return 0
        log "a benchmark is running; waiting"
        sleep 20
    done
    log "WARNING: a benchmark still runs after 15 min; measuring anyway"
    echo "$(date -u +%T) measured while a benchmark ran: $*" >>"$OUT/CONTAMINATED"
}
check_quiet() { # after a run
    if busy; then
        log "WARNING: a benchmark ran during $*"
        echo "$(date -u +%T) a benchmark ran during: $*" >>"$OUT/CONTAMINATED"
    fi
}

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

for v in DATABASE_URL REDIS_URL S3_ENDPOINT S3_BUCKET_FOR_TESTS PG_BIN_DIR; do
    [[ -n ${!v:-} ]] || { log "$v is not set: run under scripts/test.sh -- bash $0 ..."; exit 2; }
done
# Before anything is measured: the server, the load generator beside it, bare_axum.
bash "$REPO/docs/perf/build.sh"

# The server reads DATABASE_URL, REDIS_URL and S3_* from the environment: run it without them,
# so that every configuration is exactly what its flags say (AWS_* credentials stay).
server_env=(env -u DATABASE_URL -u DATABASE_READ_URL -u REDIS_URL -u S3_BUCKET -u S3_ENDPOINT
    -u S3_REGION -u S3_PATH_STYLE -u S3_ALLOW_HTTP -u S3_PREFIX)

# A fresh PostgreSQL database on the throwaway server; prints its URL.
fresh_db() {
    local name=$1
    "$PG_BIN_DIR/psql" "$DATABASE_URL" -q -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
    echo "${DATABASE_URL%/*}/$name"
}

# start_server NAME PORT [serve flags...]: fresh data dir; waits for /health/ready.
# Sets SERVER_PID.
start_server() {
    local name=$1 port=$2
    shift 2
    local dir=$WORK/data-$name
    mkdir -p "$dir"
    "${server_env[@]}" "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir" "$@" \
        >"$OUT/server-$name.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local _
    for _ in $(seq 1 300); do
        if curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; then
            log "server $name up on :$port (pid $SERVER_PID)"
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$OUT/server-$name.log" >&2; return 1; }
        sleep 0.2
    done
    log "server $name did not become ready"
    return 1
}

stop_pid() {
    local pid=$1 _ i
    for i in "${!PIDS[@]}"; do [[ ${PIDS[$i]} == "$pid" ]] && unset 'PIDS[i]'; done
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

loadtest() { # loadtest OUTFILE [load-test flags...]
    local out=$1
    shift
    wait_quiet "$out"
    log "load-test $* -> $out"
    "$BIN" load-test --no-progress --json "$@" >"$OUT/$out.json" 2>"$OUT/$out.err" || {
        log "load-test failed: $(tail -3 "$OUT/$out.err")"
        return 1
    }
    check_quiet "$out"
    jq -c '{thr: .throughput_ops_per_sec, err: .total_errors, lat: .latency_us, hit: .cache.run.hit_rate, cpu: .client_cpu.percent_of_one_core, seed: {n: .seeding.registrations, s: .seeding.secs, r: .seeding.registrations_per_sec, cat: .seeding.catalogue_versions, cats: .seeding.catalogue_secs}}' "$OUT/$out.json" >&2 || true
}

# A ~1 KiB JSON Schema document (canonical size ~1 KiB).
one_kib_schema() {
    python3 - <<'EOF'
import json
props = {f"field_{i:02d}": {"type": "string", "maxLength": 64, "description": f"field number {i}"} for i in range(14)}
doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "PerfEvent",
       "type": "object", "properties": props, "required": ["field_00", "field_01"],
       "additionalProperties": False}
print(json.dumps({"schema": doc, "description": "ceiling probe"}))
EOF
}

# ---------------------------------------------------------------------------
phase_machine() {
    {
        echo "== date"; date -u
        echo "== nproc"; nproc
        echo "== lscpu"; lscpu | head -20
        echo "== free -h"; free -h
        echo "== uname -r"; uname -r
        echo "== rustc"; rustc --version
        echo "== postgres"; "$PG_BIN_DIR/psql" "$DATABASE_URL" -Atc 'select version()'
        "$PG_BIN_DIR/psql" "$DATABASE_URL" -Atc "select name||'='||setting from pg_settings where name in ('fsync','synchronous_commit','full_page_writes','shared_buffers','max_connections')"
        echo "== redis"; redis-cli -u "$REDIS_URL" info server | grep -E 'redis_version'
        echo "== wrk"; wrk --version 2>&1 | head -1 || true
        echo "== pgbench"; "$PG_BIN_DIR/pgbench" --version
    } | tee "$OUT/machine.txt"
}

# ---------------------------------------------------------------------------
# 1. HTTP ceiling: cached get-by-id vs bare axum serving the same bytes.
cpu_ticks() { # utime+stime of a process and its threads, in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}
wrk_run() { # wrk_run OUTFILE URL SERVER_PID
    wait_quiet "$1"
    log "wrk -t2 -c64 -d15s --latency $2 -> $1"
    local t0 t1
    t0=$(cpu_ticks "$3")
    /usr/bin/time -f 'wrk_cpu_secs %U %S' wrk -t2 -c64 -d15s --latency "$2" >"$OUT/$1.txt" 2>&1
    t1=$(cpu_ticks "$3")
    echo "server_cpu_secs $(( t1 - t0 ))e-2" >>"$OUT/$1.txt"
    check_quiet "$1"
    grep -E 'cpu_secs' "$OUT/$1.txt" >&2 || true
    grep -E 'Requests/sec|^ +50%|^ +99%|Non-2xx|Socket errors' "$OUT/$1.txt" >&2 || true
}

ceiling_pair() { # ceiling_pair NAME PORT [serve flags...]
    local name=$1 port=$2
    shift 2
    start_server "$name" "$port" "$@"
    local pid=$SERVER_PID
    one_kib_schema >"$WORK/reg-$name.json"
    local id
    id=$(curl -fs -X POST "http://127.0.0.1:$port/api/v1/subjects/perf.ceiling/versions" \
        -H 'Content-Type: application/json' --data-binary "@$WORK/reg-$name.json" | jq -r .id)
    curl -fs -D "$OUT/headers-$name.txt" "http://127.0.0.1:$port/api/v1/schemas/$id" -o "$OUT/body-$name.json"
    log "$name: id $id, body $(wc -c <"$OUT/body-$name.json") bytes, document size $(jq .size_bytes "$OUT/body-$name.json")"
    # warm the cache and the connections
    wrk -t2 -c64 -d2s "http://127.0.0.1:$port/api/v1/schemas/$id" >/dev/null 2>&1
    curl -fs "http://127.0.0.1:$port/api/v1/stats" >"$OUT/stats-before-$name.json"
    wrk_run "wrk-$name" "http://127.0.0.1:$port/api/v1/schemas/$id" "$pid"
    curl -fs "http://127.0.0.1:$port/api/v1/stats" >"$OUT/stats-after-$name.json"
    if [[ ${PERF_RECORD:-} == "$name" ]] && command -v perf >/dev/null; then
        log "perf record on $name during a second wrk run"
        wrk -t2 -c64 -d15s "http://127.0.0.1:$port/api/v1/schemas/$id" >"$OUT/wrk-$name-perf.txt" 2>&1 &
        local wpid=$!
        sleep 3
        perf record -F 499 -g -p "$pid" -o "$OUT/perf-$name.data" -- sleep 8 >/dev/null 2>&1 || true
        top -H -b -n 2 -d 2 | awk '/^top -/{n++} n==2' | head -30 >"$OUT/top-$name.txt" || true
        wait "$wpid" || true
        { perf report -i "$OUT/perf-$name.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -10
          perf report -i "$OUT/perf-$name.data" --no-children --sort symbol --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 | cut -c1-150
        } >"$OUT/perf-$name.txt" || true
    fi
    stop_pid "$pid"
    # bare axum serving the same bytes (body and headers), same path
    "$BARE" 127.0.0.1:18090 "$OUT/body-$name.json" "$OUT/headers-$name.txt" >"$OUT/bare-$name.log" 2>&1 &
    local bpid=$!
    PIDS+=("$bpid")
    sleep 0.5
    wrk -t2 -c64 -d2s "http://127.0.0.1:18090/api/v1/schemas/$id" >/dev/null 2>&1
    wrk_run "wrk-bare-for-$name" "http://127.0.0.1:18090/api/v1/schemas/$id" "$bpid"
    stop_pid "$bpid"
}

phase_ceiling() {
    ceiling_pair sqlite 18081
    local db
    db=$(fresh_db perf_ceiling)
    ceiling_pair pg-redis 18082 --database-url "$db" --database-min-connections 2 \
        --redis-url "$REDIS_URL" --cache-key-prefix "perf-ceiling-$RANDOM"
    ceiling_pair sqlite-nometrics 18083 --metrics false
    # Noise check: metrics on again after metrics off.
    ceiling_pair sqlite-again 18084
}

# ---------------------------------------------------------------------------
# 2. The load-test tool, default mix, three configurations (+ the read-only mix of section 6
#    on the small PostgreSQL data set).
LT_COMMON=(--duration 20s --concurrency 64 --schemas 2000 --subjects 200)
READ_MIX=get_by_id=70,get_latest=15,get_by_version=15

phase_loadtest() {
    start_server lt-sqlite 18091
    loadtest lt-sqlite --target http://127.0.0.1:18091 "${LT_COMMON[@]}"
    stop_pid "$SERVER_PID"

    local db
    db=$(fresh_db perf_lt_pg)
    start_server lt-pg 18092 --database-url "$db" --database-min-connections 2
    loadtest lt-pg --target http://127.0.0.1:18092 "${LT_COMMON[@]}"
    loadtest lt-pg-readmix --target http://127.0.0.1:18092 --duration 20s --concurrency 64 \
        --schemas 2000 --subjects 200 --skip-seed --mix "$READ_MIX"
    stop_pid "$SERVER_PID"

    db=$(fresh_db perf_lt_pgr)
    start_server lt-pg-redis 18093 --database-url "$db" --database-min-connections 2 \
        --redis-url "$REDIS_URL" --cache-key-prefix "perf-lt-$RANDOM"
    loadtest lt-pg-redis --target http://127.0.0.1:18093 "${LT_COMMON[@]}"
    stop_pid "$SERVER_PID"
}

# ---------------------------------------------------------------------------
# 3. Registration on PostgreSQL vs pgbench single-row inserts on the same server.
phase_register() {
    local db
    db=$(fresh_db perf_reg)
    start_server reg-pg 18101 --database-url "$db" --database-min-connections 2
    loadtest reg-pg-zipf --target http://127.0.0.1:18101 --mix register=100 --concurrency 16 \
        --subjects 1000 --schemas 1000 --duration 20s
    loadtest reg-pg-uniform --target http://127.0.0.1:18101 --mix register=100 --concurrency 16 \
        --subjects 1000 --schemas 1000 --duration 20s --distribution uniform
    stop_pid "$SERVER_PID"

    local bdb
    bdb=$(fresh_db perf_pgbench)
    "$PG_BIN_DIR/psql" "$bdb" -q -c 'CREATE TABLE bench_insert(id bigserial primary key, subject text, payload jsonb, created_at timestamptz default now())'
    cat >"$WORK/insert.sql" <<'EOF'
INSERT INTO bench_insert(subject, payload) VALUES ('s' || :client_id, '{"a":1}');
EOF
    cp "$WORK/insert.sql" "$OUT/pgbench-insert.sql"
    wait_quiet pgbench
    log "pgbench -n -c 16 -j 2 -T 20 -f insert.sql"
    "$PG_BIN_DIR/pgbench" -n -c 16 -j 2 -T 20 -f "$WORK/insert.sql" "$bdb" >"$OUT/pgbench-insert.txt" 2>&1
    check_quiet pgbench
    grep -E 'tps|latency' "$OUT/pgbench-insert.txt" >&2

    # A second baseline: the same single-row insert, but of a registry row (a ~500 B JSON
    # Schema) into the registry's own `schemas` table with all its indexes, migrated by the
    # binary itself. It separates what the table costs from what the registry adds.
    local sdb
    sdb=$(fresh_db perf_pgbench_schemas)
    "$BIN" migrate run --database-url "$sdb" >/dev/null
    "$PG_BIN_DIR/psql" "$sdb" -q -c "INSERT INTO subjects (subject, max_major, max_minor, max_patch, max_pre, created_at) SELECT 'bench-' || g, 1, 0, 0, '', now() FROM generate_series(1, 1000) g"
    python3 - "$WORK/insert-schemas.sql" <<'PY'
import sys
doc = ('{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","title":"bench",'
       '"properties":{"id":{"type":"string","description":"identifier of the event"},"amount":{"type":"number","minimum":0},'
       '"currency":{"type":"string","enum":["EUR","USD","GBP"]},"items":{"type":"array","items":{"type":"object",'
       '"properties":{"sku":{"type":"string"},"qty":{"type":"integer"}}}},"created":{"type":"string","format":"date-time"},'
       '"note":{"type":"string","maxLength":200}},"required":["id","amount"]}')
open(sys.argv[1], "w").write(
    "\\set s random(1, 1000)\n\\set maj random(2, 2000000000)\n\\set min random(1, 2000000000)\n"
    "INSERT INTO schemas (id, subject, major, minor, patch, pre, pre_key, format, content_text, content, checksum, "
    "size_bytes, state, metadata, tags, refs, created_at, updated_at) VALUES (gen_random_uuid(), 'bench-' || :s, "
    f":maj, :min, 0, '', '~', 'json_schema', '{doc}', '{doc}'::jsonb, md5(:maj::text) || md5(:min::text), {len(doc)}, "
    "'active', '{}', '{}', '[]', now(), now());\n")
PY
    cp "$WORK/insert-schemas.sql" "$OUT/pgbench-insert-schemas.sql"
    wait_quiet pgbench
    log "pgbench -n -M prepared -c 16 -j 2 -T 20 -f insert-schemas.sql (registry table)"
    "$PG_BIN_DIR/pgbench" -n -M prepared -c 16 -j 2 -T 20 -f "$WORK/insert-schemas.sql" "$sdb" \
        >"$OUT/pgbench-insert-schemas.txt" 2>&1
    check_quiet pgbench
    grep -E 'tps|latency|failed' "$OUT/pgbench-insert-schemas.txt" >&2
}

# ---------------------------------------------------------------------------
# 4. Cache hit rate under Zipf(1.0), PostgreSQL + Redis, default cache.
phase_zipf() {
    local n=${ZIPF_SCHEMAS:-100000} db
    db=$(fresh_db perf_zipf)
    start_server zipf 18111 --database-url "$db" --database-min-connections 2 \
        --redis-url "$REDIS_URL" --cache-key-prefix "perf-zipf-$RANDOM"
    loadtest zipf-seed --target http://127.0.0.1:18111 --seed-only --schemas "$n" --subjects 1000 \
        --concurrency 32
    loadtest zipf-run --target http://127.0.0.1:18111 --skip-seed --schemas "$n" --subjects 1000 \
        --mix get_by_id=100 --distribution zipf --zipf-exponent 1.0 --duration 60s --concurrency 64
    stop_pid "$SERVER_PID"
}

# The same, with per-registration database work (pg_stat counters around the seeding) and two
# consecutive 60 s runs: the first starts with cold L1 and L2, the second with warm ones.
pg_counters() { # pg_counters DBURL: one line of cumulative counters of that database
    "$PG_BIN_DIR/psql" "$1" -Atc "select 'xact_commit=' || xact_commit || ' tup_inserted=' || tup_inserted || ' tup_updated=' || tup_updated || ' tup_deleted=' || tup_deleted || ' tup_fetched=' || tup_fetched || ' tup_returned=' || tup_returned from pg_stat_database where datname = current_database()"
    "$PG_BIN_DIR/psql" "$1" -Atc "select relname || ' ins=' || n_tup_ins || ' upd=' || n_tup_upd from pg_stat_user_tables where n_tup_ins + n_tup_upd > 0 order by relname"
}
phase_zipf2() {
    local n=${ZIPF_SCHEMAS:-100000} db
    db=$(fresh_db perf_zipf2)
    start_server zipf2 18112 --database-url "$db" --database-min-connections 2 \
        --redis-url "$REDIS_URL" --cache-key-prefix "perf-zipf2-$RANDOM"
    sleep 1
    pg_counters "$db" >"$OUT/zipf2-pgstat-before.txt"
    loadtest zipf2-seed --target http://127.0.0.1:18112 --seed-only --schemas "$n" --subjects 1000 \
        --concurrency 32
    sleep 1
    pg_counters "$db" >"$OUT/zipf2-pgstat-after.txt"
    loadtest zipf2-run-a --target http://127.0.0.1:18112 --skip-seed --schemas "$n" --subjects 1000 \
        --mix get_by_id=100 --distribution zipf --zipf-exponent 1.0 --duration 60s --concurrency 64
    loadtest zipf2-run-b --target http://127.0.0.1:18112 --skip-seed --schemas "$n" --subjects 1000 \
        --mix get_by_id=100 --distribution zipf --zipf-exponent 1.0 --duration 60s --concurrency 64
    stop_pid "$SERVER_PID"
}

# ---------------------------------------------------------------------------
# 5. Large documents: register and fetch 2 MiB and 10 MiB JSON Schemas.
make_doc() { # make_doc BYTES TAG FILE: a registration body whose schema is ~BYTES canonical bytes
    python3 - "$1" "$2" >"$3" <<'EOF'
import json, sys
size, tag = int(sys.argv[1]), sys.argv[2]
props, i, total = {}, 0, 200
while total < size:
    key = f"f{i:07d}"
    val = {"type": "string", "description": f"{tag} property {i} " + "x" * 180}
    props[key] = val
    total += len(json.dumps({key: val}, separators=(",", ":")))
    i += 1
doc = {"$comment": f"perf {tag}", "type": "object", "properties": props}
print(json.dumps({"schema": doc, "description": f"large {tag}"}, separators=(",", ":")))
EOF
}

curl_t() { # curl_t METHOD URL [curl args]: prints time_total http_code size_download
    local m=$1 u=$2
    shift 2
    curl -s -X "$m" -o /dev/null -w '%{time_total} %{http_code} %{size_download}\n' "$u" "$@"
}

large_config() { # large_config NAME PORT [serve flags...]
    local name=$1 port=$2
    shift 2
    local base=http://127.0.0.1:$port/api/v1 f size rep
    start_server "large-$name" "$port" --cache-warm-on-startup false "$@"
    : >"$OUT/large-$name.txt"
    wait_quiet "large-$name"
    for size in 2097152 10485760; do
        for rep in 1 2 3 4 5; do
            f=$WORK/doc-$size-$rep.json
            [[ -f $f ]] || make_doc "$size" "$name-$size-$rep-$RANDOM" "$f"
            # unique content per configuration and repetition
            python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['schema']['\$comment']='perf $name $size $rep $RANDOM'; json.dump(d,open(sys.argv[1]+'.u','w'),separators=(',',':'))" "$f"
            local res id
            res=$(curl -s -X POST -H 'Content-Type: application/json' -H 'Expect:' --data-binary "@$f.u" \
                -o "$WORK/resp.json" -w '%{time_total} %{http_code}' "$base/subjects/perf.large.$size/versions")
            id=$(jq -r .id "$WORK/resp.json")
            echo "register $size $rep $res $id $(jq .size_bytes "$WORK/resp.json")" >>"$OUT/large-$name.txt"
        done
    done
    # restart: the reads below start with a cold cache (warming is off)
    stop_pid "$SERVER_PID"
    "${server_env[@]}" "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$WORK/data-large-$name" \
        --cache-warm-on-startup false "$@" >>"$OUT/server-large-$name.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local _
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break; sleep 0.2; done
    local line kind sz rp t code id2
    while read -r kind sz rp t code id2 _; do
        [[ $kind == register ]] || continue
        local s0 s1
        s0=$(curl -fs "$base/stats" | jq -c '.cache|{l1_hits,l2_hits,misses}')
        echo "content_cold $sz $rp $(curl_t GET "$base/schemas/$id2/content")" >>"$OUT/large-$name.reads"
        s1=$(curl -fs "$base/stats" | jq -c '.cache|{l1_hits,l2_hits,misses}')
        echo "cache_delta $sz $rp $s0 -> $s1" >>"$OUT/large-$name.reads"
        echo "content_warm $sz $rp $(curl_t GET "$base/schemas/$id2/content")" >>"$OUT/large-$name.reads"
        echo "record_warm $sz $rp $(curl_t GET "$base/schemas/$id2")" >>"$OUT/large-$name.reads"
    done <"$OUT/large-$name.txt"
    cat "$OUT/large-$name.reads" >>"$OUT/large-$name.txt"
    rm -f "$OUT/large-$name.reads"
    curl -fs "http://127.0.0.1:$port/health/storage" >"$OUT/large-$name-health.json" || true
    check_quiet "large-$name"
    stop_pid "$SERVER_PID"
}

phase_large() {
    large_config sqlite-inline 18121 --object-threshold-bytes 0
    large_config sqlite-objdir 18122
    local db
    db=$(fresh_db perf_large_inline)
    large_config pg-inline 18123 --database-url "$db" --database-min-connections 2 --object-threshold-bytes 0
    db=$(fresh_db perf_large_s3)
    large_config pg-s3 18124 --database-url "$db" --database-min-connections 2 \
        --s3-bucket "$S3_BUCKET_FOR_TESTS" --s3-endpoint "$S3_ENDPOINT" --s3-path-style true \
        --s3-allow-http true --s3-prefix "perf-$RANDOM$RANDOM"
}

# ---------------------------------------------------------------------------
# 6. Scaling: many subjects and versions on PostgreSQL, read-only mix vs the small data set.
phase_scaling() {
    local n=${SCALE_SCHEMAS:-200000} subj=${SCALE_SUBJECTS:-10000} db
    db=$(fresh_db perf_scale)
    start_server scale 18131 --database-url "$db" --database-min-connections 2
    loadtest scale-seed --target http://127.0.0.1:18131 --seed-only --schemas "$n" --subjects "$subj" \
        --concurrency 32
    "$PG_BIN_DIR/psql" "$db" -Atc "select count(*) from schemas" >"$OUT/scale-count.txt" 2>&1 || true
    "$PG_BIN_DIR/psql" "$db" -Atc "select pg_size_pretty(pg_database_size(current_database()))" >>"$OUT/scale-count.txt" 2>&1 || true
    loadtest scale-readmix --target http://127.0.0.1:18131 --skip-seed --schemas "$n" --subjects "$subj" \
        --duration 20s --concurrency 64 --mix "$READ_MIX"
    stop_pid "$SERVER_PID"
}

# Scaling without the cache (--cache-l1-max-entries 0), so that the comparison is the database's:
# small and large data sets, then the large set again with the default cache (a repeat).
# 6b. The target's size: 10k subjects / 1M versions on PostgreSQL + Redis (the production shape;
# registration writes each new version through to L2), against a small set (2k / 200) on the
# same configuration, then both again with the cache off (the database path alone).
# Every cached configuration is read at least twice with the same command: warm-up, then the
# measured run (a long-lived server is warm; a 20 s run from an empty L1 measures filling it);
# the sized L1 three times. The large set is read with the default L1 (256 MiB), with the
# L1 capped at 10,000 entries, and with an L1 sized for the whole set (S1M_SIZED_BYTES,
# 4 GiB). The small set is read again at the end (small, large, small), so that the VM's drift
# over the phase shows as two baselines. The server's RSS after each run goes to s1m-rss.txt.
s1m_reads() { # s1m_reads NAME PORT SCHEMAS SUBJECTS ROUNDS
    local name=$1 port=$2 n=$3 subj=$4 rounds=$5 r
    for r in $(seq 1 "$rounds"); do
        loadtest "$name-readmix$r" --target "http://127.0.0.1:$port" --skip-seed --schemas "$n" \
            --subjects "$subj" --duration 20s --concurrency 64 --mix "$READ_MIX"
        echo "$name run $r: $(grep VmRSS "/proc/$SERVER_PID/status" 2>/dev/null)" >>"$OUT/s1m-rss.txt"
    done
}
phase_scale1m() {
    local n=${SCALE_SCHEMAS:-1000000} subj=${SCALE_SUBJECTS:-10000} small big
    local sized=${S1M_SIZED_BYTES:-4294967296}
    : >"$OUT/s1m-rss.txt"
    small=$(fresh_db perf_s1m_small)
    start_server s1m-small 18141 --database-url "$small" --database-min-connections 2 \
        --redis-url "$REDIS_URL" --cache-key-prefix "perf-s1m-small-$RANDOM"
    loadtest s1m-small-seed --target http://127.0.0.1:18141 --seed-only --schemas 2000 --subjects 200
    s1m_reads s1m-small 18141 2000 200 2
    stop_pid "$SERVER_PID"
    big=$(fresh_db perf_s1m)
    local prefix="perf-s1m-$RANDOM"
    start_server s1m 18142 --database-url "$big" --database-min-connections 2 \
        --redis-url "$REDIS_URL" --cache-key-prefix "$prefix"
    loadtest s1m-seed --target http://127.0.0.1:18142 --seed-only --schemas "$n" --subjects "$subj" \
        --concurrency 32
    "$PG_BIN_DIR/psql" "$big" -Atc "select count(*) from schemas" >"$OUT/s1m-count.txt" 2>&1 || true
    "$PG_BIN_DIR/psql" "$big" -Atc "select pg_size_pretty(pg_database_size(current_database()))" >>"$OUT/s1m-count.txt" 2>&1 || true
    redis-cli -u "$REDIS_URL" info memory 2>/dev/null | grep -E '^used_memory_human' >>"$OUT/s1m-count.txt" || true
    s1m_reads s1m 18142 "$n" "$subj" 2
    stop_pid "$SERVER_PID"
    start_server s1m-10k 18145 --database-url "$big" --database-min-connections 2 \
        --redis-url "$REDIS_URL" --cache-key-prefix "$prefix" --cache-l1-max-entries 10000
    s1m_reads s1m-10k 18145 "$n" "$subj" 2
    stop_pid "$SERVER_PID"
    start_server s1m-sized 18146 --database-url "$big" --database-min-connections 2 \
        --redis-url "$REDIS_URL" --cache-key-prefix "$prefix" --cache-l1-max-bytes "$sized" \
        --cache-l1-max-entries 4000000
    s1m_reads s1m-sized 18146 "$n" "$subj" 3
    stop_pid "$SERVER_PID"
    start_server s1m-nc 18143 --database-url "$big" --database-min-connections 2 --cache-l1-max-entries 0
    s1m_reads s1m-nc 18143 "$n" "$subj" 1
    stop_pid "$SERVER_PID"
    start_server s1m-small-nc 18144 --database-url "$small" --database-min-connections 2 --cache-l1-max-entries 0
    s1m_reads s1m-small-nc 18144 2000 200 1
    stop_pid "$SERVER_PID"
    start_server s1m-small-after 18147 --database-url "$small" --database-min-connections 2 \
        --redis-url "$REDIS_URL" --cache-key-prefix "perf-s1m-small-after-$RANDOM"
    s1m_reads s1m-small-after 18147 2000 200 2
    stop_pid "$SERVER_PID"
}
# 6c. The database path alone at 1M, interleaved: both data sets seeded on cache-off servers,
# then S1M_DB_ROUNDS rounds (default 3) of small, large, each a fresh cache-off server and one
# 20 s read run, so that the VM's drift hits both sets alike.
phase_scale1m_db() {
    local n=${SCALE_SCHEMAS:-1000000} subj=${SCALE_SUBJECTS:-10000} small big r
    small=$(fresh_db perf_s1mdb_small)
    big=$(fresh_db perf_s1mdb)
    start_server s1mdb-seed-small 18151 --database-url "$small" --database-min-connections 2 --cache-l1-max-entries 0
    loadtest s1mdb-small-seed --target http://127.0.0.1:18151 --seed-only --schemas 2000 --subjects 200
    stop_pid "$SERVER_PID"
    start_server s1mdb-seed 18152 --database-url "$big" --database-min-connections 2 --cache-l1-max-entries 0
    loadtest s1mdb-seed --target http://127.0.0.1:18152 --seed-only --schemas "$n" --subjects "$subj" \
        --concurrency 32
    stop_pid "$SERVER_PID"
    for r in $(seq 1 "${S1M_DB_ROUNDS:-3}"); do
        start_server "s1mdb-small-$r" 18153 --database-url "$small" --database-min-connections 2 --cache-l1-max-entries 0
        loadtest "s1mdb-small-readmix$r" --target http://127.0.0.1:18153 --skip-seed --schemas 2000 \
            --subjects 200 --duration 20s --concurrency 64 --mix "$READ_MIX"
        stop_pid "$SERVER_PID"
        start_server "s1mdb-large-$r" 18154 --database-url "$big" --database-min-connections 2 --cache-l1-max-entries 0
        loadtest "s1mdb-large-readmix$r" --target http://127.0.0.1:18154 --skip-seed --schemas "$n" \
            --subjects "$subj" --duration 20s --concurrency 64 --mix "$READ_MIX"
        stop_pid "$SERVER_PID"
    done
}
# PERFORMANCE.md, Limits. Latency at a fixed load at 1M (open loop, `load-test --rate`).
# A closed loop at saturation measures throughput as much as latency (mean latency =
# connections / throughput, Little's law), so this phase holds the offered rate constant and compares what each request waits. Four
# servers stay up side by side, so L1s and pools stay warm and the VM's drift hits every set
# alike: small and large data sets, each with the default cache (PostgreSQL + Redis) and with
# the cache off (the database path). After seeding, VACUUM ANALYZE and CHECKPOINT (so that no
# autovacuum of the fresh 1M rows runs during a measurement), then a closed-loop warm-up of each
# server, then S1MR_ROUNDS rounds (default 3), each reading small then large for 15 s at every
# rate: S1MR_CACHE_RATES (default "5000 10000") on the cached servers, S1MR_DB_RATES (default
# "1000 2500": the database path saturates at 7-10 k ops/s on two vCPUs) on the others.
# Summary: $OUT/s1mr-summary.txt.
phase_scale1m_rate() {
    local n=${SCALE_SCHEMAS:-1000000} subj=${SCALE_SUBJECTS:-10000} small big rate r
    local -A port=([small-cache]=18161 [large-cache]=18162 [small-db]=18163 [large-db]=18164)
    local -A size=([small]="2000 200" [large]="$n $subj")
    local -A rates=([cache]=${S1MR_CACHE_RATES:-5000 10000} [db]=${S1MR_DB_RATES:-1000 2500})
    small=$(fresh_db perf_s1mr_small)
    big=$(fresh_db perf_s1mr)
    local -A url=([small]=$small [large]=$big)
    local set sn ss path cfg
    for set in small large; do
        start_server "s1mr-$set-cache" "${port[$set-cache]}" --database-url "${url[$set]}" \
            --database-min-connections 2 --redis-url "$REDIS_URL" --cache-key-prefix "perf-s1mr-$set-$RANDOM"
        read -r sn ss <<<"${size[$set]}"
        loadtest "s1mr-$set-seed" --target "http://127.0.0.1:${port[$set-cache]}" --seed-only \
            --schemas "$sn" --subjects "$ss" --concurrency 32
        "$PG_BIN_DIR/psql" "${url[$set]}" -q -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >&2
        start_server "s1mr-$set-db" "${port[$set-db]}" --database-url "${url[$set]}" \
            --database-min-connections 2 --cache-l1-max-entries 0
    done
    for cfg in small-cache large-cache small-db large-db; do
        read -r sn ss <<<"${size[${cfg%-*}]}"
        loadtest "s1mr-$cfg-warm" --target "http://127.0.0.1:${port[$cfg]}" --skip-seed \
            --schemas "$sn" --subjects "$ss" --duration 30s --concurrency 64 --mix "$READ_MIX"
    done
    for r in $(seq 1 "${S1MR_ROUNDS:-3}"); do
        for path in cache db; do
            for rate in ${rates[$path]}; do
                for set in small large; do
                    cfg=$set-$path
                    read -r sn ss <<<"${size[$set]}"
                    loadtest "s1mr-$cfg-r$rate-$r" --target "http://127.0.0.1:${port[$cfg]}" --skip-seed \
                        --schemas "$sn" --subjects "$ss" --duration 15s --concurrency 64 \
                        --mix "$READ_MIX" --rate "$rate"
                done
            done
        done
    done
    python3 - "$OUT" <<'PY' | tee "$OUT/s1mr-summary.txt" >&2
import glob, json, re, statistics, sys
out = sys.argv[1]
def load(cfg, rate):
    runs = []
    for f in sorted(glob.glob(f"{out}/s1mr-{cfg}-r{rate}-*.json")):
        j = json.load(open(f))
        runs.append((int(re.search(r"-(\d+)\.json$", f).group(1)), j, (j.get("cache") or {}).get("run") or {}))
    return runs
rates = sorted({(m.group(1), int(m.group(2))) for f in glob.glob(f"{out}/s1mr-small-*-r*-*.json")
                for m in [re.search(r"small-(cache|db)-r(\d+)-", f)]}, key=lambda x: (x[0], x[1]))
print("| Path | Rate | Round | Small p50 / p95 / p99 (µs) | Large p50 / p95 / p99 (µs) | Ratio p50 / p95 / p99 | Large: L1 share | Client CPU (small / large) |")
print("|---|---|---|---|---|---|---|---|")
for path, rate in rates:
    ratios = []
    for (r, s, _), (_, l, lc) in zip(load(f"small-{path}", rate), load(f"large-{path}", rate)):
        sl, ll = s["latency_us"], l["latency_us"]
        q = [ll[k] / sl[k] for k in ("p50", "p95", "p99")]
        ratios.append(q)
        l1 = lc.get("l1_hits", 0); tot = l1 + lc.get("l2_hits", 0) + lc.get("misses", 0)
        share = f"{100 * l1 / tot:.1f} %" if tot and path == "cache" else "-"
        flag = " (warnings or errors)" if s["warnings"] or l["warnings"] or s["total_errors"] or l["total_errors"] else ""
        cpu = f"{s['client_cpu']['percent_of_one_core']:.0f} / {l['client_cpu']['percent_of_one_core']:.0f} %"
        print(f"| {path} | {rate}/s | {r} | {sl['p50']} / {sl['p95']} / {sl['p99']} | {ll['p50']} / {ll['p95']} / {ll['p99']} | "
              + " / ".join(f"{x:.2f}×" for x in q) + f" | {share}{flag} | {cpu} |")
    if ratios:
        m = [statistics.median(q[i] for q in ratios) for i in range(3)]
        print(f"| {path} | {rate}/s | median | | | " + " / ".join(f"**{x:.2f}×**" for x in m) + " | | |")
PY
}
# PERFORMANCE.md, "Scaling to 1M versions". The cached path at 1M in its steady state, interleaved. Three servers
# stay up side by side on PostgreSQL + Redis: the small set (default cache), the large set
# with an L1 sized for it (S1MS_SIZED_BYTES, default 6 GiB: the large set's 2M keys weigh about 4.9 GB by the L1's
# weigher), and the large set with the default L1. The sized server is warmed by uniform reads
# over the whole set (S1MS_WARM, default 480 s, of S1MS_WARM_MIX, by id and by version alike:
# at about 32 k reads/s each key is drawn about 7 times, so all but about 0.1 % reach L1; 240 s
# left 0.7-1.5 % of the measured lookups to Redis, and the tail showed it),
# which stands in for the state a Zipf(1.0) workload reaches after half an hour or so, when it
# has drawn its rare keys too. Then S1MS_ROUNDS rounds (default 4) of 20 s closed-loop reads:
# small, large-sized, large-default. Summary: $OUT/s1ms-summary.txt.
phase_scale1m_sized() {
    local n=${SCALE_SCHEMAS:-1000000} subj=${SCALE_SUBJECTS:-10000} small big r cfg sn ss
    local sized=${S1MS_SIZED_BYTES:-6442450944}
    local -A port=([small]=18171 [large-sized]=18172 [large-default]=18173)
    local -A size=([small]="2000 200" [large-sized]="$n $subj" [large-default]="$n $subj") spid=()
    small=$(fresh_db perf_s1ms_small)
    big=$(fresh_db perf_s1ms)
    local prefix="perf-s1ms-$RANDOM"
    start_server s1ms-small "${port[small]}" --database-url "$small" --database-min-connections 2 \
        --redis-url "$REDIS_URL" --cache-key-prefix "perf-s1ms-small-$RANDOM"
    spid[small]=$SERVER_PID
    loadtest s1ms-small-seed --target "http://127.0.0.1:${port[small]}" --seed-only --schemas 2000 \
        --subjects 200 --concurrency 32
    start_server s1ms-large-default "${port[large-default]}" --database-url "$big" \
        --database-min-connections 2 --redis-url "$REDIS_URL" --cache-key-prefix "$prefix"
    spid[large-default]=$SERVER_PID
    loadtest s1ms-large-seed --target "http://127.0.0.1:${port[large-default]}" --seed-only \
        --schemas "$n" --subjects "$subj" --concurrency 32
    "$PG_BIN_DIR/psql" "$small" -q -c 'VACUUM ANALYZE' >&2
    "$PG_BIN_DIR/psql" "$big" -q -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >&2
    start_server s1ms-large-sized "${port[large-sized]}" --database-url "$big" \
        --database-min-connections 2 --redis-url "$REDIS_URL" --cache-key-prefix "$prefix" \
        --cache-l1-max-bytes "$sized" --cache-l1-max-entries 4000000
    spid[large-sized]=$SERVER_PID
    loadtest s1ms-small-warm --target "http://127.0.0.1:${port[small]}" --skip-seed --schemas 2000 \
        --subjects 200 --duration 20s --concurrency 64 --mix "$READ_MIX"
    loadtest s1ms-large-sized-warm --target "http://127.0.0.1:${port[large-sized]}" --skip-seed \
        --schemas "$n" --subjects "$subj" --duration "${S1MS_WARM:-480s}" --concurrency 64 \
        --mix "${S1MS_WARM_MIX:-get_by_id=45,get_by_version=45,get_latest=10}" --distribution uniform
    loadtest s1ms-large-default-warm --target "http://127.0.0.1:${port[large-default]}" --skip-seed \
        --schemas "$n" --subjects "$subj" --duration 40s --concurrency 64 --mix "$READ_MIX"
    for r in $(seq 1 "${S1MS_ROUNDS:-4}"); do
        for cfg in small large-sized large-default; do
            read -r sn ss <<<"${size[$cfg]}"
            loadtest "s1ms-$cfg-$r" --target "http://127.0.0.1:${port[$cfg]}" --skip-seed \
                --schemas "$sn" --subjects "$ss" --duration 20s --concurrency 64 --mix "$READ_MIX"
            echo "s1ms-$cfg-$r: $(grep VmRSS "/proc/${spid[$cfg]}/status" 2>/dev/null)" >>"$OUT/s1ms-rss.txt"
        done
    done
    python3 - "$OUT" "${S1MS_ROUNDS:-4}" <<'PY' | tee "$OUT/s1ms-summary.txt" >&2
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def get(cfg, r):
    j = json.load(open(f"{out}/s1ms-{cfg}-{r}.json"))
    c = (j.get("cache") or {}).get("run") or {}
    tot = c.get("l1_hits", 0) + c.get("l2_hits", 0) + c.get("misses", 0)
    return j, (100 * c.get("l1_hits", 0) / tot if tot else float("nan"))
print("| Round | Small ops/s, p50 / p95 / p99 (µs) | Large, sized L1: ops/s, p50 / p95 / p99 | ÷ small | L1 share | Large, default L1: ops/s, p50 / p95 / p99 | ÷ small | L1 share |")
print("|---|---|---|---|---|---|---|---|")
acc = {"large-sized": [], "large-default": []}
for r in range(1, rounds + 1):
    s, _ = get("small", r)
    sl = s["latency_us"]
    row = f"| {r} | {s['throughput_ops_per_sec']:,.0f}, {sl['p50']} / {sl['p95']} / {sl['p99']} |"
    for cfg in ("large-sized", "large-default"):
        l, share = get(cfg, r)
        ll = l["latency_us"]
        q = [ll[k] / sl[k] for k in ("p50", "p95", "p99")]
        acc[cfg].append(q)
        flag = " (errors)" if l["total_errors"] or s["total_errors"] else ""
        row += f" {l['throughput_ops_per_sec']:,.0f}, {ll['p50']} / {ll['p95']} / {ll['p99']} | " + " / ".join(f"{x:.2f}×" for x in q) + f" | {share:.1f} %{flag} |"
    print(row)
row = "| median | |"
for cfg in ("large-sized", "large-default"):
    row += " | " + " / ".join(f"**{statistics.median(q[i] for q in acc[cfg]):.2f}×**" for i in range(3)) + " | |"
print(row)
PY
}
phase_scaling_nocache() {
    local n=${SCALE_SCHEMAS:-200000} subj=${SCALE_SUBJECTS:-10000} db
    db=$(fresh_db perf_small_nc)
    start_server small-nc 18132 --database-url "$db" --database-min-connections 2 --cache-l1-max-entries 0
    loadtest small-nc-seed --target http://127.0.0.1:18132 --seed-only --schemas 2000 --subjects 200
    loadtest small-nc-readmix --target http://127.0.0.1:18132 --skip-seed --schemas 2000 --subjects 200 \
        --duration 20s --concurrency 64 --mix "$READ_MIX"
    stop_pid "$SERVER_PID"
    db=$(fresh_db perf_scale_nc)
    start_server scale-nc 18133 --database-url "$db" --database-min-connections 2 --cache-l1-max-entries 0
    loadtest scale-nc-seed --target http://127.0.0.1:18133 --seed-only --schemas "$n" --subjects "$subj" \
        --concurrency 32
    loadtest scale-nc-readmix --target http://127.0.0.1:18133 --skip-seed --schemas "$n" --subjects "$subj" \
        --duration 20s --concurrency 64 --mix "$READ_MIX"
    stop_pid "$SERVER_PID"
    start_server scale-cache 18134 --database-url "$db" --database-min-connections 2
    loadtest scale-cache-readmix --target http://127.0.0.1:18134 --skip-seed --schemas "$n" --subjects "$subj" \
        --duration 20s --concurrency 64 --mix "$READ_MIX"
    stop_pid "$SERVER_PID"
}

# ---------------------------------------------------------------------------
# 7. Diagnosis: CPU split (top, 10 s average, by command) and a perf profile of the server
#    during a load-test run. Not a measurement: perf slows the server down.
diag_run() { # diag_run NAME SERVER_PID [load-test flags...]
    local name=$1 spid=$2
    shift 2
    wait_quiet "diag-$name"
    "$BIN" load-test --no-progress --json --duration 25s "$@" >"$OUT/diag-$name.json" 2>&1 &
    local lpid=$!
    sleep 3
    top -b -n 2 -d 10 | awk '/^top -/{n++} n==2' >"$OUT/diag-$name-top-raw.txt"
    awk '/^%Cpu/ {print} $1 ~ /^[0-9]+$/ && NF >= 12 {cpu[$12] += $9} END {for (c in cpu) if (cpu[c] > 0.5) printf "%-20s %6.1f%%\n", c, cpu[c]}' \
        "$OUT/diag-$name-top-raw.txt" | sort -k2 -nr >"$OUT/diag-$name-top.txt"
    if command -v perf >/dev/null; then
        perf record -F 499 -g -p "$spid" -o "$OUT/diag-$name.data" -- sleep 7 >/dev/null 2>&1 || true
        { perf report -i "$OUT/diag-$name.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -8
          perf report -i "$OUT/diag-$name.data" --no-children --sort symbol --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30 | cut -c1-150
        } >"$OUT/diag-$name-perf.txt" || true
    fi
    wait "$lpid" || true
    check_quiet "diag-$name"
    log "diag $name: $(tr '\n' ' ' <"$OUT/diag-$name-top.txt")"
}

phase_diag() {
    local db
    db=$(fresh_db perf_diag)
    start_server diag-pg 18141 --database-url "$db" --database-min-connections 2
    loadtest diag-seed --target http://127.0.0.1:18141 --seed-only --schemas 2000 --subjects 200
    diag_run pg-default "$SERVER_PID" --target http://127.0.0.1:18141 --concurrency 64 --schemas 2000 --subjects 200 --skip-seed
    diag_run pg-register "$SERVER_PID" --target http://127.0.0.1:18141 --concurrency 16 --schemas 1000 \
        --subjects 1000 --mix register=100
    stop_pid "$SERVER_PID"
    start_server diag-sqlite 18142
    loadtest diag-seed-sqlite --target http://127.0.0.1:18142 --seed-only --schemas 2000 --subjects 200
    diag_run sqlite-default "$SERVER_PID" --target http://127.0.0.1:18142 --concurrency 64 --schemas 2000 --subjects 200 --skip-seed
    stop_pid "$SERVER_PID"
}

for phase in "$@"; do
    log "=== phase $phase"
    "phase_$phase"
done
