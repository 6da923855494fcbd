"""`python -m persona_emulator`: serve the emulator (see README, "The Persona emulator")."""

from __future__ import annotations

import argparse
import logging
import os

from werkzeug.serving import make_server

from . import create_app
from .config import EmulatorConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m persona_emulator", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("PERSONA_EMULATOR_HOST", "localhost"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PERSONA_EMULATOR_PORT", 5001)))
    parser.add_argument("--state-file", help="where state is kept (default instance/persona-emulator.json)")
    parser.add_argument("--reset", action="store_true", help="start from an empty state")
    parser.add_argument("--control", action="store_true", help="enable the /_emulator control API")
    parser.add_argument("--webhook-url", action="append", default=[], help="webhook receiver (repeatable)")
    parser.add_argument("--webhook-secret", action="append", default=[], help="signing secret (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="log warnings only (no webhook deliveries)")
    args = parser.parse_args(argv)

    config = EmulatorConfig.from_env()
    if args.state_file:
        config.state_file = args.state_file
    if args.control:
        config.control_enabled = True
    if args.webhook_url:
        config.webhook_urls = args.webhook_url
    if args.webhook_secret:
        config.webhook_secrets = args.webhook_secret
    if args.reset and os.path.exists(config.state_file):
        os.remove(config.state_file)

    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s persona-emulator %(message)s"
    )
    # Werkzeug's request log would print /widget URLs, whose query carries session tokens: off.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(config)
    server = make_server(args.host, args.port, app, threaded=True)
    print(
        f"Persona emulator on http://{args.host}:{server.port} (control API "
        f"{'on' if config.control_enabled else 'off'})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
