#!/usr/bin/env bash
# Records a normalised transcript of the whole HTTP API: starts a server binary
# on a fresh database, sends a fixed sequence of requests (every route, its
# success paths and its error paths), and prints each request with the answer's
# status, headers and body. Two runs of the same binary print the same bytes;
# a refactoring that changes no behaviour prints the same bytes as its baseline:
#
#   scripts/api-transcript.sh old/llm-schema-registry > before.txt
#   scripts/api-transcript.sh target/release/llm-schema-registry > after.txt
#   diff before.txt after.txt
set -euo pipefail

readonly PROG=${0##*/}

usage() {
    cat <<EOF
Usage:
  scripts/$PROG BINARY [--database-url URL] [--raw] [--keep]
  scripts/$PROG --help

Starts BINARY (an llm-schema-registry server) on 127.0.0.1 with a port the
kernel picks, on a fresh database, waits for /health/ready, sends a fixed
sequence of requests with curl and prints the transcript on stdout. The
server's log goes to a temporary file, printed on stderr if anything fails.
The server is stopped and everything created is removed on exit.

Database:
  (default)           embedded SQLite in a new temporary data directory
  --database-url URL  PostgreSQL: URL names the server (postgres://USER@HOST:PORT,
                      any database name in it is ignored and its ?query kept);
                      a uniquely named database is created on it with psql,
                      and dropped on exit (the group roles the first migration
                      creates are dropped too, if this run created them and
                      nothing else uses them).

Options:
  --raw               print the transcript without normalisation (debugging)
  --keep              keep the temporary directory (raw answers, server log)
  -h, --help          show this help

The server runs with every external service off (no Redis, no S3: the
environment's DATABASE_*, REDIS_*, S3_*, AWS_*, OBJECT_* and SCHEMA_REGISTRY_*
variables are removed), the in-process L1 cache on (the default), and these
settings, chosen to keep the transcript small and each case cheap:
  --max-body-bytes 262144 (a 300 KB body gets 413), --object-threshold-bytes
  4096 (documents over 4 KiB go to the local object directory).
To record the 500 content_corrupted answers, the sequence damages one object
file and hides another in its own data directory, then repairs both.

Transcript format, one block per request:
  ### NNN METHOD PATH          the request line (path as sent, percent-encoded)
  > OPTION VALUE               curl arguments: request headers and body
                               (values over 200 bytes are shortened)
  < HTTP/1.1 STATUS REASON     the status line
  < name: value                every response header, in the order received,
                               except 'date'
  BODY                         the body byte for byte ('\\ no newline at end
                               of body' as diff writes it; '(empty body)')
Lines starting with '## ' name the sections of the sequence.

Normalisation (only of what differs between two runs of one binary):
  - every UUID becomes <uuid-N>, N numbered by first appearance, so equal
    ids stay equal; a generated x-request-id header becomes <request-id>
    (one the client sent that is not a UUID is kept);
  - RFC 3339 timestamps become <time>;
  - the server's port becomes <port>;
  - the values of "uptime_seconds" and "latency_ms", and of the L1 cache's
    entry counts ("l1_entries" in /api/v1/stats, "entries" of the l1 tier in
    /health/storage; moka counts them lazily), become <n>;
  - content-length becomes <n> when the body holds a normalised value whose
    length can vary (a timestamp, the port, one of the numbers above) and
    the header equals the body's real length (otherwise it is kept, so a
    wrong length shows).
/metrics is requested once, its status and headers recorded but not its body
(nor its length).

Needs curl and python3 (and psql for --database-url). Exit status: 0 when
every request got an answer (whatever its status), 1 otherwise, 2 on bad usage.
EOF
}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
usage_error() {
    log "$* (see --help)"
    exit 2
}

# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------

BINARY=
DATABASE_URL_ARG=
RAW=false
KEEP=false
while (($#)); do
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    --database-url)
        (($# >= 2)) || usage_error "--database-url needs a URL"
        DATABASE_URL_ARG=$2
        shift 2
        ;;
    --database-url=*)
        DATABASE_URL_ARG=${1#*=}
        shift
        ;;
    --raw)
        RAW=true
        shift
        ;;
    --keep)
        KEEP=true
        shift
        ;;
    -*) usage_error "unknown option $1" ;;
    *)
        [[ -z $BINARY ]] || usage_error "one BINARY only"
        BINARY=$1
        shift
        ;;
    esac
done
[[ -n $BINARY ]] || {
    usage >&2
    exit 2
}
[[ -x $BINARY ]] || die "$BINARY is not an executable file"
for tool in curl python3; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done

# ---------------------------------------------------------------------------
# Temporary state and cleanup
# ---------------------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/api-transcript.XXXXXX")
readonly WORK
readonly LOG=$WORK/server.log
readonly REQ=$WORK/requests
mkdir -p "$REQ"
: >"$LOG" # before the server starts: start-up reads it at once
SERVER_PID=
PG_ADMIN_URL=
PG_DB=
PG_ROLES_EXISTED=

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 150; i++)); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "server $SERVER_PID did not stop in 15 s; killing it"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

