#!/usr/bin/env bash
# The project's single test command: provides real PostgreSQL, Redis and
# S3-compatible servers for the integration tests, runs the tests (or any
# command) against them, and tears down whatever it started.
#
# Services already provided by the environment (DATABASE_URL, REDIS_URL,
# S3_ENDPOINT) are used as they are when they answer; otherwise a throwaway
# instance is started on a free loopback port and removed afterwards.
set -euo pipefail

readonly PROG=${0##*/}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
readonly REPO_ROOT

# Pinned: the s3s-fs CLI flags used below were checked against this release,
# and later releases may need a newer rustc.
readonly S3S_FS_VERSION=0.14.1
readonly S3_TEST_BUCKET=schema-registry-test
readonly S3_TEST_ACCESS_KEY=test-access-key
readonly S3_TEST_SECRET_KEY=test-secret-key

usage() {
    cat <<EOF
Usage:
  scripts/$PROG                    provide services, then run
                                   'cargo nextest run --workspace --no-fail-fast'
                                   (or 'cargo test --workspace --no-fail-fast'
                                   when cargo-nextest is not installed)
  scripts/$PROG -- CMD [ARGS...]   provide services, then run CMD instead
                                   (e.g. 'scripts/$PROG -- cargo bench')
  scripts/$PROG --help             show this help

Services (each used from the environment when set and reachable, otherwise
started as a throwaway instance on a free 127.0.0.1 port and stopped on exit):
  PostgreSQL  DATABASE_URL                       (+ PG_BIN_DIR, always; PG_EXTRA_OPTS
              adds server settings to a throwaway cluster, e.g.
              PG_EXTRA_OPTS='-c shared_buffers=1GB')
  Redis       REDIS_URL                          (+ REDIS_SERVER_BIN, always)
  S3          S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
              S3_BUCKET_FOR_TESTS, S3_REGION, S3_ALLOW_HTTP, S3_PATH_STYLE
              (+ S3S_FS_BIN when s3s-fs is used)
Missing server binaries are installed (apt-get for postgresql/redis-server,
'cargo install s3s-fs' for S3). A service that cannot be provided is an error.
The exit status is the command's.
EOF
}

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

log() { printf '%s\n' "$*" >&2; }

# A service that cannot be provided is always fatal (in CI and locally): a test
# run that silently skips its integration tests is worse than a failed one.
die() {
    local service=$1
    shift
    log "$PROG: ERROR: $service: $*"
    [[ ${CI:-} == true ]] && log "$PROG: (CI=true) cannot provide $service; failing the run."
    exit 1
}

# Print the last lines of a server's log, to explain a failed start.
show_log() {
    [[ -f $1 ]] || return 0
    log "---- last lines of $1 ----"
    tail -n 30 "$1" >&2 || true
    log "----"
}

# Ask the kernel for a free loopback port (bind to port 0). The port is free
# when we look; a clash before the server binds it is very unlikely.
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' && return
    fi
    # No python3: pick random high ports until one does not answer.
    local port _
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    return 1
}

