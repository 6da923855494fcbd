"""The production shape on one machine, loopback only (`make cluster`; the production and fault
tests start it too): PostgreSQL, Redis, N gunicorn instances with APP_ENV=production, nginx
terminating TLS (a self-signed certificate made now) and balancing them on https://localhost:PORT,
Celery workers and one beat, and the Persona emulator with its control API and the demo users.
Ctrl-C (or leaving the `with` block) stops everything it started."""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import stack  # noqa: E402
from tests.servers import free_port, postgres_cluster, wait_for_port  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WEBHOOK_SECRET = "wbhsec_cluster_secret"  # nosec B105: a local cluster's own secret


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (also its own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def nginx_conf(directory: Path, port: int, app_ports: list[int], cert: Path, key: Path) -> Path:
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=3s;" for p in app_ports)
    temp = directory / "nginx-temp"
    temp.mkdir(exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(f"""
user root;
worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;  # request lines can carry link tokens; the app logs them redacted
  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
  upstream app {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name localhost;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location = /metrics {{ return 404; }}  # scraped on each instance directly, never through here
    location / {{
      proxy_pass http://app;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_connect_timeout 2s;
      proxy_next_upstream error timeout http_502 http_503;
    }}
  }}
}}
""")
    return conf


class Cluster:
    """Start with `with Cluster(...) as c:`; `c.url` is the load balancer."""

    def __init__(
        self,
        directory: Path,
        *,
        apps: int = 2,
        workers: int = 2,
        port: int | None = None,
        emulator_port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.dir = directory
        self.apps, self.workers = apps, workers
        self.port = port or free_port()
        self.emulator_port = emulator_port or free_port()
        self.redis_port = free_port()
        self.url = f"https://localhost:{self.port}"
        self.emulator = f"http://localhost:{self.emulator_port}"
        self.extra_env = extra_env or {}
        self.processes: dict[str, stack.Process] = {}
        self.app_ports: dict[str, int] = {}
        self._stack = ExitStack()

    # -- starting ------------------------------------------------------------------------------
    def __enter__(self) -> Cluster:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert, key = make_certificate(self.dir)
        self.database_url = self._stack.enter_context(postgres_cluster())
        self.start_redis()
        self.env = stack.app_env(
            {
                "APP_ENV": "production",
                "SECRET_KEY": secrets.token_urlsafe(32),
                "DATABASE_URL": self.database_url,
                "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "PUBLIC_BASE_URL": self.url,
                "TRUSTED_PROXY_HOPS": "1",
                "PERSONA_API_BASE_URL": f"{self.emulator}/api/v1",
                "PERSONA_FLOW_HOST": f"localhost:{self.emulator_port}",
                "PERSONA_FLOW_ORIGIN": self.emulator,
                "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET,
                "MAIL_OUTBOX_DIR": str(self.dir / "outbox"),
                "WEB_CONCURRENCY": "1",
                "EMAIL_ALLOW_TEST_DOMAINS": "true",  # the demo users are @demo.test
                **self.extra_env,
            }
        )
        self._start_emulator()
        self._run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"])
        self._run([sys.executable, "-m", "flask", "--app", "wsgi", "demo", "seed"])
        for n in range(1, self.apps + 1):
            self.start_app(f"app-{n}")
        for n in range(1, self.workers + 1):
            self.start_worker(f"worker-{n}")
        self.processes["beat"] = stack.beat(self.env, self.dir)
        conf = nginx_conf(self.dir, self.port, list(self.app_ports.values()), self.cert, key)
        self.processes["lb"] = stack.Process("lb", [NGINX, "-c", str(conf), "-p", str(self.dir)], self.env, self.dir)
        wait_for_port(self.port)
        for n in range(1, self.workers + 1):
            stack.wait_for_worker(self.processes[f"worker-{n}"])

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[2:])} failed:\n{done.stdout}{done.stderr}")

    def _start_emulator(self) -> None:
        argv = [sys.executable, "-m", "persona_emulator", "--port", str(self.emulator_port), "--control", "--quiet"]
        argv += ["--reset", "--state-file", str(self.dir / "emulator.db")]
        argv += ["--webhook-url", f"{self.url}/webhooks/persona", "--webhook-secret", WEBHOOK_SECRET]
        env = {**self.env, "REQUESTS_CA_BUNDLE": str(self.cert)}  # webhooks go through the TLS balancer
        self.processes["emulator"] = stack.Process("emulator", argv, env, self.dir)
        wait_for_port(self.emulator_port)

    def start_redis(self) -> None:
        argv = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.redis_port),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.processes["redis"] = stack.Process("redis", argv, dict(os.environ), self.dir)
        wait_for_port(self.redis_port)

    def start_app(self, name: str) -> None:
        port = self.app_ports.get(name) or free_port()
        metrics_dir = self.dir / f"{name}-metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()
        env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        self.processes[name], self.app_ports[name] = stack.gunicorn(name, env, self.dir, port)

    def start_worker(self, name: str) -> None:
        self.processes[name] = stack.worker(name, self.env, self.dir)

    # -- stopping ------------------------------------------------------------------------------
    def __exit__(self, *exc) -> None:
        for process in reversed(list(self.processes.values())):
            if process.running:
                process.stop(timeout=10)
        self._stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--emulator-port", type=int, default=5001)
    parser.add_argument("--dir", default=str(ROOT / "instance" / "cluster"))
    args = parser.parse_args()
    directory = Path(args.dir)
    shutil.rmtree(directory, ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Cluster(directory, port=args.port, emulator_port=args.emulator_port) as cluster:
        print(f"""
  Load balancer (TLS, self-signed):  {cluster.url}   (sign in as pending@demo.test / demo-password)
  App instances (metrics at /metrics, loopback only):  {", ".join(f"{n} :{p}" for n, p in cluster.app_ports.items())}
  Persona emulator:  {cluster.emulator}/_emulator/inquiries
  Emails:            {cluster.dir / "outbox"}
  Logs:              {cluster.dir}/*.log
  Ctrl-C stops everything.
""")
        try:
            while all(p.running for p in cluster.processes.values()):
                time.sleep(1)
            dead = [n for n, p in cluster.processes.items() if not p.running]
            print(f"stopped: {', '.join(dead)} exited (see its log in {cluster.dir})", file=sys.stderr)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C while starting: what had started is stopped already
        sys.exit(130)
