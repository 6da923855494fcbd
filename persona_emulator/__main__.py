"""`python -m persona_emulator`: serve the emulator (see README, "The Persona emulator")."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from types import FrameType

from werkzeug.serving import make_server

from . import create_app
from .config import EmulatorConfig, parse_latency
from .state import Store


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m persona_emulator", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("PERSONA_EMULATOR_HOST", "localhost"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PERSONA_EMULATOR_PORT", 5001)))
    parser.add_argument("--state-file", help="where state is kept (default instance/persona-emulator.db, SQLite)")
    parser.add_argument("--reset", action="store_true", help="start from an empty state")
    parser.add_argument("--control", action="store_true", help="enable the /_emulator control API")
    parser.add_argument("--webhook-url", action="append", default=[], help="webhook receiver (repeatable)")
    parser.add_argument("--webhook-secret", action="append", default=[], help="signing secret (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="log warnings only (no webhook deliveries)")
    parser.add_argument(
        "--latency", help="added to every API answer: 150ms (fixed), 100-300ms (uniform), lognormal:150ms:400ms"
    )
    args = parser.parse_args(argv)
    config = _config(args, parser)

    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s persona-emulator %(message)s"
    )
    # Werkzeug's request log would print /widget URLs, whose query carries session tokens: off.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(config)
    server = make_server(args.host, args.port, app, threaded=True)
    signal.signal(signal.SIGTERM, _stop)
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
        store: Store = app.extensions["persona_emulator"]
        store.close()  # writes what the write-behind flusher had not yet written


def _config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> EmulatorConfig:
    """The settings from the environment, then the flags; `--reset` removes the state file."""
    config = EmulatorConfig.from_env()
    if args.state_file:
        config.state_file = args.state_file
    if args.control:
        config.control_enabled = True
    if args.webhook_url:
        config.webhook_urls = args.webhook_url
    if args.webhook_secret:
        config.webhook_secrets = args.webhook_secret
    if args.latency is not None:
        try:
            parse_latency(args.latency)
        except ValueError as exc:
            parser.error(str(exc))
        config.latency = args.latency
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(config.state_file + suffix):
                os.remove(config.state_file + suffix)
    return config


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the server like Ctrl-C, so the state is saved on the way out."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
