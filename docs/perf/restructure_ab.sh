#!/usr/bin/env bash
# Restructure A/B: proves that a restructure of the registry costs nothing on the hot paths, by
# comparing two release builds of the server (OLD and NEW) on the same box, loopback only.
#
#   bash docs/perf/restructure_ab.sh OLD_BIN NEW_BIN [PHASE...]
#
# OLD_BIN, NEW_BIN: the two `llm-schema-registry` binaries (both must accept
#   `serve --listen ADDR --data-dir DIR` and `serve --listen ADDR --database-url URL`).
# PHASE (default: callgrind timed pg):
#   callgrind  user-space instructions (callgrind Ir) per cached GET /api/v1/schemas/{id}, for
#              OLD, NEW and bare axum serving the very same body and headers; CG_REPS runs each.
#   timed      wrk -t2 -c64 -d10s on the same cached get-by-id, OLD and NEW up side by side on
#              SQLite, alternating A B A B … for ROUNDS rounds, 2 s warm-up before each run;
#              req/s and server CPU µs/request (utime+stime from /proc/PID/stat).
#   pg         registration throughput on PostgreSQL, a fresh database per run, alternating,
#              PG_ROUNDS rounds each, driven by the one load generator LOADTEST for both.
# Knobs (environment):
#   BARE       bare_axum binary          (default: NEW_BIN's dir/examples/bare_axum)
#   LOADTEST   llm-schema-registry-load-test binary (default: NEW_BIN's dir)
#   PG_URL     PostgreSQL server, trust auth (default postgres://postgres@127.0.0.1:5432)
#   ROUNDS     timed rounds per binary (default 6); PG_ROUNDS (default 4); CG_REPS (default 2)
#   OUT        directory for raw outputs (default: a fresh /tmp/restructure-ab.XXXXXX)
#   QUIET_WAIT 2 s polls to wait for no rustc/cargo before each timed run (default 5)
# Takes about 2 min (callgrind, 2 reps) + 5 min (timed, 10 rounds) + 3 min (pg, 4 rounds).
# Needs: wrk, valgrind (callgrind_control), curl, python3, psql (pg phase only).
# Every result line is printed on stdout and appended to $OUT/results.txt, a summary (means,
# min–max, ratios, paired differences with 95 % CI) to $OUT/summary.txt; wrk and load-test raw
# outputs, callgrind dumps and server logs stay in $OUT.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,28p' "$0"
    exit 2
