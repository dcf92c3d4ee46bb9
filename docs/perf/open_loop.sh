#!/usr/bin/env bash
# Latency at a fixed load for docs/PERFORMANCE.md ("Cached get-by-id vs bare axum", open loop):
# the release registry on the embedded default (SQLite, metrics on), cached get-by-id over 1,000
# seeded versions (Zipf 1.0, all in L1), 64 connections, driven by `load-test --rate` (open
# loop: latency counted from each operation's release) at each rate in RATES, then once as a
# closed loop for reference.
#   bash docs/perf/open_loop.sh            # RATES='5000 10000 20000 30000' by default
# Builds the server and the load generator beside it first (docs/perf/build.sh; PERF_NO_BUILD=1
# skips that).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$REPO/target/release/llm-schema-registry
PORT=${PORT:-18186}
bash "$REPO/docs/perf/build.sh"   # $BIN, and the load generator `$BIN load-test` runs
D=$(mktemp -d)
$BIN serve --listen 127.0.0.1:$PORT --data-dir $D ${REGISTRY_ARGS:-} >/tmp/open-loop-server.log 2>&1 &
SP=$!
trap "kill $SP 2>/dev/null; rm -rf $D" EXIT
for i in $(seq 50); do curl -sf http://127.0.0.1:$PORT/health/ready >/dev/null && break; sleep 0.1; done
COMMON=(--target http://127.0.0.1:$PORT --concurrency 64 --schemas 1000 --subjects 100
        --mix get_by_id=1 --no-progress --json)
$BIN load-test "${COMMON[@]}" --seed-only >/dev/null
$BIN load-test "${COMMON[@]}" --skip-seed --duration 3s >/dev/null   # warm L1 and the pool
summary() { # summary LABEL < report.json
  python3 -c '
import json, sys
r = json.load(sys.stdin)
l, c = r["latency_us"], r["client_cpu"]
line = "%-12s done %7.0f/s  p50 %5d us  p95 %5d us  p99 %5d us  max %6d us  errors %d  client %.0f %% of a core" % (
    sys.argv[1], r["throughput_ops_per_sec"], l["p50"], l["p95"], l["p99"], l["max"],
    r["total_errors"], c["percent_of_one_core"])
print(line + "".join("  WARNING: " + w for w in r["warnings"]))
' "$1"
}
for rate in ${RATES:-5000 10000 20000 30000}; do
  $BIN load-test "${COMMON[@]}" --skip-seed --duration ${DURATION:-15s} --rate $rate | summary "rate $rate"
done
$BIN load-test "${COMMON[@]}" --skip-seed --duration ${DURATION:-15s} | summary "closed loop"
