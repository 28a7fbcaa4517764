#!/usr/bin/env bash
# Set up and run the whole product locally on the zero-set-up default (SQLite + embedded
# Redis): the WeCom simulator, the web app, a worker, a demo admin. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh

APP_PORT=${APP_PORT:-5000}
SIM_PORT=${SIM_PORT:-8081}
export FLASK_APP=wsgi
# The app talks to the bundled simulator instead of WeCom unless told otherwise.
export WECOM_API_BASE=${WECOM_API_BASE:-http://127.0.0.1:$SIM_PORT/cgi-bin/}
export WECHAT_API_BASE=${WECHAT_API_BASE:-http://127.0.0.1:$SIM_PORT/}
export WECOM_OAUTH_BASE=${WECOM_OAUTH_BASE:-http://127.0.0.1:$SIM_PORT/connect/oauth2/authorize}
# The local run serves plain http, so the console's session cookie may not require HTTPS.
export SESSION_COOKIE_SECURE=${SESSION_COOKIE_SECURE:-false}
mkdir -p instance/logs

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

flask db upgrade
flask create-admin admin --password admin-demo-password --exist-ok

if [ -f wecom/simulator/__main__.py ]; then
  python -m wecom.simulator --port "$SIM_PORT" --seed-demo \
    --callback-url "http://127.0.0.1:$APP_PORT/wecom/callback" >instance/logs/simulator.log 2>&1 &
  pids+=($!)
fi
# --preload: the master creates the app (and the embedded Redis) once; workers inherit it.
gunicorn --preload -w 2 -b "127.0.0.1:$APP_PORT" wsgi:app >instance/logs/app.log 2>&1 &
pids+=($!)
python - "$APP_PORT" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=1)
        break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit("the app did not become ready; see instance/logs/app.log")
PY
python -m jobs.worker >instance/logs/worker.log 2>&1 &
pids+=($!)

python scripts/demo.py --app "http://127.0.0.1:$APP_PORT" --sim "http://127.0.0.1:$SIM_PORT" || echo "(a demo step failed; the product keeps running)"

cat <<INFO

  app        http://127.0.0.1:$APP_PORT   (/readyz, /api/v1/openapi.json)
  simulator  http://127.0.0.1:$SIM_PORT   (WeCom stand-in)
  admin      admin / admin-demo-password  (POST /api/v1/auth/token)
  console    http://127.0.0.1:$APP_PORT/console/  (sign in as the admin)
  logs       instance/logs/{app,worker,simulator}.log
  Ctrl-C stops everything.
INFO
wait