# apt-get update is slow; run it at most once per invocation.
APT_UPDATED=
apt_install() {
    command -v apt-get >/dev/null 2>&1 || { log "$PROG: apt-get is not available"; return 1; }
    if [[ -z $APT_UPDATED ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update >&2 || return 1
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}

# Everything started here is recorded so that cleanup stops exactly that.
WORK_DIR=         # temp dir for redis and s3s-fs (owned by us)
PG_TMP=           # temp dir for the throwaway cluster (owned by postgres)
PG_STARTED=
REDIS_PIDFILE=
S3S_PID=
CMD_PID=          # the test command, while it runs

# shellcheck disable=SC2317  # invoked from the EXIT trap
cleanup() {
    # Interrupted: stop the command first, so that it does not see its
    # services vanish while it still runs.
    if [[ -n $CMD_PID ]]; then
        stop_pid "$CMD_PID" 100
    fi
    if [[ -n $PG_STARTED ]]; then
        pg_run "$PG_BIN_DIR/pg_ctl" stop -m immediate -w -D "$PG_TMP/data" >/dev/null 2>&1 || {
            # pg_ctl failed: kill the postmaster directly so nothing is left behind.
            local pid
            if pid=$(head -n 1 "$PG_TMP/data/postmaster.pid" 2>/dev/null); then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        }
    fi
    if [[ -n $REDIS_PIDFILE && -f $REDIS_PIDFILE ]]; then
        stop_pid "$(cat "$REDIS_PIDFILE")"
    fi
    if [[ -n $S3S_PID ]]; then
        stop_pid "$S3S_PID"
    fi
    [[ -n $PG_TMP ]] && rm -rf "$PG_TMP"
    [[ -n $WORK_DIR ]] && rm -rf "$WORK_DIR"
    return 0
}

# SIGTERM a process we started, give it TENTHS/10 s (default 5 s), then
# SIGKILL it.
# shellcheck disable=SC2317  # invoked from cleanup
stop_pid() {
    local pid=$1 tenths=${2:-50} _
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 "$tenths"); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# initdb and pg_ctl refuse to run as root, so as root they run as 'postgres'
# (from / so that an unreadable working directory does not trouble them).
pg_run() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Set PG_BIN_DIR to a directory holding initdb, pg_ctl and postgres: the one
# given in the environment, else the highest Debian version, else PATH; as a
# last resort install Debian's postgresql package.
find_pg_bin_dir() {
    local dir attempt
    if [[ -n ${PG_BIN_DIR:-} && -x ${PG_BIN_DIR}/initdb && -x ${PG_BIN_DIR}/pg_ctl ]]; then
        return 0
    fi
    for attempt in existing install; do
        dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1 || true)
        if [[ -z $dir ]] && command -v initdb >/dev/null 2>&1; then
            dir=$(dirname "$(command -v initdb)")
        fi
        if [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]]; then
            PG_BIN_DIR=$dir
            return 0
        fi
        [[ $attempt == existing ]] || break
        log "postgres: no PostgreSQL binaries found; installing Debian package postgresql"
        apt_install postgresql || die postgres "PostgreSQL binaries not found and 'apt-get install postgresql' failed"
    done
    die postgres "PostgreSQL binaries (initdb, pg_ctl, postgres) not found, even after installing postgresql"
}

pg_url_reachable() {
    PGCONNECT_TIMEOUT=5 "$PG_BIN_DIR/psql" "$1" -Atc 'select 1' >/dev/null 2>&1
}

