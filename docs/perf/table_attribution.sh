#!/usr/bin/env bash
# Where the cost of inserting into `schemas` goes (docs/PERFORMANCE.md, "Registration on
# PostgreSQL vs pgbench"): pgbench runs the registry-row insert that `run.sh register` writes
# ($PERF_OUT/pgbench-insert-schemas.sql) against a freshly migrated database, once as migrated
# and once per schema object removed. Builds the server first (docs/perf/build.sh).
#
#   scripts/test.sh -- bash docs/perf/run.sh register        # writes the insert script
#   scripts/test.sh -- bash docs/perf/table_attribution.sh
#
# Knobs: T (seconds per run, default 10), PERF_OUT (default /tmp/perf-results).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$REPO/target/release/llm-schema-registry
SCRIPT=${PERF_OUT:-/tmp/perf-results}/pgbench-insert-schemas.sql
[[ -n ${DATABASE_URL:-} && -n ${PG_BIN_DIR:-} ]] || { echo "run under scripts/test.sh" >&2; exit 2; }
[[ -f $SCRIPT ]] || { echo "$SCRIPT is missing: run 'docs/perf/run.sh register' first" >&2; exit 2; }
bash "$REPO/docs/perf/build.sh"   # $BIN (for `migrate run`)

run() { # run NAME SQL-TO-APPLY-AFTER-MIGRATING
    local db="${DATABASE_URL%/*}/perf_attribution"
    "$PG_BIN_DIR/psql" "$DATABASE_URL" -q -c "DROP DATABASE IF EXISTS perf_attribution" \
        -c "CREATE DATABASE perf_attribution" 2>/dev/null
    "$BIN" migrate run --database-url "$db" >/dev/null
    "$PG_BIN_DIR/psql" "$db" -q -c "INSERT INTO subjects (subject, max_major, max_minor, max_patch, max_pre, created_at) SELECT 'bench-' || g, 1, 0, 0, '', now() FROM generate_series(1, 1000) g"
    [[ -z $2 ]] || "$PG_BIN_DIR/psql" "$db" -q -c "$2"
    printf '%-16s ' "$1"
    "$PG_BIN_DIR/pgbench" -n -M prepared -c 16 -j 2 -T "${T:-10}" -f "$SCRIPT" "$db" 2>&1 | grep -E '^tps'
}
run all ""
run no_fts_index "DROP INDEX schemas_search_vector"
run no_fts_column "ALTER TABLE schemas DROP COLUMN search_vector"
run no_trgm "DROP INDEX schemas_subject_trgm; DROP INDEX schemas_description_trgm"
run no_meta_tags "DROP INDEX schemas_metadata; DROP INDEX schemas_tags"
run no_gin_no_fts "DROP INDEX schemas_subject_trgm; DROP INDEX schemas_description_trgm; DROP INDEX schemas_metadata; DROP INDEX schemas_tags; ALTER TABLE schemas DROP COLUMN search_vector"
run no_btree_extra "DROP INDEX schemas_created_at; DROP INDEX schemas_subject_checksum; DROP INDEX schemas_subject_version_desc"