fi
OLD_BIN=$(realpath "$1")
NEW_BIN=$(realpath "$2")
shift 2
PHASES=("$@")
[[ ${#PHASES[@]} -gt 0 ]] || PHASES=(callgrind timed pg)

BARE=${BARE:-$(dirname "$NEW_BIN")/examples/bare_axum}
LOADTEST=${LOADTEST:-$(dirname "$NEW_BIN")/llm-schema-registry-load-test}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
ROUNDS=${ROUNDS:-6}
PG_ROUNDS=${PG_ROUNDS:-4}
CG_REPS=${CG_REPS:-2}
OUT=${OUT:-$(mktemp -d /tmp/restructure-ab.XXXXXX)}
mkdir -p "$OUT"
HZ=$(getconf CLK_TCK)

# The small schema docs/perf/quick_ab.sh profiles with.
PROF_SCHEMA='{"schema":{"type":"object","title":"prof","properties":{"a":{"type":"string","description":"some field of the event"},"b":{"type":"integer"}}},"description":"profiling"}'

PIDS=()
DBS=()
DIRS=()
cleanup() {
    local p d
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for d in "${DBS[@]}"; do psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1 || true; done
    for d in "${DIRS[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

log() { echo "[$(date +%T)] $*" >&2; }
result() { echo "$*" | tee -a "$OUT/results.txt"; }

# wait_ready PORT [TRIES [PATH]]: poll PATH (default /health/ready), 0.1 s apart, bounded.
wait_ready() {
    local i
    for i in $(seq "${2:-100}"); do
        curl -sf "http://127.0.0.1:$1${3:-/health/ready}" >/dev/null && return 0
        sleep 0.1
    done
    log "server on port $1 did not become ready"
    return 1
}

# start NAME PORT CMD...: starts a server in the background, sets $STARTED to its PID.
start() {
    local name=$1 port=$2
    shift 2
    "$@" >"$OUT/$name.log" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
}

# stop PID: stops one server we started and waits for it.
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# register_prof PORT: registers the profiling schema, prints its id, fetches it once.
register_prof() {
    local id
    id=$(curl -sf -X POST -H 'Content-Type: application/json' \
        "http://127.0.0.1:$1/api/v1/subjects/prof/versions" -d "$PROF_SCHEMA" |
        python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])')
    curl -sf -o /dev/null "http://127.0.0.1:$1/api/v1/schemas/$id"
    echo "$id"
}

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# Busy (non-idle, non-iowait) jiffies of the whole machine, from /proc/stat.
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }

# Other engineers may compile on this box: before a measured run wait (2 s polls, at most
# QUIET_WAIT polls, default 5) until no rustc/cargo process runs; then measure anyway and let
# foreign_cpu_s tell how much CPU others took (callgrind counts are immune; timings are not).
compiling() { pgrep -x rustc >/dev/null || pgrep -x cargo >/dev/null; }
wait_quiet() {
    local i
    for i in $(seq "${QUIET_WAIT:-5}"); do
        compiling || return 0
        sleep 2
    done
    log "a compiler still runs; measuring anyway (see foreign_cpu_s)"
}

# measure_wrk PID OUTFILE URL: wrk -t2 -c64 -d10s against URL; prints "requests req/s
# server_cpu_us_per_req foreign_cpu_s", where foreign_cpu_s is the machine's busy CPU time
# during the run minus the server's and wrk's own: other processes' share (near 0 on a quiet
# box; loopback softirq time not charged to either process also lands here).
measure_wrk() {
    local pid=$1 out=$2 url=$3 t0 t1 b0 b1 w n r
    t0=$(ticks "$pid"); b0=$(busy_ticks)
    w=$( { TIMEFORMAT='%3U %3S'; time wrk -t2 -c64 -d10s "$url" >"$out"; } 2>&1 )
    t1=$(ticks "$pid"); b1=$(busy_ticks)
    n=$(wrk_n <"$out"); r=$(wrk_rps <"$out")
    python3 -c "
s, w = ($t1 - $t0) / $HZ, sum(map(float, '$w'.split()))
print($n, $r, round(s / $n * 1e6, 2), round(($b1 - $b0) / $HZ - s - w, 2))"
}
wrk_n() { awk '/requests in/{print $1}'; }
wrk_rps() { awk '/Requests\/sec/{print $2}'; }

# ---------------------------------------------------------------------------------------------
# callgrind: Ir per request. The server runs under callgrind from the start; counters are
# zeroed after the warm-up and dumped after the measured wrk run, so the dump covers exactly
# that window (every thread, user space only).
cg_one() { # cg_one LABEL PORT CMD...
    local label=$1 port=$2
    shift 2
    local cgout="$OUT/callgrind.$label.out"
    start "cg-$label" "$port" valgrind --tool=callgrind --collect-atstart=yes \
        --callgrind-out-file="$cgout.%p" "$@"
    local pid=$STARTED
    # bare_axum has no /health/ready: poll the path it serves.
    wait_ready "$port" 600 "${CG_PATH:-/health/ready}"
    local path=$CG_PATH
    if [[ -z $path ]]; then
        path=/api/v1/schemas/$(register_prof "$port")
    fi
    curl -sf -o /dev/null "http://127.0.0.1:$port$path"
    wrk -t1 -c8 -d5s "http://127.0.0.1:$port$path" >"$OUT/cg-$label.warm.txt"
    callgrind_control -z "$pid" >/dev/null 2>&1
    wrk -t1 -c8 -d10s "http://127.0.0.1:$port$path" >"$OUT/cg-$label.wrk.txt"
    callgrind_control -d "$pid" >/dev/null 2>&1
    sleep 1
    local n ir dump
    n=$(wrk_n <"$OUT/cg-$label.wrk.txt")
    # The dump written by -d is the newest part file; its totals line is the window's Ir.
    dump=$(ls -t "$cgout.$pid".* 2>/dev/null | head -1)
    ir=$(awk '/^(summary|totals):/{print $2; exit}' "$dump")
    stop "$pid"
    result "callgrind $label ir $ir requests $n ir_per_req $(python3 -c "print(round($ir/$n))") dump $dump"
}

phase_callgrind() {
    local rep d
    for rep in $(seq "$CG_REPS"); do
        for which in old new; do
            local bin=$OLD_BIN
            [[ $which == new ]] && bin=$NEW_BIN
            d=$(mktemp -d); DIRS+=("$d")
            CG_PATH='' cg_one "$which-$rep" 18281 "$bin" serve --listen 127.0.0.1:18281 --data-dir "$d"
        done
        # Bare axum serves NEW's own response (body and headers) for the profiling schema.
        d=$(mktemp -d); DIRS+=("$d")
        start feed 18289 "$NEW_BIN" serve --listen 127.0.0.1:18289 --data-dir "$d"
        local fp=$STARTED id
        wait_ready 18289
        id=$(register_prof 18289)
        curl -sf -D "$d/headers.txt" -o "$d/body.json" "http://127.0.0.1:18289/api/v1/schemas/$id"
        stop "$fp"
        CG_PATH=/api/v1/schemas/$id cg_one "bare-$rep" 18282 "$BARE" 127.0.0.1:18282 "$d/body.json" "$d/headers.txt"
    done
}

# ---------------------------------------------------------------------------------------------
# timed: both registries up side by side on SQLite the whole time; alternating rounds.
phase_timed() {
    local da db pa pb ida idb round
    da=$(mktemp -d); db=$(mktemp -d); DIRS+=("$da" "$db")
    start timed-old 18291 "$OLD_BIN" serve --listen 127.0.0.1:18291 --data-dir "$da"; pa=$STARTED
    start timed-new 18292 "$NEW_BIN" serve --listen 127.0.0.1:18292 --data-dir "$db"; pb=$STARTED
    wait_ready 18291; wait_ready 18292
    ida=$(register_prof 18291); idb=$(register_prof 18292)
    result "timed uptime-before $(uptime)"
    for round in $(seq "$ROUNDS"); do
        # Alternate which binary goes first: A B, B A, A B, …
        local order=("old $pa 18291 $ida" "new $pb 18292 $idb")
        (( round % 2 == 0 )) && order=("${order[1]}" "${order[0]}")
        local entry
        for entry in "${order[@]}"; do
            set -- $entry
            local url=http://127.0.0.1:$3/api/v1/schemas/$4 m
            wait_quiet
            wrk -t2 -c64 -d2s "$url" >/dev/null
            m=($(measure_wrk "$2" "$OUT/timed-$1-$round.txt" "$url"))
            result "timed round $round $1 req/s ${m[1]} requests ${m[0]} cpu_us_per_req ${m[2]} foreign_cpu_s ${m[3]} load1 $(cut -d' ' -f1 /proc/loadavg)"
        done
    done
    result "timed uptime-after $(uptime)"
    stop "$pa"; stop "$pb"
}

# ---------------------------------------------------------------------------------------------
# pg: registration throughput; a fresh database per run, no Redis; the same client for both.
phase_pg() {
    local round which
    for round in $(seq "$PG_ROUNDS"); do
        local order=(old new)
        (( round % 2 == 0 )) && order=(new old)
        for which in "${order[@]}"; do
            local bin=$OLD_BIN dbname=restructure_ab_${which}_$round$$ pid
            [[ $which == new ]] && bin=$NEW_BIN
            psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $dbname" >/dev/null
            psql "$PG_URL/postgres" -qc "CREATE DATABASE $dbname" >/dev/null
            DBS+=("$dbname")
            start "pg-$which-$round" 18293 env -u REDIS_URL "$bin" serve --listen 127.0.0.1:18293 \
                --database-url "$PG_URL/$dbname"
            pid=$STARTED
            wait_ready 18293 300
            wait_quiet
            # Seeds 1000 versions over 1000 subjects (not measured), then 10 s of registrations.
            "$LOADTEST" --target http://127.0.0.1:18293 --mix register=100 --concurrency 16 \
                --subjects 1000 --schemas 1000 --duration 10s --no-progress --json \
                >"$OUT/pg-$which-$round.json" 2>"$OUT/pg-$which-$round.err"
            stop "$pid"
            psql "$PG_URL/postgres" -qc "DROP DATABASE $dbname" >/dev/null
            result "pg round $round $which $(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("reg/s", round(r["throughput_ops_per_sec"], 1), "errors", r["total_errors"])' "$OUT/pg-$which-$round.json") load1 $(cut -d' ' -f1 /proc/loadavg)"
        done
    done
}

# ---------------------------------------------------------------------------------------------
# summary: means, min–max, NEW/OLD ratios and the mean of the paired (same-round) differences
# NEW − OLD with a 95 % confidence interval (Student t), from $OUT/results.txt.
summarize() {
    python3 - "$OUT/results.txt" <<'PY'
import statistics as st, sys
QUIET_S = 0.5
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
       10: 2.23, 11: 2.20, 12: 2.18, 15: 2.13, 20: 2.09}
def ci(d):
    if len(d) < 2:
        return float("nan")
    return T95.get(len(d) - 1, 2.0) * st.stdev(d) / len(d) ** 0.5
def stats(name, xs):
    return f"{name}mean {st.mean(xs):.2f} min {min(xs):.2f} max {max(xs):.2f} (n={len(xs)})"
rows = [l.split() for l in open(sys.argv[1])]
cg = {}
timed = {}
pg = {}
for r in rows:
    if r[0] == "callgrind":
        cg.setdefault(r[1].rsplit("-", 1)[0], []).append(float(r[7]))
    elif r[0] == "timed" and r[1] == "round":
        timed.setdefault(r[3], {})[int(r[2])] = (float(r[5]), float(r[9]), float(r[11]))
    elif r[0] == "pg" and r[1] == "round":
        pg.setdefault(r[3], {})[int(r[2])] = float(r[5])
if cg:
    m = {k: st.mean(v) for k, v in cg.items()}
    for k, v in cg.items():
        print(f"summary callgrind {k} Ir/request {m[k]:.0f} runs {' '.join(f'{x:.0f}' for x in v)}")
    if "old" in m and "new" in m:
        print(f"summary callgrind NEW/OLD {m['new'] / m['old']:.4f}")
    if "bare" in m:
        for k in ("old", "new"):
            if k in m:
                print(f"summary callgrind {k.upper()}/bare {m[k] / m['bare']:.4f}")
for label, data, idx, unit in (("timed req/s", timed, 0, "req/s"),
                               ("timed cpu_us_per_req", timed, 1, "us/req"),
                               ("pg reg/s", pg, None, "reg/s")):
    if "old" not in data or "new" not in data:
        continue
    pick = (lambda v: v) if idx is None else (lambda v: v[idx])
    o = {k: pick(v) for k, v in data["old"].items()}
    n = {k: pick(v) for k, v in data["new"].items()}
    d = [n[k] - o[k] for k in o if k in n]
    md, h = st.mean(d), ci(d)
    print(f"summary {label}: OLD {stats('', list(o.values()))}; NEW {stats('', list(n.values()))}")
    print(f"summary {label}: NEW/OLD {st.mean(n.values()) / st.mean(o.values()):.4f}; "
          f"paired NEW-OLD mean {md:+.2f} {unit} (95 % CI {md - h:+.2f} .. {md + h:+.2f})")
    if idx is not None:
        # The same over the rounds where neither run shared the CPU with another process.
        q = [k for k in o if k in n and max(data["old"][k][2], data["new"][k][2]) < QUIET_S]
        if len(q) >= 2 and len(q) < len(d):
            dq = [n[k] - o[k] for k in q]
            mq, hq = st.mean(dq), ci(dq)
            print(f"summary {label} quiet rounds {q} (foreign CPU < {QUIET_S} s): "
                  f"OLD mean {st.mean(o[k] for k in q):.2f} NEW mean {st.mean(n[k] for k in q):.2f}; "
                  f"paired NEW-OLD mean {mq:+.2f} {unit} (95 % CI {mq - hq:+.2f} .. {mq + hq:+.2f})")
PY
}

log "OLD=$OLD_BIN NEW=$NEW_BIN BARE=$BARE LOADTEST=$LOADTEST OUT=$OUT"
for phase in "${PHASES[@]}"; do
    case $phase in
        callgrind | timed | pg) "phase_$phase" ;;
        *) log "unknown phase $phase"; exit 2 ;;
    esac
done
summarize | tee "$OUT/summary.txt"
log "results in $OUT/results.txt, summary in $OUT/summary.txt"
