"""How many resume calls a second the Persona emulator serves with persistence on.

Prints numbers, asserts nothing (a load upstream for other benchmarks must not be the bottleneck):

    .venv/bin/python scripts/bench_emulator.py [--seconds 10] [--clients 2] [--threads 8]
        [--inquiries 50] [--latency SPEC]

Starts `python -m persona_emulator` with a state file in a temporary directory, creates pending
inquiries, then has client processes (threads with keep-alive connections) call
`POST /inquiries/{id}/resume` with a fresh Idempotency-Key each time, as the app does, for two
consecutive rounds (the second shows whether the emulator slows down as its state grows).
Client and emulator share the machine's cores, so the figure is a floor.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.emulator_client import API_KEY, EmulatorClient  # noqa: E402
from tests.servers import ROOT, free_port, process_ended, wait_for_port  # noqa: E402


def _client_process(port: int, inquiry_ids: list[str], threads: int, seconds: float, queue) -> None:
    """One client process: `threads` keep-alive connections calling resume until time is up."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        codes: dict[int, int] = {}
        n = offset
        while time.monotonic() < stop_at:
            inquiry_id = inquiry_ids[n % len(inquiry_ids)]
            n += 1
            headers = {
                "Authorization": f"Bearer {API_KEY}",
                "Content-Type": "application/json",
                "Idempotency-Key": str(uuid.uuid4()),
            }
            started = time.perf_counter()
            try:
                conn.request("POST", f"/api/v1/inquiries/{inquiry_id}/resume", body=b'{"meta":{}}', headers=headers)
                response = conn.getresponse()
                response.read()
                code = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                code = 0
            mine.append(time.perf_counter() - started)
            codes[code] = codes.get(code, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for code, count in codes.items():
                statuses[code] = statuses.get(code, 0) + count

    workers = [threading.Thread(target=worker, args=(i * 7,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put((latencies, statuses))


def _round(port: int, inquiry_ids: list[str], args: argparse.Namespace) -> tuple[list[float], dict[int, int], float]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_client_process, args=(port, inquiry_ids, args.threads, args.seconds, queue))
        for _ in range(args.clients)
    ]
    started = time.monotonic()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - started
    latencies = [x for lat, _ in results for x in lat]
    statuses: dict[int, int] = {}
    for _, codes in results:
        for code, count in codes.items():
            statuses[code] = statuses.get(code, 0) + count
    return latencies, statuses, elapsed


def _ms(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _state_size(state_dir: Path) -> int:
    return sum(p.stat().st_size for p in state_dir.iterdir() if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each round")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=8, help="connections per client process")
    parser.add_argument("--inquiries", type=int, default=50)
    parser.add_argument("--latency", help="passed to the emulator's --latency (e.g. 150ms, or 100-300ms)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp)
        port = free_port()
        command = [sys.executable, "-m", "persona_emulator", "--port", str(port), "--quiet", "--control"]
        if args.latency:
            command += ["--latency", args.latency]
        env = dict(
            os.environ,
            PERSONA_EMULATOR_STATE_FILE=str(state_dir / "emulator-state"),
            PERSONA_EMULATOR_RATE_LIMIT_PER_MINUTE="0",
        )
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        try:
            wait_for_port(port)
            emulator = EmulatorClient(f"http://localhost:{port}")
            ids = []
            for n in range(args.inquiries):
                inquiry = emulator.create_inquiry(f"usr_bench_{n}")
                emulator.set_status(inquiry["id"], "pending")
                ids.append(inquiry["id"])
            pid = proc.pid
            print(
                f"emulator resume benchmark: {args.clients} client processes x {args.threads} keep-alive "
                f"connections, {args.inquiries} pending inquiries, {args.seconds:.0f} s rounds, "
                f"latency {args.latency or 'none'}, {os.cpu_count()} cores"
            )
            for label in ("round 1", "round 2"):
                latencies, statuses, elapsed = _round(port, ids, args)
                ok = statuses.get(200, 0)
                others = {code: count for code, count in statuses.items() if code != 200}
                print(
                    f"  {label}: {ok / elapsed:7.1f} resume/s ({ok} ok in {elapsed:.1f} s), "
                    f"p50 {statistics.median(latencies) * 1000:.1f} ms, p95 {_ms(latencies, 0.95):.1f} ms, "
                    f"p99 {_ms(latencies, 0.99):.1f} ms, other statuses {json.dumps(others)}, "
                    f"state on disk {_state_size(state_dir) / 1e6:.1f} MB, emulator RSS {_rss_mb(pid):.0f} MB"
                )
        finally:
            process_ended(proc)


if __name__ == "__main__":
    main()
