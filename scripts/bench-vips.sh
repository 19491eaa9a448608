#!/usr/bin/env bash
# Side-by-side: `prism process` against Debian's vipsthumbnail on a folder of real photos,
# alternating runs in one go; prints medians of CPU seconds (user+sys) and peak resident
# memory, and their ratios (below 1 = Prism uses less).
#
#   usage: scripts/bench-vips.sh PHOTO_DIR [SIZE=1280] [PAIRS=5] [PRISM=target/release/prism] [THREADS=2]
#
# Build first (`cargo build --release`); PHOTO_DIR can come from
# ../shared/scripts/make-photo-corpus.sh. Needs libvips-tools and GNU time.
# With VIPS_NEW_PYTHON set to a Python that has pip's pyvips-binary (libvips 8.18:
# `python3 -m venv V && V/bin/pip install pyvips-binary pyvips`), the newest libvips runs in
# the same alternation (scripts/vips-thumbnail.py) and gets its own line and ratio.
set -euo pipefail
dir=${1:?usage: bench-vips.sh PHOTO_DIR [SIZE] [PAIRS] [PRISM] [THREADS]}
size=${2:-1280}
pairs=${3:-5}
prism=${4:-target/release/prism}
threads=${5:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/prism" "$out/vips" "$out/vips-new"
new_python=${VIPS_NEW_PYTHON:-}

measure() { # label, command...: prints "label cpu_seconds peak_kib"
  local label=$1; shift
  /usr/bin/time -f "%U %S %M" -o "$out/time" "$@" >/dev/null 2>&1
  awk -v l="$label" '{printf "%s %.3f %d\n", l, $1 + $2, $3}' "$out/time"
}

for _ in $(seq "$pairs"); do
  measure prism "$prism" process --threads "$threads" --pipeline "fit:${size}x${size}|jpeg:85" "$dir" -o "$out/prism"
  measure vips vipsthumbnail -s "$size" -o "$out/vips/%s.jpg[Q=85,strip]" "$dir"/*.jpg
  if [ -n "$new_python" ]; then
    measure vips-new "$new_python" "$(dirname "$0")/vips-thumbnail.py" "$size" "$out/vips-new" "$dir"/*.jpg
  fi
done > "$out/runs"

median() { # label, column
  awk -v l="$1" -v c="$2" '$1 == l {print $c}' "$out/runs" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
p_cpu=$(median prism 2); v_cpu=$(median vips 2)
p_mem=$(median prism 3); v_mem=$(median vips 3)
images=$(ls "$dir"/*.jpg | wc -l)
echo "photos: $images in $dir, size $size, $pairs alternating pairs, prism --threads $threads ($prism)"
printf "prism:         %6.2f CPU s  %6.0f MiB peak\n" "$p_cpu" "$(echo "$p_mem / 1024" | bc -l)"
printf "vipsthumbnail: %6.2f CPU s  %6.0f MiB peak\n" "$v_cpu" "$(echo "$v_mem / 1024" | bc -l)"
printf "ratio prism/vips: CPU %.2fx, peak memory %.2fx\n" "$(echo "$p_cpu / $v_cpu" | bc -l)" "$(echo "$p_mem / $v_mem" | bc -l)"
if [ -n "$new_python" ]; then
  n_cpu=$(median vips-new 2); n_mem=$(median vips-new 3)
  n_version=$("$new_python" -c 'import pyvips; print("%d.%d.%d" % tuple(pyvips.version(i) for i in range(3)))')
  printf "libvips %s:  %6.2f CPU s  %6.0f MiB peak (pyvips, Python included)\n" "$n_version" "$n_cpu" "$(echo "$n_mem / 1024" | bc -l)"
  printf "ratio prism/libvips %s: CPU %.2fx, peak memory %.2fx\n" "$n_version" "$(echo "$p_cpu / $n_cpu" | bc -l)" "$(echo "$p_mem / $n_mem" | bc -l)"
fi
