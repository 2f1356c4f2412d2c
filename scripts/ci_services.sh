#!/usr/bin/env bash
# Install the servers the operations tests start on loopback (tests/services.py): Redis for the
# Celery broker and PostgreSQL for Dagster's instance storage. Debian packages only; nothing is
# started here (each test session starts its own servers on free ports and stops them).
# Idempotent: installs only what is missing; needs root (or sudo) when something is.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    need+=(postgresql)
fi

if ((${#need[@]} == 0)); then
    echo "ci_services: redis-server and PostgreSQL are installed"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "ci_services: need root to install ${need[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
echo "ci_services: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
