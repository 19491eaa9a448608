#!/usr/bin/env bash
# Runs N prism-bot instances on loopback behind HAProxy, sharing Redis and PostgreSQL: the
# production layout on one machine. Ctrl-C or SIGTERM stops them all (the bots gracefully).
#
#   deploy/run-local.sh [N]           N instances, 2 by default (1..9)
#
# Environment (default):
#   TELEGRAM_BOT_TOKEN   required
#   TELEGRAM_API_URL     https://api.telegram.org (or a local telegram-bot-api / stand-in)
#   REDIS_URL            redis://127.0.0.1:6379
#   DATABASE_URL         postgres://postgres@127.0.0.1:5432/prism (created when missing)
#   FRONTEND_ADDR        127.0.0.1:18440, where HAProxy listens
#   WEBHOOK_URL          http://$FRONTEND_ADDR/telegram, what Telegram POSTs to (in production
#                        an https URL whose TLS terminator forwards to the frontend)
#   WEBHOOK_SECRET       random; one for all instances
#   PRISM_BOT_BIN        target/release/prism-bot (built when missing)
#   RUN_DIR              target/run-local: logs and the generated haproxy.cfg
# Instance i listens for webhooks on 127.0.0.1:1844i and serves /health/ready and
# /metrics on 127.0.0.1:1800i (deploy/prometheus.yml can scrape them).
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-2}
case $count in
[1-9]) ;;
*)
    echo "usage: $0 [N]  (N instances, 1..9)" >&2
    exit 2
    ;;
esac
: "${TELEGRAM_BOT_TOKEN:?set TELEGRAM_BOT_TOKEN}"
export TELEGRAM_BOT_TOKEN
export TELEGRAM_API_URL=${TELEGRAM_API_URL:-https://api.telegram.org}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/prism}
frontend=${FRONTEND_ADDR:-127.0.0.1:18440}
export WEBHOOK_URL=${WEBHOOK_URL:-http://$frontend/telegram}
export WEBHOOK_SECRET=${WEBHOOK_SECRET:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}
bin=${PRISM_BOT_BIN:-target/release/prism-bot}
run_dir=${RUN_DIR:-target/run-local}
mkdir -p "$run_dir"

command -v curl >/dev/null || {
    echo "run-local: curl is needed for the health checks" >&2
    exit 1
}
if [ ! -x "$bin" ]; then
    cargo build --release -p prism-bot
fi

# The instances migrate the database at start, but cannot create it.
if [[ $DATABASE_URL == postgres://* ]] && command -v psql >/dev/null; then
    db=${DATABASE_URL##*/}
    db=${db%%\?*}
    server=${DATABASE_URL%/*}/postgres
    if [ "$(psql "$server" -tAqc "select 1 from pg_database where datname = '$db'")" != 1 ]; then
        psql "$server" -qc "create database \"$db\""
    fi
fi

bots=()
haproxy_pid=
# Stops everything that was started: the bots first (SIGTERM: they finish what they
# accepted), then the load balancer.
# shellcheck disable=SC2317 # run by the trap
stop() {
    trap - EXIT INT TERM
    echo "run-local: stopping ${#bots[@]} instance(s)"
    if [ ${#bots[@]} -gt 0 ]; then
        kill -TERM "${bots[@]}" 2>/dev/null || true
        wait "${bots[@]}" 2>/dev/null || true
    fi
    if [ -n "$haproxy_pid" ]; then
        kill -TERM "$haproxy_pid" 2>/dev/null || true
        wait "$haproxy_pid" 2>/dev/null || true
    fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

servers=""
for i in $(seq "$count"); do
    listen=127.0.0.1:$((18440 + i))
    health=127.0.0.1:$((18000 + i))
    INSTANCE_ID=bot$i WEBHOOK_LISTEN=$listen HEALTH_ADDR=$health \
        RECORD_SPILL_PATH=$run_dir/bot$i.spill \
        "$bin" >"$run_dir/bot$i.log" 2>&1 &
    bots+=("$!")
    servers+="    server bot$i $listen check port $((18000 + i))\\n" # awk turns \n into newlines
    echo "run-local: bot$i (pid $!) webhook $listen, health $health, log $run_dir/bot$i.log"
done

# The template with this run's frontend and servers.
config=$run_dir/haproxy.cfg
awk -v frontend="$frontend" -v servers="$servers" '
    /@SERVERS@/ { printf "%s", servers; next }
    { gsub(/@FRONTEND@/, frontend); print }
' deploy/haproxy.cfg >"$config"

if ! command -v haproxy >/dev/null && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
fi
if command -v haproxy >/dev/null; then
    haproxy -c -q -f "$config"
    haproxy -db -f "$config" >"$run_dir/haproxy.log" 2>&1 &
    haproxy_pid=$!
    echo "run-local: haproxy (pid $haproxy_pid) on $frontend, log $run_dir/haproxy.log"
else
    echo "run-local: haproxy is not installed (apt-get install haproxy); $config is ready," \
        "and each instance answers on its own webhook port meanwhile" >&2
fi

for i in $(seq "$count"); do
    health=127.0.0.1:$((18000 + i))
    for _ in $(seq 60); do
        if curl -fs -o /dev/null "http://$health/health/ready"; then break; fi
        if ! kill -0 "${bots[i - 1]}" 2>/dev/null; then
            echo "run-local: bot$i exited; see $run_dir/bot$i.log" >&2
            exit 1
        fi
        sleep 1
    done
    curl -fsS -o /dev/null "http://$health/health/ready" || {
        echo "run-local: bot$i not healthy after 60 s; see $run_dir/bot$i.log" >&2
        exit 1
    }
done
echo "run-local: $count instance(s) healthy behind $WEBHOOK_URL; Ctrl-C stops them"

# Until a signal, or until any instance (or haproxy) exits on its own.
status=0
wait -n "${bots[@]}" ${haproxy_pid:+"$haproxy_pid"} || status=$?
echo "run-local: a process exited (status $status); stopping the rest" >&2
exit 1
