#!/usr/bin/env bash
# What an L2 (Redis) hit costs at saturation, for docs/PERFORMANCE.md ("Sizing", Redis round
# trips): 100,000 versions on PostgreSQL + Redis, cached get-by-id under Zipf(1.0) at
# 64 connections, with L1 sizes that leave about 2 %, 24 % and 45 % of lookups to Redis. Each
# size gets a fresh server, a 10 s warm-up and a 20 s measured run; the server's and
# redis-server's CPU (/proc/PID/stat) over the measured run, less what the load tool's catalogue
# listing costs (measured alone, with --operations 1), is divided by its operations.
#   scripts/test.sh -- bash docs/perf/l2_cost.sh     # provides DATABASE_URL, PG_BIN_DIR, REDIS_URL
# Builds the server and the load generator beside it first (docs/perf/build.sh; PERF_NO_BUILD=1
# skips that). Needs a Redis on this machine (its CPU is read from /proc).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$REPO/target/release/llm-schema-registry
PORT=${PORT:-18300}
: "${DATABASE_URL:?run under scripts/test.sh, or set DATABASE_URL}" "${REDIS_URL:?set REDIS_URL}"
bash "$REPO/docs/perf/build.sh"   # $BIN, and the load generator `$BIN load-test` runs
PSQL=${PG_BIN_DIR:+$PG_BIN_DIR/}psql
D=$(mktemp -d)
SP=
trap '[[ -z $SP ]] || kill "$SP" 2>/dev/null || true; rm -rf "$D"' EXIT
redis_pid=$(redis-cli -u "$REDIS_URL" info server | tr -d '\r' | sed -n 's/^process_id://p')
[[ -n $redis_pid && -r /proc/$redis_pid/stat ]] || {
  echo "cannot find redis-server's process for $REDIS_URL on this machine" >&2; exit 1; }
# A fresh database, so that a second run does not double the data set.
db_name="perf_l2cost_$$"
"$PSQL" "$DATABASE_URL" -q -c "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name" >/dev/null
db_url="${DATABASE_URL%/*}/$db_name"
prefix="l2cost-$RANDOM"
start() {
  # The server gets only its flags, not the service variables scripts/test.sh exports.
  env -u DATABASE_URL -u DATABASE_READ_URL -u REDIS_URL -u S3_BUCKET -u S3_ENDPOINT -u S3_REGION \
    -u S3_PATH_STYLE -u S3_ALLOW_HTTP -u S3_PREFIX \
    "$BIN" serve --listen 127.0.0.1:$PORT --data-dir "$D" --database-url "$db_url" \
    --database-min-connections 2 --redis-url "$REDIS_URL" --cache-key-prefix "$prefix" "$@" \
    >"$D/server.log" 2>&1 &
  SP=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/health/ready >/dev/null && return; sleep 0.2; done
  echo "server did not start:" >&2; tail -5 "$D/server.log" >&2; exit 1
}
stop() { kill "$SP"; while kill -0 "$SP" 2>/dev/null; do sleep 0.1; done; SP=; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime, in clock ticks
COMMON=(--target http://127.0.0.1:$PORT --schemas 100000 --subjects 1000 --no-progress --json)
READ=(--skip-seed --concurrency 64 --mix get_by_id=100 --distribution zipf --zipf-exponent 1.0)
hz=$(getconf CLK_TCK)
start
$BIN load-test "${COMMON[@]}" --seed-only --concurrency 32 >/dev/null
stop
for entries in 1000000 10000 1000; do
  start --cache-l1-max-entries "$entries"
  $BIN load-test "${COMMON[@]}" "${READ[@]}" --duration 10s >/dev/null
  s0=$(ticks "$SP") r0=$(ticks "$redis_pid")
  $BIN load-test "${COMMON[@]}" "${READ[@]}" --operations 1 >/dev/null   # the listing alone
  s1=$(ticks "$SP") r1=$(ticks "$redis_pid")
  $BIN load-test "${COMMON[@]}" "${READ[@]}" --duration 20s >"$D/run.json"
  s2=$(ticks "$SP") r2=$(ticks "$redis_pid")
  python3 - "$D/run.json" "$entries" "$hz" "$s0" "$s1" "$s2" "$r0" "$r1" "$r2" <<'PY'
import json, sys
path, entries = sys.argv[1:3]
hz, s0, s1, s2, r0, r1, r2 = map(int, sys.argv[3:])
r = json.load(open(path))
ops, c, l = r["total_operations"], r["cache"]["run"], r["latency_us"]
# The measured run's CPU less one catalogue listing (what the --operations 1 run cost).
per_op = lambda a, b, c: ((c - b) - (b - a)) / hz / ops * 1e6
print("L1 max entries %-8s L2 share %5.1f %%  %6.0f ops/s  p50 %5d us  p99 %5d us  "
      "server %.1f us/op  redis %.2f us/op  client %.0f %% of a core  (listing: server %.2f s)" % (
    entries, 100 * c["l2_hits"] / c["lookups"], r["throughput_ops_per_sec"], l["p50"], l["p99"],
    per_op(s0, s1, s2), per_op(r0, r1, r2), r["client_cpu"]["percent_of_one_core"],
    (s1 - s0) / hz))
PY
  stop
done
"$PSQL" "$DATABASE_URL" -q -c "DROP DATABASE IF EXISTS $db_name" >/dev/null || true
