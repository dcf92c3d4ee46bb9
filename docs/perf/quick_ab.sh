#!/usr/bin/env bash
# Quick A/B for docs/PERFORMANCE.md: the release registry (SQLite, metrics on) against bare axum
# serving the same record (same body and headers), wrk -t2 -c64 for 12 s after a 2 s warm-up,
# alternating, ROUNDS rounds (default 2);
# prints req/s and the server's CPU µs per request. No services needed.
#   bash docs/perf/quick_ab.sh
# Extra server flags come from REGISTRY_ARGS, e.g. REGISTRY_ARGS='--metrics false'.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$REPO/target/release/llm-schema-registry
BARE=$REPO/target/release/examples/bare_axum
D=$(mktemp -d)
$BIN serve --listen 127.0.0.1:${REG_PORT:-18181} --data-dir $D ${REGISTRY_ARGS:-} >/tmp/qc-server.log 2>&1 &
SP=$!
trap "kill $SP \$BP \$PP 2>/dev/null; rm -rf $D" EXIT
for i in $(seq 50); do curl -sf http://127.0.0.1:${REG_PORT:-18181}/health/ready >/dev/null && break; sleep 0.1; done
ID=$(curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:${REG_PORT:-18181}/api/v1/subjects/prof/versions -d '{"schema":{"type":"object","title":"prof","properties":{"a":{"type":"string","description":"some field of the event"},"b":{"type":"integer"}}},"description":"profiling"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])')
curl -s -D $D/headers.txt -o $D/body.json http://127.0.0.1:${REG_PORT:-18181}/api/v1/schemas/$ID
$BARE 127.0.0.1:18182 $D/body.json $D/headers.txt >/dev/null 2>&1 &
BP=$!
# PLAIN=1 adds bare axum with the body and only content-type (the ceiling of builds A-I).
PP=
if [[ ${PLAIN:-} == 1 ]]; then $BARE 127.0.0.1:18184 $D/body.json >/dev/null 2>&1 & PP=$!; fi
sleep 0.5
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
hz=$(getconf CLK_TCK)
for round in $(seq ${ROUNDS:-2}); do
  pairs=("$SP ${REG_PORT:-18181} registry" "$BP 18182 bare")
  [[ -n $PP ]] && pairs+=("$PP 18184 bare-plain")
  for pair in "${pairs[@]}"; do
    set -- $pair
    wrk -t2 -c64 -d2s http://127.0.0.1:$2/api/v1/schemas/$ID >/dev/null
    t0=$(ticks $1)
    out=$(wrk -t2 -c64 -d12s http://127.0.0.1:$2/api/v1/schemas/$ID)
    t1=$(ticks $1)
    n=$(echo "$out" | awk '/requests in/{print $1}')
    r=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    echo "round $round $3 req/s $r cpu_us_per_req $(python3 -c "print(round(($t1-$t0)/$hz/$n*1e6,1))")"
  done
done