admin_psql() {
    psql "$PG_ADMIN_URL" -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_server
    if [[ -n $PG_DB ]]; then
        admin_psql -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 ||
            admin_psql -c "DROP DATABASE IF EXISTS \"$PG_DB\"" >/dev/null 2>&1 ||
            log "could not drop database $PG_DB"
        if [[ $PG_ROLES_EXISTED == 0 ]]; then
            # Fails harmlessly when another database still grants to them.
            admin_psql -c 'DROP ROLE IF EXISTS schema_registry_reader' >/dev/null 2>&1 || true
            admin_psql -c 'DROP ROLE IF EXISTS schema_registry_writer' >/dev/null 2>&1 || true
        fi
    fi
    if ((status != 0)) && [[ -f $LOG ]]; then
        log "failed (status $status); server log ($LOG):"
        cat "$LOG" >&2 || true
    fi
    if [[ $KEEP == true ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------

SERVER_DB_ARGS=()
if [[ -n $DATABASE_URL_ARG ]]; then
    command -v psql >/dev/null || die "psql is needed for --database-url"
    [[ $DATABASE_URL_ARG =~ ^(postgres(ql)?://[^/?]+)(/[^?]*)?(\?.*)?$ ]] ||
        die "--database-url must be postgres://USER[:PASS]@HOST[:PORT][/DB][?PARAMS]"
    pg_server=${BASH_REMATCH[1]}
    pg_query=${BASH_REMATCH[4]}
    PG_ADMIN_URL="$pg_server/postgres$pg_query"
    admin_psql -c 'SELECT 1' >/dev/null || die "cannot connect to $pg_server/postgres"
    PG_ROLES_EXISTED=$(admin_psql -c "SELECT count(*) FROM pg_roles WHERE rolname IN ('schema_registry_reader', 'schema_registry_writer')")
    db="api_transcript_$(date +%s)_$$_${RANDOM}"
    admin_psql -c "CREATE DATABASE \"$db\"" >/dev/null
    PG_DB=$db
    SERVER_DB_ARGS=(--database-url "$pg_server/$PG_DB$pg_query")
fi

# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------

# Nothing from the caller's environment may point the server elsewhere.
unset_env=()
while IFS= read -r name; do
    case $name in
    DATABASE_* | REDIS_* | S3_* | AWS_* | OBJECT_* | SCHEMA_REGISTRY_* | RUST_LOG) unset_env+=(-u "$name") ;;
    esac
done < <(compgen -e)

env "${unset_env[@]}" RUST_LOG=info,sqlx=warn \
    "$BINARY" serve \
    --listen 127.0.0.1:0 \
    --data-dir "$WORK/data" \
    "${SERVER_DB_ARGS[@]}" \
    --log-format json \
    --shutdown-timeout-secs 5 \
    --max-body-bytes 262144 \
    --object-threshold-bytes 4096 \
    >"$LOG" 2>&1 </dev/null &
SERVER_PID=$!

PORT=
for ((i = 0; i < 600; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited during start-up"
    PORT=$(sed -n 's/.*"message":"listening".*"addr":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$LOG" | head -n 1)
    [[ -n $PORT ]] && break
    sleep 0.1
done
[[ -n $PORT ]] || die "the server did not log its listening address within 60 s"
readonly PORT
readonly BASE="http://127.0.0.1:$PORT"

ready=false
for ((i = 0; i < 600; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited before it was ready"
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE/health/ready" || true) == 200 ]]; then
        ready=true
        break
    fi
    sleep 0.1
done
[[ $ready == true ]] || die "/health/ready did not answer 200 within 60 s"

# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

K=0 # files, in transcript order
N=0 # requests
LAST=

# section TITLE: a heading in the transcript.
section() {
    K=$((K + 1))
    LAST=$REQ/$(printf '%04d' "$K")
    printf '%s\n' "$*" >"$LAST.section"
}

# call METHOD PATH [CURL_ARGS...]: one request; the answer is kept for the
# transcript and for the helpers below.
call() {
    local method=$1 path=$2
    shift 2
    K=$((K + 1))
    N=$((N + 1))
    LAST=$REQ/$(printf '%04d' "$K")
    {
        printf '%03d\n%s %s\n' "$N" "$method" "$path"
        # One line per option and its value; a body sent from a file is shown
        # as its text, shortened past 200 bytes.
        local args=("$@") i a
        for ((i = 0; i < ${#args[@]}; i += 2)); do
            a=${args[i + 1]-}
            [[ $a == "@$BODY_FILE" ]] && a=$(<"$BODY_FILE")
            if ((${#a} > 200)); then
                a="${a:0:200}… ($(printf '%s' "$a" | wc -c) bytes)"
            fi
            printf '%s %s\n' "${args[i]}" "$a"
        done
    } >"$LAST.meta"
    # curl --head writes the headers as the output, and -X HEAD waits for a body.
    local how=(-X "$method" -o "$LAST.body")
    [[ $method == HEAD ]] && how=(--head -o /dev/null)
    local rc=0
    curl -sS --path-as-is --max-time 30 -H 'Expect:' "${how[@]}" \
        -D "$LAST.headers" "$@" "$BASE$path" 2>"$LAST.curlerr" || rc=$?
    if ((rc != 0)); then
        die "request $N ($method $path) failed: curl exit $rc: $(cat "$LAST.curlerr")"
    fi
    [[ -f $LAST.body ]] || : >"$LAST.body"
}

# with_body METHOD PATH BODY [CURL_ARGS...]: a request with BODY, sent from a
# file (a large body does not fit in an argument list).
readonly BODY_FILE=$WORK/body
with_body() {
    printf '%s' "$3" >"$BODY_FILE"
    call "$1" "$2" "${@:4}" --data-binary "@$BODY_FILE"
}

# post PATH JSON / patch PATH JSON: a request with a JSON body.
post() { with_body POST "$1" "$2" -H 'content-type: application/json' "${@:3}"; }
patch() { with_body PATCH "$1" "$2" -H 'content-type: application/json' "${@:3}"; }

# The id of the record the last request answered with.
last_id() {
    local id
    id=$(sed -n 's/^{"id":"\([0-9a-f-]\{36\}\)".*/\1/p' "$LAST.body")
    [[ -n $id ]] || die "request $N answered no record: $(head -c 300 "$LAST.body")"
    printf '%s' "$id"
}

# The object-tier file of the record the last request answered with.
object_file() {
    local checksum file
    checksum=$(sed -n 's/.*"checksum":"\([0-9a-f]\{64\}\)".*/\1/p' "$LAST.body")
    file=$WORK/data/objects/schemas/$checksum
    [[ -n $checksum && -f $file ]] || die "request $N: no object file for checksum '$checksum'"
    printf '%s' "$file"
}

# The ETag of the last answer, as sent.
last_etag() {
    tr -d '\r' <"$LAST.headers" | sed -n 's/^[Ee][Tt][Aa][Gg]: //p' | tail -n 1
}

# A string of N copies of CHAR.
repeat() { head -c "$2" /dev/zero | tr '\0' "$1"; }

A=/api/v1
ORD=$A/subjects/orders.created/versions
BAD=$A/subjects/bad.inputs/versions
NOID=0190a5a4-0000-7000-8000-000000000000 # a well-formed id nothing has

SCHEMA_A='{"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}'
SCHEMA_A_REORDERED='{"required": ["order_id"], "type": "object", "properties": {"order_id": {"type": "string"}}}'
SCHEMA_B='{"type":"object","properties":{"order_id":{"type":"string"},"total":{"type":"number"}},"required":["order_id"]}'
SCHEMA_C='{"type":"object","properties":{"order_id":{"type":"string"},"customer":{"type":"string"}},"required":["order_id","customer"]}'
SCHEMA_D='{"type":"object","properties":{"order_id":{"type":"string"},"note":{"type":"string"}}}'
SCHEMA_E='{"type":"object","properties":{"order_id":{"type":"integer"}}}'
SCHEMA_F='{"type":"object","properties":{"order_id":{"type":"integer"},"lines":{"type":"array"}}}'
SCHEMA_G='{"type":"object","title":"two-five"}'
SCHEMA_H='{"type":"string"}'
SCHEMA_BAD='{"type":"object","title":"never stored"}' # in requests that must fail
AVRO='{"type":"record","name":"Event","fields":[{"name":"id","type":"string"}]}'
PROTO='syntax = \"proto3\";\nmessage Ping {\n  string id = 1;\n}\n'

section "## health and an empty registry"
call GET /health/live
call GET /health/ready
call GET /health/storage
call GET $A/stats
call GET $A/subjects
call GET $A/search
call GET $ORD
call GET $ORD/latest
call GET $ORD/1.0.0
call DELETE $A/subjects/orders.created
call GET $A/schemas/$NOID

section "## request ids"
call GET /health/ready -H 'x-request-id: caller-7'
call GET /health/ready -H "x-request-id: $(repeat y 128)"
call GET /health/ready -H "x-request-id: $(repeat x 129)"
call GET /health/ready -H 'x-request-id: has space'
call GET /nope -H 'x-request-id: caller-404'

section "## registration: automatic and explicit versions, idempotent retries"
post $ORD "{\"schema\":$SCHEMA_A,\"description\":\"An order was placed\",\"metadata\":{\"team\":\"payments\",\"revision\":3,\"pii\":true},\"tags\":[\"orders\",\"pii\"]}"
ID_A=$(last_id)
post $ORD "{\"schema\":$SCHEMA_A_REORDERED}"
post $ORD "{\"schema\":$SCHEMA_A,\"version\":\"1.0.0\",\"description\":\"ignored on a retry\"}"
post $ORD "{\"schema\":\"{\\\"type\\\":\\\"object\\\",\\\"required\\\":[\\\"order_id\\\"],\\\"properties\\\":{\\\"order_id\\\":{\\\"type\\\":\\\"string\\\"}}}\"}"
post $ORD "{\"schema\":$SCHEMA_A,\"bump\":\"major\"}"
post $ORD "{\"schema\":$SCHEMA_A,\"format\":\"json_schema\"}"
post $ORD "{\"schema\":$SCHEMA_B,\"metadata\":{\"team\":\"payments\",\"revision\":4},\"tags\":[\"orders\"]}"
ID_B=$(last_id)
post $ORD "{\"schema\":$SCHEMA_C,\"bump\":\"major\",\"description\":\"Order with its customer\",\"tags\":[\"orders\",\"orders\",\"pii\",\"customer\"]}"
ID_C=$(last_id)
post $ORD "{\"schema\":$SCHEMA_D,\"bump\":\"patch\",\"metadata\":{\"team\":\"fulfilment\",\"revision\":\"3\"}}"
ID_D=$(last_id)
post $ORD "{\"schema\":$SCHEMA_E,\"version\":\"3.0.0-rc.1\"}"
ID_E=$(last_id)
post $ORD "{\"schema\":$SCHEMA_F}"
post $ORD "{\"schema\":$SCHEMA_G,\"version\":\"2.5.0\",\"description\":\"\"}"
post $ORD "{\"schema\":$SCHEMA_H,\"version\":\"1.1.0\"}"
post $ORD "{\"schema\":$SCHEMA_H,\"version\":\"3.0.0-rc.1\"}"
post $ORD "{\"schema\":$SCHEMA_A,\"version\":\"9.0.0\"}"
post $ORD "{\"schema\":$SCHEMA_H,\"version\":\"10.0.0-alpha\"}"
post $ORD "{\"schema\":$SCHEMA_H,\"version\":\"10.0.0-alpha.2\"}"
post $ORD "{\"schema\":$SCHEMA_H,\"version\":\"10.0.0-beta\"}"
post $ORD "{\"schema\":{\"type\":\"null\"},\"bump\":\"patch\"}"
post $ORD "{\"schema\":{\"type\":\"boolean\"}}" -H 'x-request-id: caller-register'
with_body POST $ORD "{\"schema\":{\"type\":\"array\"}}" -H 'content-type: application/json; charset=utf-8'
with_body POST $ORD "{\"schema\":{\"type\":\"integer\"}}" -H 'content-type: application/vnd.registry+json'

section "## registration: formats"
post $A/subjects/events.avro/versions "{\"schema\":\"$(printf '%s' "$AVRO" | sed 's/"/\\"/g')\",\"format\":\"avro\",\"tags\":[\"events\"]}"
ID_AVRO=$(last_id)
post $A/subjects/events.avro/versions "{\"schema\":{\"fields\":[{\"type\":\"string\",\"name\":\"id\"},{\"name\":\"at\",\"type\":\"long\"}],\"name\":\"Event\",\"type\":\"record\"},\"format\":\"avro\"}"
post $A/subjects/events.avro/versions "{\"schema\":\"$(printf '%s' "$AVRO" | sed 's/"/\\"/g')\",\"format\":\"avro\"}"
post $A/subjects/events.proto/versions "{\"schema\":\"$PROTO\",\"format\":\"protobuf\",\"description\":\"Ping message\",\"metadata\":{\"team\":\"infra\"}}"
ID_PROTO=$(last_id)
post $A/subjects/events.proto/versions "{\"schema\":\"$PROTO\",\"format\":\"protobuf\"}"
post $A/subjects/anything.goes/versions '{"schema":true}'
ID_BOOL=$(last_id)
post $A/subjects/tools%2Fsearch-v2/versions "{\"schema\":$SCHEMA_H,\"tags\":[\"tools\"]}"
ID_TOOL=$(last_id)
post $A/subjects/tools%2Fsearch-v2/versions "{\"schema\":$SCHEMA_G}"
post $A/subjects/prompt:summarise/versions "{\"schema\":$SCHEMA_G,\"version\":\"0.1.0\"}"
post $A/subjects/donn%C3%A9es.%C3%A9v%C3%A9nement/versions "{\"schema\":$SCHEMA_G}"
post $A/subjects/Orders.Created/versions "{\"schema\":$SCHEMA_G}"

section "## registration: invalid requests"
post $BAD "{\"schema\":$SCHEMA_BAD,\"version\":\"1.0.0\",\"bump\":\"minor\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"bump\":\"huge\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"bump\":\"\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"version\":\"1.0\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"version\":\"v1.0.0\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"version\":\"latest\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"version\":\"1.0.0+build.5\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"version\":\"9223372036854775808.0.0\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"version\":\"1.0.0-$(repeat 9 100)\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"version\":\"1.0.0-$(repeat a 123)\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"version\":1}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"format\":\"xml\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"format\":\"AVRO\"}"
post $BAD "{\"schema\":\"{\\\"type\\\":\\\"recrod\\\"}\",\"format\":\"avro\"}"
post $BAD '{"schema":42,"format":"avro"}'
post $BAD '{"schema":"   ","format":"protobuf"}'
post $BAD '{"schema":{"a":1},"format":"protobuf"}'
post $BAD '{"schema":42}'
post $BAD '{"schema":[1,2]}'
post $BAD '{"schema":null}'
post $BAD '{"schema":"not json"}'
post $BAD '{"schema":"42"}'
post $BAD '{"schema":{"title":"a\u0000b"}}'
post $BAD '{"schema":"message A {\u0000}","format":"protobuf"}'
post $BAD '{"description":"no schema"}'
post $BAD "{\"schema\":$SCHEMA_BAD,\"compatibility\":\"BACKWARD\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"description\":\"$(repeat d 16385)\"}"
post $BAD "{\"schema\":{\"title\":\"longest description\"},\"description\":\"$(repeat d 16384)\",\"version\":\"0.0.1\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"description\":\"a\\u0000b\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"description\":7}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"metadata\":[1]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"metadata\":{\"blob\":\"$(repeat m 65536)\"}}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"metadata\":{\"k\\u0000\":1}}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"metadata\":{\"k\":\"v\\u0000\"}}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"tags\":[\"\"]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"tags\":[\" padded\"]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"tags\":[\"bell\\u0007\"]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"tags\":[\"$(repeat t 129)\"]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"tags\":[$(for i in $(seq 1 65); do printf '"t%d",' "$i"; done | sed 's/,$//')]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"tags\":\"orders\"}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"references\":[{\"subject\":\"nope.subject\",\"version\":\"1.0.0\"}]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"references\":[{\"subject\":\"orders.created\",\"version\":\"8.8.8\"}]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"references\":[{\"subject\":\"bad subject\",\"version\":\"1.0.0\"}]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"references\":[{\"subject\":\"orders.created\",\"version\":\"1.0.0\"},{\"subject\":\"orders.created\",\"version\":\"latest\"}]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"references\":[{\"subject\":\"orders.created\"}]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"references\":[{\"subject\":\"orders.created\",\"version\":\"1.0.0\",\"id\":1}]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"version\":\"4.0.0\",\"references\":[{\"subject\":\"bad.inputs\",\"version\":\"4.0.0\"}]}"
post $BAD "{\"schema\":$SCHEMA_BAD,\"references\":[$(for i in $(seq 1 257); do printf '{"subject":"orders.created","version":"1.0.%d"},' "$i"; done | sed 's/,$//')]}"
post $BAD '{"schema":'
post $BAD '{"schema":{}} trailing'
post $BAD ''
post $BAD '[]'
post $BAD '"just a string"'
call POST $BAD -H 'content-type:' --data-binary "{\"schema\":$SCHEMA_BAD}"
call POST $BAD -H 'content-type: text/plain' --data-binary "{\"schema\":$SCHEMA_BAD}"
call POST $BAD -H 'content-type: application/x-www-form-urlencoded' --data-binary "{\"schema\":$SCHEMA_BAD}"
call POST $BAD
post $BAD "{\"schema\":{\"title\":\"$(repeat x 300000)\"}}"
post "$BAD?dry_run=true" "{\"schema\":$SCHEMA_BAD}"
post "$BAD?" "{\"schema\":$SCHEMA_G,\"version\":\"0.0.2\"}"
post $A/subjects/bad%20subject/versions "{\"schema\":$SCHEMA_BAD}"
post $A/subjects/zero%E2%80%8Bwidth/versions "{\"schema\":$SCHEMA_BAD}"
post $A/subjects/tab%09/versions "{\"schema\":$SCHEMA_BAD}"
post $A/subjects/$(repeat s 256)/versions "{\"schema\":$SCHEMA_BAD}"
post $A/subjects/$(repeat s 255)/versions "{\"schema\":$SCHEMA_G}"
post $A/subjects/%FF/versions "{\"schema\":$SCHEMA_BAD}"
post $A/subjects//versions "{\"schema\":$SCHEMA_BAD}"
post $A/subjects/tools/search-v2/versions "{\"schema\":$SCHEMA_BAD}"

section "## references and dependency walks"
post $A/subjects/orders.enriched/versions "{\"schema\":{\"type\":\"object\",\"title\":\"enriched\"},\"references\":[{\"subject\":\"orders.created\",\"version\":\"1.1.0\"}]}"
ID_R1=$(last_id)
post $A/subjects/orders.audit/versions "{\"schema\":{\"type\":\"object\",\"title\":\"audit\"},\"references\":[{\"subject\":\"orders.enriched\",\"version\":\"1.0.0\"},{\"subject\":\"orders.created\",\"version\":\"1.1.0\"},{\"subject\":\"orders.enriched\",\"version\":\"1.0.0\"},{\"subject\":\"events.avro\",\"version\":\"1.0.0\"}]}"
ID_R2=$(last_id)
post $A/subjects/orders.audit/versions "{\"schema\":{\"type\":\"object\",\"title\":\"audit\"}}"
post $A/subjects/orders.enriched/versions "{\"schema\":{\"type\":\"object\",\"title\":\"enriched\"},\"version\":\"1.0.0\",\"references\":[{\"subject\":\"orders.created\",\"version\":\"1.0.0\"}]}"
post $A/subjects/orders.enriched/versions "{\"schema\":{\"type\":\"object\",\"title\":\"enriched 2\"},\"references\":[{\"subject\":\"orders.created\",\"version\":\"1.0.0\"}]}"
call GET $A/schemas/$ID_R2/dependencies
call GET "$A/schemas/$ID_R2/dependencies?transitive=true"
call GET "$A/schemas/$ID_R2/dependencies?transitive=false"
call GET "$A/schemas/$ID_R2/dependencies?transitive=1"
call GET "$A/schemas/$ID_R2/dependencies?transitive=0"
call GET $A/schemas/$ID_R2/dependents
call GET $A/schemas/$ID_B/dependents
call GET "$A/schemas/$ID_B/dependents?transitive=true"
call GET $A/schemas/$ID_B/dependencies
call GET "$A/schemas/$ID_R1/dependencies?transitive=true"
call GET "$A/schemas/$ID_R1/dependents?transitive=true"
call GET "$A/schemas/$ID_R2/dependencies?transitive=yes"
call GET "$A/schemas/$ID_R2/dependents?transitive="
call GET "$A/schemas/$ID_R2/dependencies?depth=2"
call GET $A/schemas/$NOID/dependencies
call GET $A/schemas/$NOID/dependents
call GET $A/schemas/not-an-id/dependencies
call GET $A/schemas/not-an-id/dependents

section "## reads by id"
call GET $A/schemas/$ID_A
call HEAD $A/schemas/$ID_A
call GET $A/schemas/$ID_AVRO
call GET $A/schemas/$ID_PROTO
call GET $A/schemas/$ID_BOOL
call GET $A/schemas/${ID_A^^}
call GET "$A/schemas/$ID_A?fields=id"
call GET $A/schemas/not-an-id
call GET $A/schemas/$NOID
call GET $A/schemas/%FF

section "## reads by version"
call GET $ORD/1.0.0
call GET $ORD/latest
call HEAD $ORD/latest
call GET $ORD/3.0.0-rc.1
call GET "$ORD/1.1.0?include_deleted=true"
call GET "$ORD/latest?include_deleted=true"
call GET "$ORD/1.1.0?include_deleted=yes"
call GET "$ORD/1.1.0?expand=1"
call GET $ORD/9.9.9
call GET $ORD/1.0
call GET $ORD/LATEST
call GET $A/subjects/tools%2Fsearch-v2/versions/latest
call GET $A/subjects/donn%C3%A9es.%C3%A9v%C3%A9nement/versions/latest
call GET $A/subjects/nope.subject/versions/latest
call GET $A/subjects/nope.subject/versions/1.0.0
call GET $A/subjects/bad%20subject/versions/1.0.0
call GET $A/subjects/%FF/versions/latest

section "## version listings"
call GET $ORD
call GET "$ORD?include_deleted=true"
call GET "$ORD?include_deleted=nope"
call GET "$ORD?limit=1"
call GET $A/subjects/tools%2Fsearch-v2/versions
call GET $A/subjects/nope.subject/versions
call GET $A/subjects/bad%20subject/versions

section "## subject listings"
call GET $A/subjects
call GET "$A/subjects?prefix=orders."
call GET "$A/subjects?prefix=Orders."
call GET "$A/subjects?prefix=tools%2F"
call GET "$A/subjects?prefix=donn%C3%A9es"
call GET "$A/subjects?prefix=%25"
call GET "$A/subjects?prefix=_"
call GET "$A/subjects?prefix="
call GET "$A/subjects?prefix=x&prefix=orders."
call GET "$A/subjects?limit=2"
call GET "$A/subjects?limit=2&offset=2"
call GET "$A/subjects?offset=1000"
call GET "$A/subjects?limit=1000"
call GET "$A/subjects?limit=0"
call GET "$A/subjects?limit=1001"
call GET "$A/subjects?limit=abc"
call GET "$A/subjects?offset=-1"
call GET "$A/subjects?offset=x"
call GET "$A/subjects?page=1"
call GET "$A/subjects?prefix=a%00b"

section "## content"
call GET $A/schemas/$ID_A/content
ETAG_A=$(last_etag)
call HEAD $A/schemas/$ID_A/content
call GET $A/schemas/$ID_A/content -H "If-None-Match: $ETAG_A"
call GET $A/schemas/$ID_A/content -H "If-None-Match: W/$ETAG_A"
call GET $A/schemas/$ID_A/content -H "If-None-Match: \"other\", $ETAG_A"
call GET $A/schemas/$ID_A/content -H 'If-None-Match: *'
call GET $A/schemas/$ID_A/content -H 'If-None-Match: "other"'
call GET $A/schemas/$ID_AVRO/content
call GET $A/schemas/$ID_PROTO/content
call GET $A/schemas/$ID_BOOL/content
call GET "$A/schemas/$ID_A/content?format=raw"
call GET $A/schemas/$NOID/content
call GET $A/schemas/not-an-id/content

section "## content-url"
call GET $A/schemas/$ID_A/content-url
call GET "$A/schemas/$ID_A/content-url?expires_in=60"
call GET "$A/schemas/$ID_A/content-url?expires_in=604800"
call GET "$A/schemas/$ID_A/content-url?expires_in=0"
call GET "$A/schemas/$ID_A/content-url?expires_in=604801"
call GET "$A/schemas/$ID_A/content-url?expires_in=abc"
call GET "$A/schemas/$ID_A/content-url?ttl=60"
call GET $A/schemas/$ID_A/content-url -H 'X-Forwarded-Proto: https'
call GET $A/schemas/$ID_A/content-url -H 'X-Forwarded-Proto: ftp'
call GET $A/schemas/$ID_A/content-url -H 'Host: registry.example:8443'
call GET $A/schemas/$ID_A/content-url -H 'Host:'
call GET $A/schemas/$NOID/content-url
call GET $A/schemas/not-an-id/content-url

section "## search"
call GET $A/search
call GET "$A/search?q=order"
call GET "$A/search?q=ORDER"
call GET "$A/search?q=ord"
call GET "$A/search?q=customer"
call GET "$A/search?q=orders.created"
call GET "$A/search?q=Ping"
call GET "$A/search?q=two-five"
call GET "$A/search?q=order%20customer"
call GET "$A/search?q=%22order_id%22"
call GET "$A/search?q=nothing-matches-this"
call GET "$A/search?q="
call GET "$A/search?q=$(repeat q 1024)"
call GET "$A/search?q=$(repeat q 1025)"
call GET "$A/search?q=%25"
call GET "$A/search?q=_"
call GET "$A/search?subject_prefix=orders."
call GET "$A/search?subject_prefix=tools%2F"
call GET "$A/search?subject_prefix=Orders"
call GET "$A/search?tag=pii"
call GET "$A/search?tag=orders&tag=pii"
call GET "$A/search?tag=orders&tag=customer"
call GET "$A/search?tag=nope"
call GET "$A/search?format=avro"
call GET "$A/search?format=protobuf"
call GET "$A/search?format=json_schema&limit=3"
call GET "$A/search?format=yaml"
call GET "$A/search?state=active&limit=2"
call GET "$A/search?state=deprecated"
call GET "$A/search?state=deleted"
call GET "$A/search?state=gone"
call GET "$A/search?metadata.team=payments"
call GET "$A/search?metadata.revision=3"
call GET "$A/search?metadata.revision=%223%22"
call GET "$A/search?metadata.team=payments&metadata.revision=4"
call GET "$A/search?metadata.pii=true"
call GET "$A/search?metadata.team=nobody"
call GET "$A/search?metadata.="
call GET "$A/search?metadata=x"
call GET "$A/search?limit=1"
call GET "$A/search?limit=1&offset=1"
call GET "$A/search?offset=100"
call GET "$A/search?limit=0"
call GET "$A/search?offset=x"
call GET "$A/search?sort=name"
call GET "$A/search?q=a%00"
call GET "$A/search?q=order&subject_prefix=orders.&format=json_schema&state=active&tag=orders&metadata.team=payments"

section "## state changes"
patch $A/schemas/$ID_A '{"state":"deprecated"}'
patch $A/schemas/$ID_A '{"state":"deprecated"}'
call GET $A/schemas/$ID_A
call GET $ORD/1.0.0
call GET "$A/search?state=deprecated"
patch $A/schemas/$ID_A '{"state":"active"}'
patch $A/schemas/$ID_C '{"state":"deprecated"}'
call GET $ORD/latest
patch $A/schemas/$ID_E '{"state":"deprecated"}'
patch $A/schemas/$ID_A '{"state":"deleted"}'
patch $A/schemas/$ID_A '{"state":"retired"}'
patch $A/schemas/$ID_A '{"state":"Deprecated"}'
patch $A/schemas/$ID_A '{"state":1}'
patch $A/schemas/$ID_A '{}'
patch $A/schemas/$ID_A '{"state":"active","reason":"x"}'
patch $A/schemas/$ID_A '{"state":'
call PATCH $A/schemas/$ID_A -H 'content-type:' --data-binary '{"state":"active"}'
patch "$A/schemas/$ID_A?force=true" '{"state":"active"}'
patch $A/schemas/$NOID '{"state":"active"}'
patch $A/schemas/not-an-id '{"state":"active"}'
patch $A/schemas/$ID_A "{\"state\":\"$(repeat s 300000)\"}"

section "## soft and permanent deletes"
call DELETE $ORD/latest
call DELETE $ORD/1.x
call DELETE $ORD/7.7.7
call DELETE $A/subjects/nope.subject/versions/1.0.0
call DELETE "$ORD/2.0.1?permanent=true"
call DELETE $ORD/2.0.1
call DELETE $ORD/2.0.1
call GET $ORD/2.0.1
call GET "$ORD/2.0.1?include_deleted=true"
call GET "$ORD/2.0.1?include_deleted=1"
call GET $A/schemas/$ID_D
call GET $A/schemas/$ID_D/content
call GET $ORD
call GET "$ORD?include_deleted=true"
call GET "$A/search?state=deleted"
call GET "$A/search?q=note"
patch $A/schemas/$ID_D '{"state":"active"}'
patch $A/schemas/$ID_D '{"state":"deprecated"}'
call DELETE $ORD/1.1.0
call DELETE "$ORD/1.1.0?permanent=true"
call GET $A/schemas/$ID_R1/dependencies
call GET "$A/schemas/$ID_B/dependents?transitive=true"
call DELETE "$ORD/2.0.1?permanent=maybe"
call DELETE "$ORD/2.0.1?force=1"
call DELETE "$ORD/2.0.1?permanent=true"
call GET $A/schemas/$ID_D
call GET $A/schemas/$ID_D/content
call GET "$ORD/2.0.1?include_deleted=true"
call DELETE "$ORD/2.0.1?permanent=true"
call DELETE $ORD/2.0.1
call GET "$ORD?include_deleted=true"
post $ORD "{\"schema\":$SCHEMA_D,\"version\":\"2.0.1\"}"
post $ORD "{\"schema\":{\"type\":\"object\",\"title\":\"after deletes\"}}"
call DELETE $ORD/3.0.0-rc.1
post $ORD "{\"schema\":$SCHEMA_E}"
post $ORD "{\"schema\":$SCHEMA_E,\"version\":\"3.0.0-rc.1\"}"
call DELETE "$A/schemas/$ID_A"
call DELETE $A/subjects/bad%20subject/versions/1.0.0

section "## subject deletes"
call DELETE $A/subjects/tools%2Fsearch-v2
call DELETE $A/subjects/tools%2Fsearch-v2
call GET $A/subjects/tools%2Fsearch-v2/versions
call GET "$A/subjects/tools%2Fsearch-v2/versions?include_deleted=true"
call GET $A/subjects/tools%2Fsearch-v2/versions/latest
call GET "$A/subjects/tools%2Fsearch-v2/versions/1.0.0?include_deleted=true"
call GET $A/schemas/$ID_TOOL
call GET "$A/subjects?prefix=tools"
post $A/subjects/tools%2Fsearch-v2/versions "{\"schema\":$SCHEMA_H}"
post $A/subjects/tools%2Fsearch-v2/versions "{\"schema\":{\"type\":\"object\",\"title\":\"tool v3\"}}"
call DELETE $A/subjects/nope.subject
call DELETE $A/subjects/bad%20subject
call DELETE "$A/subjects/anything.goes?cascade=1"
call DELETE $A/subjects/anything.goes
call GET $A/schemas/$ID_BOOL/content

section "## object tier (documents over 4 KiB)"
BIG="{\"type\":\"object\",\"title\":\"zebraword\",\"description\":\"$(repeat b 5000)\"}"
post $A/subjects/big.document/versions "{\"schema\":$BIG,\"description\":\"a large document\",\"tags\":[\"large\"]}"
ID_BIG=$(last_id)
post $A/subjects/big.document/versions "{\"schema\":$BIG}"
post $A/subjects/big.copy/versions "{\"schema\":$BIG}"
ID_BIG2=$(last_id)
call GET $A/schemas/$ID_BIG
call GET $A/subjects/big.document/versions/latest
call GET $A/schemas/$ID_BIG/content
call GET $A/schemas/$ID_BIG/content -H "If-None-Match: $(last_etag)"
call GET $A/schemas/$ID_BIG/content-url
call GET "$A/search?q=zebraword"
call GET "$A/search?q=large%20document"
call GET "$A/search?tag=large"
call GET /health/storage
call DELETE $A/subjects/big.copy/versions/1.0.0
call DELETE "$A/subjects/big.copy/versions/1.0.0?permanent=true"
call GET $A/schemas/$ID_BIG2
call GET $A/schemas/$ID_BIG/content
call GET $A/schemas/$ID_BIG

section "## object tier: a corrupted and a missing object (500)"
# Registered but never read, so not in the L1 cache; then damaged on disk.
post $A/subjects/big.corrupt/versions "{\"schema\":{\"title\":\"corrupt me\",\"description\":\"$(repeat c 5000)\"}}"
ID_CORRUPT=$(last_id)
CORRUPT_OBJECT=$(object_file)
cp "$CORRUPT_OBJECT" "$WORK/corrupt-object.saved"
printf 'X' | dd of="$CORRUPT_OBJECT" bs=1 seek=10 conv=notrunc status=none
post $A/subjects/big.missing/versions "{\"schema\":{\"title\":\"lose me\",\"description\":\"$(repeat l 5000)\"}}"
ID_MISSING=$(last_id)
MISSING_OBJECT=$(object_file)
mv "$MISSING_OBJECT" "$WORK/missing-object.saved"
call GET $A/schemas/$ID_CORRUPT/content
call GET $A/schemas/$ID_CORRUPT
call GET $A/subjects/big.corrupt/versions/1.0.0
call GET $A/schemas/$ID_MISSING/content
call GET $A/schemas/$ID_MISSING/content-url
call GET /health/storage
call DELETE $A/subjects/big.missing/versions/1.0.0
call DELETE "$A/subjects/big.missing/versions/1.0.0?permanent=true"
call GET $A/schemas/$ID_MISSING
call GET "$A/search?q=lose"
call GET "$A/search?subject_prefix=big."
# Repaired: both read again, and the rest of the sequence is not affected.
cp "$WORK/corrupt-object.saved" "$CORRUPT_OBJECT"
mv "$WORK/missing-object.saved" "$MISSING_OBJECT"
call GET $A/schemas/$ID_CORRUPT/content
call GET "$A/search?subject_prefix=big."
call DELETE $A/subjects/big.missing/versions/1.0.0
call DELETE "$A/subjects/big.missing/versions/1.0.0?permanent=true"
call GET $A/schemas/$ID_MISSING
call GET /health/storage

section "## unknown routes (404)"
call GET /
call GET /api/v1
call GET /api/v1/
call GET /api/v1/unknown
call GET /api/v2/subjects
call GET /api/v1/subjects/
call GET /api/v1/subjects/orders.created/versions/
call GET /api/v1/subjects/orders.created/versions/1.0.0/schema
call GET /api/v1/schemas
call GET /api/v1/schemas/$ID_A/unknown
call GET /health
call GET /healthz
call POST /nope
call DELETE /api/v1/schemas/$ID_A/content/extra
call GET /API/V1/SUBJECTS

section "## methods not allowed (405)"
call POST $A/subjects
call PUT $A/subjects/orders.created
call GET $A/subjects/orders.created
call HEAD $A/subjects/orders.created
call PATCH $ORD
call DELETE $ORD
call PUT $ORD/1.0.0
call POST $ORD/1.0.0
call PUT $A/schemas/$ID_A
call POST $A/schemas/$ID_A -H 'content-type: application/json' --data-binary '{"state":"active"}'
call POST $A/schemas/$ID_A/content
call DELETE $A/schemas/$ID_A/content-url
call POST $A/schemas/$ID_A/dependencies
call PUT $A/schemas/$ID_A/dependents
call POST $A/search
call DELETE $A/stats
call POST /health/live
call PUT /health/ready
call DELETE /health/storage
call POST /metrics
call OPTIONS $A/subjects
call TRACE $A/search

section "## metrics (status and headers only)"
call GET /metrics
: >"$LAST.body"
touch "$LAST.nobody"

section "## final state"
call GET $A/subjects
call GET "$A/search?limit=1000"
call GET "$A/search?state=deleted"
call GET $A/stats
call GET /health/storage
call GET /health/live

# ---------------------------------------------------------------------------
# Transcript
# ---------------------------------------------------------------------------

python3 - "$REQ" "$PORT" "$RAW" <<'PY'
import os
import re
import sys

req_dir, port, raw = sys.argv[1], sys.argv[2], sys.argv[3] == "true"

UUID = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TIME = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
NUMBER = rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"
# Fields whose values differ between two runs of one binary.
VARYING = [
    re.compile(rb'("uptime_seconds":)' + NUMBER),
    re.compile(rb'("latency_ms":)' + NUMBER),
    re.compile(rb'("l1_entries":)' + NUMBER),
    re.compile(rb'("l1":\{"entries":)' + NUMBER),
]
PORT = re.compile(rb"(127\.0\.0\.1|localhost):" + re.escape(port.encode()) + rb"(?!\d)")
ids = {}


def uuid_name(m):
    key = m.group(0)
    if key not in ids:
        ids[key] = b"<uuid-%d>" % (len(ids) + 1)
    return ids[key]


def normalise(text):
    """Replaces what varies between runs inside `text`; everything else is kept."""
    if raw:
        return text
    text = TIME.sub(b"<time>", text)
    text = PORT.sub(rb"\1:<port>", text)
    for pattern in VARYING:
        text = pattern.sub(rb"\1<n>", text)
    return UUID.sub(uuid_name, text)


def length_varies(body):
    """Whether `body` holds a value whose length can differ between runs (a UUID's cannot)."""
    return any(p.search(body) for p in [TIME, PORT, *VARYING])


out = sys.stdout.buffer
names = sorted({f.split(".")[0] for f in os.listdir(req_dir)})
for name in names:
    path = os.path.join(req_dir, name)
    if os.path.exists(path + ".section"):
        with open(path + ".section", "rb") as f:
            out.write(b"\n" + f.read())
        continue
    with open(path + ".meta", "rb") as f:
        meta = f.read().rstrip(b"\n").split(b"\n")
    with open(path + ".headers", "rb") as f:
        head = f.read().replace(b"\r\n", b"\n")
    with open(path + ".body", "rb") as f:
        body = f.read()
    # The last header block (curl writes one per response it reads).
    blocks = [b for b in head.split(b"\n\n") if b.strip()]
    lines = blocks[-1].split(b"\n") if blocks else [b"(no response)"]
    nbody = normalise(body)
    not_recorded = os.path.exists(path + ".nobody")
    out.write(b"\n### %s %s\n" % (meta[0], normalise(meta[1])))
    for arg in meta[2:]:
        out.write(b"> " + normalise(arg) + b"\n")
    out.write(b"< " + lines[0] + b"\n")
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        key_l = key.strip().lower()
        value = value.strip()
        if key_l == b"date":
            continue
        if not raw and key_l == b"x-request-id" and UUID.fullmatch(value):
            value = b"<request-id>"
        elif not raw and key_l == b"content-length" and not_recorded:
            value = b"<n>"
        elif (
            not raw
            and key_l == b"content-length"
            and length_varies(body)
            and value == str(len(body)).encode()
        ):
            value = b"<n>"
        else:
            value = normalise(value)
        out.write(b"< " + key + b": " + value + b"\n")
    if not_recorded:
        out.write(b"(body not recorded)\n")
    elif not body:
        out.write(b"(empty body)\n")
    else:
        out.write(nbody)
        if not nbody.endswith(b"\n"):
            out.write(b"\n\\ no newline at end of body\n")
PY