provide_postgres() {
    find_pg_bin_dir
    export PG_BIN_DIR

    local note=
    if [[ -n ${DATABASE_URL:-} ]]; then
        if pg_url_reachable "$DATABASE_URL"; then
            export DATABASE_URL
            log "postgres: using DATABASE_URL from the environment"
            return
        fi
        note="DATABASE_URL from the environment is unreachable; "
    fi

    if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        die postgres "running as root but there is no 'postgres' user to run initdb as"
    fi

    # A private dir under /tmp (not $TMPDIR): the postgres user must be able to
    # reach it, and the unix socket path inside it must stay short.
    PG_TMP=$(mktemp -d /tmp/schema-registry-pg.XXXXXX)
    [[ $EUID -eq 0 ]] && chown postgres:postgres "$PG_TMP"

    pg_run "$PG_BIN_DIR/initdb" -A trust -U postgres --no-sync --encoding=UTF8 --locale=C \
        -D "$PG_TMP/data" >"$PG_TMP/initdb.log" 2>&1 || {
        show_log "$PG_TMP/initdb.log"
        die postgres "initdb failed ($PG_BIN_DIR/initdb)"
    }

    local port
    port=$(free_port) || die postgres "could not find a free port"
    # Durability is pointless for a throwaway cluster; speed is not.
    # max_connections is high because many tests each open their own pool.
    local opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PG_TMP"
    opts+=" -c max_connections=500 -c shared_buffers=128MB"
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    # Later -c settings win: benchmarks may size the cluster (docs/PERFORMANCE.md §6).
    opts+=" ${PG_EXTRA_OPTS:-}"

    PG_STARTED=1
    pg_run "$PG_BIN_DIR/pg_ctl" start -w -t 60 -D "$PG_TMP/data" -l "$PG_TMP/postgres.log" \
        -o "$opts" >"$PG_TMP/pg_ctl.log" 2>&1 || {
        show_log "$PG_TMP/pg_ctl.log"
        show_log "$PG_TMP/postgres.log"
        die postgres "throwaway cluster failed to start on 127.0.0.1:$port"
    }

    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    pg_url_reachable "$DATABASE_URL" || {
        show_log "$PG_TMP/postgres.log"
        die postgres "throwaway cluster started but does not answer at $DATABASE_URL"
    }
    log "postgres: ${note}throwaway cluster on 127.0.0.1:$port ($PG_BIN_DIR)"
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------

find_redis_server() {
    if [[ -n ${REDIS_SERVER_BIN:-} && -x ${REDIS_SERVER_BIN} ]]; then
        return 0
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
        # Debian's package may also start a system redis on 6379; harmless,
        # we never use it.
        log "redis: redis-server not found; installing Debian package redis-server"
        apt_install redis-server || die redis "redis-server not found and 'apt-get install redis-server' failed"
    fi
    REDIS_SERVER_BIN=$(command -v redis-server) \
        || die redis "redis-server not found, even after installing redis-server"
}

provide_redis() {
    find_redis_server
    export REDIS_SERVER_BIN

    local cli
    cli=$(command -v redis-cli || true)
    [[ -z $cli && -x $(dirname "$REDIS_SERVER_BIN")/redis-cli ]] && cli=$(dirname "$REDIS_SERVER_BIN")/redis-cli
    [[ -n $cli ]] || die redis "redis-cli not found (it is needed to check that redis answers)"

    local note=
    if [[ -n ${REDIS_URL:-} ]]; then
        if [[ $(timeout 5 "$cli" -u "$REDIS_URL" ping 2>/dev/null) == PONG ]]; then
            export REDIS_URL
            log "redis: using REDIS_URL from the environment"
            return
        fi
        note="REDIS_URL from the environment is unreachable; "
    fi

    local port
    port=$(free_port) || die redis "could not find a free port"
    # Nothing is persisted: a throwaway server must leave no files behind.
    REDIS_PIDFILE=$WORK_DIR/redis.pid
    "$REDIS_SERVER_BIN" --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --daemonize yes --pidfile "$REDIS_PIDFILE" --dir "$WORK_DIR" \
        --logfile "$WORK_DIR/redis.log" </dev/null >/dev/null 2>&1 || {
        show_log "$WORK_DIR/redis.log"
        die redis "redis-server failed to start on 127.0.0.1:$port"
    }

    # --daemonize returns before the server has bound its port: poll PING.
    local _
    for _ in $(seq 1 100); do
        if [[ $(timeout 2 "$cli" -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then
            export REDIS_URL="redis://127.0.0.1:$port"
            log "redis: ${note}throwaway redis-server on 127.0.0.1:$port ($REDIS_SERVER_BIN)"
            return
        fi
        sleep 0.1
    done
    show_log "$WORK_DIR/redis.log"
    die redis "redis-server on 127.0.0.1:$port did not answer PING within 10 s"
}

# ---------------------------------------------------------------------------
# S3 (s3s-fs: a file-system-backed S3 server that checks SigV4 signatures)
# ---------------------------------------------------------------------------

http_answers() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" 2>/dev/null || true)
    [[ -n $code && $code != 000 ]]
}

# Set S3S_FS_BIN from the environment, PATH or cargo's bin dir.
find_s3s_fs() {
    local candidate
    for candidate in "${S3S_FS_BIN:-}" "$(command -v s3s-fs || true)" "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs"; do
        if [[ -n $candidate && -x $candidate ]]; then
            S3S_FS_BIN=$candidate
            return 0
        fi
    done
    return 1
}

provide_s3() {
    command -v curl >/dev/null 2>&1 || die s3 "curl not found (it is needed to check that the S3 server answers)"

    local note=
    if [[ -n ${S3_ENDPOINT:-} ]]; then
        if http_answers "$S3_ENDPOINT"; then
            # Keep whatever credentials and settings the environment gives.
            export S3_ENDPOINT
            export S3_BUCKET_FOR_TESTS=${S3_BUCKET_FOR_TESTS:-$S3_TEST_BUCKET}
            export S3_REGION=${S3_REGION:-us-east-1}
            export S3_PATH_STYLE=${S3_PATH_STYLE:-true}
            [[ $S3_ENDPOINT == http://* ]] && export S3_ALLOW_HTTP=${S3_ALLOW_HTTP:-true}
            find_s3s_fs && export S3S_FS_BIN
            log "s3: using S3_ENDPOINT from the environment"
            return
        fi
        note="S3_ENDPOINT from the environment is unreachable; "
    fi

    if ! find_s3s_fs; then
        log "s3: s3s-fs not found; installing it with cargo install (takes a few minutes)"
        cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked >&2 \
            || die s3 "s3s-fs not found and 'cargo install s3s-fs --version $S3S_FS_VERSION' failed"
        find_s3s_fs || die s3 "s3s-fs not found, even after cargo install"
    fi
    export S3S_FS_BIN

    # s3s-fs maps each sub-directory of its root to a bucket, so creating the
    # directory before start is creating the bucket.
    local root=$WORK_DIR/s3
    mkdir -p "$root/$S3_TEST_BUCKET"

    local port
    port=$(free_port) || die s3 "could not find a free port"
    # Logs go to a file: a background server must not hold our stdout open.
    "$S3S_FS_BIN" --host 127.0.0.1 --port "$port" \
        --access-key "$S3_TEST_ACCESS_KEY" --secret-key "$S3_TEST_SECRET_KEY" \
        "$root" </dev/null >"$WORK_DIR/s3s-fs.log" 2>&1 &
    S3S_PID=$!

    local endpoint="http://127.0.0.1:$port" _
    for _ in $(seq 1 100); do
        kill -0 "$S3S_PID" 2>/dev/null || {
            show_log "$WORK_DIR/s3s-fs.log"
            die s3 "s3s-fs exited during start ($S3S_FS_BIN)"
        }
        if http_answers "$endpoint"; then
            export S3_ENDPOINT=$endpoint
            export S3_BUCKET_FOR_TESTS=$S3_TEST_BUCKET
            export AWS_ACCESS_KEY_ID=$S3_TEST_ACCESS_KEY
            export AWS_SECRET_ACCESS_KEY=$S3_TEST_SECRET_KEY
            # A session token from the environment would not match these keys.
            unset AWS_SESSION_TOKEN
            export S3_REGION=us-east-1 S3_ALLOW_HTTP=true S3_PATH_STYLE=true
            log "s3: ${note}throwaway s3s-fs on 127.0.0.1:$port, bucket $S3_TEST_BUCKET ($S3S_FS_BIN)"
            return
        fi
        sleep 0.1
    done
    show_log "$WORK_DIR/s3s-fs.log"
    die s3 "s3s-fs on 127.0.0.1:$port did not answer within 10 s"
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

cmd=()
case ${1:-} in
    "") ;;
    -h | --help) usage; exit 0 ;;
    --)
        shift
        [[ $# -gt 0 ]] || { usage >&2; log "$PROG: '--' must be followed by a command"; exit 2; }
        cmd=("$@")
        ;;
    *) usage >&2; log "$PROG: unknown argument: $1"; exit 2 ;;
esac

# Installed cleanup before anything is started. INT/TERM become an exit, so
# the EXIT trap does the cleanup exactly once, whatever ends the script.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

WORK_DIR=$(mktemp -d -t schema-registry-test.XXXXXX)

provide_postgres
provide_redis
provide_s3

# CARGO_TERM_COLOR is passed through as the caller set it (left untouched).
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
# CI gets nextest's 'ci' profile (see .config/nextest.toml) unless chosen otherwise.
if [[ ${CI:-} == true ]]; then
    export NEXTEST_PROFILE=${NEXTEST_PROFILE:-ci}
fi

if [[ ${#cmd[@]} -eq 0 ]]; then
    cd "$REPO_ROOT"
    if cargo nextest --version >/dev/null 2>&1; then
        cmd=(cargo nextest run --workspace --no-fail-fast)
    else
        log "$PROG: cargo-nextest not installed; falling back to cargo test"
        cmd=(cargo test --workspace --no-fail-fast)
    fi
fi

# Not exec: the EXIT trap must still tear the services down afterwards.
# In the background plus `wait`, because bash runs a signal trap only after a
# foreground command ends: a SIGTERM (e.g. a CI timeout) must stop the command
# and the services now. `&` would also give the command /dev/null as stdin and
# ignore SIGINT/SIGQUIT in it (tests that signal their own children would see
# that); `<&0` and `trap -` undo both.
( trap - INT QUIT; exec "${cmd[@]}" ) <&0 &
CMD_PID=$!
status=0
wait "$CMD_PID" || status=$?
CMD_PID=
exit "$status"
