"""Webhook intake under load with slow clients, as ``pullable serve`` runs it (issue 11).

Starts ``pullable serve`` (gunicorn, the intake worker class), opens ``--slow`` connections that
trickle request bytes (half still in the headers, half in the body, one byte every 0.5 s), then
sends ``--count`` signed push deliveries at ``--rate`` per second, each with its own body, and 5%
of them twice (a redelivery: same id, same body). Prints acknowledgement latency (target: every
delivery acknowledged within 1 s) and counts the journal afterwards: every accepted delivery must
be exactly one job and one queue message, and no redelivery may add one.

    .venv/bin/python bench/intake.py            # 5,000 deliveries at 200/s + 50 slow clients
    .venv/bin/python bench/intake.py --short    # 1,000 at 200/s + 50 slow clients (CI)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.jobs.queue import Queue  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.support.fakegithub_webhooks import deliver, example  # noqa: E402
from tests.support.webhooks import SECRET, app_key, free_port, wait_for  # noqa: E402

SERVE = "import sys; from bot.web import serve; sys.exit(serve())"


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


class SlowClients:
    """Connections that never finish their request: they re-open when the server cuts them."""

    def __init__(self, port: int, n: int, every: float = 0.5) -> None:
        self.port, self.n, self.every = port, n, every
        self.stop = threading.Event()
        self.cut = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _open(self, i: int) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port))
        head = (
            b"POST /api/github/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-GitHub-Event: push\r\nContent-Length: 100000\r\n\r\n"
        )
        s.sendall(head if i % 2 else head[:10])
        return s

    def _run(self) -> None:
        socks = [self._open(i) for i in range(self.n)]
        while not self.stop.wait(self.every):
            for i, s in enumerate(socks):
                try:
                    s.send(b"x")
                except OSError:
                    self.cut += 1
                    s.close()
                    with contextlib.suppress(OSError):
                        socks[i] = self._open(i)
        for s in socks:
            s.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--slow", type=int, default=50)
    ap.add_argument("--short", action="store_true", help="1,000 deliveries (about 5 s of load)")
    args = ap.parse_args()
    count = 1000 if args.short else args.count

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        settings = Settings(webhook_secret=SECRET, data_dir=Path(tmp) / "data")
        Queue(settings)  # create the tables before the web workers race to
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("APP_ID", "REDIS_URL")}
        env |= {
            "WEBHOOK_SECRET": SECRET,
            "PULLABLE_DATA_DIR": str(settings.data_dir),
            "LOG_LEVEL": "warning",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "APP_ID": "1",
            "PRIVATE_KEY": app_key(),
        }  # fmt: skip  (deliveries need an App)
        server = subprocess.Popen([sys.executable, "-c", SERVE], cwd=ROOT, env=env)
        stack.callback(server.wait, 30)
        stack.callback(server.terminate)
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(base + "/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, "pullable serve to answer /healthz", timeout=60)
        slow = SlowClients(port, args.slow)
        stack.callback(slow.stop.set)
        time.sleep(1.0)  # let the slow connections take their threads

        payload = example("push", where=lambda p: p["ref"] == "refs/heads/master" and p.get("installation"))
        latencies: list[float] = []
        status: dict[int | str, int] = {}
        accepted: dict[str, int] = {}
        sent: list[tuple[str, str]] = []
        lock = threading.Lock()
        local = threading.local()

        def send(i: int) -> None:
            with lock:
                if i % 20 == 19 and sent:
                    did, after = sent[-1]  # a redelivery: same id, same body
                else:
                    did, after = str(uuid.uuid4()), uuid.uuid4().hex + "0" * 8
                sent.append((did, after))
            d = deliver("push", {**payload, "after": after}, SECRET, delivery_id=did)
            if not hasattr(local, "c"):
                local.c = httpx.Client(timeout=30)
            start = time.perf_counter()
            try:
                code: int | str = local.c.post(base + "/api/github/webhooks", content=d.body,
                                               headers=d.headers).status_code  # fmt: skip
            except httpx.HTTPError as exc:
                code = type(exc).__name__
            took = time.perf_counter() - start
            with lock:
                latencies.append(took)
                status[code] = status.get(code, 0) + 1
                if code == 202:
                    accepted[did] = accepted.get(did, 0) + 1

        t0 = time.perf_counter() + 0.2
        with ThreadPoolExecutor(max_workers=64) as pool:
            for i in range(count):
                delay = t0 + i / args.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(send, i)
        wall = time.perf_counter() - t0
        slow.stop.set()

        ms = [x * 1000 for x in latencies]
        over = sum(1 for x in ms if x > 1000)
        print(f"pullable serve (2 workers x 64 threads, intake worker); {args.slow} slow clients "
              f"(cut and re-opened {slow.cut} times)")  # fmt: skip
        print(f"{count} deliveries at {args.rate}/s in {wall:.1f} s: p50 {percentile(ms, 50):.1f} ms, "
              f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms, mean {statistics.fmean(ms):.1f} ms; "
              f"over 1 s: {over}; status {status}")  # fmt: skip

        queue = Queue(settings)
        with queue.journal.store.transaction() as t:
            jobs = [j for j in t.open_jobs() if j.kind == "webhook"]
        per_delivery: dict[str, int] = {}
        for j in jobs:
            for did in j.deliveries:
                per_delivery[did] = per_delivery.get(did, 0) + 1
        distinct = len({did for did, _ in sent})
        ok = (
            set(per_delivery) == set(accepted) == {did for did, _ in sent}
            and all(n == 1 for n in per_delivery.values())
            and all(n == 1 for n in accepted.values())
            and queue.huey.pending_count() == distinct
        )
        print(
            f"distinct deliveries: {distinct}; accepted: {len(accepted)}; journal jobs: {len(jobs)}; "
            f"queue messages: {queue.huey.pending_count()} -> "
            + ("every delivery enqueued exactly once" if ok else "MISMATCH")
            + f"; acknowledged within 1 s: {'yes' if over == 0 else f'no ({over} later)'}"
        )
        return 0 if ok else 1  # timing is printed, not judged


if __name__ == "__main__":
    sys.exit(main())
