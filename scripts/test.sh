#!/usr/bin/env bash
# The whole test suite, against real PostgreSQL (127.0.0.1:5432, db `test`) and Redis
# (127.0.0.1:6379). Starts them when they are down and this machine has them installed.
set -euo pipefail
cd "$(dirname "$0")/.."
REQ=requirements-dev.txt . scripts/venv.sh

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  fi
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if command -v redis-server >/dev/null; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    sleep 0.5
  fi
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && break; sleep 1; done
pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }

# The browser tests (tests/browser) drive Debian's Chromium from its path; Playwright never
# downloads a browser. Install it when it is missing and we may; without it they skip with the
# reason, except under CI=true, where they fail.
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
      echo "could not install chromium; the browser tests will not run" >&2
  else
    echo "no Chromium at ${CHROMIUM_PATH:-/usr/bin/chromium} (apt-get install chromium): the browser tests will skip" >&2
  fi
fi

ruff check .
exec python -m pytest -n 2 "$@"
