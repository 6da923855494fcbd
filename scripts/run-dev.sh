#!/usr/bin/env bash
# Starts Redis, the Persona emulator, a Celery worker and beat, and the app, with demo data.
# Ctrl-C stops them all. MAIL_* and other settings in the environment reach every process.
set -euo pipefail
cd "$(dirname "$0")/.."
APP_PORT=${APP_PORT:-5000}
EMULATOR_PORT=${EMULATOR_PORT:-5001}
REDIS_PORT=${REDIS_PORT:-6379}
WEBHOOK_SECRET=${PERSONA_WEBHOOK_SECRETS:-wbhsec_dev_emulator_secret}
mkdir -p instance
export FLASK_APP=wsgi
export PERSONA_API_BASE_URL="http://localhost:${EMULATOR_PORT}/api/v1"
export PERSONA_FLOW_HOST="localhost:${EMULATOR_PORT}"
export PERSONA_FLOW_ORIGIN="http://localhost:${EMULATOR_PORT}"
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-"http://localhost:${APP_PORT}"}

PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT INT TERM

wait_for_port() {  # port, what
  .venv/bin/python - "$1" "$2" <<'PY'
import socket, sys, time
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0:
            sys.exit(0)
    time.sleep(0.1)
sys.exit(f"{sys.argv[2]} did not start on port {sys.argv[1]}")
PY
}

if [ -z "${REDIS_URL:-}" ]; then
  if command -v redis-server >/dev/null; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --loglevel warning &
    PIDS+=($!)
    wait_for_port "$REDIS_PORT" Redis
    export REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"
  else
    echo "redis-server is not installed (make run-deps installs it): mail is sent by the app itself" >&2
  fi
fi

.venv/bin/python -m persona_emulator --port "$EMULATOR_PORT" --control --quiet \
  --webhook-url "http://localhost:${APP_PORT}/webhooks/persona" --webhook-secret "$WEBHOOK_SECRET" &
PIDS+=($!)
wait_for_port "$EMULATOR_PORT" "The Persona emulator"

.venv/bin/flask db upgrade
.venv/bin/flask demo seed

if [ -n "${REDIS_URL:-}" ]; then
  .venv/bin/celery -A celery_app worker --loglevel INFO --concurrency 2 --hostname "worker@%h" &
  PIDS+=($!)
  .venv/bin/celery -A celery_app beat --loglevel INFO --schedule instance/celerybeat-schedule &
  PIDS+=($!)
fi
echo
echo "  App:               http://localhost:${APP_PORT}  (sign in as pending@demo.test / demo-password)"
echo "  Persona emulator:  http://localhost:${EMULATOR_PORT}/_emulator/inquiries"
echo "  Emails:            ${MAIL_SMTP_HOST:-instance/outbox/}  (sent by the Celery worker)"
echo
.venv/bin/flask run --host localhost --port "$APP_PORT" --no-reload
