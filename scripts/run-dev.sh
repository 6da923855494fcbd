#!/usr/bin/env bash
# Starts the Persona emulator and the app on the embedded defaults, with demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
APP_PORT=${APP_PORT:-5000}
EMULATOR_PORT=${EMULATOR_PORT:-5001}
WEBHOOK_SECRET=${PERSONA_WEBHOOK_SECRETS:-wbhsec_dev_emulator_secret}
mkdir -p instance
export FLASK_APP=wsgi
export PERSONA_API_BASE_URL="http://localhost:${EMULATOR_PORT}/api/v1"
export PERSONA_FLOW_HOST="localhost:${EMULATOR_PORT}"
export PERSONA_FLOW_ORIGIN="http://localhost:${EMULATOR_PORT}"
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-"http://localhost:${APP_PORT}"}

.venv/bin/python -m persona_emulator --port "$EMULATOR_PORT" --control --quiet \
  --webhook-url "http://localhost:${APP_PORT}/webhooks/persona" --webhook-secret "$WEBHOOK_SECRET" &
EMULATOR_PID=$!
trap 'kill $EMULATOR_PID 2>/dev/null || true' EXIT INT TERM

.venv/bin/python - "$EMULATOR_PORT" <<'PY'
import socket, sys, time
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0:
            sys.exit(0)
    time.sleep(0.1)
sys.exit("the Persona emulator did not start")
PY

.venv/bin/flask db upgrade
.venv/bin/flask demo seed
echo
echo "  App:               http://localhost:${APP_PORT}  (sign in as pending@demo.test / demo-password)"
echo "  Persona emulator:  http://localhost:${EMULATOR_PORT}/_emulator/inquiries"
echo "  Emails:            instance/outbox/"
echo
.venv/bin/flask run --host localhost --port "$APP_PORT" --no-reload
