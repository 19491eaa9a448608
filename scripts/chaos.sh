#!/usr/bin/env bash
# The chaos run (README "Several instances under load and faults"): CHAOS_PHOTOS photos (1000,
# CHAOS_RATE a second: 10) through two prism-bot processes on Redis and PostgreSQL (scripts/test-services.sh), one of
# them SIGKILLed every CHAOS_KILL_SECONDS (20) and restarted; prints lost, answered twice and
# recorded, and fails on a lost photo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-services.sh
export PRISM_TEST_REDIS_URL=${PRISM_TEST_REDIS_URL:-redis://127.0.0.1:6379}
export PRISM_TEST_DATABASE_URL=${PRISM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cargo test -p prism-bot --test crash -- --ignored --nocapture chaos
