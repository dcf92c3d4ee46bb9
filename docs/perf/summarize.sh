#!/usr/bin/env bash
# Turns the raw outputs of docs/perf/run.sh ($PERF_OUT, default /tmp/perf-results) into the
# Markdown rows used in docs/PERFORMANCE.md.
#   bash docs/perf/summarize.sh wrk            # one row per wrk run
#   bash docs/perf/summarize.sh lt NAME...     # per-operation rows of load-test reports
#   bash docs/perf/summarize.sh large NAME...  # medians of the large-document timings
set -euo pipefail
OUT=${PERF_OUT:-/tmp/perf-results}
cd "$OUT"

wrk_rows() {
    echo "| Run | req/s | p50 | p99 | max | server CPU s | wrk CPU s | server CPU µs/req |"
    echo "|---|---|---|---|---|---|---|---|"
    local f
    for f in wrk-*.txt; do
        [[ $f == *-perf.txt ]] && continue
        awk -v name="${f%.txt}" '
            /Requests\/sec/ {rps = $2}
            / requests in / {n = $1}
            $1 == "50%" {p50 = $2}
            $1 == "99%" {p99 = $2}
            $1 == "Latency" && !max {max = $4}
            /wrk_cpu_secs/ {wc = $2 + $3}
            /server_cpu_secs/ {sc = $2 + 0}
            END {printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", name, rps, p50, p99, max,
                 sc, wc, (sc && n) ? sprintf("%.1f", sc / n * 1e6) : ""}' "$f"
    done
}

lt_rows() {
    local name
    for name in "$@"; do
        echo "**$name** ($(jq -r '.config | "mix \(.mix | to_entries | map(select(.value > 0) | "\(.key)=\(.value)") | join(",")), \(.distribution), concurrency \(.concurrency), \(.duration)"' "$name.json"))"
        echo
        echo "| Operation | ops | ops/s | errors | p50 ms | p95 ms | p99 ms | max ms |"
        echo "|---|---|---|---|---|---|---|---|"
        jq -r '(.ops[] | "| \(.op) | \(.operations) | \(.throughput_ops_per_sec | floor) | \(.errors) | \(.latency_us.p50 / 1000) | \(.latency_us.p95 / 1000) | \(.latency_us.p99 / 1000) | \(.latency_us.max / 1000) |"),
               "| **all** | \(.total_operations) | \(.throughput_ops_per_sec | floor) | \(.total_errors) | \(.latency_us.p50 / 1000) | \(.latency_us.p95 / 1000) | \(.latency_us.p99 / 1000) | \(.latency_us.max / 1000) |"' "$name.json"
        echo
        jq -r '"Cache during the run: " + (if .cache.run then "\(.cache.run.l1_hits) L1 + \(.cache.run.l2_hits) L2 hits, \(.cache.run.misses) misses, hit rate \(.cache.run.hit_rate * 10000 | round / 100) %" else "n/a" end)
               + "; client CPU \(.client_cpu.percent_of_one_core | round) % of one core"
               + "; seeding: \(.seeding.registrations) registrations in \(.seeding.secs * 100 | round / 100) s (\(.seeding.registrations_per_sec | round)/s), catalogue \(.seeding.catalogue_versions) versions listed in \(.seeding.catalogue_secs * 100 | round / 100) s."' "$name.json"
        echo
    done
}

large_rows() {
    local name
    for name in "$@"; do
        python3 - "large-$name.txt" "$name" <<'EOF'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    p = line.split()
    if p[0] == "register":
        rows[("register", p[1])].append(float(p[3]))
    elif p[0] in ("content_cold", "content_warm", "record_warm"):
        rows[(p[0], p[1])].append(float(p[3]))
def med(k):
    v = rows.get(k)
    return f"{statistics.median(v) * 1000:.1f}" if v else "-"
for size, label in (("2097152", "2 MiB"), ("10485760", "10 MiB")):
    print(f"| {sys.argv[2]} | {label} | {med(('register', size))} | {med(('content_cold', size))} | "
          f"{med(('content_warm', size))} | {med(('record_warm', size))} |")
EOF
    done
}

case ${1:-} in
    wrk) wrk_rows ;;
    lt) shift; lt_rows "$@" ;;
    large) shift; large_rows "$@" ;;
    *) echo "usage: $0 wrk | lt NAME... | large NAME..." >&2; exit 2 ;;
esac
