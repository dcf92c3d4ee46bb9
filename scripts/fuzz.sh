#!/usr/bin/env bash
# Fuzzes every parser entry point (SchemaContent::parse per format, Subject::parse,
# SchemaVersion::parse) for SECONDS (default 60) per target.
#
#   scripts/fuzz.sh [SECONDS]
#
# With cargo-fuzz and a nightly toolchain: libFuzzer on each target of fuzz/fuzz_targets/, seeded
# from fuzz/corpus/<target>/ (new inputs go to fuzz/target/corpus/, crashes to fuzz/artifacts/).
# Without them (or with FUZZ_STABLE=1): the same checks as a bounded property test on stable
# (fuzz/tests/property.rs: the seeds, then random mutations of them). fuzz/ is its own
# workspace, outside the main one: the normal build and CI do not compile it. Debug builds.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"

if [[ "${FUZZ_STABLE:-0}" != 1 ]] && ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || echo "fuzz.sh: cargo-fuzz could not be installed" >&2
fi

if [[ "${FUZZ_STABLE:-0}" != 1 ]] && cargo fuzz --version >/dev/null 2>&1 &&
    rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    for target in $(cargo +nightly fuzz list); do
        mkdir -p "target/corpus/$target"
        echo "fuzz.sh: libFuzzer on $target for ${seconds}s" >&2
        cargo +nightly fuzz run --dev "$target" "target/corpus/$target" "corpus/$target" -- \
            -max_total_time="$seconds" -print_final_stats=1
    done
else
    echo "fuzz.sh: no cargo-fuzz with nightly; running the property test for ${seconds}s per target" >&2
    FUZZ_SECONDS="$seconds" FUZZ_ITERATIONS=18446744073709551615 \
        cargo test --test property -- --nocapture
fi
