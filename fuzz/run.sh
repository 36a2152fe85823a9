#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each, one after the
# other, single-process. Exits non-zero as soon as a target crashes (the
# input is kept in fuzz/artifacts/<target>/). Targets are discovered with
# `cargo fuzz list`, so a new target (e.g. the rendezvous message parser)
# only needs its [[bin]] in fuzz/Cargo.toml and its seeds in
# fuzz/corpus/<target>/seed-*.
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# Usage: fuzz/run.sh SECONDS [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:?usage: fuzz/run.sh SECONDS [TARGET...]}"
shift
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
fuzz=(cargo "+$toolchain" fuzz)

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list)
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "fuzz/run.sh: no fuzz targets found" >&2
    exit 1
fi

# Build once, so the time limit is spent fuzzing.
"${fuzz[@]}" build

status=0
for target in "${targets[@]}"; do
    echo "==> fuzzing $target for ${seconds}s"
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    log="$(mktemp)"
    # The committed seeds are in $corpus; new inputs libFuzzer finds are
    # written there too (git keeps only seed-*).
    if "${fuzz[@]}" run "$target" "$corpus" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs' "$log" || tail -n 3 "$log"
    else
        tail -n 60 "$log"
        echo "fuzz/run.sh: $target FAILED (artifacts in fuzz/artifacts/$target/)" >&2
        status=1
    fi
    rm -f "$log"
    [ "$status" -eq 0 ] || break
done
exit "$status"
