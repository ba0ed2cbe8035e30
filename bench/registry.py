"""Registry lookup speed (issue 3 §9) against local distribution 2.8 registries on loopback.

Prints, for N unique references:
- requests per reference on the token registry with a warm token (target <= 1.05);
- wall time of ``Registry.check_many`` on the open registry against a raw httpx HEAD loop over
  the same references at the same concurrency: threads sharing one ``httpx.Client`` (target
  <= 1.3x of that floor).

    python bench/registry.py                 # 1000 references, 8-way (the per-host limit)
    python bench/registry.py -n 300 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bot.registry import DEFAULT_PER_HOST, MemoryStore, Registry  # noqa: E402
from bot.registry.client import MANIFEST_ACCEPT  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402


def populate(reg: LocalRegistry, n: int, repos: int) -> list[str]:
    """n unique references over ``repos`` repositories (manifests share blobs: fast to push)."""
    refs = []
    for i in range(n):
        repo = f"bench/app{i % repos}"
        tag = f"1.{i}"
        reg.push(repo, tag, content=repo)  # blobs shared per repository: only the manifest PUT
        refs.append(reg.ref(repo, tag))
    return refs


def raw_loop(reg: LocalRegistry, refs: list[str], workers: int) -> float:
    """The floor: HEAD each manifest with the four-type Accept, nothing else."""
    paths = []
    for ref in refs:
        name, tag = ref.split("/", 1)[1].rsplit(":", 1)
        paths.append(f"{reg.url}/v2/{name}/manifests/{tag}")
    with httpx.Client(limits=httpx.Limits(max_connections=workers), trust_env=False) as client:
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            statuses = list(
                pool.map(lambda u: client.head(u, headers={"Accept": MANIFEST_ACCEPT}).status_code, paths)
            )
        took = time.perf_counter() - start
    assert set(statuses) == {200}, set(statuses)
    return took


def ours(reg: LocalRegistry, refs: list[str], workers: int) -> tuple[float, int]:
    with Registry(reg.config(), store=MemoryStore(), workers=workers, per_host=workers) as r:
        start = time.perf_counter()
        res = r.check_many(refs)
        took = time.perf_counter() - start
        assert {v.status.value for v in res.values()} == {"ok"}
        return took, r.requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1000, help="unique references (default 1000)")
    ap.add_argument("--repos", type=int, default=10, help="repositories they spread over (default 10)")
    ap.add_argument("--workers", type=int, default=DEFAULT_PER_HOST, help="concurrency for both sides")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("open", "token"):
            (Path(tmp) / kind).mkdir()
        open_reg = LocalRegistry(Path(tmp) / "open", "open")
        token_reg = LocalRegistry(Path(tmp) / "token", "token")
        try:
            t = time.perf_counter()
            refs = populate(open_reg, args.n, args.repos)
            token_refs = populate(token_reg, args.n, args.repos)
            print(f"pushed {2 * args.n} images in {time.perf_counter() - t:.1f}s")

            # requests per reference with a warm token: warm every repository's token first
            with Registry(token_reg.config(), store=MemoryStore(), workers=args.workers) as r:
                warm = [token_reg.ref(f"bench/app{i}", "warm") for i in range(args.repos)]  # tag-missing
                r.check_many(warm)
                before = r.requests
                res = r.check_many(token_refs)
                assert all(v.status.value == "ok" for v in res.values())
                per_ref = (r.requests - before) / len(token_refs)
            print(f"token registry: {per_ref:.3f} requests per reference with a warm token (target <= 1.05)")

            raw, mine = [], []
            for _ in range(args.runs):
                raw.append(raw_loop(open_reg, refs, args.workers))
                took, requests = ours(open_reg, refs, args.workers)
                mine.append(took)
            r_med, m_med = statistics.median(raw), statistics.median(mine)
            print(f"open registry, {args.n} references, {args.workers}-way, median of {args.runs}:")
            print(f"  raw httpx HEAD loop : {r_med:.3f}s ({args.n / r_med:.0f} refs/s)")
            rate = f"{args.n / m_med:.0f} refs/s, {requests / args.n:.3f} req/ref"
            print(f"  Registry.check_many : {m_med:.3f}s ({rate})")
            print(f"  ratio               : {m_med / r_med:.2f}x (target <= 1.3x)")
        finally:
            open_reg.stop()
            token_reg.stop()


if __name__ == "__main__":
    main()
