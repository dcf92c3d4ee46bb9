#!/usr/bin/env bash
# Quick A/B for docs/PERFORMANCE.md: the release registry (SQLite, metrics on) against bare axum
# serving the same record (same body and headers), wrk -t2 -c64 for 12 s after a 2 s warm-up,
# alternating, ROUNDS rounds (default 2);
# prints req/s and the server's CPU µs per request. No services needed. Builds the server and
# bare_axum first (docs/perf/build.sh; PERF_NO_BUILD=1 skips that).
#   bash docs/perf/quick_ab.sh
# Extra server flags come from REGISTRY_ARGS, e.g. REGISTRY_ARGS='--metrics false'.
# COMPARE_ARGS='--metrics false' starts a second registry with those flags and runs it in every
# round too (a paired comparison); the last lines then give the mean of the per-round
# differences in server CPU per request, with a 95 % confidence interval.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$REPO/target/release/llm-schema-registry
BARE=$REPO/target/release/examples/bare_axum   # crate llm-schema-registry-loadtest's example
bash "$REPO/docs/perf/build.sh"
D=$(mktemp -d)
$BIN serve --listen 127.0.0.1:${REG_PORT:-18181} --data-dir $D ${REGISTRY_ARGS:-} >/tmp/qc-server.log 2>&1 &
SP=$!
trap "kill $SP \$BP \$PP \$CP 2>/dev/null; rm -rf $D \${D2:-}" EXIT
for i in $(seq 50); do curl -sf http://127.0.0.1:${REG_PORT:-18181}/health/ready >/dev/null && break; sleep 0.1; done
ID=$(curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:${REG_PORT:-18181}/api/v1/subjects/prof/versions -d '{"schema":{"type":"object","title":"prof","properties":{"a":{"type":"string","description":"some field of the event"},"b":{"type":"integer"}}},"description":"profiling"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])')
curl -s -D $D/headers.txt -o $D/body.json http://127.0.0.1:${REG_PORT:-18181}/api/v1/schemas/$ID
$BARE 127.0.0.1:18182 $D/body.json $D/headers.txt >/dev/null 2>&1 &
BP=$!
# A second registry, for a paired comparison of two configurations.
CP=
if [[ -n ${COMPARE_ARGS:-} ]]; then
  D2=$(mktemp -d)
  $BIN serve --listen 127.0.0.1:18185 --data-dir $D2 $COMPARE_ARGS >/tmp/qc-server-b.log 2>&1 &
  CP=$!
  for i in $(seq 50); do curl -sf http://127.0.0.1:18185/health/ready >/dev/null && break; sleep 0.1; done
  ID2=$(curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:18185/api/v1/subjects/prof/versions -d '{"schema":{"type":"object","title":"prof","properties":{"a":{"type":"string","description":"some field of the event"},"b":{"type":"integer"}}},"description":"profiling"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])')
fi
# PLAIN=1 adds bare axum with the body and only content-type (the ceiling of builds A-I).
PP=
if [[ ${PLAIN:-} == 1 ]]; then $BARE 127.0.0.1:18184 $D/body.json >/dev/null 2>&1 & PP=$!; fi
sleep 0.5
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
hz=$(getconf CLK_TCK)
for round in $(seq ${ROUNDS:-2}); do
  pairs=("$SP ${REG_PORT:-18181} registry" "$BP 18182 bare")
  [[ -n $PP ]] && pairs+=("$PP 18184 bare-plain")
  [[ -n $CP ]] && pairs+=("$CP 18185 registry-b")
  for pair in "${pairs[@]}"; do
    set -- $pair
    id=$ID; [[ $3 == registry-b ]] && id=$ID2
    wrk -t2 -c64 -d2s http://127.0.0.1:$2/api/v1/schemas/$id >/dev/null
    t0=$(ticks $1)
    out=$(wrk -t2 -c64 -d12s http://127.0.0.1:$2/api/v1/schemas/$id)
    t1=$(ticks $1)
    n=$(echo "$out" | awk '/requests in/{print $1}')
    r=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    echo "round $round $3 req/s $r cpu_us_per_req $(python3 -c "print(round(($t1-$t0)/$hz/$n*1e6,2))")"
  done
done | tee $D/rounds.txt
if [[ -n $CP ]]; then
  python3 - $D/rounds.txt <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
cpu = {}
for r in rows:
    cpu.setdefault(r[2], {})[r[1]] = float(r[6])
a, b = cpu["registry"], cpu["registry-b"]
d = [a[k] - b[k] for k in a if k in b]
m = statistics.mean(d)
half = 1.96 * statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
print(f"registry minus registry-b, server CPU us/request over {len(d)} rounds: "
      f"mean {m:+.2f} (95 % CI {m - half:+.2f} .. {m + half:+.2f}); "
      f"registry mean {statistics.mean(a.values()):.2f}, registry-b mean {statistics.mean(b.values()):.2f}")
PY
fi
