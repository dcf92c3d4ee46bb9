#!/usr/bin/env bash
# Builds, in release mode, what the scripts of docs/perf/ run; each of them runs this first:
#   target/release/llm-schema-registry            the server (crate llm-schema-registry-server)
#   target/release/llm-schema-registry-load-test  the load generator, which `llm-schema-registry
#                                                 load-test` runs from beside the server binary
#   target/release/examples/bare_axum             the HTTP ceiling (crate llm-schema-registry-loadtest)
# Cargo makes this a no-op when they are up to date. PERF_NO_BUILD=1 skips it, to measure the
# binaries already there.
#   bash docs/perf/build.sh
set -euo pipefail
[[ ${PERF_NO_BUILD:-} == 1 ]] && exit 0
cd "$(dirname "$0")/../.."
cargo build --release -p llm-schema-registry-server --bin llm-schema-registry
cargo build --release -p llm-schema-registry-loadtest --bin llm-schema-registry-load-test --example bare_axum
