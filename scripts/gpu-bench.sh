#!/usr/bin/env bash
# GPU backend versus CPU backend on this machine, in under 4 minutes once built:
#   1. builds the benchmark in release and the GPU conformance tests,
#   2. runs the conformance tests on this machine's adapter (GPU output within ±1 of the
#      CPU backend for every op, filter and orientation),
#   3. prints megapixels/s of the ops stage and of whole pipelines on a 12 MP and a
#      1280 px photograph: CPU on every core, GPU with batches of 1, 8 and 32 frames,
#      the GPU stage's time per frame split by phase (GpuStats::times: packing, uploads,
#      submit, readback and unpacking on the host; waiting for the GPU), and the per-op
#      costs the `auto` cost model (engine/src/backend/cost.rs) uses.
# PRISM_BENCH_ONLY=TEXT keeps the lines whose image or pipeline contain TEXT.
# PRISM_PREBUILT=DIR runs DIR/gpu_bench and DIR/gpu-tests built elsewhere, for a GPU
# machine without a Rust toolchain. PRISM_BENCH_SECONDS sets the time per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/prism-xdg}"
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
export PRISM_BENCH_SECONDS="${PRISM_BENCH_SECONDS:-1}"

if [ -n "${PRISM_PREBUILT:-}" ]; then
    bench="$PRISM_PREBUILT/gpu_bench"
    tests="$PRISM_PREBUILT/gpu-tests"
else
    cargo build --release -p prism-engine --example gpu_bench
    bench=target/release/examples/gpu_bench
    tests=$(cargo test --test gpu --no-run 2>&1 | grep -o 'target/debug/deps/gpu-[0-9a-f]*' | head -n 1)
fi

echo "== conformance on this machine's GPU"
# (Prebuilt binaries find fixtures/ under the path they were built in.)
"$tests" --test-threads 1

echo "== throughput"
"$bench"
