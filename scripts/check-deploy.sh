#!/usr/bin/env bash
# Checks the operator files in deploy/: the Grafana dashboard is valid JSON, and, with
# promtool (Debian/Ubuntu: apt-get install prometheus), the Prometheus configuration, its
# alerting rules and their unit tests (deploy/alerts_test.yml). Installs nothing: without
# promtool the Prometheus checks are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

dashboard=deploy/grafana-dashboard.json
if command -v jq >/dev/null; then
    jq empty "$dashboard"
    echo "check-deploy: $dashboard is valid JSON"
elif command -v python3 >/dev/null; then
    python3 -m json.tool "$dashboard" >/dev/null
    echo "check-deploy: $dashboard is valid JSON"
else
    echo "check-deploy: neither jq nor python3 found: skipping $dashboard" >&2
fi

if ! command -v promtool >/dev/null; then
    echo "check-deploy: promtool not found: skipping the Prometheus checks" >&2
    exit 0
fi
# `check config` also checks the rule files the configuration names (alerts.yml).
promtool check config deploy/prometheus.yml
promtool check rules deploy/alerts.yml
promtool test rules deploy/alerts_test.yml
