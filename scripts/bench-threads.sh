#!/usr/bin/env bash
# Thread scaling: `prism process` with --threads 1 and --threads 2 alternately over a folder
# of photos; prints median images/s of each and the ratio.
#
#   usage: scripts/bench-threads.sh PHOTO_DIR [PAIRS=5] [PIPELINE='fit:1280x1280|jpeg:85'] [PRISM=target/release/prism]
set -euo pipefail
dir=${1:?usage: bench-threads.sh PHOTO_DIR [PAIRS] [PIPELINE] [PRISM]}
pairs=${2:-5}
pipeline=${3:-fit:1280x1280|jpeg:85}
prism=${4:-target/release/prism}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rate() { # threads: prints images/s from the summary line
  "$prism" process --threads "$1" --pipeline "$pipeline" "$dir" -o "$out" | tail -n 1 | sed -E 's/.*: ([0-9.]+) images\/s.*/\1/'
}
for _ in $(seq "$pairs"); do
  echo "1 $(rate 1)"
  echo "2 $(rate 2)"
done > "$out/runs"
median() { awk -v t="$1" '$1 == t {print $2}' "$out/runs" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
one=$(median 1); two=$(median 2)
echo "images/s, medians of $pairs alternating pairs ($pipeline): --threads 1: $one, --threads 2: $two"
printf "scaling --threads 2 / --threads 1: %.2fx\n" "$(echo "$two / $one" | bc -l)"
