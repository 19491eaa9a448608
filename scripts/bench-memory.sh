#!/usr/bin/env bash
# Peak resident memory of `prism process` under a memory budget, next to the budget and the
# process's idle baseline (the same command on one tiny image).
#
#   usage: scripts/bench-memory.sh PHOTO_DIR [BUDGET_MB=256] [REPEAT=20] [THREADS=2] [PRISM=target/release/prism]
#
# Takes the photos of 12 MP or more in PHOTO_DIR, each REPEAT times (symlinks).
set -euo pipefail
dir=${1:?usage: bench-memory.sh PHOTO_DIR [BUDGET_MB] [REPEAT] [THREADS] [PRISM]}
budget=${2:-256}
repeat=${3:-20}
threads=${4:-2}
prism=${5:-target/release/prism}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in" "$work/out"
count=0
for photo in "$dir"/*.jpg; do
  size=$("$prism" info --json "$photo" | grep -oE '"(width|height)": [0-9]+' | grep -oE '[0-9]+' | paste -sd'*' | bc)
  if [ "$size" -ge 12000000 ]; then
    count=$((count + 1))
    for i in $(seq "$repeat"); do ln -s "$(realpath "$photo")" "$work/in/$(basename "$photo" .jpg)-$i.jpg"; done
  fi
done
peak() { /usr/bin/time -f "%M" -o "$work/time" "$@" >/dev/null 2>&1; echo $(( $(cat "$work/time") / 1024 )); }
idle=$(peak "$prism" process --threads "$threads" --memory-limit-mb "$budget" -o "$work/out" \
  "$(dirname "$0")/../fixtures/pngsuite/basn0g01.png")
busy=$(peak "$prism" process --threads "$threads" --memory-limit-mb "$budget" --pipeline 'fit:1280x1280|jpeg:85' \
  -o "$work/out" "$work/in")
echo "$count photos of 12 MP or more, $repeat times each, --threads $threads, budget $budget MiB"
echo "peak RSS: $busy MiB; idle baseline: $idle MiB; budget + baseline: $((budget + idle)) MiB"
