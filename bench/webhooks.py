"""Webhook intake under load: signed push deliveries against gunicorn at rising rates.

Prints p50/p99/max acknowledgement latency per rate (target: p99 < 50 ms at 200 deliveries/s on a
2-core machine) and checks the journal afterwards: every delivery answered 202 became exactly one
job and one queue message, and the redeliveries mixed in (5%) became none.

    .venv/bin/python bench/webhooks.py [--rates 50,100,200,400] [--seconds 5] [--redis]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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
from tests.support.webhooks import SECRET, free_port, redis_server, wait_for  # noqa: E402


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


def run_rate(url: str, rate: int, seconds: float, payload: dict, accepted: dict[str, int]) -> dict:
    n = int(rate * seconds)
    latencies: list[float] = []
    late: list[float] = []
    status: dict[int | str, int] = {}
    sent_ids: list[str] = []
    lock = threading.Lock()
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "c"):
            local.c = httpx.Client(timeout=30, verify=False)
        return local.c

    def send(i: int, due: float) -> None:
        with lock:
            redeliver = i % 20 == 19 and sent_ids
            did = sent_ids[-1] if redeliver else str(uuid.uuid4())
            sent_ids.append(did)
        # each delivery its own body (intake also de-duplicates on the signed bytes); a
        # redelivery repeats its delivery's body exactly
        d = deliver("push", {**payload, "after": uuid.uuid5(uuid.NAMESPACE_OID, did).hex + "0" * 8},
                    SECRET, delivery_id=did)  # fmt: skip
        c = client()  # outside the clock: creating an httpx client costs tens of ms
        start = time.perf_counter()
        try:
            code: int | str = c.post(url, content=d.body, headers=d.headers).status_code
        except httpx.HTTPError as exc:
            code = type(exc).__name__
        took = time.perf_counter() - start
        with lock:
            latencies.append(took)
            late.append(start - due)
            status[code] = status.get(code, 0) + 1
            if code == 202:
                accepted[did] = accepted.get(did, 0) + 1

    t0 = time.perf_counter() + 0.2
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(n):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, i, due)
    ms = [x * 1000 for x in latencies]
    return {
        "rate": rate,
        "sent": n,
        "status": status,
        "p50": percentile(ms, 50),
        "p99": percentile(ms, 99),
        "max": max(ms),
        "mean": statistics.fmean(ms),
        "late_p99": percentile([x * 1000 for x in late], 99),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="50,100,200,400")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    ap.add_argument("--redis", action="store_true", help="Redis queue and journal (starts redis-server)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(Path(tmp))) if args.redis else ""
        settings = Settings(webhook_secret=SECRET, data_dir=Path(tmp) / "data", redis_url=redis_url)
        Queue(settings)  # create the tables before the web workers race to
        port = free_port()
        env = {
            **os.environ,
            "WEBHOOK_SECRET": SECRET,
            "PULLABLE_DATA_DIR": str(settings.data_dir),
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "warning",
            "APP_ID": "1",
        }  # fmt: skip  (create_app takes deliveries only once the App exists)
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
             "--worker-class", "gthread", "--threads", "8", "--log-level", "warning", "bot.web:create_app()"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        stack.callback(server.wait, 30)
        stack.callback(server.terminate)
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(base + "/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, "gunicorn to answer /healthz", timeout=60)
        payload = example("push", where=lambda p: p["ref"] == "refs/heads/master" and p.get("installation"))
        accepted: dict[str, int] = {}
        backend = "redis" if args.redis else "sqlite"
        size = len(json.dumps(payload))
        print(f"gunicorn: {args.workers} workers x 8 threads, {backend} queue; push body {size} B")
        head = ("rate/s", "sent", "p50 ms", "p99 ms", "max ms", "mean", "late p99")
        print("{:>7} {:>6} {:>8} {:>8} {:>8} {:>7} {:>9}  status".format(*head))
        for rate in (int(r) for r in args.rates.split(",")):
            res = run_rate(base + "/api/github/webhooks", rate, args.seconds, payload, accepted)
            cols = [res[k] for k in ("rate", "sent", "p50", "p99", "max", "mean", "late_p99", "status")]
            print("{:>7} {:>6} {:>8.1f} {:>8.1f} {:>8.1f} {:>7.1f} {:>9.1f}  {}".format(*cols))

        queue = Queue(settings)
        with queue.journal.store.transaction() as t:
            jobs = [j for j in t.open_jobs() if j.kind == "webhook"]
        per_delivery: dict[str, int] = {}
        for j in jobs:
            for d in j.deliveries:
                per_delivery[d] = per_delivery.get(d, 0) + 1
        twice = [d for d, n in accepted.items() if n != 1]
        ok = (
            set(per_delivery) == set(accepted)
            and all(n == 1 for n in per_delivery.values())
            and not twice
            and queue.huey.pending_count() == len(accepted)
        )
        print(
            f"accepted deliveries: {len(accepted)}; journal jobs: {len(jobs)}; queue messages: "
            f"{queue.huey.pending_count()}; accepted twice: {len(twice)} -> "
            + ("every accepted delivery is exactly one job" if ok else "MISMATCH")
        )
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
