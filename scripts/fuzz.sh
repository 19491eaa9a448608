#!/usr/bin/env bash
# Fuzzing Prism (README "Proof"). Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz --locked`).
#
#   scripts/fuzz.sh run TARGET SECONDS [JOBS]   fuzz one target (corpus kept in fuzz/corpus/)
#   scripts/fuzz.sh smoke [SECONDS]             every target for SECONDS each (CI: 6)
#   scripts/fuzz.sh list                        the targets
#
# Seeds come from fixtures/ and fuzz/seeds/; findings land in fuzz/artifacts/TARGET/.
# Per-input limits: a slow input (over TIMEOUT seconds, default 5, in this instrumented
# build) or one that needs more than 2 GiB is reported as a finding, not waited on.
set -euo pipefail
cd "$(dirname "$0")/.."

# cargo-fuzz compiles every crate as one codegen unit unless told otherwise: the fastest
# executions, and the slowest build by far. The smoke, which runs each target for seconds,
# builds with 16 (FUZZ_CODEGEN_UNITS); a long run keeps cargo-fuzz's default. Build and run
# must agree, or the run builds everything again.
build_options() {
    [ -n "${FUZZ_CODEGEN_UNITS:-}" ] && echo "--codegen-units=$FUZZ_CODEGEN_UNITS"
    true
}

targets() { sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^prism-fuzz$'; }

# Largest input each target is given: images up to 256 KiB, text and JSON small.
max_len() {
    case "$1" in
        decode_* | jpeg_scans | process) echo 262144 ;;
        telegram_update) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

# Fixture files (at most 64 KiB: small seeds keep executions fast) with one of the extensions into a seed folder.
copy_fixtures() {
    local into=$1
    shift
    for extension in "$@"; do
        find fixtures -type f -iname "*.$extension" -size -65k -exec cp {} "$into/" \;
    done
}

# fuzz/seeds-built/TARGET: what the run starts from (cargo fuzz adds its own corpus dir).
build_seeds() {
    local target=$1 dir=fuzz/seeds-built/$1
    rm -rf "$dir" && mkdir -p "$dir"
    case "$target" in
        decode_jpeg | jpeg_scans) copy_fixtures "$dir" jpg jpeg ;;
        decode_png) copy_fixtures "$dir" png ;;
        decode_webp) copy_fixtures "$dir" webp ;;
        decode_gif) copy_fixtures "$dir" gif ;;
        process)
            # A pipeline line, then an image: each small image with each seed pipeline.
            local images=$(mktemp -d) index=0
            copy_fixtures "$images" jpg png webp gif
            for image in $(ls "$images"/* | awk 'NR % 5 == 1'); do
                for pipeline in fuzz/seeds/process_pipelines/*; do
                    index=$((index + 1))
                    cat "$pipeline" "$image" > "$dir/$index"
                done
            done
            rm -rf "$images"
            ;;
        *) cp fuzz/seeds/"$target"/* "$dir/" ;;
    esac
}

run() {
    local target=$1 seconds=$2 jobs=${3:-1} parallel=()
    # Several jobs run as child processes, logging to ./fuzz-N.log; one runs in the foreground.
    [ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
    build_seeds "$target"
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    cargo +nightly fuzz run --fuzz-dir fuzz $(build_options) "$target" "fuzz/corpus/$target" "fuzz/seeds-built/$target" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout="${TIMEOUT:-5}" \
        -rss_limit_mb=2048 "${parallel[@]}" ${FUZZ_SEED:+-seed="$FUZZ_SEED"} -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$target/"
}

case "${1:-}" in
    list) targets ;;
    run) run "$2" "$3" "${4:-1}" ;;
    smoke)
        # A fixed random seed: every submission explores the same inputs first.
        export FUZZ_SEED=${FUZZ_SEED:-1}
        export FUZZ_CODEGEN_UNITS=${FUZZ_CODEGEN_UNITS:-16}
        cargo +nightly fuzz build --fuzz-dir fuzz $(build_options)
        log=$(mktemp)
        for target in $(targets); do
            if ! run "$target" "${2:-6}" >"$log" 2>&1; then
                tail -n 60 "$log"
                echo "fuzz smoke: $target failed (input in fuzz/artifacts/$target/)" >&2
                exit 1
            fi
            echo "fuzz smoke: $target $(grep -o 'number_of_executed_units: *[0-9]*' "$log") executions"
        done
        rm -f "$log"
        ;;
    *) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac
