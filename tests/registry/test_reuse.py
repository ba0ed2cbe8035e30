"""Asking registries once (issue 17): what classification fetched serves the rules, answers are
kept in the shared store across runs and revalidated with ETags, and rule lookups run side by
side under the per-host limit. Requests are counted on a real distribution 2.8 registry."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from bot import pipeline, rules
from bot.model import Status
from bot.reference import parse
from bot.registry import MemoryStore, RedisStore, Registry, RegistryConfig, SQLiteStore, Store
from bot.registry.cache import ResultCache
from bot.repoconfig import RepoConfig
from bot.scan import scan_single

pytestmark = pytest.mark.registry


class Seen:
    """Every exchange a Registry makes: (method, path, If-None-Match sent, status)."""

    def __init__(self, reg: Registry) -> None:
        self.rows: list[tuple[str, str, str | None, int]] = []
        reg.client.http.event_hooks["response"] = [self._hook]

    def _hook(self, response: httpx.Response) -> None:
        req = response.request
        self.rows.append((req.method, req.url.path, req.headers.get("if-none-match"), response.status_code))


def _stale(store_path, key: str) -> None:
    """Make a stored entry stale (its freshness passed) without waiting half an hour."""
    store = SQLiteStore(store_path)
    try:
        value = json.loads(store.get_many([key])[key])
        value["fresh"] = time.time() - 1
        store.set_many({key: json.dumps(value)}, 3600)
    finally:
        store.close()


def test_the_missing_tag_probe_serves_the_rules(registry_open):
    r = registry_open
    r.push("reuse/app", "1.0.0")
    r.push("reuse/app", "1.0.1")
    missing = [r.ref("reuse/app", "1.0.7"), r.ref("reuse/app", "1.0.9")]
    with Registry(r.config(), store=MemoryStore()) as reg:
        seen = Seen(reg)
        res = reg.check_many([*missing, r.ref("reuse/gone", "1.0")])
        assert [res[m].status for m in missing] == [Status.TAG_MISSING, Status.TAG_MISSING]
        assert res[r.ref("reuse/gone", "1.0")].status is Status.REPO_MISSING
        assert res[r.ref("reuse/gone", "1.0")].evidence.error_code == "NAME_UNKNOWN"
        # three HEADs, and one tag list per repository (not one per missing reference)
        lists = [p for _, p, _, _ in seen.rows if p.endswith("/tags/list")]
        assert sorted(lists) == ["/v2/reuse/app/tags/list", "/v2/reuse/gone/tags/list"]
        assert reg.requests == 5
        # the rules' question is answered by what classification fetched
        assert sorted(reg.tags(r.ref("reuse/app"))) == ["1.0.0", "1.0.1"]
        assert reg.tags(r.ref("reuse/app")) is reg.tags(r.ref("reuse/app"))  # one list, parsed once
        assert reg.requests == 5


def test_a_scan_asks_each_question_once(registry_open, tmp_path):
    """A tag-missing fix end to end: HEADs, one tag list, the target's check; nothing twice."""
    r = registry_open
    r.push("once/app", "2.0.0")
    r.push("once/app", "2.0.3")
    f = tmp_path / "compose.yaml"
    f.write_text(
        "services:\n"
        + "".join(f"  s{i}:\n    image: {r.ref('once/app', tag)}\n" for i, tag in enumerate(
            ["2.0.1", "2.0.1", "2.0.2", "2.0.3"]))
    )  # fmt: skip
    refs = scan_single(f).refs
    with Registry(r.config(), store=MemoryStore()) as reg:
        seen = Seen(reg)
        findings = pipeline.evaluate(refs, reg, RepoConfig(), rules.load())
    fixed = {f.ref.reference: f.fix.target for f in findings if f.fix is not None}
    assert fixed == {r.ref("once/app", "2.0.1"): r.ref("once/app", "2.0.3"),
                     r.ref("once/app", "2.0.2"): r.ref("once/app", "2.0.3")}  # fmt: skip
    asked = [(m, p) for m, p, _, _ in seen.rows]
    # 3 unique HEADs + 1 tag list (the target was one of them), then the minimum release age's
    # two questions about the chosen target only: its manifest and its config blob
    age = [a for a in asked if a[0] == "GET" and ("/blobs/" in a[1] or a[1].endswith("/manifests/2.0.3"))]
    assert len(age) == 2
    assert len(asked) == len(set(asked)) == 6


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_answers_are_kept_across_runs(registry_open, tmp_path, request, kind):
    r = registry_open
    repo = f"kept/{kind}"
    r.push(repo, "1.0.0")
    r.push(repo, "1.1.0")
    path = tmp_path / "cache.sqlite3"
    url = request.getfixturevalue("redis_url") if kind == "redis" else ""

    def store() -> Store:
        return RedisStore(url) if url else SQLiteStore(path)

    refs = [r.ref(repo, "1.0.0"), r.ref(repo, "1.0.5")]
    answers = []
    for _run in range(2):
        with Registry(r.config(), store=store()) as reg:
            res = reg.check_many(refs)
            tags = reg.tags(r.ref(repo))
            digest = reg.pinned_digest(refs[0])
            answers.append(([res[x].status for x in refs], sorted(tags), digest, reg.requests))
    first, second = answers
    assert first[:3] == second[:3]
    assert first[0] == [Status.OK, Status.TAG_MISSING] and first[1] == ["1.0.0", "1.1.0"]
    assert first[2] is not None and first[3] == 4  # 2 HEADs, 1 tag list, 1 manifest GET
    assert second[3] == 0


def test_a_stale_digest_is_revalidated_with_its_etag(registry_open, tmp_path):
    r = registry_open
    old = r.push("etag/app", "1.0")
    path = tmp_path / "cache.sqlite3"
    ref = r.ref("etag/app", "1.0")
    with Registry(r.config(), store=SQLiteStore(path)) as reg:
        assert reg.pinned_digest(ref) == old
        key = reg._entry_key("digest", parse(ref))
    _stale(path, key)
    with Registry(r.config(), store=SQLiteStore(path)) as reg:
        seen = Seen(reg)
        assert reg.pinned_digest(ref) == old
        assert seen.rows == [("GET", "/v2/etag/app/manifests/1.0", f'"{old}"', 304)]
    # the tag moves: the conditional GET gets the new manifest, and the new digest is kept
    new = r.push("etag/app", "1.0", content="rebuilt")
    _stale(path, key)
    with Registry(r.config(), store=SQLiteStore(path)) as reg:
        seen = Seen(reg)
        assert reg.pinned_digest(ref) == new != old
        assert [row[3] for row in seen.rows] == [200]
    with Registry(r.config(), store=SQLiteStore(path)) as reg:
        assert reg.pinned_digest(ref) == new and reg.requests == 0


def test_a_stale_tag_list_is_revalidated_with_its_etag(tmp_path):
    """distribution 2.8 sends no ETag on tag lists; registries that do are asked conditionally."""
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("if-none-match"))
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304, headers={"ETag": '"v1"'})
        return httpx.Response(200, json={"name": "o/r", "tags": ["1.0", "1.1"]}, headers={"ETag": '"v1"'})

    path = tmp_path / "cache.sqlite3"
    config = RegistryConfig()

    def run() -> tuple[list[str], Registry]:
        reg = Registry(config, store=SQLiteStore(path), transport=httpx.MockTransport(handler))
        with reg:
            return list(reg.tags("ghcr.io/o/r")), reg

    assert run()[0] == ["1.0", "1.1"]
    assert run()[0] == ["1.0", "1.1"] and asked == [None]  # fresh: not asked
    _, reg = run()
    key = ResultCache.entry_key("tags", "ghcr.io/o/r", reg._scope("ghcr.io"))
    _stale(path, key)
    assert run()[0] == ["1.0", "1.1"]
    assert asked == [None, '"v1"']  # revalidated; 304 kept the list
    assert run()[0] == ["1.0", "1.1"] and len(asked) == 2  # and fresh again


def test_not_found_answers_stay_short_lived(registry_open, tmp_path):
    r = registry_open
    path = tmp_path / "cache.sqlite3"
    ref = r.ref("late/app", "1.0")
    with Registry(r.config(), store=SQLiteStore(path)) as reg:
        assert reg.check(ref).status is Status.REPO_MISSING
        assert list(reg.tags(r.ref("late/app"))) == []
    r.push("late/app", "1.0")  # pushed a moment later: only the short-lived check answer stands
    store = SQLiteStore(path)
    try:
        rows = store._db.execute("SELECT key, expires FROM registry_cache").fetchall()
    finally:
        store.close()
    assert rows and all(exp - time.time() <= 300 + 5 for _, exp in rows)  # NEGATIVE_TTL_S
    assert not any(":tags:" in k for k, _ in rows)  # a 404 tag list is never stored


def test_rule_lookups_run_side_by_side_within_the_per_host_limit(tmp_path):
    """20 `latest` references: the rules list 20 repositories at once, at most per_host at a time."""
    lock = threading.Lock()
    state = {"now": 0, "max": 0, "lists": 0}
    digest = "sha256:" + "a" * 64

    def handler(request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/tags/list"):  # classification's HEADs
            return httpx.Response(
                200,
                headers={
                    "Docker-Content-Digest": digest,
                    "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                },
            )
        with lock:  # only the rules list tags here: their concurrency is what is measured
            state["now"] += 1
            state["lists"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.03)
        with lock:
            state["now"] -= 1
        return httpx.Response(200, json={"tags": ["1.0.0", "latest"]})

    f = tmp_path / "compose.yaml"
    f.write_text("services:\n" + "".join(f"  s{i}:\n    image: ghcr.io/o/r{i}:latest\n" for i in range(20)))
    refs = scan_single(f).refs
    with Registry(RegistryConfig(), store=MemoryStore(), transport=httpx.MockTransport(handler),
                  per_host=3) as reg:  # fmt: skip
        findings = pipeline.evaluate(refs, reg, RepoConfig(), rules.load())
    assert state["lists"] == 20
    assert state["max"] == 3  # side by side, never past the limit
    assert {f.fix.target for f in findings if f.fix} == {f"ghcr.io/o/r{i}:1.0.0" for i in range(20)}


def test_tag_lists_are_parsed_once_per_repository(registry_open, tmp_path, monkeypatch):
    from bot import versions

    r = registry_open
    tags = [f"3.{m}.{p}" for m in range(5) for p in range(8)]
    for t in tags:
        r.push("parse/app", t, content="same")
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n" + "".join(
        f"  s{i}:\n    image: {r.ref('parse/app', f'3.{i % 5}.9')}\n" for i in range(30)))  # fmt: skip
    refs = scan_single(f).refs
    calls: list[str] = []
    real = versions.parse_tag
    monkeypatch.setattr(versions, "parse_tag", lambda t: calls.append(t) or real(t))
    with Registry(r.config(), store=MemoryStore()) as reg:
        findings = pipeline.evaluate(refs, reg, RepoConfig(), rules.load())
    assert {f.fix.target for f in findings if f.fix} == {r.ref("parse/app", f"3.{m}.7") for m in range(5)}
    for t in tags:
        assert calls.count(t) == 1, t  # the repository's 40 tags: once each for 30 references
