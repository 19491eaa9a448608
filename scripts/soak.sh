#!/usr/bin/env bash
# Soak (README "Proof"): large photos streamed through `prism process` and through `prism-bot`
# (each a release binary in its own process; the bot against the tests' Telegram stand-in)
# side by side for MINUTES, with the memory limit set, resident memory sampled every 5 s (with
# the peak since the previous sample, from VmHWM). Fails if, for either, a later minute's peak
# is more than 10 % above minute 5's, or a peak is above the limit (scripts/soak_report.py).
# Writes docs/soak/{cli,bot}.csv, docs/soak/soak.png (the plot, via matplotlib in a throwaway
# venv) and docs/soak/summary.txt.
#
#   usage: scripts/soak.sh [MINUTES=30] [LIMIT_MB=512] [PHOTO_DIR]
#
# PHOTO_DIR: JPEGs to stream (default: ../shared/scripts/make-photo-corpus.sh's 41 photos
# when that script is there, else fixtures/photos).
# SOAK_BOT_BIN: the bot to run instead of target/release/prism-bot (a wrapper that sets, say,
# GLIBC_TUNABLES; the test clears the bot's environment, so settings must come this way).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
limit_mb=${2:-512}
photos=${3:-}
out=docs/soak
mkdir -p "$out"
seconds=$((minutes * 60))

if [ -z "$photos" ]; then
    photos=fixtures/photos
    if [ -x ../shared/scripts/make-photo-corpus.sh ]; then
        photos=/tmp/prism-photo-corpus
        [ -n "$(ls "$photos"/*.jpg 2>/dev/null)" ] || ../shared/scripts/make-photo-corpus.sh "$photos"
    fi
fi

cargo build --release -p prism-engine -p prism-bot --bin prism --bin prism-bot
cargo test --test bot_soak --no-run

# The CLI: one `prism process` over the photos repeated far beyond what it can finish,
# stopped at the deadline; its outputs are deleted as they come, its "ok" lines counted.
cli_out=$(mktemp -d)
inputs=()
for _ in $(seq 400); do inputs+=("$photos"/*.jpg); done
target/release/prism process --threads 1 --memory-limit-mb "$limit_mb" \
    --pipeline "fit:1280x1280|jpeg:85" -o "$cli_out" "${inputs[@]}" >"$out/cli.log" 2>&1 &
cli=$!
(
    echo "seconds,resident_mib,peak_mib,answered"
    start=$(date +%s)
    while kill -0 "$cli" 2>/dev/null; do
        # Now and the highest since the previous sample (VmHWM, reset through clear_refs).
        memory=$(awk '/^VmRSS/ {rss = $2 / 1024} /^VmHWM/ {hwm = $2 / 1024} END {if (rss) print rss "," hwm}' \
            "/proc/$cli/status" 2>/dev/null || true)
        echo 5 >"/proc/$cli/clear_refs" 2>/dev/null || true
        done_count=$(grep -c '^ok ' "$out/cli.log" 2>/dev/null || true)
        [ -n "$memory" ] && echo "$(($(date +%s) - start)),$memory,${done_count:-0}"
        find "$cli_out" -type f -mmin +0.1 -delete
        sleep 5
    done
) > "$out/cli.csv" &
sampler=$!

# The bot: target/release/prism-bot with two engine workers, driven and sampled by the test
# (which runs the stand-in in its own process).
SOAK_SECONDS=$seconds SOAK_MEMORY_LIMIT_MB=$limit_mb SOAK_CSV="$out/bot.csv" SOAK_PHOTOS="$photos" \
    SOAK_BOT_BIN="${SOAK_BOT_BIN:-$PWD/target/release/prism-bot}" \
    cargo test --test bot_soak -- --ignored --nocapture >"$out/bot.log" 2>&1 &
bot=$!

sleep "$seconds"
kill "$cli" 2>/dev/null || true
wait "$sampler" || true
bot_ok=0
wait "$bot" || bot_ok=$?
rm -rf "$cli_out"
[ "$bot_ok" -eq 0 ] || { tail -n 40 "$out/bot.log"; echo "soak: the bot run failed" >&2; exit 1; }

venv=/tmp/prism-soak-venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q matplotlib; }
"$venv/bin/python" scripts/soak_report.py "$out" "$limit_mb" "$photos" | tee "$out/summary.txt"
