# gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`
# Threads, because most of a request's time is spent waiting on Persona or the database.
import os

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))


# How long a thread may hold the GIL while another wants it. A thread back from PostgreSQL, Redis
# or Persona waits up to this long for a thread rendering a page; a request makes about a dozen
# round trips, so Python's default (5 ms) added tens of ms to each under load (PERFORMANCE.md).
def _switch_interval_seconds() -> float:
    text = os.environ.get("PYTHON_SWITCH_INTERVAL_SECONDS") or "0.001"
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 1:
        raise SystemExit(f"PYTHON_SWITCH_INTERVAL_SECONDS={text!r}: seconds above 0, at most 1 (default 0.001)")
    return seconds


switch_interval_seconds = _switch_interval_seconds()
# Above Persona's connect + read timeouts (and one retry): a worker is never killed mid-answer.
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-"
errorlog = "-"
# Request lines can carry recovery-link tokens (/r/<token>): this logger redacts them.
logger_class = "webapp.serving.RedactingLogger"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """Check the configuration once, in the master, before any worker forks: a bad setting
    stops gunicorn with one line naming the variable (a worker failing alone would respawn)."""
    from webapp.config import CONFIGS

    CONFIGS[os.environ.get("APP_ENV", "development")].check()


def post_fork(server, worker):
    import sys

    sys.setswitchinterval(switch_interval_seconds)


# No control socket: several instances on one machine (make cluster) would share its one path.
control_socket_disable = True
