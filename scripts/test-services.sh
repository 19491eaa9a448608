#!/usr/bin/env bash
# Makes sure the shared services the bot's tests use answer on loopback: Redis on
# 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres and a
# database `test`. What is missing is installed (Debian/Ubuntu, apt) and started; when both
# already answer this is a quick no-op. Tests never stop these servers: they inject faults
# through their own TCP proxy.
set -euo pipefail

readonly HOST=127.0.0.1 REDIS_PORT=6379 PG_PORT=5432

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=false
apt_install() {
    if ! "$apt_updated"; then
        as_root apt-get update -qq
        apt_updated=true
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Runs a check every second for up to 30 s; fails the script, saying what, otherwise.
wait_until() {
    local what=$1
    shift
    for _ in $(seq 30); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    echo "test-services: $what does not answer after 30 s" >&2
    exit 1
}

redis_up() { [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
postgres_up() { pg_isready -q -h "$HOST" -p "$PG_PORT"; }
psql_postgres() { psql -h "$HOST" -p "$PG_PORT" -U postgres -w -d postgres -tAq "$@"; }
postgres_trusts() { psql_postgres -c 'select 1' >/dev/null 2>&1; }
# "version cluster" of the cluster on our port (Debian's pg_lsclusters).
our_cluster() { pg_lsclusters -h | awk -v port="$PG_PORT" '$3 == port { print $1, $2; exit }'; }

# --- Redis ---
command -v redis-cli >/dev/null || apt_install redis-tools
if ! redis_up; then
    command -v redis-server >/dev/null || apt_install redis-server
    # A throwaway test server: no snapshots, no append-only file.
    redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" --save '' --appendonly no >/dev/null
    wait_until "Redis on $HOST:$REDIS_PORT" redis_up
fi

# --- PostgreSQL ---
if ! command -v pg_isready >/dev/null || ! command -v psql >/dev/null; then
    apt_install postgresql-client
fi
if ! postgres_up; then
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || apt_install postgresql
    if [ -z "$(our_cluster)" ]; then
        version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)
        as_root pg_createcluster -p "$PG_PORT" "$version" main >/dev/null
    fi
    read -r version cluster <<<"$(our_cluster)"
    as_root pg_ctlcluster "$version" "$cluster" start || true # "already running" is fine
    wait_until "PostgreSQL on $HOST:$PG_PORT" postgres_up
fi
if ! postgres_trusts; then
    # Trust for user postgres over loopback, ahead of the packaged password rules.
    read -r version cluster <<<"$(our_cluster)"
    hba=/etc/postgresql/$version/$cluster/pg_hba.conf
    as_root sed -i "1i host all postgres $HOST/32 trust" "$hba"
    as_root pg_ctlcluster "$version" "$cluster" reload
    wait_until "PostgreSQL trust auth for postgres@$HOST" postgres_trusts
fi
if [ "$(psql_postgres -c "select 1 from pg_database where datname = 'test'")" != 1 ]; then
    psql_postgres -c 'create database test'
fi
